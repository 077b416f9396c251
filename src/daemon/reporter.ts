import type { Db } from '../store/db.js';
import { reasonOf } from '../errors.js';
import { deliverDue, type DeliverSummary } from '../report/outbox.js';
import type { ReportPolicy } from '../report/policy.js';
import { runReport } from '../report/report.js';
import type { Sink } from '../report/types.js';
import { recordHealth } from './health.js';
import type { Logger } from './log.js';

/**
 * Reports through the existing outbox, one thing at a time. Everything that touches a sink (a
 * job's runReport, the periodic delivery of retries, GitHub command polling) goes through one
 * lock: deliverDue reads the due rows and then marks each 'sending', so two deliveries running at
 * once could both pick the same pending row and send it twice.
 */
export class Reporter {
  readonly #db: Db;
  readonly #policy: ReportPolicy;
  readonly #sinks: readonly Sink[];
  readonly #log: Logger;
  #lock: Promise<unknown> = Promise.resolve();

  constructor(db: Db, policy: ReportPolicy, sinks: readonly Sink[], log: Logger) {
    this.#db = db;
    this.#policy = policy;
    this.#sinks = sinks;
    this.#log = log;
  }

  get sinks(): readonly Sink[] {
    return this.#sinks;
  }

  /** Runs `fn` when everything queued before it has finished. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(fn, fn);
    this.#lock = run.catch(() => undefined);
    return run;
  }

  #health(sink: Sink, d: DeliverSummary | null): void {
    if (!d) return;
    if (d.failed + d.retrying + d.waiting > 0) {
      const err = this.#db
        .prepare(`SELECT last_error FROM outbox WHERE sink = ? AND last_error IS NOT NULL ORDER BY updated_at DESC LIMIT 1`)
        .pluck()
        .get(sink.name) as string | undefined;
      recordHealth(this.#db, 'sink', sink.name, { error: err ?? `${d.failed} failed, ${d.retrying} retrying, ${d.waiting} waiting` });
    }
    if (d.sent + d.alreadyThere > 0) recordHealth(this.#db, 'sink', sink.name, { ok: true });
  }

  /**
   * Decides (and delivers what is due) the replies for one series through every sink. Throws when
   * a sink could not even be planned for, so the job is tried again; delivery failures are the
   * outbox's to retry and do not fail the job.
   */
  report(seriesId: number): Promise<void> {
    return this.exclusive(async () => {
      const errors: string[] = [];
      for (const sink of this.#sinks) {
        try {
          const r = await runReport(this.#db, { seriesIds: [seriesId], sink, policy: this.#policy });
          const s = r.series[0];
          this.#log.info(
            { seriesId, sink: sink.name, decided: s?.decided ?? 0, updated: s?.updated ?? 0, skipped: s?.skipped ?? null, delivery: r.delivery },
            'series reported',
          );
          this.#health(sink, r.delivery);
        } catch (err) {
          const why = reasonOf(err);
          recordHealth(this.#db, 'sink', sink.name, { error: why });
          this.#log.error({ seriesId, sink: sink.name, err: why }, 'report failed');
          errors.push(`${sink.name}: ${why}`);
        }
      }
      if (errors.length) throw new Error(`report failed: ${errors.join('; ')}`);
    });
  }

  /** Delivers every due reply of every sink (retries, and what a killed process left 'sending'). */
  deliver(): Promise<void> {
    return this.exclusive(async () => {
      for (const sink of this.#sinks) {
        try {
          const d = await deliverDue(this.#db, sink, this.#policy.retry);
          if (d.sent + d.alreadyThere + d.failed + d.retrying > 0) this.#log.info({ sink: sink.name, delivery: d }, 'outbox delivered');
          this.#health(sink, d);
        } catch (err) {
          const why = reasonOf(err);
          recordHealth(this.#db, 'sink', sink.name, { error: why });
          this.#log.error({ sink: sink.name, err: why }, 'delivery failed');
        }
      }
    });
  }

  async close(): Promise<void> {
    await this.exclusive(async () => undefined);
    for (const s of this.#sinks) await s.close?.().catch(() => undefined);
  }
}
