import type { Db } from '../store/db.js';
import { nowIso } from '../store/db.js';

export const JOB_KINDS = ['review', 'rerun'] as const;
export type JobKind = (typeof JOB_KINDS)[number];
export const JOB_STATES = ['queued', 'running', 'done', 'failed'] as const;
export type JobState = (typeof JOB_STATES)[number];
/** Why a done job is done. */
export type JobOutcome = 'reported' | 'superseded' | 'series-gone';

/** One row of `jobs`. */
export interface Job {
  id: number;
  kind: JobKind;
  seriesId: number;
  dedupKey: string;
  reason: string;
  state: JobState;
  outcome: JobOutcome | null;
  attempts: number;
  notBefore: string;
  leaseOwner: string | null;
  leasePid: number | null;
  leaseHost: string | null;
  leaseExpiresAt: string | null;
  firstClaimedAt: string | null;
  checkId: number | null;
  lastError: string | null;
  createdAt: string;
  finishedAt: string | null;
}

interface Row {
  id: number; kind: JobKind; series_id: number; dedup_key: string; reason: string; state: JobState; outcome: JobOutcome | null;
  attempts: number; not_before: string; lease_owner: string | null; lease_pid: number | null; lease_host: string | null;
  lease_expires_at: string | null; first_claimed_at: string | null; check_id: number | null; last_error: string | null;
  created_at: string; finished_at: string | null;
}

function fromRow(r: Row): Job {
  return {
    id: r.id, kind: r.kind, seriesId: r.series_id, dedupKey: r.dedup_key, reason: r.reason, state: r.state, outcome: r.outcome,
    attempts: r.attempts, notBefore: r.not_before, leaseOwner: r.lease_owner, leasePid: r.lease_pid, leaseHost: r.lease_host,
    leaseExpiresAt: r.lease_expires_at, firstClaimedAt: r.first_claimed_at, checkId: r.check_id, lastError: r.last_error,
    createdAt: r.created_at, finishedAt: r.finished_at,
  };
}

/** Who holds leases: this process, named so that a restarted process with a reused pid is someone else. */
export interface LeaseOwner {
  owner: string;
  pid: number;
  host: string;
}

const later = (ms: number, from = Date.now()): string => new Date(from + ms).toISOString();

/**
 * The job queue in SQLite. Every state change is one statement or one IMMEDIATE transaction, and
 * every change to a running job names the lease owner, so a process that lost its lease (taken
 * again after it was presumed dead) cannot overwrite what the new owner does.
 */
export class JobStore {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  /**
   * Adds a job unless one with the same key exists; returns its id when it was added. A new review
   * of a series supersedes that series' queued (not yet running) reviews: only the latest state of
   * a series is worth checking.
   */
  enqueue(j: { kind: JobKind; seriesId: number; dedupKey: string; reason: string; notBefore?: Date }): number | null {
    const db = this.#db;
    return db.transaction((): number | null => {
      const now = nowIso();
      const r = db
        .prepare(
          `INSERT OR IGNORE INTO jobs (kind, series_id, dedup_key, reason, state, attempts, not_before, created_at, updated_at)
           VALUES (?, ?, ?, ?, 'queued', 0, ?, ?, ?)`,
        )
        .run(j.kind, j.seriesId, j.dedupKey, j.reason, (j.notBefore ?? new Date()).toISOString(), now, now);
      if (r.changes === 0) return null;
      const id = Number(r.lastInsertRowid);
      if (j.kind === 'review') {
        db.prepare(
          `UPDATE jobs SET state = 'done', outcome = 'superseded', finished_at = ?, updated_at = ?
           WHERE series_id = ? AND kind = 'review' AND state = 'queued' AND id != ?`,
        ).run(now, now, j.seriesId, id);
      }
      return id;
    }).immediate();
  }

  /**
   * Takes the oldest due queued job whose series has no running job (one check per series at a time,
   * so a retaken job can tell its own earlier check from another's). Null when none is due.
   */
  claim(me: LeaseOwner, leaseMs: number): Job | null {
    const db = this.#db;
    return db.transaction((): Job | null => {
      const now = nowIso();
      const row = db
        .prepare(
          `SELECT id FROM jobs j WHERE state = 'queued' AND not_before <= ?
             AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.series_id = j.series_id AND r.state = 'running')
           ORDER BY CASE kind WHEN 'rerun' THEN 0 ELSE 1 END, id LIMIT 1`,
        )
        .pluck()
        .get(now) as number | undefined;
      if (row === undefined) return null;
      db.prepare(
        `UPDATE jobs SET state = 'running', lease_owner = ?, lease_pid = ?, lease_host = ?, lease_expires_at = ?,
           first_claimed_at = coalesce(first_claimed_at, ?), attempts = attempts + 1, updated_at = ? WHERE id = ?`,
      ).run(me.owner, me.pid, me.host, later(leaseMs), now, now, row);
      return this.get(row)!;
    }).immediate();
  }

  get(id: number): Job | null {
    const r = this.#db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as Row | undefined;
    return r ? fromRow(r) : null;
  }

