import { simpleParser, type ParsedMail as MpMail, type AddressObject } from 'mailparser';
import { VrError } from '../errors.js';
import { extractDiff, splitCommitMessage } from './diff.js';
import { extractMsgIds, normaliseMsgId } from './msgid.js';
import { parseSubject, type ParsedSubject } from './subject.js';
import { parseTrailers, type Trailer } from './trailers.js';
import { fastCore, partContentType } from './fast-core.js';

/** What vfio-review keeps of one parsed message. Plain data. */
export interface ParsedMessage {
  messageId: string | null;
  subject: string;
  fromName: string | null;
  fromAddr: string | null;
  replyToAddr: string | null;
  date: Date | null;
  inReplyTo: string | null;
  references: string[];
  listIds: string[];
  subjectInfo: ParsedSubject;
  /** Decoded text/plain body (first text part). */
  text: string;
  /** The diff, from the body or a text/x-patch attachment, or null. */
  diff: string | null;
  /** The commit message (in-body From/Date/Subject lines removed) when there is a diff. */
  commitMessage: string | null;
  /** In-body "From:" author override (git format-patch for someone else's commit). */
  bodyAuthor: { name: string | null; addr: string } | null;
  touchedPaths: string[];
  trailers: Trailer[];
  baseCommit: string | null;
  changeId: string | null;
  prereqPatchIds: string[];
  basedOn: string[];
  /** The message carries vfio-review's own header (our own reply) or asks not to be processed. */
  noProcess: boolean;
}

const PATCH_ATTACHMENT = /^text\/(?:x-patch|x-diff|x-patch-file|plain)$/i;
const OWN_HEADER = 'x-vfio-review';

function firstAddress(a: AddressObject | AddressObject[] | undefined): { name: string | null; addr: string | null } {
  const obj = Array.isArray(a) ? a[0] : a;
  const v = obj?.value?.[0];
  return { name: v?.name ? v.name : null, addr: v?.address ? v.address.toLowerCase() : null };
}

function headerText(mail: MpMail, key: string): string[] {
  return mail.headerLines.filter((h) => h.key === key).map((h) => h.line.slice(h.line.indexOf(':') + 1).trim());
}

function footerValue(text: string, re: RegExp): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(re)) out.push(m.groups!.v!.trim());
  return out;
}

/**
 * The author of an in-body `From: "Name" <addr>` or `From: addr` line, or null. Trimmed first
 * and matched in anchored, unambiguous pieces: one regex doing it all
 * (`\s*(?:"?(?<name>[^"<]*?)"?\s*)?<...>\s*$`) had three ways to split a whitespace run and took
 * cubic time on a line of a few thousand blanks (found by the robustness campaign).
 */
function inBodyAuthor(line: string): ParsedMessage['bodyAuthor'] {
  const v = line.slice('From:'.length).trim();
  const angle = /<(?<addr>[^<>\s]+@[^<>\s]+)>$/.exec(v);
  if (angle?.groups) {
    const name = /^"?(?<name>[^"<]*)"?$/.exec(v.slice(0, angle.index).trimEnd());
    if (name?.groups) return { name: name.groups.name!.trim() || null, addr: angle.groups.addr!.toLowerCase() };
  }
  // A bare address: no white space, an '@' with something on both sides.
  if (/\s/.test(v) || !v.slice(1, -1).includes('@')) return null;
  return { name: null, addr: v.toLowerCase() };
}

/** In-body From:/Date:/Subject: lines that git am honours at the top of the message. */
function stripInBodyHeaders(message: string): { message: string; author: ParsedMessage['bodyAuthor'] } {
  const lines = message.split('\n');
  let author: ParsedMessage['bodyAuthor'] = null;
  let i = 0;
  while (i < lines.length && /^(?:From|Date|Subject):\s/.test(lines[i]!)) {
    if (lines[i]!.startsWith('From:')) author = inBodyAuthor(lines[i]!) ?? author;
    i++;
  }
  if (i === 0) return { message, author: null };
  while (i < lines.length && lines[i] === '') i++;
  return { message: lines.slice(i).join('\n'), author };
}

