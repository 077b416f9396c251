import { simpleParser, type ParsedMail as MpMail, type AddressObject } from 'mailparser';
import { VrError } from '../errors.js';
import { extractDiff, splitCommitMessage } from './diff.js';
import { extractMsgIds, normaliseMsgId } from './msgid.js';
import { parseSubject, type ParsedSubject } from './subject.js';
import { parseTrailers, type Trailer } from './trailers.js';
import { fastCore } from './fast-core.js';

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

/** In-body From:/Date:/Subject: lines that git am honours at the top of the message. */
function stripInBodyHeaders(message: string): { message: string; author: ParsedMessage['bodyAuthor'] } {
  const lines = message.split('\n');
  let author: ParsedMessage['bodyAuthor'] = null;
  let i = 0;
  while (i < lines.length && /^(?:From|Date|Subject):\s/.test(lines[i]!)) {
    const m = /^From:\s*(?:"?(?<name>[^"<]*?)"?\s*)?<(?<addr>[^<>\s]+@[^<>\s]+)>\s*$|^From:\s*(?<bare>\S+@\S+)\s*$/.exec(lines[i]!);
    if (m?.groups) author = { name: m.groups.name?.trim() || null, addr: (m.groups.addr ?? m.groups.bare)!.toLowerCase() };
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

/** The full MIME parse, through mailparser. */
export async function mailparserCore(bytes: Buffer): Promise<MailCore> {
  let mail: MpMail;
  try {
    mail = await simpleParser(bytes, {
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
