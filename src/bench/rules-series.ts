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
import { openDb, type Db } from '../store/db.js';

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
      /** A 10-patch series assembled from real corpus patches (see {@link assembleSeries}), checked warm; or why not. */
      assembled: SeriesRun | { skipped: string };
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
    log(`a ${SERIES_PATCHES}-patch series assembled from real patches, warm`);
    const assembled = await assembleSeries(db, candidates.map((c) => c.id).filter((id) => id !== candidates[0]!.id && !warm.some((w) => w.id === id)));
    let assembledRun: SeriesRun | { skipped: string };
    if ('skipped' in assembled) {
      assembledRun = assembled;
    } else {
      const c = { id: assembled.id, present: SERIES_PATCHES, cFiles: 0, total: SERIES_PATCHES, subject: assembled.subject };
      // The whole check as a worker runs it on a kernel tree: apply, our rules and checkpatch.pl.
      const r = await once(c, true);
      assembledRun = r.status === 'applied' ? r : { skipped: `the assembled series did not apply cleanly (${r.status})` };
    }
    return { cold, warmUp: warmUpDone, warm, assembled: assembledRun, ingestSeconds };
  } finally {
    db.close();
  }
}

/**
 * A real-sized series for the target: the first patch of each of the given series (in order) that
 * touches C files under drivers/vfio, drivers/iommu or include/ and none of the files of a patch
 * already taken, until there are {@link SERIES_PATCHES}. Each first patch applied to the base on
 * its own, and they touch different files, so together they apply in any order. Their stored raw
 * mails are re-threaded as `[PATCH k/10]` replies to a new cover letter and ingested. None of the
 * series checked before in this run is used, so its files are new to the process as a new
 * series' would be. Returns the new series' id.
 */
export async function assembleSeries(db: Db, from: number[]): Promise<{ id: number; subject: string } | { skipped: string }> {
  const picked: Buffer[] = [];
  const files = new Set<string>();
  for (const id of from) {
    if (picked.length === SERIES_PATCHES) break;
    const row = db.prepare(
      `SELECT r.bytes, m.touched_paths FROM series_patches sp JOIN messages m ON m.id = sp.message_id JOIN raw_messages r ON r.id = m.raw_id
       WHERE sp.series_id = ? AND sp.counter > 0 AND m.diff IS NOT NULL AND m.diff != '' ORDER BY sp.counter LIMIT 1`,
    ).get(id) as { bytes: Buffer; touched_paths: string } | undefined;
    if (!row) continue;
    const paths = JSON.parse(row.touched_paths) as string[];
    if (!paths.some((p) => /\.c$/.test(p)) || !paths.every((p) => /^(?:drivers\/(?:vfio|iommu)|include)\//.test(p)) || paths.some((p) => files.has(p))) continue;
    for (const p of paths) files.add(p);
    picked.push(row.bytes);
  }
  if (picked.length < SERIES_PATCHES) return { skipped: `only ${picked.length} first patches with distinct files` };
  const cover = '<bench-assembled-0@vfio-review.invalid>';
  const subject = `[PATCH 0/${SERIES_PATCHES}] bench: ${SERIES_PATCHES} real patches to different files`;
  const mails = [
    Buffer.from(`From: Bench <bench@vfio-review.invalid>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nSubject: ${subject}\nMessage-ID: ${cover}\n\nAssembled by bench rules.\n`),
    ...picked.map((raw, i) => rethread(raw, i + 1, cover)),
  ];
  const ing = new Ingestor(db, { batch: 100 });
  await ing.addStream(ing.sourceId('manual', 'bench-assembled'), (async function* () {
    for (const [i, bytes] of mails.entries()) yield { bytes, locator: `assembled-${i}` };
  })());
  ing.finish();
  const series = listSeries(db, { all: true }).find((s) => s.patches.includes('bench-assembled-1@vfio-review.invalid'));
  if (series && series.patches.filter(Boolean).length !== SERIES_PATCHES) return { skipped: `the assembled mails formed a series of ${series.patches.filter(Boolean).length} patches` };
  return series ? { id: series.id, subject } : { skipped: 'the assembled mails did not form one series' };
}

/**
 * A raw patch mail as patch `k` of the assembled series: one sender and date like a real series
 * (the series builder groups by them), new Subject prefix, Message-ID and In-Reply-To; the body as sent.
 */
function rethread(raw: Buffer, k: number, cover: string): Buffer {
  const text = raw.toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const head = text.slice(0, end).replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/);
  const subject = head.find((l) => /^subject:/i.test(l))?.replace(/^subject:\s*/i, '').replace(/^(?:\[[^\]]*\]\s*)+/, '') ?? 'patch';
  const kept = head.filter((l) => !/^(?:subject|message-id|in-reply-to|references|from|date|sender|reply-to):/i.test(l));
  const added = [
    'From: Bench <bench@vfio-review.invalid>', `Date: Mon, 1 Jan 2024 00:00:${String(k).padStart(2, '0')} +0000`,
    `Subject: [PATCH ${k}/${SERIES_PATCHES}] ${subject}`, `Message-ID: <bench-assembled-${k}@vfio-review.invalid>`, `In-Reply-To: ${cover}`, `References: ${cover}`,
  ];
  return Buffer.from([...kept, ...added].join('\n') + text.slice(end), 'latin1');
}
