import nodemailer from 'nodemailer';
import { reasonOf } from '../../errors.js';
import { hasMessageId, withImap } from '../imap.js';
import { composeRaw } from '../mime.js';
import type { EmailSinkConfig } from '../policy.js';
import type { DeliverResult, OutboxRow, Sink } from '../types.js';

/** The bare address of a `Name <addr>` or `addr` string. */
export function bareAddress(s: string): string {
  return (/<(?<a>[^>]+)>\s*$/.exec(s)?.groups?.a ?? s).trim();
}

/**
 * A refusal the server will repeat (5xx), a pause it asked for (4xx), or no answer at all (connection
 * lost, timeout): only the first is permanent. The server's own words are kept either way.
 */
export function smtpOutcome(err: unknown): { permanent: boolean; answer: string } {
  const e = err as { responseCode?: number; response?: string; code?: string; message?: string };
  const answer = e.response ? `${e.response}${e.code ? ` (${e.code})` : ''}` : reasonOf(err);
  return { permanent: typeof e.responseCode === 'number' && e.responseCode >= 500 && e.responseCode < 600, answer };
}

/**
 * SMTP through nodemailer. `alreadyDelivered` looks for the reply's Message-ID in the configured
 * mailboxes (the Sent folder, or the bot's inbox where its Bcc or the list's copy lands); without
 * them it can only trust the outbox, and a crash right after the server's 250 may send twice.
 */
export function emailSink(cfg: EmailSinkConfig): Sink {
  const transport = nodemailer.createTransport({
    host: cfg.host,
    port: cfg.port,
    secure: cfg.secure,
    requireTLS: cfg.requireTLS,
    ignoreTLS: cfg.ignoreTLS,
    ...(cfg.auth ? { auth: { user: cfg.auth.user, pass: cfg.auth.pass } } : {}),
    tls: { rejectUnauthorized: cfg.tlsRejectUnauthorized },
    connectionTimeout: 30_000,
    greetingTimeout: 30_000,
    socketTimeout: 60_000,
  });
  return {
    name: 'email',
    inDoubtGraceMs: cfg.check ? cfg.inDoubtGraceMs : 0,
    async deliver(reply: OutboxRow): Promise<DeliverResult> {
      const bcc = cfg.bccSelf ? [cfg.bccSelf] : [];
      const raw = await composeRaw(reply);
      const to = [...reply.to, ...reply.cc, ...bcc].map(bareAddress);
      try {
        const info = await transport.sendMail({
          envelope: { from: bareAddress(reply.from), to, use8BitMime: /[^\x00-\x7f]/.test(reply.body) } as { from: string; to: string[] },
          raw,
        });
        const rejected = (info.rejected ?? []).map(String);
        return { ok: true, remoteId: `${info.response}${rejected.length ? `; rejected: ${rejected.join(', ')}` : ''}`.slice(0, 1000) };
      } catch (err) {
        const o = smtpOutcome(err);
        return { ok: false, permanent: o.permanent, answer: o.answer };
      }
    },
    async alreadyDelivered(reply: OutboxRow): Promise<boolean> {
      const check = cfg.check;
      if (!check) return false;
      return withImap(check, async (c) => {
        for (const mb of check.mailboxes) if (await hasMessageId(c, mb, reply.messageId)) return true;
        return false;
      });
    },
    async close() {
      transport.close();
    },
  };
}