  /** Extends every lease this owner holds; returns how many it still holds. */
  renew(me: LeaseOwner, leaseMs: number): number {
    return this.#db
      .prepare(`UPDATE jobs SET lease_expires_at = ?, updated_at = ? WHERE state = 'running' AND lease_owner = ?`)
      .run(later(leaseMs), nowIso(), me.owner).changes;
  }

  /** Records the check a running job made (or found). False when the lease was lost. */
  setCheck(id: number, me: LeaseOwner, checkId: number): boolean {
    return this.#db
      .prepare(`UPDATE jobs SET check_id = ?, updated_at = ? WHERE id = ? AND state = 'running' AND lease_owner = ?`)
      .run(checkId, nowIso(), id, me.owner).changes === 1;
  }

  /** The job is done; false when the lease was lost (someone else finishes it). */
  finish(id: number, me: LeaseOwner, outcome: JobOutcome): boolean {
    const now = nowIso();
    return this.#db
      .prepare(
        `UPDATE jobs SET state = 'done', outcome = ?, lease_owner = NULL, lease_pid = NULL, lease_host = NULL, lease_expires_at = NULL,
           last_error = NULL, finished_at = ?, updated_at = ? WHERE id = ? AND state = 'running' AND lease_owner = ?`,
      )
      .run(outcome, now, now, id, me.owner).changes === 1;
  }

  /**
   * An attempt failed: queued again after `retryMs`, or 'failed' for good after `maxAttempts`.
   * Returns the new state, or null when the lease was lost.
   */
  fail(id: number, me: LeaseOwner, error: string, opts: { retryMs: number; maxAttempts: number }): JobState | null {
    const db = this.#db;
    return db.transaction((): JobState | null => {
      const j = this.get(id);
      if (!j || j.state !== 'running' || j.leaseOwner !== me.owner) return null;
      const now = nowIso();
      const state: JobState = j.attempts >= opts.maxAttempts ? 'failed' : 'queued';
      db.prepare(
        `UPDATE jobs SET state = ?, lease_owner = NULL, lease_pid = NULL, lease_host = NULL, lease_expires_at = NULL,
           last_error = ?, not_before = ?, finished_at = ?, updated_at = ? WHERE id = ?`,
      ).run(state, error.slice(0, 4000), later(opts.retryMs), state === 'failed' ? now : null, now, id);
      return state;
    }).immediate();
  }

  /**
   * Gives a job back untouched (shutdown): queued again at once, and the attempt is not counted,
   * since nothing about the job made it fail.
   */
  release(id: number, me: LeaseOwner, why: string): boolean {
    return this.#db
      .prepare(
        `UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_pid = NULL, lease_host = NULL, lease_expires_at = NULL,
           attempts = max(0, attempts - 1), last_error = ?, updated_at = ? WHERE id = ? AND state = 'running' AND lease_owner = ?`,
      )
      .run(why, nowIso(), id, me.owner).changes === 1;
  }

  /**
   * Puts back the running jobs whose owner is gone: the lease expired, or the owner ran on this
   * host and its pid is no longer alive (a SIGKILL; no need to wait the lease out). The attempt
   * stays counted: a job that kills its worker every time must end up 'failed'.
   */
  recoverStale(me: LeaseOwner, isAlive: (pid: number) => boolean): Job[] {
    const db = this.#db;
    return db.transaction((): Job[] => {
      const now = nowIso();
      const running = (db.prepare(`SELECT * FROM jobs WHERE state = 'running' AND lease_owner != ?`).all(me.owner) as Row[]).map(fromRow);
      const stale = running.filter(
        (j) => (j.leaseExpiresAt !== null && j.leaseExpiresAt < now) || (j.leaseHost === me.host && j.leasePid !== null && !isAlive(j.leasePid)),
      );
      const put = db.prepare(
        `UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_pid = NULL, lease_host = NULL, lease_expires_at = NULL,
           last_error = ?, updated_at = ? WHERE id = ? AND lease_owner = ?`,
      );
      for (const j of stale) put.run(`lease of ${j.leaseOwner} lost (owner gone)`, now, j.id, j.leaseOwner);
      return stale;
    }).immediate();
  }

  /** Queue depth by state. */
  counts(): Record<JobState, number> {
    const out: Record<JobState, number> = { queued: 0, running: 0, done: 0, failed: 0 };
    for (const r of this.#db.prepare('SELECT state, count(*) AS n FROM jobs GROUP BY state').all() as { state: JobState; n: number }[]) {
      out[r.state] = r.n;
    }
    return out;
  }

  list(where: { state?: JobState; seriesId?: number } = {}): Job[] {
    return (
      this.#db
        .prepare('SELECT * FROM jobs WHERE (? IS NULL OR state = ?) AND (? IS NULL OR series_id = ?) ORDER BY id')
        .all(where.state ?? null, where.state ?? null, where.seriesId ?? null, where.seriesId ?? null) as Row[]
    ).map(fromRow);
  }
}
