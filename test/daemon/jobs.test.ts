/** The job queue and the scheduler on a real store (no daemon): keys, leases, retries, recovery. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDb, type Db } from '../../src/store/db.js';
import { JobStore, type LeaseOwner } from '../../src/daemon/jobs.js';
import { scheduleDue } from '../../src/daemon/schedule.js';
import { Ingestor } from '../../src/ingest/ingest.js';
import { mail } from '../helpers/mail.js';
import { coreDiff, otherDiff, seed } from '../report/world.js';

const A: LeaseOwner = { owner: 'host-a:100:aaaa', pid: 100, host: 'host-a' };
const B: LeaseOwner = { owner: 'host-a:200:bbbb', pid: 200, host: 'host-a' };
const LEASE = 60_000;

let db: Db;
let jobs: JobStore;
beforeEach(() => {
  db = openDb(':memory:');
  jobs = new JobStore(db);
});
afterEach(() => db.close());

const review = (seriesId: number, sig = 'x') => ({ kind: 'review' as const, seriesId, dedupKey: `review:${seriesId}:${sig}`, reason: 'test' });

describe('job queue', () => {
  it('adds a job once per key, and a newer review supersedes a queued older one of the same series', () => {
    const first = jobs.enqueue(review(1, 'a'));
    expect(first).not.toBeNull();
    expect(jobs.enqueue(review(1, 'a'))).toBeNull();
    jobs.enqueue(review(2, 'a'));
    const second = jobs.enqueue(review(1, 'b'));
    expect(jobs.get(first!)).toMatchObject({ state: 'done', outcome: 'superseded' });
    expect(jobs.get(second!)).toMatchObject({ state: 'queued' });
    expect(jobs.counts()).toEqual({ queued: 2, running: 0, done: 1, failed: 0 });
  });

  it('runs one job per series at a time, reruns first', () => {
    jobs.enqueue(review(1));
    jobs.enqueue({ kind: 'rerun', seriesId: 1, dedupKey: 'rerun:9', reason: 'asked' });
    jobs.enqueue(review(2));
    const a = jobs.claim(A, LEASE)!;
    expect(a).toMatchObject({ kind: 'rerun', seriesId: 1, state: 'running', leaseOwner: A.owner, attempts: 1 });
    expect(a.firstClaimedAt).not.toBeNull();
    const b = jobs.claim(B, LEASE)!;
    expect(b.seriesId).toBe(2); // series 1's review waits for its rerun
    expect(jobs.claim(B, LEASE)).toBeNull();
    expect(jobs.finish(a.id, A, 'reported')).toBe(true);
    expect(jobs.claim(B, LEASE)).toMatchObject({ kind: 'review', seriesId: 1 });
  });

  it('lets only the lease owner change a running job', () => {
    jobs.enqueue(review(1));
    const j = jobs.claim(A, LEASE)!;
    expect(jobs.setCheck(j.id, B, 5)).toBe(false);
    expect(jobs.finish(j.id, B, 'reported')).toBe(false);
    expect(jobs.release(j.id, B, 'x')).toBe(false);
    expect(jobs.fail(j.id, B, 'x', { retryMs: 0, maxAttempts: 3 })).toBeNull();
    expect(jobs.setCheck(j.id, A, 5)).toBe(true);
    expect(jobs.renew(A, LEASE)).toBe(1);
    expect(jobs.get(j.id)).toMatchObject({ state: 'running', checkId: 5 });
  });

  it('retries a failed attempt after the delay, and gives up after maxAttempts', () => {
    jobs.enqueue(review(1));
    let j = jobs.claim(A, LEASE)!;
    expect(jobs.fail(j.id, A, 'boom', { retryMs: 60_000, maxAttempts: 2 })).toBe('queued');
    expect(jobs.claim(A, LEASE)).toBeNull(); // not before the retry delay
    db.prepare('UPDATE jobs SET not_before = ?').run(new Date(0).toISOString());
    j = jobs.claim(A, LEASE)!;
    expect(j.attempts).toBe(2);
    expect(jobs.fail(j.id, A, 'boom again', { retryMs: 0, maxAttempts: 2 })).toBe('failed');
    expect(jobs.get(j.id)).toMatchObject({ state: 'failed', lastError: 'boom again', leaseOwner: null });
  });

  it('a release (shutdown) puts the job back at once without counting the attempt', () => {
    jobs.enqueue(review(1));
    const j = jobs.claim(A, LEASE)!;
    expect(jobs.release(j.id, A, 'abandoned at shutdown')).toBe(true);
    expect(jobs.get(j.id)).toMatchObject({ state: 'queued', attempts: 0, leaseOwner: null, leaseExpiresAt: null });
    expect(jobs.claim(B, LEASE)).toMatchObject({ id: j.id, attempts: 1, firstClaimedAt: j.firstClaimedAt });
  });

  it('takes back jobs whose owner is gone: dead pid on this host at once, elsewhere when the lease expires', () => {
    jobs.enqueue(review(1));
    jobs.enqueue(review(2));
    jobs.enqueue(review(3));
    const dead = jobs.claim(A, LEASE)!;
    const alive = jobs.claim({ ...A, owner: 'host-a:300:cccc', pid: 300 }, LEASE)!;
    const remote = jobs.claim({ owner: 'host-b:100:dddd', pid: 100, host: 'host-b' }, LEASE)!;
    const isAlive = (pid: number) => pid === 300;
    expect(jobs.recoverStale(B, isAlive).map((j) => j.id)).toEqual([dead.id]);
    expect(jobs.get(dead.id)).toMatchObject({ state: 'queued', attempts: 1, lastError: `lease of ${A.owner} lost (owner gone)` });
    db.prepare('UPDATE jobs SET lease_expires_at = ? WHERE id = ?').run(new Date(Date.now() - 1000).toISOString(), remote.id);
    expect(jobs.recoverStale(B, isAlive).map((j) => j.id)).toEqual([remote.id]);
    expect(jobs.get(alive.id)!.state).toBe('running');
  });

  it('refuses states outside the union and a running job without an owner', () => {
    expect(() => db.prepare(`INSERT INTO jobs (kind, series_id, dedup_key, reason, state, not_before, created_at, updated_at) VALUES ('review', 1, 'k', 'r', 'bogus', '', '', '')`).run()).toThrow(/CHECK/);
    expect(() => db.prepare(`INSERT INTO jobs (kind, series_id, dedup_key, reason, state, not_before, created_at, updated_at) VALUES ('review', 1, 'k', 'r', 'running', '', '', '')`).run()).toThrow(/CHECK/);
  });
});

describe('scheduleDue', () => {
  it('queues complete series at once, incomplete ones after the wait, and a series again when it gains a patch', async () => {
    const [complete] = await seed(db, [{ version: 1, cover: true, diffs: [coreDiff(), otherDiff()], idPrefix: 'c', title: 'vfio: complete one' }]);
    // An incomplete one: the cover and patch 1 of 2.
    const ing = new Ingestor(db);
    const src = ing.sourceId('manual', 'sched');
    const body = `Change.\n\nSigned-off-by: Dev Two <dev2@example.org>\n---\n${otherDiff()}-- \n2.43.0\n`;
    await ing.add(src, mail({ id: 'i.0@example.org', from: 'Dev Two <dev2@example.org>', subject: '[PATCH 0/2] vfio: partial one', body: 'Cover.\n' }), 'a');
    await ing.add(src, mail({ id: 'i.1@example.org', from: 'Dev Two <dev2@example.org>', subject: '[PATCH 1/2] vfio: partial one a', inReplyTo: 'i.0@example.org', body }), 'b');
    ing.finish();
    const partial = db.prepare(`SELECT id FROM series WHERE title LIKE '%partial%'`).pluck().get() as number;

    const now = new Date();
    expect(scheduleDue(db, jobs, { waitSeconds: 600, maxAgeDays: null, now }).map((s) => [s.seriesId, s.why])).toEqual([[complete!.id, 'complete']]);
    expect(scheduleDue(db, jobs, { waitSeconds: 600, maxAgeDays: null, now })).toEqual([]);
    // Mail dated 2024 is out of a 14-day window.
    expect(scheduleDue(db, jobs, { waitSeconds: 0, maxAgeDays: 14, now })).toEqual([]);
    const later = new Date(now.getTime() + 601_000);
    expect(scheduleDue(db, jobs, { waitSeconds: 600, maxAgeDays: null, now: later }).map((s) => [s.seriesId, s.why])).toEqual([[partial, 'waited']]);

    await ing.add(src, mail({ id: 'i.2@example.org', from: 'Dev Two <dev2@example.org>', subject: '[PATCH 2/2] vfio: partial one b', inReplyTo: 'i.0@example.org', body }), 'c');
    ing.finish();
    expect(scheduleDue(db, jobs, { waitSeconds: 600, maxAgeDays: null, now }).map((s) => [s.seriesId, s.why])).toEqual([[partial, 'complete']]);
    expect(jobs.list({ seriesId: partial }).map((j) => j.dedupKey)).toHaveLength(2);
  });
});
