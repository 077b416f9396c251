import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { applySeries } from '../apply/apply.js';
import { git, gitOk, type GitOptions } from '../apply/git.js';
import type { ApplyResult, PatchInput } from '../apply/types.js';
import { seriesApplyInputs } from '../check/inputs.js';
import { Ingestor } from '../ingest/ingest.js';
import { readMbox } from '../ingest/mbox-source.js';
import { openDb, type Db } from '../store/db.js';
import { table } from './measure.js';

/** Options for {@link benchApply}. */
export interface BenchApplyOptions {
  /** The kernel git tree to apply to (its HEAD is the base both ways). */
  tree: string;
  /** Apply only the first N series (both ways); default all. */
  limit?: number;
  /**
   * Series the worktree + `git am` way runs on, spread evenly over the list; default 10. A kernel
   * worktree (78k files) takes ~30 s to check out on a busy 2-core machine, so all 320 series would take hours.
   */
  sample?: number;
  /** Progress lines; default: none. */
  log?: (line: string) => void;
}

interface Series {
  id: number;
  patches: (PatchInput | null)[];
  /** The raw bytes of the present patch mails, in order, for `git am`. */
  raw: Buffer[];
  count: number;
}

interface Timed {
  ms: number;
  tree: string | null;
}

const BASE = [{ ref: 'HEAD', why: 'default' as const }];
const COMMITTER = { GIT_COMMITTER_NAME: 'bench', GIT_COMMITTER_EMAIL: 'bench@localhost' };

/** Ingests `mbox` into a fresh store in `dir` and returns its series the way `check` sees them. */
async function loadSeries(mbox: string, dir: string): Promise<{ series: Series[]; mails: number }> {
  const db: Db = openDb(join(dir, 'bench.db'));
  try {
    const ing = new Ingestor(db, { batch: 1000 });
    await ing.addStream(ing.sourceId('mbox', resolve(mbox)), readMbox(mbox));
    const summary = ing.finish();
    const ids = db.prepare('SELECT id FROM series ORDER BY first_date, id').pluck().all() as number[];
    // The same rows seriesApplyInputs keeps: patches (counter > 0) with a diff.
    const raws = db.prepare(
      `SELECT r.bytes FROM series_patches sp JOIN messages m ON m.id = sp.message_id JOIN raw_messages r ON r.id = m.raw_id
       WHERE sp.series_id = ? AND sp.counter > 0 AND m.diff IS NOT NULL AND m.diff != '' ORDER BY sp.counter`,
    ).pluck();
    const series: Series[] = [];
    for (const id of ids) {
      const { patches } = seriesApplyInputs(db, id);
      const count = patches.filter((p) => p !== null).length;
      if (count > 0) series.push({ id, patches, raw: raws.all(id) as Buffer[], count });
    }
    return { series, mails: summary.seen };
  } finally {
    db.close();
  }
}

/** mboxrd, as `git am --patch-format=mboxrd` reads it: `>*From ` body lines get one more `>`. */
function mboxrd(mails: Buffer[]): Buffer {
  return Buffer.concat(
    mails.map((m) => {
      const body = m.toString('latin1').replace(/^(>*From )/gm, '>$1');
      return Buffer.from(`From mboxrd@z Thu Jan  1 00:00:00 1970\n${body}${body.endsWith('\n') ? '' : '\n'}\n`, 'latin1');
    }),
  );
}

