import { fileURLToPath } from 'node:url';
import { parseCli } from './args.js';
import { openDb, DEFAULT_DB_PATH } from '../store/db.js';
import { Ingestor } from '../ingest/ingest.js';
import { readMbox } from '../ingest/mbox-source.js';
import { listSeries } from '../series/query.js';

const EXAMPLE = fileURLToPath(new URL('../../examples/demo-series.mbox', import.meta.url));

/**
 * `npm start`: runs the pipeline that exists so far on the bundled example
 * (a hand-written series and a review reply) into the default SQLite file,
 * and prints what vfio-review understood.
 */
export async function run(argv: string[]): Promise<number> {
  const { values } = parseCli(argv, { mbox: { type: 'string' } });
  const file = values.mbox ?? EXAMPLE;
  const dbPath = values.db ?? DEFAULT_DB_PATH;
  const db = openDb(dbPath);
  try {
    const ing = new Ingestor(db, { batch: 100 });
    const src = ing.sourceId('mbox', file);
    for await (const m of readMbox(file)) await ing.add(src, m.bytes, m.locator);
    const sum = ing.finish();
    process.stdout.write(`vfio-review demo: ingested ${sum.seen} messages from ${file} into ${dbPath}\n\n`);
    for (const s of listSeries(db)) {
      process.stdout.write(`series ${s.id}: ${s.subject}\n`);
      process.stdout.write(`  version ${s.version}${s.versionStated ? '' : ' (inferred)'}, ${s.total} patches, ${s.complete ? 'complete' : `missing ${s.missing.join(', ')}`}, ${s.relevantWhy ?? 'not relevant'}\n`);
      if (s.baseCommit) process.stdout.write(`  base-commit ${s.baseCommit}\n`);
      for (const t of s.trailers) process.stdout.write(`  patch ${t.patch}: ${t.name}: ${t.value} (${t.origin})\n`);
    }
    process.stdout.write(`\nNext: vfio-review series --json --db ${dbPath}; vfio-review show <message-id> --db ${dbPath}\n`);
    return 0;
  } finally {
    db.close();
  }
}
