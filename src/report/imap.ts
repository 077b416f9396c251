import { ImapFlow } from 'imapflow';
import type { ImapLogin } from './policy.js';

/** One short IMAP session: connect, run, log out (close when logout fails). */
export async function withImap<T>(login: ImapLogin, fn: (c: ImapFlow) => Promise<T>): Promise<T> {
  const c = new ImapFlow({
    host: login.host,
    port: login.port,
    secure: login.secure,
    auth: { user: login.user, pass: login.pass },
    tls: { rejectUnauthorized: login.tlsRejectUnauthorized },
    logger: false,
    disableAutoIdle: true,
  });
  // Without a listener an 'error' event would crash the process; the failing command rejects anyway.
  c.on('error', () => undefined);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.logout().catch(() => c.close());
  }
}

/** Whether the mailbox exists (LIST), so a search in a mailbox never created is "not there", not an error. */
export async function mailboxExists(c: ImapFlow, mailbox: string): Promise<boolean> {
  return (await c.list()).some((m) => m.path === mailbox || (mailbox.toUpperCase() === 'INBOX' && m.path.toUpperCase() === 'INBOX'));
}

/**
 * Whether a message with this Message-ID header is in the mailbox. SEARCH HEADER is a substring
 * match, and our Message-IDs are unique strings of their own, so a hit is the reply itself.
 */
export async function hasMessageId(c: ImapFlow, mailbox: string, messageId: string): Promise<boolean> {
  if (!(await mailboxExists(c, mailbox))) return false;
  const lock = await c.getMailboxLock(mailbox, { readOnly: true });
  try {
    const hits = await c.search({ header: { 'message-id': messageId } }, { uid: true });
    return Array.isArray(hits) && hits.length > 0;
  } finally {
    lock.release();
  }
}

/** How many messages with this Message-ID the mailbox holds (tests: "the draft appears exactly once"). */
export async function countMessageId(c: ImapFlow, mailbox: string, messageId: string): Promise<number> {
  if (!(await mailboxExists(c, mailbox))) return 0;
  const lock = await c.getMailboxLock(mailbox, { readOnly: true });
  try {
    const hits = await c.search({ header: { 'message-id': messageId } }, { uid: true });
    return Array.isArray(hits) ? hits.length : 0;
  } finally {
    lock.release();
  }
}
