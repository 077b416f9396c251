import { readFileSync } from 'node:fs';
import type { Db } from '../store/db.js';
import { VrError } from '../errors.js';
import { crashPoint } from './crashpoint.js';
import { composeRaw } from './mime.js';
import { decide, deliverDue, type DeliverSummary, type NewReply } from './outbox.js';
import { planSeries, type PlanResult } from './plan.js';
import { loadReportPolicy, type ReportPolicy } from './policy.js';
import { draftsSink } from './sinks/drafts.js';
import { emailSink } from './sinks/email.js';
import { stdoutSink } from './sinks/stdout.js';
import { GithubSink, type GithubSinkConfig } from './sinks/github.js';
import type { OutboxRow, Sink, SinkName } from './types.js';

/**
 * The `report` section of a configuration file, until src/config/load.ts carries it; see
 * loadReportPolicy for the shape. No file: everything muted, stdout only.
 */
export function policyFromFile(file: string | undefined, env: NodeJS.ProcessEnv = process.env): ReportPolicy {
  if (!file) return loadReportPolicy(undefined, env);
  let json: { report?: unknown };
  try {
    json = JSON.parse(readFileSync(file, 'utf8')) as { report?: unknown };
  } catch (err) {
    throw new VrError('CONFIG_INVALID', `${file}: ${(err as Error).message}`);
  }
  return loadReportPolicy(json.report, env);
}

/** The sink named, built from the policy. GitHub is built by its own module and passed in. */
export function makeSink(
  name: SinkName,
  policy: ReportPolicy,
  opts: { out?: NodeJS.WritableStream; github?: { config: GithubSinkConfig | null; db: Db } } = {},
): Sink {
  switch (name) {
    case 'stdout':
      return stdoutSink({ ...(opts.out ? { out: opts.out } : {}), dir: policy.filesDir });
    case 'email':
      if (!policy.email) throw new VrError('CONFIG_INVALID', 'the email sink needs report.email in the configuration');
      return emailSink(policy.email);
    case 'drafts':
      if (!policy.drafts) throw new VrError('CONFIG_INVALID', 'the drafts sink needs report.drafts in the configuration');
      return draftsSink(policy.drafts);
    case 'github':
      if (!opts.github?.config) throw new VrError('CONFIG_INVALID', 'the github sink needs a github section in the configuration and VFIO_REVIEW_GITHUB_TOKEN');
      return new GithubSink(opts.github.config, opts.github.db);
  }
}

/** Series with a recorded check: the relevant ones, or all of them. */
export function checkedSeries(db: Db, opts: { all?: boolean } = {}): number[] {
  return db
    .prepare(
      `SELECT DISTINCT s.id FROM series s JOIN checks c ON c.series_id = s.id
       WHERE (? = 1 OR s.relevant = 1) ORDER BY s.first_date, s.id`,
    )
    .pluck()
    .all(opts.all ? 1 : 0) as number[];
}

export interface SeriesOutcome {
  seriesId: number;
  skipped?: string;
  decided: number;
  updated: number;
  notes: string[];
}

export interface ReportRun {
  series: SeriesOutcome[];
  delivery: DeliverSummary | null;
}

/** A decided-but-not-stored reply as a row, for the dry run's printout. */
function asRow(r: NewReply, id: number): OutboxRow {
  return { ...r, id, revision: 1, state: 'pending', attempts: 0, nextAt: r.decidedAt, lastError: null, remoteId: null, sentAt: null };
}

/**
 * Plans, decides and delivers replies for the given series through one sink. With `dryRun` nothing
 * reaches the outbox or a server: the replies that would be decided are printed as raw messages.
 * (Concern tracking still records the checks: that is the record of what was found, not of sending.)
 */
export async function runReport(
  db: Db,
  opts: { seriesIds: number[]; sink: Sink; policy: ReportPolicy; dryRun?: boolean; out?: NodeJS.WritableStream; now?: () => Date },
): Promise<ReportRun> {
  const now = opts.now ?? (() => new Date());
  const out = opts.out ?? process.stdout;
  const series: SeriesOutcome[] = [];
  for (const id of opts.seriesIds) {
    const plan: PlanResult = planSeries(db, id, opts.sink, opts.policy, now());
    if ('skip' in plan) {
      series.push({ seriesId: id, skipped: plan.skip, decided: 0, updated: 0, notes: [] });
      continue;
    }
    if (opts.dryRun) {
      for (const [i, r] of [...plan.inserts, ...plan.updates].entries()) {
        out.write(`${'='.repeat(72)}\n${(await composeRaw(asRow(r, -1 - i))).toString('utf8').replace(/\r\n/g, '\n')}\n`);
      }
      series.push({ seriesId: id, decided: plan.inserts.length, updated: plan.updates.length, notes: plan.notes });
      continue;
    }
    const d = decide(db, { inserts: plan.inserts, updates: plan.updates, listId: plan.listId, perDay: plan.perDay, now: now() });
    const skipped = d.rateLimited
      ? `rate limit: ${d.rateLimited.used} replies to ${d.rateLimited.listId} in the last 24 h, limit ${d.rateLimited.perDay}`
      : undefined;
    series.push({ seriesId: id, decided: d.inserted, updated: d.updated, notes: plan.notes, ...(skipped ? { skipped } : {}) });
  }
  if (opts.dryRun) return { series, delivery: null };
  await crashPoint('after-decide');
  const delivery = await deliverDue(db, opts.sink, opts.policy.retry, { now });
  return { series, delivery };
}
