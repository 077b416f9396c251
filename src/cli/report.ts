import { parseCli } from './args.js';
import { openDb } from '../store/db.js';
import { loadConfig } from '../config/load.js';
import { VrError } from '../errors.js';
import { checkedSeries, makeSink, policyFromFile, runReport } from '../report/report.js';
import { parseGithubConfig, type GithubSinkConfig } from '../report/sinks/github.js';
import { readFileSync } from 'node:fs';

/** The `github` section of the configuration file, when there is one. */
function githubConfigFromFile(file: string | undefined): GithubSinkConfig | null {
  if (!file) return null;
  try {
    return parseGithubConfig((JSON.parse(readFileSync(file, 'utf8')) as { github?: unknown }).github);
  } catch (err) {
    if (err instanceof VrError) throw err;
    throw new VrError('CONFIG_INVALID', `${file}: ${(err as Error).message}`);
  }
}
import { SINK_NAMES, type SinkName } from '../report/types.js';

const USAGE =
  'usage: vfio-review report [--series ID ... | --all] [--sink stdout|email|drafts|github] [--dry-run] [--db PATH] [--config FILE] [--json]';

/**
 * `vfio-review report`: renders replies for checked series into the outbox and delivers what is due
 * (earlier retries included). Without --series: every relevant checked series; --all adds the rest.
 * Replies already decided are not decided again, so running it twice sends once.
 */
export async function run(argv: string[]): Promise<number> {
  const { values } = parseCli(argv, {
    series: { type: 'string', multiple: true },
    all: { type: 'boolean' },
    sink: { type: 'string' },
    'dry-run': { type: 'boolean' },
    config: { type: 'string' },
  });
  if (values.series && values.all) throw new VrError('USAGE', `give --series or --all, not both\n${USAGE}`);
  const config = loadConfig({ file: values.config });
  const policy = policyFromFile(values.config);
  const sinkName = (values.sink ?? policy.defaultSink) as SinkName;
  if (!SINK_NAMES.includes(sinkName)) throw new VrError('USAGE', `unknown sink '${sinkName}'\n${USAGE}`);
  const ids = values.series?.map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n <= 0) throw new VrError('USAGE', `--series takes a series id, not '${s}'`);
    return n;
  });
  const db = openDb(values.db ?? config.db);
  const sink = makeSink(sinkName, policy, { github: { config: githubConfigFromFile(values.config), db } });
  try {
    const r = await runReport(db, { seriesIds: ids ?? checkedSeries(db, { all: values.all ?? false }), sink, policy, dryRun: values['dry-run'] ?? false });
    if (values.json) {
      process.stdout.write(JSON.stringify(r, null, 1) + '\n');
    } else {
      const err = process.stderr;
      for (const s of r.series) {
        const what = s.skipped ? `skipped: ${s.skipped}` : `${s.decided} repl${s.decided === 1 ? 'y' : 'ies'} decided, ${s.updated} updated`;
        err.write(`series ${s.seriesId}: ${what}\n`);
        for (const n of s.notes) err.write(`    ${n}\n`);
      }
      const d = r.delivery;
      if (d) err.write(`${sinkName}: sent ${d.sent}, already there ${d.alreadyThere}, retrying ${d.retrying}, waiting ${d.waiting}, failed ${d.failed}\n`);
    }
    return r.delivery && r.delivery.failed > 0 ? 1 : 0;
  } finally {
    await sink.close?.();
    db.close();
  }
}
