import type { Db } from '../store/db.js';
import { Ingestor } from '../ingest/ingest.js';
import { readMbox } from '../ingest/mbox-source.js';

/** Ingests one corpus mbox into `db` (series assembled) and returns its source id. */
export async function ingestMbox(db: Db, mbox: string): Promise<number> {
  const ing = new Ingestor(db, { batch: 1000 });
  const src = ing.sourceId('mbox', mbox);
  await ing.addStream(src, readMbox(mbox));
  ing.finish();
  return src;
}

/**
 * The relevant series holding a message of source `src`, by id; with `msgids`, only the series
 * holding one of those Message-IDs (tests pick a few patches of the corpus this way).
 */
export function seriesOfSource(db: Db, src: number, msgids?: readonly string[]): number[] {
  const ids = db
    .prepare(`SELECT DISTINCT s.id FROM series s JOIN series_patches sp ON sp.series_id = s.id
              JOIN message_sources ms ON ms.message_id = sp.message_id WHERE ms.source_id = ? AND s.relevant = 1 ORDER BY s.id`)
    .pluck()
    .all(src) as number[];
  if (!msgids) return ids;
  const want = new Set(msgids);
  const holds = db.prepare('SELECT m.message_id FROM series_patches sp JOIN messages m ON m.id = sp.message_id WHERE sp.series_id = ?').pluck();
  return ids.filter((id) => (holds.all(id) as (string | null)[]).some((m) => m !== null && want.has(m)));
}
