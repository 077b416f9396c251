/**
 * The daemon in-process against real parts: Dovecot (IMAP IDLE), the SMTP server (relaying the bot's
 * Bcc copy back into Dovecot), git on a small hand-written tree, checks on worker threads.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/load.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { readStatus } from '../../src/daemon/health.js';
import { outboxRows } from '../../src/report/outbox.js';
import { openDb } from '../../src/store/db.js';
import type { Dovecot } from '../helpers/imap-server.js';
import type { TestSmtp } from '../helpers/smtp-server.js';
import type { TestRepo } from '../helpers/git-repo.js';
import { BOT, ENV, messageIdOf, seriesMail, seriesPatches, until, writeConfig, startMailWorld, stopMailWorld } from './world.js';

let dovecot: Dovecot;
let smtp: TestSmtp;
let repo: TestRepo;
let dir: string;

beforeAll(async () => {
  ({ dovecot, smtp, repo, dir } = await startMailWorld('vr-daemon-'));
});
afterAll(async () => {
  await stopMailWorld({ dovecot, smtp, repo, dir });
});

/** A daemon in this process with its log lines collected. */
async function startDaemon(over: Record<string, unknown> = {}, mailbox = 'INBOX'): Promise<{ daemon: Daemon; db: string; lines: Record<string, unknown>[] }> {
  const db = join(dir, `d${Date.now()}${Math.random().toString(36).slice(2, 6)}.db`);
  const file = writeConfig(dir, { dovecot, smtp, tree: repo.dir, db, daemon: { sources: [{ name: 'lists', host: '127.0.0.1', port: dovecot.port, secure: false, user: 'bot', mailboxes: [mailbox], pollIntervalMs: 3000 }], ...over } });
  const config = loadConfig({ file, env: ENV });
  await dovecot.appendMany('bot', mailbox, []); // the mailbox exists before the daemon watches it
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  const daemon = new Daemon({ config, dbPath: db, tree: repo.dir, log });
  await daemon.start();
  running = daemon;
  return { daemon, db, lines };
}
let running: Daemon | undefined;
afterEach(async () => {
  await running?.stop('test over');
  running = undefined;
});

const repliesTo = (ids: string[]) => smtp.received.filter((m) => ids.some((id) => m.raw.toString('latin1').includes(`In-Reply-To: <${id}>`)));

