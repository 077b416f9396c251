import { parseCli } from './args.js';
import { openDb } from '../store/db.js';
import { listSeries } from '../series/query.js';

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCli(argv, { all: { type: 'boolean' } });
  const db = openDb(values.db);
  try {
    const list = listSeries(db, { all: values.all ?? false });
    if (values.json) {
      process.stdout.write(JSON.stringify(list, null, 1) + '\n');
      return 0;
    }
    for (const s of list) {
      const have = s.patches.filter(Boolean).length;
      const state = s.complete ? 'complete' : `incomplete, missing ${s.missing.join(',')}`;
      process.stdout.write(`${String(s.id).padStart(6)}  v${s.version}${s.versionStated ? '' : '?'} ${have}/${s.total} ${state}  ${s.subject}\n`);
    }
    return 0;
  } finally {
    db.close();
  }
}
