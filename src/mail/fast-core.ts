/**
 * A synchronous parse of the common simple message (one text/plain part),
 * giving exactly what `mailparserCore` gives, or null so the caller falls
 * back to mailparser. Every step mirrors mailparser 3.14 / mailsplit 5.4 code
 * (cited per function) and reuses the very helpers they call.
 */
import { createRequire } from 'node:module';
import { parseAddressHeader } from 'mailparser';
import { extractMsgIds, normaliseMsgId } from './msgid.js';
import type { MailCore } from './parse.js';

interface HeaderLine {
  key: string;
  /** Raw line, 'binary' (latin1) string, continuation lines joined with CRLF. */
  line: string;
}
/** The parts of mailsplit's MimeNode read here (it is untyped JavaScript). */
interface MimeNode {
  addHeaderChunk(chunk: Buffer): void;
  parseHeaders(): void;
  contentType: string | false;
  charset: string | false;
  encoding: string | false;
  disposition: string | false;
  flowed: boolean;
  delSp: boolean;
  libmime: { decodeFlowed(input: string, delSp: boolean): string };
}
type Decoder<In> = { decode(input: In): Buffer };

// Exactness needs the very copies mailparser runs, not whatever npm hoisted to the top:
// mailsplit keeps its own libmime 5.4 and libbase64 1.3 below itself, and the top-level
// libmime/libqp may be moved by a later explicit dependency. Resolving from mailparser's
// (and mailsplit's) own location pins them to what `simpleParser` uses, and needs no new
// dependency in package.json.
const requireHere = createRequire(import.meta.url);
const fromMailparser = createRequire(requireHere.resolve('mailparser'));
const fromMailsplit = createRequire(fromMailparser.resolve('@zone-eu/mailsplit'));
const mailsplit: { MimeNode: new (parent: false, config: object) => MimeNode } = fromMailparser('@zone-eu/mailsplit');
const libmime: {
  decodeHeader(line: string): { key: string; value: string } | undefined;
  decodeWords(value: string): string;
} = fromMailparser('libmime');
const charsets: {
  decode(buf: Buffer, charset: string): string;
  normalizeCharset(charset: string): string;
} = fromMailparser('libmime/lib/charset.js');
const libqp: Decoder<Buffer> = fromMailsplit('libqp');
const libbase64: Decoder<string> = fromMailsplit('libbase64');

const LF = 0x0a;
const CR = 0x0d;
const LF_LF = Buffer.from('\n\n');
const LF_CRLF = Buffer.from('\n\r\n');
/** mailsplit MessageSplitter: a MIME node's header block may not exceed 1 MiB (EMAXLEN). */
const MAX_HEAD_SIZE = 1024 * 1024;
/** The fields mailsplit's MimeNode reads to classify a part (Content-Type, -Disposition, -Transfer-Encoding). */
const NODE_KEYS = new Set(['content-type', 'content-disposition', 'content-transfer-encoding']);
/** Transfer encodings taken here; mailsplit decodes base64 and QP, passes the rest through. */
const FAST_ENCODINGS = new Set(['', '7bit', '8bit', 'binary', 'quoted-printable', 'base64']);
/** MailParser skips charset decoding for these (name lowercased, punctuation dropped) and reads UTF-8. */
const UTF8_NAMES = new Set(['ascii', 'usascii', 'utf8']);
/**
 * Charsets (as libmime normalises them) whose decode stream gives exactly `decode()` of the
 * whole body: single-byte codecs, UTF-8, and the DBCS codecs libmime cuts at low bytes.
 * UTF-16/32 (byte-order guessing) and the Japanese ones (encoding-japanese) go the slow path.
 */
const WHOLE_DECODE_CHARSET = /^(?:UTF-8|windows-125[0-8]|ISO-8859-(?:[1-9]|1[0-6])|KOI8-[RU]|GBK|GB18030|Big5)$/i;

/**
 * mailsplit MessageSplitter: the header block ends with the first line that is exactly
 * LF or CRLF (lines end at LF only); that blank line belongs to the header block.
 * Without one, everything is header. Returns the offset where the body starts.
 */
function headerEnd(bytes: Buffer): number {
  const lflf = bytes.indexOf(LF_LF);
  const lfcrlf = bytes.subarray(0, lflf === -1 ? bytes.length : lflf).indexOf(LF_CRLF);
  if (lfcrlf !== -1) return lfcrlf + 3;
  return lflf === -1 ? bytes.length : lflf + 2;
}

/**
 * mailsplit Headers._parseHeaders, line for line, without its two whole-block regexes
 * (the costliest part of the parse): trailing CR/LF dropped, split at LF with one CR
 * before it, lines starting with SP/HT appended with CRLF, the key taken from the first
 * colon (again after a continuation when the first line had none), an mbox `From ` or
 * HTTP `POST ` first line skipped. Values stay 'binary' strings, as mailsplit keeps them.
 */
