/**
 * `bench rules`: the C model and every rule over each .c/.h file of drivers/vfio and
 * drivers/iommu at the tree's HEAD, beside the tree's own `scripts/checkpatch.pl --file` over the
 * same files in the same run, then the time `checkSeries` takes on one real series.
 *
 * Both whole-file passes run as single-threaded child processes under /usr/bin/time (measure.ts),
 * so wall time and peak RSS are taken the same way for both. checkpatch.pl gets all files in one
 * sequential perl process: one interpreter start-up, no parallel batches, the same one core our
 * node process uses.
 */
import { execFileSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchOptions } from '../cli/bench.js';
import { gitOk, hermeticEnv, makeWorkspace, type Workspace } from '../apply/git.js';
import { RULES } from '../rules/index.js';
import { measure, table, type Measured } from './measure.js';
import { listCFiles, type PassResult } from './rules-pass.js';
import { median, SERIES_MBOX, SERIES_PATCHES, timeSeries, type SeriesRun, type SeriesTiming } from './rules-series.js';

const ENTRY = fileURLToPath(new URL('./rules-entry.mjs', import.meta.url));
/** The directories the whole-file pass covers. */
export const DIRS = ['drivers/vfio', 'drivers/iommu'];
/** What checkpatch.pl reads besides the checked files (as src/check/checkpatch.ts copies them). */
const CHECKPATCH_SUPPORT = ['scripts/checkpatch.pl', 'scripts/spelling.txt', 'scripts/const_structs.checkpatch'];
const MB = 1024 * 1024;

/** Knobs for {@link benchRules}; the CLI uses the defaults. */
export interface BenchRulesOptions {
  /** Check only these paths (of the .c/.h files under {@link DIRS}); default all. Tests use 2-3. */
  paths?: string[];
  /** Series checked warm, each new to the process (default 8). */
  series?: number;
}

interface Checkpatch {
  run: Measured;
  findings: number;
}

/** `npm run bench -- rules`: the printed table. */
export function bench(o: BenchOptions): Promise<string> {
  return benchRules(o);
}

/** The benchmark with its knobs; see the module comment. */
export async function benchRules(o: BenchOptions, opts: BenchRulesOptions = {}): Promise<string> {
  const startLoad = loadavg()[0]!.toFixed(1);
  const ws = await makeWorkspace('vr-bench-rules-');
  try {
    const gitDir = await gitOk(['rev-parse', '--absolute-git-dir'], { cwd: o.tree, home: ws.home });
    const commit = await gitOk(['rev-parse', 'HEAD'], { gitDir, cwd: ws.dir, home: ws.home });
    let files = listCFiles(gitDir, commit, DIRS, ws.home);
    if (opts.paths) {
      const want = new Set(opts.paths);
      files = files.filter((f) => want.has(f.path));
      if (files.length !== want.size) throw new Error(`not .c/.h files under ${DIRS.join(', ')} at HEAD: ${opts.paths.filter((p) => !files.some((f) => f.path === p)).join(', ')}`);
    }
    const paths = files.map((f) => f.path);
    const bytes = files.reduce((n, f) => n + f.size, 0);

    o.log(`${paths.length} files, ${(bytes / MB).toFixed(2)} MB: model + ${RULES.length} rules`);
    const ours = await measure(process.execPath, [ENTRY, gitDir, commit, ...paths], { cwd: ws.dir });
    if (ours.status !== 0) throw new Error(`the vfio-review pass failed (exit ${ours.status}): ${ours.stderr.slice(-2000)}`);
    const pass = JSON.parse(ours.stdout.trim().split('\n').pop()!) as PassResult;

    o.log(`the same files with scripts/checkpatch.pl --file (sequential; minutes for all of them)`);
    const cp = await checkpatch(gitDir, commit, paths, ws);

    const series = await timeSeries(o.corpus, o.tree, ws.dir, opts.series ?? 8, o.log);
    const load = `machine: ${availableParallelism()} cores; load average ${startLoad} at the start, ${loadavg()[0]!.toFixed(1)} at the end (other processes share the cores)`;
    return render(o.tree, commit, pass, ours, cp, series, load);
  } finally {
    await ws.dispose();
  }
}

