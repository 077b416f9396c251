import { ImapFlow } from 'imapflow';
import { reasonOf } from '../errors.js';
import { imapClientOptions, type ImapSourceConfig } from './imap-source.js';

/** One message found on the server by its Message-ID. */
export interface FetchedMessage {
  mailbox: string;
  uid: number;
  uidValidity: string;
  bytes: Buffer;
}

/**
 * Looks a Message-ID up in each configured mailbox (IMAP SEARCH HEADER Message-ID, RFC 3501 6.4.4) and
 * returns the raw message: `rerun <message-id>` on mail the store has not seen yet. Returns null when no
 * mailbox holds it; connection and login failures throw with the server's reason.
 */
export async function fetchByMessageId(cfg: ImapSourceConfig, msgid: string): Promise<FetchedMessage | null> {
  const client = new ImapFlow(imapClientOptions(cfg));
  client.on('error', () => undefined);
  await client.connect();
  try {
    for (const mailbox of cfg.mailboxes) {
      const lock = await client.getMailboxLock(mailbox, { readOnly: true });
      try {
        // Servers match header searches as substrings: check the exact id on what comes back.
        const uids = (await client.search({ header: { 'message-id': `<${msgid}>` } }, { uid: true })) || [];
        for (const uid of uids) {
          const msg = await client.fetchOne(String(uid), { source: true }, { uid: true });
          if (!msg || !msg.source) continue;
          const head = msg.source.subarray(0, Math.max(0, msg.source.indexOf('\r\n\r\n')) || msg.source.length).toString('latin1');
          const m = /^message-id:\s*<([^>\r\n]+)>/im.exec(head.replace(/\r?\n[ \t]+/g, ' '));
          if (m?.[1] !== msgid) continue;
          const status = client.mailbox && typeof client.mailbox === 'object' ? String(client.mailbox.uidValidity) : '';
          return { mailbox, uid, uidValidity: status, bytes: msg.source };
        }
      } finally {
        lock.release();
      }
    }
    return null;
  } catch (err) {
    throw new Error(`IMAP lookup of <${msgid}> at ${cfg.host}:${cfg.port} failed: ${reasonOf(err)}`);
  } finally {
    await client.logout().catch(() => client.close());
  }
}
