import { parseCli } from './args.js';
import { loadConfig } from '../config/load.js';
import { openDb } from '../store/db.js';
import { readStatus, type DaemonStatus } from '../daemon/health.js';

function text(s: DaemonStatus): string {
  const lines: string[] = [];
  const d = s.daemon;
  lines.push(d.running ? `daemon: running, pid ${d.pid} on ${d.host}, since ${d.startedAt}, heartbeat ${d.heartbeatAt}` : `daemon: not running${d.lastStoppedAt ? ` (last stopped ${d.lastStoppedAt}: ${d.lastStopReason})` : ''}`);
  lines.push(`queue: ${s.queue.queued} queued, ${s.queue.running} running, ${s.queue.done} done, ${s.queue.failed} failed`);
  for (const f of s.failedJobs) lines.push(`  failed job ${f.id} (${f.kind}, series ${f.seriesId}, ${f.attempts} attempts): ${f.error ?? ''}`);
  for (const src of s.sources) {
    lines.push(`source ${src.name}: last ingest ${src.lastIngestAt ?? 'never'}, last ok ${src.lastOkAt ?? 'never'}${src.lastError ? `, last error ${src.lastErrorAt}: ${src.lastError}` : ''}`);
  }
  for (const k of s.sinks) {
    const o = k.outbox;
    lines.push(`sink ${k.name}: ${o.sent} sent, ${o.pending} pending, ${o.sending} in doubt, ${o.failed} failed${k.lastError ? `; last error ${k.lastErrorAt}: ${k.lastError}` : ''}`);
  }
  return lines.join('\n');
}

/** `vfio-review status [--json]`: the daemon's heartbeat, queue depth by state, last ingest and last errors. */
export async function run(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values } = parseCli(argv, { config: { type: 'string' } });
  // With --db the configuration is not needed, so status works from a shell without the daemon's secrets.
  const db = openDb(values.db ?? loadConfig({ file: values.config, env }).db);
  try {
    const s = readStatus(db);
    process.stdout.write((values.json ? JSON.stringify(s, null, 1) : text(s)) + '\n');
    return 0;
  } finally {
    db.close();
  }
}