/** The envelope and decoded content of a message, whichever parser produced it. */
export interface MailCore {
  messageId: string | null;
  subject: string;
  from: { name: string | null; addr: string | null };
  replyTo: { name: string | null; addr: string | null };
  date: Date | null;
  inReplyTo: string | null;
  references: string[];
  listIds: string[];
  /** Decoded first text/plain part ('' when none). */
  text: string;
  attachments: { contentType: string; content: Buffer }[];
  /** Lowercased names of every top-level header field present. */
  headerNames: Set<string>;
  /** Unfolded raw values of a top-level header field (not RFC 2047 decoded). */
  headerValues(name: string): string[];
}

/** mailsplit refuses a header block over 1 MiB (EMAXLEN), so a longer tail cannot be one. */
const MAX_HEAD_BYTES = 1024 * 1024;

/**
 * The bytes to give mailparser. mailsplit 5.4 (under mailparser 3.14) leaves `simpleParser`
 * pending forever when the input ends inside the header block of an inline `message/rfc822`
 * part: that header opens an embedded message whose node is never emitted, and the parser
 * waits for the end of a stream nobody reads (found by the robustness campaign; nothing is
 * left to run, so no timer or error ever settles it). The type may be stated or guessed by
 * mailsplit from a `filename="x.eml"` without any Content-Type, so mailsplit's own MimeNode
 * reads the bytes after the last blank line; when they make a message/rfc822 part, one blank
 * line is added to close the block. At worst that adds a line break to the last part of an
 * odd message, which is better than never returning.
 */
export function closeDanglingHeader(bytes: Buffer): Buffer {
  const lf = bytes.lastIndexOf('\n\n');
  const crlf = bytes.lastIndexOf('\n\r\n');
  const start = Math.max(lf < 0 ? 0 : lf + 2, crlf < 0 ? 0 : crlf + 3);
  if (start === bytes.length || bytes.length - start > MAX_HEAD_BYTES) return bytes;
  const tail = bytes.subarray(start);
  // Cheap test first: the type is stated (rfc822) or guessed from a Content-Disposition filename.
  if (!/rfc822|content-disposition/i.test(tail.toString('latin1'))) return bytes;
  if (partContentType(Buffer.concat([tail, Buffer.from('\n')])) !== 'message/rfc822') return bytes;
  return Buffer.concat([bytes, Buffer.from(bytes[bytes.length - 1] === 0x0a ? '\n' : '\n\n')]);
}

/** Above this many steps of libqp's trailing-blank regex (about a second), a quoted-printable message is not decoded. */
const QP_BLANK_BUDGET = 3e8;

/**
 * The steps libqp 2.1 spends in `/[\t ]+$/gm` on these bytes: for each run of k blanks that
 * does not end a line, about k²/2 (each blank of the run starts a match that runs to the end of
 * the run and fails). mailsplit and mailparser call it on every quoted-printable part, and
 * fast-core must do the same to give the same text; one 170,000-blank run took 43 s (found by
 * the robustness campaign). A blank run that ends a line matches at once and costs nothing.
 */
function blankRunCost(bytes: Buffer): number {
  let cost = 0;
  let run = 0;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (c === 0x20 || c === 0x09) {
      run++;
      continue;
    }
    if (run > 0 && c !== 0x0a && c !== 0x0d) cost += (run * run) / 2;
    run = 0;
  }
  return cost;
}

/** The full MIME parse, through mailparser. */
export async function mailparserCore(bytes: Buffer): Promise<MailCore> {
  let mail: MpMail;
  try {
    mail = await simpleParser(closeDanglingHeader(bytes), {
      skipHtmlToText: true,
      skipTextToHtml: true,
      skipImageLinks: true,
      skipTextLinks: true,
    });
  } catch (err) {
    throw new VrError('MAIL_PARSE', `mailparser: ${(err as Error).message}`, { cause: err });
  }
  const refs = Array.isArray(mail.references) ? mail.references.join(' ') : (mail.references ?? '');
  return {
    messageId: normaliseMsgId(typeof mail.messageId === 'string' ? mail.messageId : headerText(mail, 'message-id')[0]),
    subject: (mail.subject ?? '').replace(/[\r\n]+[ \t]*/g, ' '),
    from: firstAddress(mail.from),
    replyTo: firstAddress(mail.replyTo),
    date: mail.date && !Number.isNaN(mail.date.getTime()) ? mail.date : null,
    inReplyTo: normaliseMsgId(mail.inReplyTo ?? headerText(mail, 'in-reply-to')[0]),
    references: extractMsgIds(refs || headerText(mail, 'references').join(' ')),
    listIds: headerText(mail, 'list-id').map((v) => normaliseMsgId(v) ?? v.replace(/\s+/g, ' ')),
    text: typeof mail.text === 'string' ? mail.text : '',
    attachments: mail.attachments.map((a) => ({ contentType: a.contentType, content: a.content })),
    headerNames: new Set(mail.headerLines.map((h) => h.key)),
    headerValues: (name) => headerText(mail, name.toLowerCase()),
  };
}