/**
 * The tree's own checkpatch.pl over `paths`, all in one perl process. Script, its data files and
 * the checked files come from HEAD through `git archive` into a private directory, so checkpatch
 * reads exactly the bytes our pass read, whatever the checkout holds. That directory is not a
 * whole kernel tree, hence --no-tree; it is also the mode the check pipeline runs, and it spares
 * checkpatch a get_maintainer.pl and a spdxcheck.py child per file, the faster and stricter peer.
 */
async function checkpatch(gitDir: string, commit: string, paths: string[], ws: Workspace): Promise<Checkpatch> {
  const root = join(ws.dir, 'checkpatch');
  const tar = join(ws.dir, 'checkpatch.tar');
  await mkdir(root);
  await gitOk(['archive', '--format=tar', '-o', tar, commit, '--', ...CHECKPATCH_SUPPORT, ...paths], { gitDir, cwd: ws.dir, home: ws.home });
  execFileSync('tar', ['-xf', tar, '-C', root]);
  const run = await measure('perl', ['scripts/checkpatch.pl', '--no-tree', '--file', '--terse', '--no-summary', ...paths], {
    cwd: root,
    env: hermeticEnv(ws.home),
  });
  // checkpatch exits 1 when it found anything; more means it did not run.
  if (run.status !== 0 && run.status !== 1) throw new Error(`checkpatch.pl failed (exit ${run.status}): ${run.stderr.slice(-2000)}`);
  return { run, findings: run.stdout.match(/^[^\n:]+:\d+: (?:ERROR|WARNING|CHECK):/gm)?.length ?? 0 };
}

const x = (a: number, b: number): string => (a <= b ? `${(b / a).toFixed(2)}x faster` : `${(a / b).toFixed(2)}x slower`);
const verdict = (ok: boolean): string => (ok ? 'met' : 'NOT met');

function render(tree: string, commit: string, pass: PassResult, ours: Measured, cp: Checkpatch, series: SeriesTiming, load: string): string {
  const mb = pass.bytes / MB;
  const row = (tool: string, m: Measured): (string | number)[] => [tool, pass.files, mb, m.seconds, pass.files / m.seconds, mb / m.seconds, m.maxRssMb];
  const top = [...pass.rules].filter((r) => r.findings > 0).sort((a, b) => b.findings - a.findings).map((r) => `${r.id} ${r.findings}`);
  const out = [
    `rules: every .c/.h file of ${DIRS.join(' and ')} at HEAD ${commit.slice(0, 12)} of ${tree}`,
    `  ${pass.files} files, ${mb.toFixed(2)} MB (MB = 2^20 bytes), ${pass.lines} lines; each file checked as a patch that adds it`,
    `  (every line added, no before side) by all ${RULES.length} rules; both tools are child processes measured by /usr/bin/time`,
    `  ${load}`,
    table(
      ['tool', 'files', 'MB', 'seconds', 'files/s', 'MB/s', 'peak RSS MB'],
      [
        row(`vfio-review: C model + ${RULES.length} rules (one node process)`, ours),
        row('checkpatch.pl --file --terse --no-summary --no-tree (one perl process, sequential)', cp.run),
      ],
    ),
    `ratio: vfio-review is ${x(ours.seconds, cp.run.seconds)} than checkpatch.pl (wall; each on one core, same files, same run)`,
    `  target "whole pass faster than checkpatch alone": ${verdict(ours.seconds < cp.run.seconds)}`,
    `  findings, counted not reported: vfio-review ${pass.findings}${top.length ? ` (${top.join(', ')})` : ''}, rules that threw: ${pass.failures};` +
      ` checkpatch.pl ${cp.findings} ERROR/WARNING/CHECK lines`,
    `  checkpatch.pl: the tree's own, from HEAD via git archive into a temp dir with the checked files (same bytes as ours), hence --no-tree`,
    ...seriesLines(series),
    '',
    breakdown(pass, ours),
  ];
  return out.join('\n');
}

