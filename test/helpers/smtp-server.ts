import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import nodemailer from 'nodemailer';
import type { AddressInfo } from 'node:net';

/** One accepted message: the envelope as the client gave it and the exact bytes of DATA. */
export interface Received {
  from: string;
  to: string[];
  raw: Buffer;
  /** Whether the client declared BODY=8BITMIME. */
  eightBit: boolean;
}

/** What the server answers to the next DATA commands instead of 250. */
export interface ScriptedFailure {
  /** 4xx (try again later) or 5xx (refused). */
  code: number;
  message?: string;
  /** For how many DATA commands (default 1). */
  times?: number;
}

export interface TestSmtp {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** Accepted messages, in order. Refused ones are not here. */
  readonly received: Received[];
  /** Every DATA the server saw, accepted or not. */
  readonly dataCommands: () => number;
  /** Answer the next DATA command(s) with this failure. */
  fail(f: ScriptedFailure): void;
  close(): Promise<void>;
}

export interface SmtpOptions {
  /**
   * Deliver every accepted message on into Dovecot over LMTP before answering 250, as a list server
   * would hand the bot its own copy: `map` turns an envelope recipient into a Dovecot user (null: skip).
   */
  relay?: { port: number; map: (rcpt: string) => string | null };
}

/**
 * A real SMTP server (the smtp-server package) on 127.0.0.1 and a free port, no TLS, no auth
 * required. Keeps the raw bytes and envelopes; scriptable to answer 4xx/5xx.
 */
export async function startSmtp(opts: SmtpOptions = {}): Promise<TestSmtp> {
  const received: Received[] = [];
  const script: Required<ScriptedFailure>[] = [];
  let data = 0;
  const lmtp = opts.relay
    ? nodemailer.createTransport({ host: '127.0.0.1', port: opts.relay.port, lmtp: true, ignoreTLS: true } as Parameters<typeof nodemailer.createTransport>[0])
    : null;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    size: 10 * 1024 * 1024,
    onData(stream, session: SMTPServerSession, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        data++;
        const next = script[0];
        if (next) {
          if (--next.times <= 0) script.shift();
          const err = Object.assign(new Error(next.message), { responseCode: next.code });
          callback(err);
          return;
        }
        const raw = Buffer.concat(chunks);
        const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
        const to = session.envelope.rcptTo.map((r) => r.address);
        const eightBit = session.envelope.mailFrom ? session.envelope.mailFrom.args && session.envelope.mailFrom.args.BODY === '8BITMIME' : false;
        const relayTo = opts.relay ? to.map((t) => opts.relay!.map(t)).filter((u): u is string => u !== null) : [];
        const done = (): void => {
          received.push({ from, to, raw, eightBit: eightBit === true });
          callback(null, 'OK queued');
        };
        if (!lmtp || relayTo.length === 0) return done();
        lmtp.sendMail({ envelope: { from, to: relayTo }, raw }).then(done, (err: Error) => callback(Object.assign(err, { responseCode: 451 })));
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  // A client that dies mid-session (the daemon crash test SIGKILLs senders) resets its connection;
  // smtp-server reports that as a server 'error', which must not become an uncaught exception.
  const connectionErrors: Error[] = [];
  server.on('error', (err: Error) => connectionErrors.push(err));
  const port = (server.server.address() as AddressInfo).port;
  return {
    host: '127.0.0.1',
    port,
    received,
    dataCommands: () => data,
    fail: (f) => script.push({ code: f.code, message: f.message ?? (f.code >= 500 ? 'Refused by test script' : 'Try again later'), times: f.times ?? 1 }),
    close: () =>
      new Promise<void>((resolve) => {
        lmtp?.close();
        server.close(() => resolve());
      }),
  };
}