describe('vfio-review run (in-process)', () => {
  it('reviews a complete series as soon as its last patch arrives, and the queue empties', async () => {
    const { daemon, db, lines } = await startDaemon({ waitSeconds: 600 }, 'complete');
    const s = seriesMail({ tag: 'complete', slot: 1, bug: true }, await seriesPatches(repo, { tag: 'complete', slot: 1, bug: true }));
    await dovecot.appendMany('bot', 'complete', s.raws);
    // The cover's summary and patch 1's finding.
    await until(() => repliesTo(s.ids).length >= 2, 60_000, 'two replies at the SMTP server');
    await until(() => daemon.jobs.counts().done === 1 && daemon.jobs.counts().running === 0, 10_000, 'the job to be done');
    const replies = repliesTo(s.ids);
    expect(replies).toHaveLength(2);
    if (process.env.VR_DEBUG) console.log(lines.map((l) => `${l.time} ${l.msg} ${JSON.stringify(l)}`).join('\n'));
    expect(replies.map((r) => r.raw.toString()).join('\n')).toMatch(/BUG_ON\(\) added in vfio_demo_op1\(\)/);
    const status = readStatus(daemon.db);
    expect(status.queue).toMatchObject({ queued: 0, running: 0, done: 1, failed: 0 });
    expect(status.daemon.running).toBe(true);
    expect(status.sources[0]).toMatchObject({ name: 'lists', lastError: null });
    expect(status.sources[0]!.lastIngestAt).not.toBeNull();
    expect(status.sinks).toEqual([expect.objectContaining({ name: 'email', outbox: { pending: 0, sending: 0, sent: 2, failed: 0 } })]);
    await daemon.stop('test over');
    const after = openDb(db);
    expect(readStatus(after).daemon).toMatchObject({ running: false, lastStopReason: 'test over' });
    after.close();
  });

  it('reviews an incomplete series once waitSeconds have passed since its last message', async () => {
    const { daemon, lines } = await startDaemon({ waitSeconds: 2 }, 'partial');
    const s = seriesMail({ tag: 'partial', slot: 2, bug: true }, await seriesPatches(repo, { tag: 'partial', slot: 2, bug: true }));
    const appended = Date.now();
    await dovecot.appendMany('bot', 'partial', s.raws.slice(0, 3)); // cover, 1/3, 2/3
    await until(() => repliesTo(s.ids).length >= 2, 60_000, 'replies to the incomplete series');
    expect(Date.now() - appended).toBeGreaterThanOrEqual(2000);
    expect(lines.find((l) => l.msg === 'review queued')).toMatchObject({ why: 'waited' });
    expect(daemon.jobs.list()[0]).toMatchObject({ state: 'done', outcome: 'reported', reason: 'incomplete; waited 2 s for the rest' });
  });

  it('obeys "vfio-review: rerun" and "dismiss" lines in replies from allowed senders, without a duplicate reply', async () => {
    const { daemon, db } = await startDaemon({ waitSeconds: 600 }, 'commands');
    const s = seriesMail({ tag: 'cmd', slot: 3, bug: true }, await seriesPatches(repo, { tag: 'cmd', slot: 3, bug: true }));
    await dovecot.appendMany('bot', 'commands', s.raws);
    await until(() => repliesTo(s.ids).length >= 2, 60_000, 'the first review');
    await until(() => daemon.jobs.counts().done === 1, 10_000, 'the review job to be done');
    const review = repliesTo([s.ids[1]!])[0]!;
    const replyId = messageIdOf(review.raw)!;
    const concern = /\b([0-9a-f]{12})\b bug-on/.exec(review.raw.toString())?.[1] ?? /concern ([0-9a-f]{12})/.exec(review.raw.toString())?.[1];
    expect(concern, review.raw.toString()).toMatch(/^[0-9a-f]{12}$/);
    const answer = (from: string, id: string, body: string): string =>
      `From: ${from}\nTo: ${BOT}\nSubject: Re: [PATCH 1/3] vfio: cmd part 1\nDate: ${new Date().toUTCString()}\nMessage-ID: <${id}@example.org>\n` +
      `In-Reply-To: ${replyId}\nReferences: <${s.cover}> <${s.ids[1]}> ${replyId}\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n${body}\n`;
    const before = smtp.received.length;
    // An outsider's commands do nothing; the maintainer's rerun queues a job and the dismissal sticks.
    await dovecot.appendMany('bot', 'commands', [
      answer('Mallory <mallory@example.net>', 'cmd-mallory', `vfio-review: dismiss ${concern} I say so\nvfio-review: rerun`),
      answer('Alex Maintainer <alex@example.org>', 'cmd-alex', `> quoted: vfio-review: rerun\n\nvfio-review: rerun`),
    ]);
    await until(() => daemon.jobs.list().some((j) => j.kind === 'rerun' && j.state === 'done'), 60_000, 'the rerun job');
    const rerun = daemon.jobs.list().filter((j) => j.kind === 'rerun');
    expect(rerun).toHaveLength(1);
    expect(rerun[0]!.reason).toMatch(/alex@example\.org/);
    const check = openDb(db);
    expect(check.prepare(`SELECT count(*) FROM checks WHERE trigger = 'rerun'`).pluck().get()).toBe(1);
    expect(check.prepare(`SELECT state FROM concerns WHERE public_id = ?`).pluck().get(concern)).not.toBe('dismissed');
    check.close();
    await dovecot.append('bot', 'commands', answer('Alex Maintainer <alex@example.org>', 'cmd-alex-2', `vfio-review: dismiss ${concern} intended, the state cannot be reached`));
    await until(() => {
      const c = openDb(db);
      try {
        return c.prepare(`SELECT state FROM concerns WHERE public_id = ?`).pluck().get(concern) === 'dismissed';
      } finally {
        c.close();
      }
    }, 30_000, 'the dismissal');
    // Same findings on the rerun: the outbox keys say it was answered; nothing new was sent.
    await new Promise((r) => setTimeout(r, 1500));
    expect(smtp.received.length).toBe(before);
    expect(outboxRows(daemon.db)).toHaveLength(2);
  });
});
