import type { Db } from '../store/db.js';
import type { GithubConfig } from '../config/load.js';
import { pollGithubCommands } from '../report/github-commands.js';
import { GithubSink } from '../report/sinks/github.js';
import type { Sink } from '../report/types.js';
import { recordHealth } from './health.js';
import type { JobStore } from './jobs.js';
import type { Logger } from './log.js';

/**
 * One poll of the tracking issues' `/rerun` and `/dismiss` comments (src/report/github-commands.ts).
 * A `/rerun` becomes a rerun job keyed by the command, so a poll resumed after a crash does not
 * queue it twice. The daemon's own GitHub sink is shared, so both go through one rate-limit gate.
 */
export async function pollGithub(db: Db, jobs: JobStore, config: GithubConfig, sinks: readonly Sink[], log: Logger): Promise<void> {
  const sink = sinks.find((s): s is GithubSink => s instanceof GithubSink);
  const r = await pollGithubCommands(db, {
    config,
    dismissLabels: config.dismissLabels,
    ...(sink ? { sink } : {}),
    rerun: (req) => {
      const jobId = jobs.enqueue({ kind: 'rerun', seriesId: req.seriesId, dedupKey: req.key, reason: `rerun asked by ${req.by} on GitHub` });
      log.info({ jobId, seriesId: req.seriesId, by: req.by, url: req.url }, 'github rerun queued');
    },
  });
  recordHealth(db, 'source', `github:${r.repo}`, { ok: true, ...(r.applied.length ? { ingested: true } : {}) });
  if (r.applied.length || r.ackFailures.length) {
    log.info({ repo: r.repo, applied: r.applied.length, acked: r.acked, ackFailures: r.ackFailures }, 'github commands polled');
  }
}
