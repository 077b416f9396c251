import { reasonOf } from '../../errors.js';
import { hasMessageId, mailboxExists, withImap } from '../imap.js';
import { composeRaw } from '../mime.js';
import type { DraftsSinkConfig } from '../policy.js';
import type { DeliverResult, OutboxRow, Sink } from '../types.js';

/** An IMAP answer that retrying will not change (the server said NO or BAD to the command itself). */
function imapRefusal(err: unknown): string | null {
  const e = err as { responseStatus?: string; responseText?: string; serverResponseCode?: string; authenticationFailed?: boolean };
  // A failed login is the operator's to fix; the reply waits rather than being given up on.
  if (e.authenticationFailed) return null;
  if (e.responseStatus === 'NO' || e.responseStatus === 'BAD') {
    return `${e.responseStatus}${e.serverResponseCode ? ` [${e.serverResponseCode}]` : ''} ${e.responseText ?? ''}`.trim();
  }
  return null;
}

/**
 * Drafts (the default for email): the reply is APPENDed to a Drafts mailbox, flagged \Draft, for a
 * human to read and send from their own client. Exactly once: after an unclear attempt the outbox
 * asks `alreadyDelivered`, which searches the mailbox for the reply's Message-ID.
 */
export function draftsSink(cfg: DraftsSinkConfig): Sink {
  return {
    name: 'drafts',
    async deliver(reply: OutboxRow): Promise<DeliverResult> {
      const raw = await composeRaw(reply);
      try {
        return await withImap(cfg.imap, async (c) => {
          if (!(await mailboxExists(c, cfg.mailbox))) {
            await c.mailboxCreate(cfg.mailbox).catch(() => undefined); // lost a race with another creator: fine
          }
          const r = await c.append(cfg.mailbox, raw, ['\\Draft', '\\Seen'], new Date(reply.decidedAt));
          if (!r) return { ok: false, permanent: false, answer: 'APPEND returned no result' };
          return { ok: true, ...(r.uid !== undefined ? { remoteId: `${cfg.mailbox}:${String(r.uidValidity ?? '')}:${r.uid}` } : {}) };
        });
      } catch (err) {
        const refused = imapRefusal(err);
        return refused ? { ok: false, permanent: true, answer: refused } : { ok: false, permanent: false, answer: reasonOf(err) };
      }
    },
    alreadyDelivered(reply: OutboxRow): Promise<boolean> {
      return withImap(cfg.imap, (c) => hasMessageId(c, cfg.mailbox, reply.messageId));
    },
  };
}
