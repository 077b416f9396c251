/**
 * The series half of `bench rules`: how long `checkSeries` (apply + every rule) takes on real
 * corpus series, the way the daemon meets them.
 *
 * 1. Cold: the largest series, as the first check of this process (nothing parsed, nothing cached).
 * 2. The warm-up a daemon worker does before and between checks (src/daemon/warm.ts): the
 *    `warmPaths`, then every .c file under `warmDirs`, at the tree's HEAD.
 * 3. Warm: the next largest series, each checked once, each new to the process: their own changed
 *    files are parsed and summarised, the rest comes from the warm caches. Then each again with
 *    checkpatch.pl and again without, whose difference is checkpatch.pl's share.
 *
 * The target is judged on the warm figure per patch, times 10: the corpus has no applying series
 * of 10 patches. The simulator hook is off here; `bench sim` times it.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { checkSeries, type CheckReport } from '../check/check.js';
import { seriesApplyInputs } from '../check/inputs.js';
import { DEFAULT_WARM_DIRS, DEFAULT_WARM_PATHS } from '../config/daemon.js';
import { warmDirectories, warmUp } from '../daemon/warm.js';
import { Ingestor } from '../ingest/ingest.js';
import { readMbox } from '../ingest/mbox-source.js';
import { listSeries } from '../series/query.js';
import { openDb } from '../store/db.js';

/** The corpus file the series come from: patch mails that apply to 6.1.192. */
export const SERIES_MBOX = 'patches-applying-6.1.192.mbox.gz';
/** The series size the target is stated for. */
export const SERIES_PATCHES = 10;

/** One timed check. */
export interface SeriesRun {
  id: number;
  subject: string;
  /** Patches present (with a diff) out of the series' stated total. */
  patches: number;
  total: number;
  status: CheckReport['apply']['status'];
  findings: number;
  seconds: number;
  /** checkpatch.pl's share: a check with it minus one without, both after the timed one. */
  checkpatchSeconds?: number;
}

/** What {@link timeSeries} measured, or why it could not. */
export type SeriesTiming =
  | { skipped: string }
  | {
      cold: SeriesRun;
      warmUp: { files: number; seconds: number; heapMb: number; dirs: readonly string[] };
      warm: SeriesRun[];
      ingestSeconds: number;
    };

/** The median of a non-empty list. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Ingests the corpus mbox into a fresh store in `dir`, orders its series by present patches (at
 * most {@link SERIES_PATCHES}), then C files touched, then age, and times the largest cold and the
 * next `count` warm (see the module comment).
 */
export async function timeSeries(corpus: string, tree: string, dir: string, count: number, log: (l: string) => void): Promise<SeriesTiming> {
  const mbox = join(corpus, SERIES_MBOX);
  if (!existsSync(mbox)) return { skipped: `no corpus file ${mbox}` };
  const db = openDb(join(dir, 'series.db'));
  try {
    const t0 = performance.now();
    const ing = new Ingestor(db, { batch: 1000 });
    await ing.addStream(ing.sourceId('mbox', resolve(mbox)), readMbox(mbox));
    ing.finish();
    const ingestSeconds = (performance.now() - t0) / 1000;
    const candidates: { id: number; present: number; cFiles: number; total: number; subject: string }[] = [];
    for (const s of listSeries(db, { all: true })) {
      const present = seriesApplyInputs(db, s.id).patches.filter((p) => p !== null);
      if (present.length === 0 || present.length > SERIES_PATCHES) continue;
      const cFiles = present.reduce((n, p) => n + (p.diff.match(/^\+\+\+ b\/\S+\.[ch]$/gm)?.length ?? 0), 0);
      if (cFiles > 0) candidates.push({ id: s.id, present: present.length, cFiles, total: s.total, subject: s.subject });
    }
    candidates.sort((a, b) => b.present - a.present || b.cFiles - a.cFiles || a.id - b.id);
    if (candidates.length < 2) return { skipped: `fewer than two series touching C files in ${mbox}` };
    const baseMap = { rules: [], default: 'HEAD' };
    const once = async (c: (typeof candidates)[number], checkpatch: boolean): Promise<SeriesRun> => {
      const t = performance.now();
      const report = await checkSeries(db, c.id, { tree, baseMap, trigger: 'check', checkpatch, sim: false });
      return {
        id: c.id, subject: c.subject, patches: c.present, total: c.total, status: report.apply.status,
        findings: report.findings.length, seconds: (performance.now() - t) / 1000,
      };
    };

    log(`series ${candidates[0]!.id} cold (the process's first check)`);
    const cold = await once(candidates[0]!, false);

    log(`warm-up as a daemon worker: ${DEFAULT_WARM_PATHS.join(', ')}, then every .c under ${DEFAULT_WARM_DIRS.join(', ')}`);
    const tw = performance.now();
    const w = { tree, ref: 'HEAD', paths: DEFAULT_WARM_PATHS, dirs: DEFAULT_WARM_DIRS };
    await warmUp(w);
    const files = await warmDirectories(w, () => Promise.resolve());
    const warmUpDone = { files, seconds: (performance.now() - tw) / 1000, heapMb: process.memoryUsage().heapUsed / 2 ** 20, dirs: DEFAULT_WARM_DIRS };

    const warm: SeriesRun[] = [];
    for (const c of candidates.slice(1, 1 + count)) {
      log(`series ${c.id} warm (${c.present} patches)`);
      const r = await once(c, false);
      const withCp = await once(c, true);
      const without = await once(c, false);
      warm.push({ ...r, checkpatchSeconds: Math.max(0, withCp.seconds - without.seconds) });
    }
    return { cold, warmUp: warmUpDone, warm, ingestSeconds };
  } finally {
    db.close();
  }
}
