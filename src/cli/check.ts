import { resolve } from 'node:path';
import { parseCli } from './args.js';
import { Progress } from './progress.js';
import { openDb } from '../store/db.js';
import { Ingestor } from '../ingest/ingest.js';
import { readMbox } from '../ingest/mbox-source.js';
import { loadConfig } from '../config/load.js';
import { checkSeries, type CheckReport } from '../check/check.js';
import { VrError } from '../errors.js';

/** One line a maintainer can read per series version. */
export function describe(r: CheckReport): string {
  const base = r.apply.base ? `${r.apply.base.ref} (${r.apply.base.commit.slice(0, 12)})` : 'no base';
  const tried = r.apply.attempts.map((a) => `${a.ref}: ${a.result}`).join(', ');
  return `[${r.apply.status}] v${r.series.version} ${r.series.subject}\n    base ${base}; tried ${tried || 'nothing'}; ${r.apply.label}` +
    (r.apply.failedPatch ? `\n    first failing patch ${r.apply.failedPatch}: ${r.apply.detail ?? ''}` : '');
}

/**
 * `vfio-review check --mbox FILE --tree DIR`: ingests the file, applies every
 * relevant series version in it (incomplete ones too), records each check,
 * posts nothing. `--json` prints one array, one element per series version.
 */
export async function run(argv: string[]): Promise<number> {
  const { values } = parseCli(argv, { mbox: { type: 'string' }, tree: { type: 'string' }, config: { type: 'string' } });
  if (!values.mbox) throw new VrError('USAGE', 'usage: vfio-review check --mbox FILE --tree DIR [--db PATH] [--json]');
  const config = loadConfig({ file: values.config });
  const tree = values.tree ?? config.apply.tree;
  if (!tree) throw new VrError('USAGE', 'give --tree DIR (a kernel git tree) or apply.tree in the configuration');
  const db = openDb(values.db ?? config.db);
  try {
    const ing = new Ingestor(db, { batch: 1000, relevance: config.relevance });
    const src = ing.sourceId('mbox', resolve(values.mbox));
    await ing.addStream(src, readMbox(values.mbox));
    ing.finish();
    const ids = db
      .prepare(
        `SELECT DISTINCT s.id FROM series s JOIN series_patches sp ON sp.series_id = s.id
         JOIN message_sources ms ON ms.message_id = sp.message_id
         WHERE ms.source_id = ? AND s.relevant = 1 ORDER BY s.first_date, s.id`,
      )
      .pluck()
      .all(src) as number[];
    const progress = new Progress('check');
    const reports: CheckReport[] = [];
    for (const id of ids) {
      reports.push(await checkSeries(db, id, { tree: resolve(tree), baseMap: config.apply.baseMap, trigger: 'check' }));
      progress.tick(reports.length, ids.length);
    }
    progress.done();
    if (values.json) process.stdout.write(JSON.stringify(reports, null, 1) + '\n');
    else for (const r of reports) process.stdout.write(describe(r) + '\n');
    return 0;
  } finally {
    db.close();
  }
}
