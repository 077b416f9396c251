import { hostname } from 'node:os';
import type { Db } from '../store/db.js';
import { nowIso } from '../store/db.js';
import { JobStore, type JobState } from './jobs.js';
import type { LeaseOwner } from './jobs.js';

/** Whether a pid names a live process on this host (EPERM: alive, owned by someone else). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export type HealthKind = 'source' | 'sink';

/** Records a success (and, for sources, that mail was stored) or an error of a source or sink. */
export function recordHealth(db: Db, kind: HealthKind, name: string, what: { ok?: boolean; ingested?: boolean; error?: string }): void {
  const now = nowIso();
  db.prepare(
    `INSERT INTO daemon_health (kind, name, last_ok_at, last_ingest_at, last_error, last_error_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (kind, name) DO UPDATE SET
       last_ok_at = coalesce(excluded.last_ok_at, last_ok_at),
       last_ingest_at = coalesce(excluded.last_ingest_at, last_ingest_at),
       last_error = coalesce(excluded.last_error, last_error),
       last_error_at = coalesce(excluded.last_error_at, last_error_at),
       updated_at = excluded.updated_at`,
  ).run(
    kind, name, what.ok ? now : null, what.ingested ? now : null, what.error?.slice(0, 2000) ?? null, what.error ? now : null, now,
  );
}

/** A running daemon as its heartbeat row shows it. */
export interface DaemonRun {
  pid: number;
  host: string;
  owner: string;
  startedAt: string;
  heartbeatAt: string;
}

interface RunRow {
  owner: string; pid: number; host: string; beat_interval_ms: number; started_at: string; heartbeat_at: string;
}

/**
 * The daemon that is running on this store, if any: a row not marked stopped whose heartbeat is
 * fresh (three intervals) and, on this host, whose pid is alive.
 */
export function runningDaemon(db: Db, now = Date.now()): DaemonRun | null {
  const rows = db.prepare('SELECT * FROM daemon_runs WHERE stopped_at IS NULL ORDER BY id DESC').all() as RunRow[];
  for (const r of rows) {
    const fresh = Date.parse(r.heartbeat_at) + 3 * r.beat_interval_ms >= now;
    const alive = r.host !== hostname() || pidAlive(r.pid);
    if (fresh && alive) return { pid: r.pid, host: r.host, owner: r.owner, startedAt: r.started_at, heartbeatAt: r.heartbeat_at };
  }
  return null;
}

/** The heartbeat row of this process. */
export class Heartbeat {
  readonly #db: Db;
  readonly #me: LeaseOwner;

  constructor(db: Db, me: LeaseOwner, beatIntervalMs: number) {
    this.#db = db;
    this.#me = me;
    const now = nowIso();
    // Rows of daemons that died without saying so are closed now, so the table tells the truth.
    for (const r of db.prepare('SELECT * FROM daemon_runs WHERE stopped_at IS NULL').all() as RunRow[]) {
      if (r.host === me.host && !pidAlive(r.pid)) {
        db.prepare(`UPDATE daemon_runs SET stopped_at = ?, stop_reason = 'gone: found dead at a later start' WHERE owner = ?`).run(now, r.owner);
      }
    }
    db.prepare(
      `INSERT INTO daemon_runs (owner, pid, host, beat_interval_ms, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?)`,
    ).run(me.owner, me.pid, me.host, beatIntervalMs, now, now);
  }

  beat(): void {
    this.#db.prepare('UPDATE daemon_runs SET heartbeat_at = ? WHERE owner = ?').run(nowIso(), this.#me.owner);
  }

  stopped(reason: string): void {
    this.#db.prepare('UPDATE daemon_runs SET stopped_at = ?, stop_reason = ? WHERE owner = ?').run(nowIso(), reason, this.#me.owner);
  }
}

/** `vfio-review status --json`. Stable shape. */
export interface DaemonStatus {
  daemon: (DaemonRun & { running: true }) | { running: false; lastStoppedAt: string | null; lastStopReason: string | null };
  queue: Record<JobState, number>;
  /** Jobs that gave up, newest first (at most 10). */
  failedJobs: { id: number; seriesId: number; kind: string; attempts: number; error: string | null }[];
  sources: { name: string; lastIngestAt: string | null; lastOkAt: string | null; lastError: string | null; lastErrorAt: string | null }[];
  sinks: {
    name: string;
    outbox: { pending: number; sending: number; sent: number; failed: number };
    lastOkAt: string | null;
    lastError: string | null;
    lastErrorAt: string | null;
  }[];
}

interface HealthRow {
  kind: HealthKind; name: string; last_ok_at: string | null; last_ingest_at: string | null; last_error: string | null; last_error_at: string | null;
}

/** Everything `status` shows, read from the store (the daemon need not be running). */
export function readStatus(db: Db): DaemonStatus {
  const run = runningDaemon(db);
  const last = db.prepare('SELECT stopped_at, stop_reason FROM daemon_runs ORDER BY id DESC LIMIT 1').get() as
    | { stopped_at: string | null; stop_reason: string | null }
    | undefined;
  const health = db.prepare('SELECT * FROM daemon_health ORDER BY kind, name').all() as HealthRow[];
  const outbox = db.prepare('SELECT sink, state, count(*) AS n FROM outbox GROUP BY sink, state').all() as { sink: string; state: string; n: number }[];
  const sinkNames = [...new Set([...health.filter((h) => h.kind === 'sink').map((h) => h.name), ...outbox.map((o) => o.sink)])].sort();
  const failed = db
    .prepare(`SELECT id, series_id, kind, attempts, last_error FROM jobs WHERE state = 'failed' ORDER BY id DESC LIMIT 10`)
    .all() as { id: number; series_id: number; kind: string; attempts: number; last_error: string | null }[];
  return {
    daemon: run ? { running: true, ...run } : { running: false, lastStoppedAt: last?.stopped_at ?? null, lastStopReason: last?.stop_reason ?? null },
    queue: new JobStore(db).counts(),
    failedJobs: failed.map((f) => ({ id: f.id, seriesId: f.series_id, kind: f.kind, attempts: f.attempts, error: f.last_error })),
    sources: health
      .filter((h) => h.kind === 'source')
      .map((h) => ({ name: h.name, lastIngestAt: h.last_ingest_at, lastOkAt: h.last_ok_at, lastError: h.last_error, lastErrorAt: h.last_error_at })),
    sinks: sinkNames.map((name) => {
      const h = health.find((x) => x.kind === 'sink' && x.name === name);
      const count = (state: string): number => outbox.find((o) => o.sink === name && o.state === state)?.n ?? 0;
      return {
        name,
        outbox: { pending: count('pending'), sending: count('sending'), sent: count('sent'), failed: count('failed') },
        lastOkAt: h?.last_ok_at ?? null,
        lastError: h?.last_error ?? null,
        lastErrorAt: h?.last_error_at ?? null,
      };
    }),
  };
}
