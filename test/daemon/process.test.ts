/**
 * `vfio-review run` as a real process: SIGTERM finishes or abandons the job in hand (lease released)
 * and exits 0; `vfio-review status --json` reads the queue and the heartbeat; a second daemon on the
 * same store is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { openDb } from '../../src/store/db.js';
import { JobStore } from '../../src/daemon/jobs.js';
import type { DaemonStatus } from '../../src/daemon/health.js';
import type { Dovecot } from '../helpers/imap-server.js';
import type { TestSmtp } from '../helpers/smtp-server.js';
import type { TestRepo } from '../helpers/git-repo.js';
import { BIN, ENV, ROOT, seriesMail, seriesPatches, spawnDaemon, until, writeConfig, startMailWorld, stopMailWorld } from './world.js';

let dovecot: Dovecot;
let smtp: TestSmtp;
let repo: TestRepo;
let dir: string;

beforeAll(async () => {
  ({ dovecot, smtp, repo, dir } = await startMailWorld('vr-daemon-proc-'));
});
afterAll(async () => {
  await stopMailWorld({ dovecot, smtp, repo, dir });
});

function status(db: string): DaemonStatus {
  const r = spawnSync(process.execPath, [BIN, 'status', '--db', db, '--json'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...ENV } });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as DaemonStatus;
}

function jobsOf(db: string) {
  const c = openDb(db);
  try {
    return new JobStore(c).list();
  } finally {
    c.close();
  }
}

async function setup(mailbox: string, daemon: Record<string, unknown> = {}): Promise<{ db: string; config: string }> {
  const db = join(dir, `${mailbox}.db`);
  await dovecot.appendMany('bot', mailbox, []);
  const config = writeConfig(dir, {
    dovecot, smtp, tree: repo.dir, db,
    daemon: { sources: [{ name: 'lists', host: '127.0.0.1', port: dovecot.port, secure: false, user: 'bot', mailboxes: [mailbox] }], ...daemon },
  });
  return { db, config };
}

describe('vfio-review run as a process', () => {
  it('SIGTERM during a check: the job is abandoned with its lease released, exit 0; the next start does it once', async () => {
    const { db, config } = await setup('sigterm-abandon', { shutdownGraceSeconds: 1 });
    const first = spawnDaemon(config, { VFIO_REVIEW_PAUSE_AT: 'daemon-check' });
    await first.waitFor('daemon ready');
    const s = seriesMail({ tag: 'term', slot: 4, bug: true }, await seriesPatches(repo, { tag: 'term', slot: 4, bug: true }));
    await dovecot.appendMany('bot', 'sigterm-abandon', s.raws);
    await first.waitText('vfio-review: paused at daemon-check');
    // While it works, status sees the daemon and the running job.
    const mid = status(db);
    expect(mid.daemon).toMatchObject({ running: true, pid: first.proc.pid });
    expect(mid.queue.running).toBe(1);
    first.proc.kill('SIGTERM');
    expect(await first.exited).toEqual({ code: 0, signal: null });
    expect(first.log()).toMatch(/"msg":"check abandoned at shutdown; lease released"/);
    const [job] = jobsOf(db);
    expect(job).toMatchObject({ state: 'queued', leaseOwner: null, leasePid: null, leaseExpiresAt: null, attempts: 0, lastError: 'abandoned at shutdown', checkId: null });
    const after = status(db);
    expect(after.daemon).toMatchObject({ running: false, lastStopReason: 'SIGTERM' });
    expect(after.queue).toMatchObject({ queued: 1, running: 0 });

    const second = spawnDaemon(config);
    await second.waitFor('job done');
    await until(() => smtp.received.filter((m) => m.raw.includes(`In-Reply-To: <${s.ids[1]}>`)).length === 1, 30_000, 'the reply');
    expect(status(db).queue).toMatchObject({ queued: 0, running: 0, done: 1, failed: 0 });
    second.proc.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });
    // Exactly one reply per target, and one check: the abandoned attempt recorded none.
    for (const id of [s.cover, s.ids[1]!]) expect(smtp.received.filter((m) => m.raw.includes(`In-Reply-To: <${id}>`))).toHaveLength(1);
    const c = openDb(db);
    expect(c.prepare('SELECT count(*) FROM checks').pluck().get()).toBe(1);
    c.close();
  });

  it('SIGTERM with a job in hand and time to spare: the job is finished, then exit 0', async () => {
    const { db, config } = await setup('sigterm-finish', { shutdownGraceSeconds: 60 });
    const d = spawnDaemon(config);
    await d.waitFor('daemon ready');
    const s = seriesMail({ tag: 'fin', slot: 5, bug: true }, await seriesPatches(repo, { tag: 'fin', slot: 5, bug: true }));
    await dovecot.appendMany('bot', 'sigterm-finish', s.raws);
    await d.waitFor('job claimed');
    d.proc.kill('SIGTERM');
    const stopped = await d.waitFor('daemon stopped');
    expect(await d.exited).toEqual({ code: 0, signal: null });
    // Nothing left holding the process open after the stop (a forgotten timer or socket).
    expect(Date.now() - Date.parse(String(stopped.time))).toBeLessThan(5000);
    expect(jobsOf(db)).toEqual([expect.objectContaining({ state: 'done', outcome: 'reported', leaseOwner: null })]);
    expect(smtp.received.filter((m) => m.raw.includes(`In-Reply-To: <${s.ids[1]}>`))).toHaveLength(1);
    expect(status(db)).toMatchObject({ daemon: { running: false, lastStopReason: 'SIGTERM' }, queue: { queued: 0, running: 0, done: 1 } });
  });

  it('refuses a second daemon on the same store', async () => {
    const { config } = await setup('single');
    const d = spawnDaemon(config);
    await d.waitFor('daemon ready');
    const again = spawnSync(process.execPath, [BIN, 'run', '--config', config], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...ENV }, timeout: 60_000 });
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/DAEMON_RUNNING: a daemon \(pid \d+ on .*\) is already running on this store/);
    d.proc.kill('SIGTERM');
    expect((await d.exited).code).toBe(0);
  });
});
