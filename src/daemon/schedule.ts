import type { Db } from '../store/db.js';
import type { JobStore } from './jobs.js';

export interface ScheduleOptions {
  /** An incomplete series is reviewed this long after its last message arrived. */
  waitSeconds: number;
  /** Series whose newest message is older than this are left alone (a first sync of an old archive). Null: no limit. */
  maxAgeDays: number | null;
  now?: Date;
}

export interface Scheduled {
  jobId: number;
  seriesId: number;
  why: 'complete' | 'waited';
}

interface Candidate {
  id: number;
  complete: number;
  sig: string;
  last_ingest: string;
}

/**
 * Enqueues a review for every relevant series version whose current set of messages has not been
 * queued yet: at once when it is complete, or once `waitSeconds` passed since its last message was
 * stored. The job key carries the signature of the series' messages, so a series that gains a
 * patch (the missing one, a late cover) is a new job, and asking again for the same state is a no-op.
 */
export function scheduleDue(db: Db, jobs: JobStore, opts: ScheduleOptions): Scheduled[] {
  const now = opts.now ?? new Date();
  const cutoff = opts.maxAgeDays === null ? null : Math.floor(now.getTime() / 1000) - opts.maxAgeDays * 86400;
  const rows = db
    .prepare(
      `SELECT s.id, s.complete,
              group_concat(sp.counter || ':' || sp.message_id, ',' ORDER BY sp.counter) AS sig,
              max(m.ingested_at) AS last_ingest
       FROM series s JOIN series_patches sp ON sp.series_id = s.id JOIN messages m ON m.id = sp.message_id
       WHERE s.relevant = 1 AND (? IS NULL OR s.last_date IS NULL OR s.last_date >= ?)
       GROUP BY s.id
       HAVING NOT EXISTS (SELECT 1 FROM jobs j WHERE j.dedup_key = 'review:' || s.id || ':' || sig)`,
    )
    .all(cutoff, cutoff) as Candidate[];
  const out: Scheduled[] = [];
  const waitMs = opts.waitSeconds * 1000;
  for (const r of rows) {
    const why = r.complete === 1 ? 'complete' : Date.parse(r.last_ingest) + waitMs <= now.getTime() ? 'waited' : null;
    if (!why) continue;
    const jobId = jobs.enqueue({
      kind: 'review',
      seriesId: r.id,
      dedupKey: `review:${r.id}:${r.sig}`,
      reason: why === 'complete' ? 'series complete' : `incomplete; waited ${opts.waitSeconds} s for the rest`,
    });
    if (jobId !== null) out.push({ jobId, seriesId: r.id, why });
  }
  return out;
}
