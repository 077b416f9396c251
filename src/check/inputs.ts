import type { Db } from '../store/db.js';
import type { PatchInput } from '../apply/types.js';
import type { CandidateInput } from '../apply/base.js';

interface PatchRow {
  counter: number; message_id: string | null; ident: string; subject: string | null; title: string | null;
  from_name: string | null; from_addr: string | null; author_name: string | null; author_addr: string | null;
  date_unix: number | null; commit_msg: string | null; diff: string | null; list_ids: string; prefixes: string;
  touched_paths: string; based_on: string;
}

/** The apply engine's view of one series version: its patches 1..N (null = missing) and base hints. */
export function seriesApplyInputs(db: Db, seriesId: number): { patches: (PatchInput | null)[]; candidates: CandidateInput } {
  const s = db.prepare('SELECT total, base_commit, based_on FROM series WHERE id = ?').get(seriesId) as
    | { total: number; base_commit: string | null; based_on: string }
    | undefined;
  if (!s) throw new Error(`no series ${seriesId}`);
  const rows = db
    .prepare(
      `SELECT sp.counter, m.message_id, m.ident, m.subject, m.title, m.from_name, m.from_addr, m.author_name,
              m.author_addr, m.date_unix, m.commit_msg, m.diff, m.list_ids, m.prefixes, m.touched_paths, m.based_on
       FROM series_patches sp JOIN messages m ON m.id = sp.message_id WHERE sp.series_id = ? ORDER BY sp.counter`,
    )
    .all(seriesId) as PatchRow[];
  const patches: (PatchInput | null)[] = new Array<PatchInput | null>(s.total).fill(null);
  const lists = new Set<string>();
  const prefixes = new Set<string>();
  const paths = new Set<string>();
  for (const r of rows) {
    for (const l of JSON.parse(r.list_ids) as string[]) lists.add(l);
    for (const p of JSON.parse(r.prefixes) as string[]) prefixes.add(p);
    // "vfio/pci: foo" says vfio/pci as much as a bracket prefix does.
    const subsys = /^(?<s>[\w./,-]+):\s/.exec(r.title ?? '')?.groups?.s;
    if (subsys) prefixes.add(subsys);
    if (r.counter === 0 || !r.diff) continue;
    for (const p of JSON.parse(r.touched_paths) as string[]) paths.add(p);
    patches[r.counter - 1] = {
      msgid: r.message_id ?? r.ident,
      subject: r.subject ?? '',
      // git am takes the in-body From: as the author when the mail has one.
      authorName: r.author_name ?? r.from_name ?? r.author_addr ?? r.from_addr ?? 'unknown',
      authorEmail: r.author_addr ?? r.from_addr ?? 'unknown@invalid',
      date: new Date((r.date_unix ?? 0) * 1000),
      message: `${r.title ?? r.subject ?? ''}\n\n${r.commit_msg ?? ''}`.trimEnd() + '\n',
      diff: r.diff,
    };
  }
  return {
    patches,
    candidates: {
      baseCommit: s.base_commit,
      hints: (JSON.parse(s.based_on) as string[]).map((h) => h.trim()),
      list: [...lists][0] ?? null,
      prefixes: [...prefixes],
      touchedPaths: [...paths],
    },
  };
}
