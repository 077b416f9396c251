import type { Db } from '../store/db.js';

/** The `series --json` shape: one object per series version. Stable: later stages and users read it. */
export interface SeriesView {
  id: number;
  subject: string;
  title: string;
  version: number;
  versionStated: boolean;
  author: string | null;
  cover: string | null;
  patches: (string | null)[];
  total: number;
  complete: boolean;
  missing: number[];
  threading: 'threaded' | 'unthreaded' | 'single';
  rfc: boolean;
  resend: boolean;
  lineage: number | null;
  trailers: { patch: number; name: string; value: string; from: string | null; origin: 'patch' | 'reply' }[];
  baseCommit: string | null;
  changeId: string | null;
  prerequisitePatchIds: string[];
  basedOn: string[];
  relevant: boolean;
  relevantWhy: string | null;
  date: string | null;
}

interface Row {
  id: number; subject: string; title: string; version: number; version_stated: number; author_addr: string | null;
  total: number; complete: number; missing: string; threading: SeriesView['threading']; rfc: number; resend: number;
  lineage_id: number | null; base_commit: string | null; change_id: string | null; prereq_ids: string;
  based_on: string; relevant: number; relevant_why: string | null; first_date: number | null;
}

export function listSeries(db: Db, opts: { all?: boolean; ids?: number[] } = {}): SeriesView[] {
  const where: string[] = [];
  if (!opts.all) where.push('s.relevant = 1');
  if (opts.ids) where.push(`s.id IN (${opts.ids.map(Number).join(',') || 'NULL'})`);
  const rows = db
    .prepare(`SELECT s.* FROM series s ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY s.first_date, s.id`)
    .all() as Row[];
  const patchesOf = db.prepare(
    `SELECT sp.counter, m.message_id, m.ident FROM series_patches sp JOIN messages m ON m.id = sp.message_id
     WHERE sp.series_id = ? ORDER BY sp.counter`,
  );
  const trailersOf = db.prepare(
    `SELECT t.counter, t.name, t.value, t.origin, m.message_id FROM trailers t JOIN messages m ON m.id = t.source_msg
     WHERE t.series_id = ? ORDER BY t.counter, t.id`,
  );
  return rows.map((r) => {
    const ps = patchesOf.all(r.id) as { counter: number; message_id: string | null; ident: string }[];
    const patches: (string | null)[] = new Array<string | null>(r.total).fill(null);
    let cover: string | null = null;
    for (const p of ps) {
      const id = p.message_id ?? p.ident;
      if (p.counter === 0) cover = id;
      else patches[p.counter - 1] = id;
    }
    return {
      id: r.id,
      subject: r.subject,
      title: r.title,
      version: r.version,
      versionStated: r.version_stated === 1,
      author: r.author_addr,
      cover,
      patches,
      total: r.total,
      complete: r.complete === 1,
      missing: JSON.parse(r.missing) as number[],
      threading: r.threading,
      rfc: r.rfc === 1,
      resend: r.resend === 1,
      lineage: r.lineage_id,
      trailers: (trailersOf.all(r.id) as { counter: number; name: string; value: string; origin: 'patch' | 'reply'; message_id: string | null }[]).map(
        (t) => ({ patch: t.counter, name: t.name, value: t.value, from: t.message_id, origin: t.origin }),
      ),
      baseCommit: r.base_commit,
      changeId: r.change_id,
      prerequisitePatchIds: JSON.parse(r.prereq_ids) as string[],
      basedOn: JSON.parse(r.based_on) as string[],
      relevant: r.relevant === 1,
      relevantWhy: r.relevant_why,
      date: r.first_date ? new Date(r.first_date * 1000).toISOString() : null,
    };
  });
}

/** Which series (and counter) a message belongs to. */
export function seriesOfMessage(db: Db, messageRowId: number): { seriesId: number; counter: number } | null {
  const r = db.prepare('SELECT series_id, counter FROM series_patches WHERE message_id = ?').get(messageRowId) as
    | { series_id: number; counter: number }
    | undefined;
  return r ? { seriesId: r.series_id, counter: r.counter } : null;
}