/** The usual way: a fresh worktree of HEAD, `git am` of the series, the worktree removed. */
async function worktreeAm(s: Series, n: number, gitDir: string, dir: string): Promise<Timed & { ok: boolean; parts: number[] }> {
  const wt = join(dir, `wt-${n}`);
  const mbox = join(dir, `series-${n}.mbox`);
  await writeFile(mbox, mboxrd(s.raw));
  const repo: GitOptions = { gitDir, cwd: dir, home: dir };
  const inWt: GitOptions = { cwd: wt, home: dir, env: COMMITTER };
  const t0 = performance.now();
  await gitOk(['worktree', 'add', '--detach', '--quiet', wt, 'HEAD'], { ...repo, timeoutMs: 600_000 });
  try {
    const t1 = performance.now();
    const am = await git(['am', '--quiet', '--patch-format=mboxrd', mbox], inWt);
    if (am.code !== 0) await git(['am', '--abort'], inWt);
    const t2 = performance.now();
    // The rev-parse for the cross-check is not part of the usual way; it is left out of the time.
    const tree = am.code === 0 ? await gitOk(['rev-parse', 'HEAD^{tree}'], inWt) : null;
    const t3 = performance.now();
    await gitOk(['worktree', 'remove', '--force', wt], { ...repo, timeoutMs: 600_000 });
    const t4 = performance.now();
    return { ms: t4 - t0 - (t3 - t2), tree, ok: am.code === 0, parts: [t1 - t0, t2 - t1, t4 - t3] };
  } finally {
    // After a failure above: the worktree must not stay registered in the user's repository.
    if (existsSync(wt)) await git(['worktree', 'remove', '--force', wt], repo);
  }
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

/**
 * `bench apply`: every series of `mbox` (grouped as the project groups it: ingested into a
 * temporary store, then `seriesApplyInputs` per series) applied to `tree`'s HEAD with
 * `applySeries`, and, in the same run, an evenly spread sample of those series applied the
 * usual way (a fresh `git worktree add --detach HEAD`, `git am`, `git worktree remove --force`),
 * whose per-patch time is extrapolated to all series. Trees of the sampled series are compared.
 */
export async function benchApply(mbox: string, opts: BenchApplyOptions): Promise<string> {
  if (!existsSync(mbox)) throw new Error(`no such mbox: ${mbox}`);
  const log = opts.log ?? (() => undefined);
  const dir = await mkdtemp(join(tmpdir(), 'vr-bench-apply-'));
  let gitDir: string | null = null;
  try {
    const tIngest = performance.now();
    const loaded = await loadSeries(mbox, dir);
    const ingestS = (performance.now() - tIngest) / 1000;
    const all = loaded.series.slice(0, opts.limit ?? loaded.series.length);
    const repoDir = await gitOk(['rev-parse', '--absolute-git-dir'], { cwd: opts.tree, home: dir });
    gitDir = repoDir;
    const head = await gitOk(['rev-parse', 'HEAD'], { gitDir: repoDir, cwd: dir, home: dir });
    log(`${loaded.mails} mails -> ${all.length} series (${sum(all.map((s) => s.count))} patches) in ${ingestS.toFixed(1)} s; applying with vfio-review`);

    const ours = new Map<number, Timed & { result: ApplyResult }>();
    for (const s of all) {
      const t0 = performance.now();
      const result = await applySeries({ tree: opts.tree, patches: s.patches, candidates: BASE });
      const ms = performance.now() - t0;
      ours.set(s.id, { ms, tree: null, result });
    }

    const n = Math.min(opts.sample ?? 10, all.length);
    const sample = Array.from({ length: n }, (_, i) => all[Math.floor((i * all.length) / n)]!);
    const usual: (Timed & { ok: boolean; parts: number[] })[] = [];
    for (const [i, s] of sample.entries()) {
      log(`git worktree add + git am: series ${i + 1}/${n} (${s.count} patches)`);
      usual.push(await worktreeAm(s, i, repoDir, dir));
    }

    // Cross-check: where both ways applied every patch, the trees must be the same.
    let same = 0;
    let compared = 0;
    for (const [i, s] of sample.entries()) {
      const o = ours.get(s.id)!;
      const everyOne = o.result.patches.every((p) => p.status === 'missing' || p.status === 'applied' || p.status === 'applied-with-fuzz');
      if (!usual[i]!.ok || !o.result.head || !everyOne) continue;
      compared++;
      if ((await gitOk(['rev-parse', `${o.result.head}^{tree}`], { gitDir: repoDir, cwd: dir, home: dir })) === usual[i]!.tree) same++;
    }

    const allPatches = sum(all.map((s) => s.count));
    const oursAllMs = sum([...ours.values()].map((o) => o.ms));
    const samplePatches = sum(sample.map((s) => s.count));
    const oursSampleMs = sum(sample.map((s) => ours.get(s.id)!.ms));
    const usualMs = sum(usual.map((u) => u.ms));
    const usualPerPatch = usualMs / samplePatches;
    const ratio = (ms: number, patches: number): string => `${(ms / patches / (oursSampleMs / samplePatches)).toFixed(1)}x slower`;
    const row = (way: string, series: number, patches: number, ms: number, vs: string): (string | number)[] => [
      way, series, patches, ms / 1000, series / (ms / 1000), ms / patches, vs,
    ];
    const statuses: Record<string, number> = {};
    for (const o of ours.values()) statuses[o.result.status] = (statuses[o.result.status] ?? 0) + 1;
    const parts = [0, 1, 2].map((k) => sum(usual.map((u) => u.parts[k]!)) / Math.max(1, usual.length) / 1000);

    return [
      `apply: ${mbox}`,
      `  ${loaded.mails} mails, grouped as the project does (ingest + seriesApplyInputs) into ${all.length} series / ${allPatches} patches;`,
      `  base: HEAD of ${opts.tree} (${head.slice(0, 12)}); ingest took ${ingestS.toFixed(1)} s (not counted)`,
      table(
        ['way', 'series', 'patches', 'seconds', 'series/s', 'ms/patch', 'vs vfio-review'],
        [
          row('vfio-review applySeries: every series', all.length, allPatches, oursAllMs, '1.00'),
          row(`vfio-review applySeries: the ${n} sampled series`, n, samplePatches, oursSampleMs, '1.00'),
          row(`worktree add + git am + worktree remove: sample of ${n} series`, n, samplePatches, usualMs, ratio(usualMs, samplePatches)),
          row(`  the same, extrapolated per patch to all ${all.length} series`, all.length, allPatches, usualPerPatch * allPatches, ratio(usualPerPatch * allPatches, allPatches)),
        ],
      ),
      `  vfio-review results: ${JSON.stringify(statuses)}; git am succeeded on ${usual.filter((u) => u.ok).length}/${n} sampled series`,
      `  worktree way per series: add ${parts[0]!.toFixed(2)} s, am ${parts[1]!.toFixed(2)} s, remove ${parts[2]!.toFixed(2)} s (mean)`,
      `  identical trees where both applied every patch: ${same}/${compared}`,
    ].join('\n');
  } finally {
    await rm(dir, { recursive: true, force: true });
    if (gitDir) await git(['worktree', 'prune'], { gitDir, cwd: tmpdir(), home: tmpdir() });
  }
}