function headerLines(head: Buffer): HeaderLine[] {
  let end = head.length;
  while (end > 0 && (head[end - 1] === LF || head[end - 1] === CR)) end--;
  const raw = head.toString('latin1', 0, end).split('\n');
  let i = 1;
  let first = lineAt(raw, 0);
  while (i < raw.length && isFolded(raw[i]!)) first += '\r\n' + lineAt(raw, i++);
  const lines: HeaderLine[] = /^(?:From|POST) /i.test(first) ? [] : [{ key: keyOf(first), line: first }];
  for (; i < raw.length; i++) {
    const line = lineAt(raw, i);
    const last = lines[lines.length - 1];
    if (!last || !isFolded(line)) {
      lines.push({ key: keyOf(line), line });
      continue;
    }
    last.line += '\r\n' + line;
    if (!last.key) last.key = keyOf(last.line);
  }
  return lines;
}

/** split(/\r?\n/) drops one CR before each LF; the last piece never ends in CR (trailing CR/LF are gone). */
function lineAt(raw: string[], i: number): string {
  const line = raw[i]!;
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

function isFolded(line: string): boolean {
  const c = line.charCodeAt(0);
  return c === 0x20 || c === 0x09;
}

/** Headers._normalizeHeader of `line.substr(0, line.indexOf(':'))`; substr(0, -1) is '': no colon, no key. */
function keyOf(line: string): string {
  const colon = line.indexOf(':');
  return colon < 0 ? '' : line.slice(0, colon).toLowerCase().trim();
}

/**
 * libbase64 1.3 Decoder as mailsplit streams it: each written chunk is stripped of
 * non-alphabet bytes and decoded up to its last full quartet (or last '='), the rest carried.
 * The splitter hands the body over as everything up to the last LF, then the unterminated tail.
 */
function decodeBase64(body: Buffer): Buffer {
  const cut = body.lastIndexOf(LF) + 1;
  const chunks = [body.subarray(0, cut), body.subarray(cut)].filter((c) => c.length > 0);
  const out: Buffer[] = [];
  let carry = '';
  for (const chunk of chunks) {
    let b64 = carry + chunk.toString('ascii');
    carry = '';
    if (/[^a-zA-Z0-9+/=]/.test(b64)) b64 = b64.replace(/[^a-zA-Z0-9+/=]/g, '');
    let padded = '';
    const lastPad = b64.lastIndexOf('=');
    if (lastPad >= 0) {
      padded = b64.slice(0, lastPad + 1);
      b64 = b64.slice(lastPad + 1);
    }
    if (b64.length < 4) {
      carry = b64;
      b64 = '';
    } else if (b64.length % 4) {
      carry = b64.slice(-(b64.length % 4));
      b64 = b64.slice(0, b64.length - carry.length);
    }
    b64 = padded + b64;
    if (b64) out.push(libbase64.decode(b64));
  }
  if (carry) out.push(libbase64.decode(carry));
  return Buffer.concat(out);
}

/**
 * MailParser's inline text/plain chain: transfer decoder -> FlowedDecoder (format=flowed,
 * on the 'binary' string) -> charset decode stream (skipped for ascii/us-ascii/utf8, default
 * charset utf-8) -> UTF-8 string with CRLF and LF both turned into LF. Null: not mirrored.
 */
function bodyText(body: Buffer, node: MimeNode): string | null {
  let data = body;
  if (node.encoding === 'base64') data = decodeBase64(body);
  else if (node.encoding === 'quoted-printable' && body.length > 0) data = libqp.decode(body);
  if (node.flowed && data.length > 0) {
    data = Buffer.from(node.libmime.decodeFlowed(data.toString('binary'), node.delSp), 'binary');
  }
  const charset = node.charset || 'utf-8';
  let text: string;
  if (UTF8_NAMES.has(charset.toLowerCase().replace(/[^a-z0-9]+/g, ''))) {
    text = data.toString('utf8');
  } else {
    if (!WHOLE_DECODE_CHARSET.test(charsets.normalizeCharset(charset))) return null;
    // The stream pushes Buffer.from(text, 'utf-8'): a lone surrogate becomes U+FFFD there too.
    text = Buffer.from(charsets.decode(data, charset), 'utf8').toString('utf8');
  }
  // The replace is the costliest step of the whole parse; most kernel mail has no CR left.
  return text.includes('\r') ? text.replace(/\r?\n/g, '\n') : text;
}

/**
 * MailParser.processHeaders: libmime.decodeHeader unfolds and splits at the first colon,
 * the trimmed value is then read as UTF-8 from its raw bytes (no charset guessing: invalid
 * bytes become U+FFFD).
 */
function headerValue(line: string): string {
  const value = String(libmime.decodeHeader(line)?.value || '').trim();
  return Buffer.from(value, 'binary').toString();
}

/** MailParser wraps subject, message-id, references values in try/catch and keeps them on error. */
function decodeWords(value: string): string {
  try {
    return libmime.decodeWords(value);
  } catch {
    return value;
  }
}

/** MailParser.ensureMessageIDFormat: adds missing angle brackets; '' is no value at all. */
function ensureMessageIdFormat(value: string): string | false {
  if (!value.length) return false;
  return (value.startsWith('<') ? '' : '<') + value + (value.endsWith('>') ? '' : '>');
}

/** parse.ts `headerText`: value after the first colon of the raw (still folded) line, trimmed. */
function rawValue(h: HeaderLine): string {
  return h.line.slice(h.line.indexOf(':') + 1).trim();
}

/** parse.ts `firstAddress` over the AddressObject mailparser builds for a From/Reply-To line. */
function firstAddress(line: HeaderLine | undefined): MailCore['from'] {
  const v = line ? parseAddressHeader(headerValue(line.line)).value[0] : undefined;
  return { name: v?.name ? v.name : null, addr: v?.address ? v.address.toLowerCase() : null };
}

/**
 * The content type mailsplit's MimeNode gives a part with this header block: the stated one,
 * else one guessed from a Content-Disposition filename (`x.eml` is message/rfc822), else
 * text/plain or application/octet-stream. False when the block cannot be read.
 */
export function partContentType(head: Buffer): string | false {
  try {
    const node = new mailsplit.MimeNode(false, {});
    node.addHeaderChunk(head);
    node.parseHeaders();
    return node.contentType;
  } catch {
    return false;
  }
}

/**
 * Parses a simple single-part text/plain message synchronously, or returns null
 * when it is not simple (multipart, attachment, unusual charset or encoding, an
 * unparseable Date, an oversized header block) so the caller uses `mailparserCore`.
 * A non-null result deep-equals what `mailparserCore` returns for the same bytes.
 */
export function fastCore(bytes: Buffer): MailCore | null {
  const first = bytes[0];
  // A message opening with a blank or folded line: mailsplit reads odd header keys; not worth mirroring.
  if (first === undefined || first === LF || first === CR || first === 0x20 || first === 0x09) return null;
  const bodyStart = headerEnd(bytes);
  if (bodyStart > MAX_HEAD_SIZE) return null;

  const lines = headerLines(bytes.subarray(0, bodyStart));
  // mailsplit's own MimeNode decides content type, charset, encoding, flowed and disposition,
  // from the only header fields it reads (first of each wins, so order is kept). A line ending
  // in a bare CR would lose it when it became the block's last line: not worth the doubt.
  const nodeLines = lines.filter((h) => NODE_KEYS.has(h.key));
  if (nodeLines.some((h) => h.line.endsWith('\r'))) return null;
  const node = new mailsplit.MimeNode(false, {});
  node.addHeaderChunk(Buffer.from(nodeLines.map((h) => h.line + '\r\n').join('') + '\r\n', 'latin1'));
  node.parseHeaders();
  // MailParser.createNode: a root part without a type is text/plain; any disposition but inline is an attachment.
  if (node.contentType !== 'text/plain') return null;
  if (node.disposition && node.disposition !== 'inline') return null;
  if (!FAST_ENCODINGS.has(node.encoding || '')) return null;

  let subject: string | undefined;
  let messageId: string | undefined;
  let inReplyTo: string | undefined;
  let date: Date | undefined;
  let from: HeaderLine | undefined;
  let replyTo: HeaderLine | undefined;
  const refs: string[] = [];
  const names = new Set<string>();
  for (const h of lines) {
    names.add(h.key);
    // processHeaders keeps the first value of these "single keys", skipping values that
    // came out empty (it only stores truthy values); Date and address objects are always truthy.
    switch (h.key) {
      case 'subject':
        subject ||= decodeWords(headerValue(h.line)) || undefined;
        break;
      case 'message-id':
        messageId ||= ensureMessageIdFormat(decodeWords(headerValue(h.line))) || undefined;
        break;
      case 'in-reply-to':
        inReplyTo ||= ensureMessageIdFormat(decodeWords(headerValue(h.line))) || undefined;
        break;
      case 'references':
        for (const tok of decodeWords(headerValue(h.line)).split(/\s+/)) {
          const id = ensureMessageIdFormat(tok);
          if (id) refs.push(id);
        }
        break;
      case 'date':
        if (!date) {
          date = new Date(headerValue(h.line));
          // mailparser substitutes the current time for an unparseable Date: not reproducible here.
          if (Number.isNaN(date.getTime())) return null;
        }
        break;
      case 'from':
        from ??= h;
        break;
      case 'reply-to':
        replyTo ??= h;
        break;
    }
  }

  const text = bodyText(bytes.subarray(bodyStart), node);
  if (text === null) return null;
  const headerValues = (name: string): string[] => {
    const key = name.toLowerCase();
    return lines.filter((h) => h.key === key).map(rawValue);
  };
  // From here on: the expressions of mailparserCore, applied to what simpleParser would hold.
  return {
    messageId: normaliseMsgId(messageId ?? headerValues('message-id')[0]),
    subject: (subject ?? '').replace(/[\r\n]+[ \t]*/g, ' '),
    from: firstAddress(from),
    replyTo: firstAddress(replyTo),
    date: date ?? null,
    inReplyTo: normaliseMsgId(inReplyTo ?? headerValues('in-reply-to')[0]),
    references: extractMsgIds(refs.join(' ') || headerValues('references').join(' ')),
    listIds: headerValues('list-id').map((v) => normaliseMsgId(v) ?? v.replace(/\s+/g, ' ')),
    text,
    attachments: [],
    headerNames: names,
    headerValues,
  };
}
