import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDb } from '../../src/store/db.js';
import { outboxRows } from '../../src/report/outbox.js';
import { countMessageId, withImap } from '../../src/report/imap.js';
import { startDovecot, type Dovecot } from '../helpers/imap-server.js';
import { startSmtp, type TestSmtp } from '../helpers/smtp-server.js';
import { coreDiff, finding, insertCheck, otherDiff, seed } from './world.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url));
const POINTS = ['after-decide', 'before-deliver', 'after-deliver'] as const;

/** Runs the reporter in a child; with `pauseAt`, waits until it reports the point, then SIGKILLs it. */
function runChild(args: string[], env: Record<string, string>, pauseAt?: string): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env, ...(pauseAt ? { VFIO_REVIEW_PAUSE_AT: pauseAt } : {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child timed out; stderr:\n${stderr}`));
    }, 60_000);
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
      if (pauseAt && stderr.includes(`vfio-review: paused at ${pauseAt}`)) child.kill('SIGKILL');
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr });
    });
  });
}

describe('crash safety: SIGKILL between "decided" and "sent", then restart', () => {
  let dovecot: Dovecot;
  let smtp: TestSmtp;
  let dir: string;
  beforeAll(async () => {
    dovecot = await startDovecot();
    // The SMTP server hands the bot's Bcc copy to Dovecot before answering 250, as a list would echo it.
    smtp = await startSmtp({ relay: { port: dovecot.lmtpPort, map: (r) => (r === 'bot@bot.example.org' ? 'bot' : null) } });
    dir = mkdtempSync(join(tmpdir(), 'vr-crash-'));
  });
  afterAll(async () => {
    await smtp?.close();
    await dovecot?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const imap = { host: '127.0.0.1', port: 0, secure: false, user: 'bot' };
  const cases = POINTS.flatMap((point) => (['email', 'drafts'] as const).map((sink) => ({ point, sink })));

  it.each(cases)('$sink, killed at $point: exactly one copy of each reply after the restart', async ({ point, sink }) => {
    const tag = `${sink}-${point}`;
    const dbPath = join(dir, `${tag}.db`);
    const db = openDb(dbPath);
    const [s] = await seed(db, [{ version: 1, cover: true, diffs: [coreDiff(), otherDiff()], idPrefix: tag }]);
    insertCheck(db, s!.id, { findings: [finding({ patch: s!.patches[0]! })] });
    db.close();
    const config = join(dir, `${tag}.json`);
    writeFileSync(config, JSON.stringify({
      report: {
        ownDomain: 'bot.example.org',
        from: 'vfio-review <bot@bot.example.org>',
        email: {
          host: '127.0.0.1', port: smtp.port, ignoreTLS: true, bccSelf: 'bot@bot.example.org', inDoubtGraceMs: 0,
          check: { ...imap, port: dovecot.port, mailboxes: ['INBOX'] },
        },
        drafts: { imap: { ...imap, port: dovecot.port }, mailbox: 'Drafts' },
        retry: { maxAttempts: 5, baseDelayMs: 0, maxDelayMs: 0 },
        lists: [{ id: 'kvm.vger.kernel.org', address: 'kvm@vger.kernel.org', sinks: { email: {}, drafts: {} } }],
      },
    }));
    const env = { VFIO_REVIEW_IMAP_PASS: 'botpass' };
    const args = ['--db', dbPath, '--config', config, '--sink', sink, '--series', String(s!.id)];

    const killed = await runChild(args, env, point);
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    const restarted = await runChild(args, env);
    expect(restarted.code, restarted.stderr).toBe(0);

    const check = openDb(dbPath);
    const rows = outboxRows(check);
    check.close();
    expect(rows).toHaveLength(2);
    expect(rows.map((r) => r.state)).toEqual(['sent', 'sent']);
    for (const r of rows) {
      const where = sink === 'email' ? 'INBOX' : 'Drafts';
      expect(await withImap({ ...imap, port: dovecot.port, pass: 'botpass', tlsRejectUnauthorized: true }, (c) => countMessageId(c, where, r.messageId))).toBe(1);
      if (sink === 'email') {
        expect(smtp.received.filter((m) => m.raw.includes(`Message-ID: ${r.messageId}`))).toHaveLength(1);
      }
    }
    // The restart says what happened: a reply found already there after a kill past the server's OK.
    if (point === 'after-deliver') expect(restarted.stderr).toMatch(/already there 1/);
    else expect(restarted.stderr).toMatch(/already there 0/);
  });
});
