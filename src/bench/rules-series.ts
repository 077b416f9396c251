/**
 * The series half of `bench rules`: the time `checkSeries` takes on one real series from the
 * corpus (apply + every rule, then the same with checkpatch.pl), median of a few runs.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { checkSeries, type CheckReport } from '../check/check.js';
import { seriesApplyInputs } from '../check/inputs.js';
import { Ingestor } from '../ingest/ingest.js';
import { readMbox } from '../ingest/mbox-source.js';
import { listSeries } from '../series/query.js';
import { openDb } from '../store/db.js';

/** The corpus file the series comes from: patch mails that apply to 6.1.192. */
export const SERIES_MBOX = 'patches-applying-6.1.192.mbox.gz';
/** The series size the target is stated for. */
export const SERIES_PATCHES = 10;

/** What {@link timeSeries} measured, or why it could not. */
export type SeriesTiming =
  | { skipped: string }
  | {
      id: number;
      subject: string;
      /** Patches present (with a diff) out of the series' stated total. */
      patches: number;
      total: number;
      status: CheckReport['apply']['status'];
      findings: number;
      checkpatchFindings: number;
      /** Seconds per run, in run order (the two kinds alternate); the first rules run is the only cold one. */
      rulesRuns: number[];
      checkpatchRuns: number[];
      ingestSeconds: number;
    };

/** The median of a non-empty list. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Ingests the corpus mbox into a fresh store in `dir`, picks the series whose present patches
 * come closest to {@link SERIES_PATCHES} without exceeding it (ties: the most C files touched,
 * then the oldest), and checks it `runs` times without and `runs` times with checkpatch.pl.
 */
export async function timeSeries(corpus: string, tree: string, dir: string, runs: number, log: (l: string) => void): Promise<SeriesTiming> {
  const mbox = join(corpus, SERIES_MBOX);
  if (!existsSync(mbox)) return { skipped: `no corpus file ${mbox}` };
  const db = openDb(join(dir, 'series.db'));
  try {
    const t0 = performance.now();
    const ing = new Ingestor(db, { batch: 1000 });
    await ing.addStream(ing.sourceId('mbox', resolve(mbox)), readMbox(mbox));
    ing.finish();
    const ingestSeconds = (performance.now() - t0) / 1000;
    let best: { id: number; present: number; cFiles: number; total: number; subject: string } | null = null;
    for (const s of listSeries(db, { all: true })) {
      const present = seriesApplyInputs(db, s.id).patches.filter((p) => p !== null);
      if (present.length === 0 || present.length > SERIES_PATCHES) continue;
      const cFiles = present.reduce((n, p) => n + (p.diff.match(/^\+\+\+ b\/\S+\.[ch]$/gm)?.length ?? 0), 0);
      const better = !best || present.length > best.present || (present.length === best.present && cFiles > best.cFiles);
      if (better) best = { id: s.id, present: present.length, cFiles, total: s.total, subject: s.subject };
    }
    if (!best) return { skipped: `no series with patches in ${mbox}` };
    log(`series ${best.id} (${best.present} of ${best.total} patches): ${runs} runs without, ${runs} with checkpatch.pl`);
    const baseMap = { rules: [], default: 'HEAD' };
    const once = async (checkpatch: boolean): Promise<{ s: number; report: CheckReport }> => {
      // `sim: false`: the simulator hook check.ts may run is timed by `bench sim`, not here. A variable,
      // not a literal, so this compiles whether or not CheckOptions has that field.
      const opts = { tree, baseMap, trigger: 'check' as const, checkpatch, sim: false };
      const t = performance.now();
      const report = await checkSeries(db, best.id, opts);
      return { s: (performance.now() - t) / 1000, report };
    };
    const rulesRuns: number[] = [];
    const checkpatchRuns: number[] = [];
    let last: CheckReport | null = null;
    let withCp: CheckReport | null = null;
    // Interleaved, so that warming caches (parse cache, base reader, page cache) and the load of
    // other processes fall on both figures alike; only the very first run is cold.
    for (let i = 0; i < runs; i++) {
      const r = await once(false);
      rulesRuns.push(r.s);
      last = r.report;
      const c = await once(true);
      checkpatchRuns.push(c.s);
      withCp = c.report;
    }
    const cp = withCp!.findings.filter((f) => f.rule.startsWith('checkpatch/')).length;
    return {
      id: best.id, subject: best.subject, patches: best.present, total: best.total, status: last!.apply.status,
      findings: last!.findings.length, checkpatchFindings: cp, rulesRuns, checkpatchRuns, ingestSeconds,
    };
  } finally {
    db.close();
  }
}