function seriesLines(s: SeriesTiming): string[] {
  if ('skipped' in s) return [`series: skipped: ${s.skipped}`, `  target "one series in under a second": not measured`];
  const per = (r: SeriesRun): number => r.seconds / r.patches;
  const perPatch = median(s.warm.map(per));
  const judged = perPatch * SERIES_PATCHES;
  const cpPer = median(s.warm.map((r) => (r.checkpatchSeconds ?? 0) / r.patches));
  const coldScaled = per(s.cold) * SERIES_PATCHES;
  const row = (r: SeriesRun): (string | number)[] => [r.id, `${r.patches} of ${r.total}`, r.status, r.findings, r.seconds, per(r), (r.checkpatchSeconds ?? 0) / r.patches, r.subject.slice(0, 60)];
  return [
    `series: checkSeries (apply + ${RULES.length} rules; simulator hook off, \`bench sim\` times it) on series of ${SERIES_MBOX}` +
      ` (ingest ${s.ingestSeconds.toFixed(1)} s, not counted); the corpus has no applying series of ${SERIES_PATCHES} patches, so per patch x ${SERIES_PATCHES}`,
    `  cold, the process's first check: series ${s.cold.id} (${s.cold.patches} of ${s.cold.total} patches, ${s.cold.status}) ${s.cold.seconds.toFixed(2)} s` +
      ` = ${per(s.cold).toFixed(3)} s/patch; x ${SERIES_PATCHES}: ${coldScaled.toFixed(2)} s`,
    `  warm-up as a daemon worker does it (src/daemon/warm.ts): ${s.warmUp.files} .c files under ${s.warmUp.dirs.join(', ')} in ${s.warmUp.seconds.toFixed(1)} s, heap ${s.warmUp.heapMb.toFixed(0)} MB`,
    `  warm, each series new to the process:`,
    table(['series', 'patches', 'apply', 'findings', 'seconds', 's/patch', 'checkpatch.pl s/patch', 'subject'], s.warm.map(row)),
    `  median ${perPatch.toFixed(3)} s/patch; x ${SERIES_PATCHES}: ${judged.toFixed(2)} s (checkpatch.pl adds ${cpPer.toFixed(3)} s/patch: ${((perPatch + cpPer) * SERIES_PATCHES).toFixed(2)} s)` +
      `; the per-series costs (git start-up, workspace, store) are counted ${(SERIES_PATCHES / median(s.warm.map((r) => r.patches))).toFixed(1)} times over`,
    'skipped' in s.assembled
      ? `  a ${SERIES_PATCHES}-patch series assembled from real patches: not measured: ${s.assembled.skipped}`
      : `  a ${SERIES_PATCHES}-patch series assembled from real patches (the first patch of ${SERIES_PATCHES} other corpus series, different files, re-threaded;` +
        ` new to the process; apply, ${RULES.length} rules and checkpatch.pl, as a worker checks it): ${s.assembled.seconds.toFixed(2)} s, ${s.assembled.findings} findings`,
    `  target "one series in under a second" (warm worker): ` +
      ('skipped' in s.assembled ? '' : `assembled ${SERIES_PATCHES}-patch series with checkpatch.pl ${verdict(s.assembled.seconds < 1)}; `) +
      `per patch x ${SERIES_PATCHES} ${verdict(judged < 1)}, with checkpatch.pl's share ${verdict((perPatch + cpPer) * SERIES_PATCHES < 1)}; cold first check: ${verdict(coldScaled < 1)}`,
  ];
}

/** Where the vfio-review pass spends its time: phases, then each rule. */
function breakdown(pass: PassResult, ours: Measured): string {
  const wall = ours.seconds;
  const t = pass.seconds;
  const share = (s: number, of: number): string => `${((100 * s) / of).toFixed(1)}%`;
  const phases: [string, number][] = [
    ['node + tsx start-up and module loading (wall minus in-process time)', wall - t.total],
    ['tree-sitter start-up', t.startup],
    ['git: list HEAD, read the checked files (one cat-file --batch)', t.read],
    [`per-file model: pre-filter, tree-sitter, extraction (${pass.files} checked + ${pass.contextFiles} headers/siblings, each once)`, t.fileModels],
    ['tree model per checked file: header/sibling reads, type environment, ops, summaries', t.treeModels],
    [`rules (${RULES.length}, below)`, t.rules],
  ];
  const rules = [...pass.rules].sort((a, b) => b.seconds - a.seconds);
  return [
    `where the vfio-review pass goes (${wall.toFixed(1)} s wall; phases timed inside the child):`,
    table(['phase', 'seconds', 'share of wall'], phases.map(([p, s]) => [p, s, share(s, wall)])),
    '',
    table(['rule', 'seconds', 'share of rules', 'findings', 'threw on files'], rules.map((r) => [r.id, r.seconds, share(r.seconds, t.rules), r.findings, r.failures])),
    `slowest files (model + rules): ${pass.slowest.map((f) => `${f.path} ${f.seconds.toFixed(2)} s`).join(', ')}`,
  ].join('\n');
}