/**
 * Parses raw message bytes. Throws VrError('MAIL_PARSE' or 'MAIL_NO_HEADERS')
 * when nothing sensible can be read; the caller records that on the stored
 * raw message.
 */
export async function parseMessage(bytes: Buffer): Promise<ParsedMessage> {
  if (!/^[\x21-\x39\x3b-\x7e]+:/.test(bytes.subarray(0, 200).toString('latin1'))) {
    throw new VrError('MAIL_NO_HEADERS', 'the message does not start with a header field');
  }
  const cost = blankRunCost(bytes);
  if (cost > QP_BLANK_BUDGET && /quoted-printable/i.test(bytes.toString('latin1'))) {
    throw new VrError('MAIL_PARSE', `quoted-printable message with long blank runs inside lines (~${cost.toExponential(1)} decoder steps): not decoded`);
  }
  // Single-part text/plain (98% of list mail) takes the fast path; everything else, full mailparser.
  return fromCore(fastCore(bytes) ?? (await mailparserCore(bytes)));
}

/** Everything vfio-review derives from the envelope and the decoded text. */
export function fromCore(mail: MailCore): ParsedMessage {
  const { subject, from, replyTo, text } = mail;
  const subjectInfo = parseSubject(subject);

  let found = extractDiff(text);
  if (!found.diff) {
    for (const att of mail.attachments) {
      if (!PATCH_ATTACHMENT.test(att.contentType) || att.content.length > 20 * 1024 * 1024) continue;
      const ex = extractDiff(att.content.toString('utf8'));
      if (ex.diff) {
        // The commit message stays in the body when the diff is attached.
        found = { ...ex, before: ex.before.trim() ? ex.before : text };
        break;
      }
    }
  }

  let commitMessage: string | null = null;
  let bodyAuthor: ParsedMessage['bodyAuthor'] = null;
  let trailers: Trailer[] = [];
  if (found.diff) {
    const split = splitCommitMessage(found.before);
    const stripped = stripInBodyHeaders(split.message);
    commitMessage = stripped.message;
    bodyAuthor = stripped.author;
    trailers = parseTrailers(commitMessage);
  }
  // Footers written by git format-patch / b4 after the diff (or in a cover letter).
  const tail = found.diff ? found.after + '\n' + found.before : text;
  const own = mail.headerNames.has(OWN_HEADER);
  const noReview = mail.headerValues('x-no-review').some((v) => /^(?:yes|true|1)$/i.test(v));

  return {
    messageId: mail.messageId,
    subject,
    fromName: from.name,
    fromAddr: from.addr,
    replyToAddr: replyTo.addr,
    date: mail.date,
    inReplyTo: mail.inReplyTo,
    references: mail.references,
    listIds: mail.listIds,
    subjectInfo,
    text,
    diff: found.diff,
    commitMessage,
    bodyAuthor,
    touchedPaths: found.paths,
    trailers,
    baseCommit: footerValue(tail, /^base-commit:[ \t]*(?<v>[0-9a-f]{7,40})[ \t]*$/gim)[0] ?? null,
    changeId: footerValue(tail, /^change-id:[ \t]*(?<v>\S+)[ \t]*$/gim)[0] ?? null,
    prereqPatchIds: footerValue(tail, /^prerequisite-patch-id:[ \t]*(?<v>[0-9a-f]{40})[ \t]*$/gim),
    basedOn: footerValue(tail, /^Based-on:[ \t]*(?<v>\S.*)$/gim),
    noProcess: own || noReview,
  };
}
