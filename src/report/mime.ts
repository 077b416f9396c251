import MailComposer from 'nodemailer/lib/mail-composer';
import type { OutboxRow } from './types.js';
import { headerText } from './text.js';

/** The bot's own header: present on every reply, so its own mail coming back is recognised and ignored. */
export const OWN_HEADER = 'X-vfio-review';

/** Header keys exactly as written here (nodemailer would otherwise print X-Vfio-Review). */
const KEEP_CASE: Record<string, string> = { 'x-vfio-review': OWN_HEADER, 'message-id': 'Message-ID' };

function build(c: MailComposer): Promise<Buffer> {
  return new Promise((resolve, reject) => c.compile().build((err, msg) => (err ? reject(err) : resolve(msg))));
}

/**
 * The reply as RFC 5322 bytes (CRLF), the same bytes for every attempt (the Date is the decision's).
 *
 * nodemailer writes the header block: it folds long lines at whitespace and RFC 2047-encodes non-ASCII
 * words, and it gets only values already stripped of CR/LF and controls. The body is then attached
 * as 7bit/8bit plain text, as git send-email does, rather than nodemailer's quoted-printable: it
 * switches to QP for any line over 76 columns, and quoted diff lines often are, which turns a reply to
 * a patch into `=`-broken lines in every archive. Only a line over 998 octets (RFC 5322's hard limit)
 * keeps QP.
 */
export async function composeRaw(row: OutboxRow, opts: { bcc?: string[] } = {}): Promise<Buffer> {
  const extra: Record<string, string> = {};
  for (const [k, v] of Object.entries(row.headers)) extra[k] = headerText(v);
  const base = {
    from: row.from,
    to: row.to,
    cc: row.cc,
    ...(opts.bcc?.length ? { bcc: opts.bcc } : {}),
    subject: headerText(row.subject),
    messageId: row.messageId,
    inReplyTo: row.inReplyTo,
    references: row.references,
    date: new Date(row.decidedAt),
    headers: extra,
    normalizeHeaderKey: (key: string) => KEEP_CASE[key.toLowerCase()] ?? key,
  };
  const body = row.body.replace(/\r?\n/g, '\r\n');
  const tooLong = body.split('\r\n').some((l) => Buffer.byteLength(l) > 998);
  if (tooLong) return build(new MailComposer({ ...base, text: row.body }));
  const head = (await build(new MailComposer({ ...base, text: '' }))).toString('utf8');
  const end = head.indexOf('\r\n\r\n');
  const lines = head.slice(0, end).split('\r\n');
  // Drop the empty body's own content headers (and their folded continuations), then state ours.
  const kept: string[] = [];
  let skipping = false;
  for (const l of lines) {
    if (/^[ \t]/.test(l)) {
      if (!skipping) kept.push(l);
      continue;
    }
    skipping = /^(content-type|content-transfer-encoding):/i.test(l);
    if (!skipping) kept.push(l);
  }
  const ascii = !/[^\x00-\x7f]/.test(row.body);
  kept.push(`Content-Type: text/plain; charset=${ascii ? 'us-ascii' : 'utf-8'}`, `Content-Transfer-Encoding: ${ascii ? '7bit' : '8bit'}`);
  return Buffer.concat([Buffer.from(kept.join('\r\n') + '\r\n\r\n', 'utf8'), Buffer.from(body, 'utf8')]);
}
