/**
 * `npm run bench -- sim`: the simulator's figures, and side by side with spin (Debian `spin`) on
 * the same models written in Promela from our programs (src/sim/promela.ts).
 *
 * 1. Every scenario (litmus programs and the real-tree ones) in process: verdict, states with and
 *    without reduction, time to verdict and to the first counterexample, states per CPU-second.
 * 2. Our explorer and spin on the same models (ABBA, message passing under SC, a stale pointer, a
 *    use after free, a 4-thread lock ring, and a 3x8 lock/counter grid big enough to time), each
 *    tool in its own process under GNU time: states, seconds, peak RSS, the ratio, and whether
 *    the verdicts agree. Spin's time is `spin -a` + `gcc` + `./pan`, ours is the whole process
 *    (node and the TypeScript loader included) and, separately, the search alone.
 * 3. The synthesised scenarios of one patch on the real tree (seed 002's reversed lock order).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchOptions } from '../cli/bench.js';
import { check, type CheckOptions } from '../sim/checker.js';
import { treeReader } from '../sim/fs-reader.js';
import { builder as t, type ThreadProgram } from '../sim/model.js';
import { PROMELA_VERDICT, toPromela } from '../sim/promela.js';
import { runScenario } from '../sim/run.js';
import { scenarioById, scenarios } from '../sim/scenarios/index.js';
import { synthesise } from '../sim/synth.js';
import { ensureSystemPackages } from '../util/system-packages.js';
import { measure, table } from './measure.js';

/** A model both tools run: a registered scenario (optionally under SC) or the timing grid. */
export type JobSpec = { kind: 'scenario'; id: string; sc?: boolean; outcome?: string } | { kind: 'grid'; threads: number; rounds: number };
/** A model and whether to search it with partial-order reduction. */
export type Job = JobSpec & { reduction: boolean };

/** N threads, each `rounds` times: lock one of two locks, increment one of three counters, unlock. */
export function grid(threads: number, rounds: number): ThreadProgram[] {
  return Array.from({ length: threads }, (_, i) => ({
    name: `w${i}`,
    observable: [],
    ops: [
      ...Array.from({ length: rounds }, (_, k) => {
        const lock = `L${(i + k) % 2}`;
        const cell = `c${(i + k) % 3}`;
        return [t.lock(lock), t.read(cell, `r${k}`), t.write(cell, `r${k} + 1`), t.unlock(lock)];
      }).flat(),
      t.ret(0),
    ],
  }));
}

/** The programs and check options of a job (also used by the measured child process). */
export async function jobModel(job: Job): Promise<{ programs: ThreadProgram[]; opts: CheckOptions }> {
  const bounds = { maxStates: 5_000_000, timeMs: 120_000 };
  if (job.kind === 'grid') return { programs: grid(job.threads, job.rounds), opts: { reduction: job.reduction, bounds } };
  const sc = scenarioById(job.id);
  if (!sc) throw new Error(`no scenario ${job.id}`);
  return {
    programs: await sc.programs(),
    opts: {
      reduction: job.reduction, bounds,
      memory: job.sc ? 'sc' : (sc.memory ?? 'sc'),
      ...(sc.init ? { init: sc.init } : {}), ...(sc.objects ? { objects: sc.objects } : {}), ...(sc.unallocated ? { unallocated: sc.unallocated } : {}),
      ...(sc.exists ? { exists: sc.exists } : {}),
    },
  };
}

const CHILD = `
const job = JSON.parse(process.argv[1]);
const { jobModel } = await import(${JSON.stringify(fileURLToPath(import.meta.url))});
const { check } = await import(${JSON.stringify(fileURLToPath(new URL('../sim/checker.ts', import.meta.url)))});
const { programs, opts } = await jobModel(job);
const r = check(programs, opts);
process.stdout.write(JSON.stringify({ verdict: r.verdict, exists: r.exists ? r.exists.frequency : null, states: r.stats.exhaustiveStates ?? r.stats.states, ms: r.stats.ms, cpuMs: r.stats.cpuMs, firstMs: r.stats.firstMs }));
`;

interface Side {
  verdict: string;
  /** Ours: CPU milliseconds of the search (the rate target is per core). */
  cpuMs?: number;
  states: number;
  seconds: number;
  /** The search alone (ours) or ./pan alone (spin). */
  searchSeconds: number;
  rssMb: number;
}

/** Our verdict in the terms spin can say: deadlock, a fault kind, `outcome` or `safe`. */
function ourVerdict(v: string, exists: string | null): string {
  if (v === 'self-deadlock') return 'deadlock';
  if (v === 'safe' && exists && exists !== 'never') return 'outcome';
  return v;
}

async function ours(job: Job): Promise<Side> {
  const m = await measure(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD, JSON.stringify(job)]);
  if (m.status !== 0) throw new Error(`our run of ${JSON.stringify(job)} failed: ${m.stderr.slice(-400)}`);
  const r = JSON.parse(m.stdout) as { verdict: string; exists: string | null; states: number; ms: number; cpuMs: number };
  return { verdict: ourVerdict(r.verdict, r.exists), states: r.states, seconds: m.seconds, searchSeconds: r.ms / 1000, rssMb: m.maxRssMb, cpuMs: r.cpuMs };
}

async function spin(job: Job, dir: string): Promise<Side & { compileSeconds: number }> {
  const { programs, opts } = await jobModel(job);
  const name = job.kind === 'grid' ? `grid${job.threads}x${job.rounds}` : job.id;
  await writeFile(join(dir, 'model.pml'), toPromela(programs, {
    ...(opts.init ? { init: opts.init } : {}), ...(opts.objects ? { objects: opts.objects } : {}), ...(opts.unallocated ? { unallocated: opts.unallocated } : {}),
    ...(job.kind === 'scenario' && job.outcome ? { outcome: job.outcome } : {}), title: name,
  }));
  const a = await measure('spin', ['-a', 'model.pml'], { cwd: dir });
  if (a.status !== 0) throw new Error(`spin -a ${name}: ${a.stdout}${a.stderr}`);
  const cc = await measure('gcc', ['-O2', '-DSAFETY', ...(job.reduction ? [] : ['-DNOREDUCE']), '-o', 'pan', 'pan.c'], { cwd: dir });
  if (cc.status !== 0) throw new Error(`gcc pan.c (${name}): ${cc.stderr.slice(0, 400)}`);
  const pan = await measure(join(dir, 'pan'), ['-m200000'], { cwd: dir });
  const out = pan.stdout;
  const states = Number(/(?<n>\d+) states, stored/.exec(out)?.groups?.n ?? NaN);
  const assertion = /^pan:\d+: assertion violated\s+!\((?<what>.*?)\) \(at depth/m.exec(out)?.groups?.what;
  // `pan:1: ...` is the error line; the summary lists every check ("invalid end states +") either way.
  const verdict = /^pan:\d+: invalid end state/m.test(out) ? 'deadlock' : assertion ? (PROMELA_VERDICT[assertion] ?? 'outcome') : 'safe';
  return { verdict, states, seconds: a.seconds + cc.seconds + pan.seconds, compileSeconds: a.seconds + cc.seconds, searchSeconds: pan.seconds, rssMb: pan.maxRssMb };
}

/** What the targets are judged on. */
interface Figures {
  /** Scenarios of up to 3 threads: the slowest time to verdict (ms). */
  slowest3: { id: string; ms: number };
  firstCex: Record<string, number | null>;
  gridRate: number;
  slowerThanSpin: string[];
  synthSeconds: number;
  disagree: string[];
}

/** Section 1: every scenario in process. */
async function catalogue(o: BenchOptions, fig: Figures): Promise<string> {
  const rows: (string | number)[][] = [];
  for (const sc of scenarios) {
    o.log(`scenario ${sc.id}`);
    const t0 = performance.now();
    const programs = await sc.programs(sc.tree ? treeReader(o.tree) : undefined);
    const deriveMs = performance.now() - t0;
    const red = await runScenario(sc, { programs });
    const full = await runScenario(sc, { programs, reduction: false });
    const s = red.result.stats;
    if (programs.length <= 3 && s.ms > fig.slowest3.ms) fig.slowest3 = { id: sc.id, ms: s.ms };
    if (sc.id in fig.firstCex) fig.firstCex[sc.id] = s.firstMs;
    rows.push([
      sc.id, programs.length, sc.memory ?? 'sc', sc.expect, red.result.verdict, red.pass ? 'yes' : `NO: ${red.reason}`,
      s.exhaustiveStates ?? s.states, full.result.stats.exhaustiveStates ?? full.result.stats.states, s.ms, s.firstMs ?? '-', s.statesPerCpuSec, sc.tree ? deriveMs : '-',
    ]);
  }
  return table(['scenario', 'thr', 'mem', 'expect', 'verdict', 'pass', 'states(POR)', 'states(full)', 'ms', 'first-cex ms', 'states/cpu-s', 'derive ms'], rows);
}

/** Section 2: side by side with spin. */
async function versusSpin(o: BenchOptions, fig: Figures): Promise<string> {
  await ensureSystemPackages(['spin', 'gcc']);
  const jobs: { label: string; job: JobSpec }[] = [
    { label: 'abba (deadlock)', job: { kind: 'scenario', id: 'abba' } },
    { label: 'lock-ring-4 (deadlock)', job: { kind: 'scenario', id: 'lock-ring-4' } },
    { label: 'mp-plain under SC (outcome)', job: { kind: 'scenario', id: 'mp-plain', sc: true, outcome: 'T1_r0 == 1 && T1_r1 == 0' } },
    { label: 'stale-pointer-relock', job: { kind: 'scenario', id: 'stale-pointer-relock' } },
    { label: 'free-while-in-use', job: { kind: 'scenario', id: 'free-while-in-use' } },
    { label: 'grid 3x8 (safe)', job: { kind: 'grid', threads: 3, rounds: 8 } },
  ];
  const rows: (string | number)[][] = [];
  const dir = await mkdtemp(join(tmpdir(), 'vfio-review-spin-'));
  try {
    for (const { label, job } of jobs) {
      for (const reduction of [true, false]) {
        const j: Job = { ...job, reduction };
        o.log(`${label}, ${reduction ? 'POR' : 'full'}`);
        const a = await ours(j);
        const b = await spin(j, dir);
        if (j.kind === 'grid' && !reduction && a.cpuMs) fig.gridRate = a.states / (a.cpuMs / 1000);
        if (a.seconds > b.seconds) fig.slowerThanSpin.push(`${label} ${reduction ? 'POR' : 'full'}`);
        if (a.verdict !== b.verdict) fig.disagree.push(`${label} ${reduction ? 'POR' : 'full'}: ours ${a.verdict}, spin ${b.verdict}`);
        rows.push([
          label, reduction ? 'POR' : 'full',
          a.verdict, a.states, a.searchSeconds, a.seconds, a.rssMb,
          b.verdict, b.states, b.searchSeconds, b.seconds, b.rssMb,
          b.seconds / a.seconds, b.searchSeconds / Math.max(a.searchSeconds, 1e-4), a.verdict === b.verdict ? 'yes' : 'NO',
        ]);
      }
    }
    // The model of one row, for whoever wants to run spin on it by hand.
    const sample = await readFile(join(dir, 'model.pml'), 'utf8').catch(() => '');
    o.log(`last Promela model: ${sample.split('\n').length} lines`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return table(
    ['model', 'mode', 'ours', 'states', 'search s', 'total s', 'RSS MB', 'spin', 'states', 'pan s', 'spin+gcc+pan s', 'RSS MB', 'total spin/ours', 'search spin/ours', 'agree'],
    rows,
  );
}

/** Section 3: the synthesised scenarios of one real patch. */
async function synthesised(o: BenchOptions, fig: Figures): Promise<string> {
  const file = 'drivers/s390/crypto/vfio_ap_ops.c';
  const text = treeReader(o.tree).readFile(file);
  const before = '\tmutex_lock(&ap_perms_mutex);\n\tget_update_locks_for_mdev(matrix_mdev);\n\n\tret = kstrtoul(buf, 0, &apid);';
  if (!text?.includes(before)) return `synthesised: ${file} in ${o.tree} is not the 6.1 text this section patches; skipped`;
  const patched = text.replace(before, '\tget_update_locks_for_mdev(matrix_mdev);\n\tmutex_lock(&ap_perms_mutex);\n\n\tret = kstrtoul(buf, 0, &apid);');
  const at = text.slice(0, text.indexOf(before)).split('\n').length;
  const t0 = performance.now();
  const r = await synthesise({
    base: treeReader(o.tree), head: treeReader(o.tree, { [file]: patched }), files: [file],
    changes: { patches: ['swap@bench'], lines: new Map([[file, new Map([[at, 'swap@bench'], [at + 1, 'swap@bench']])]]), removals: new Map() },
  });
  const ms = performance.now() - t0;
  fig.synthSeconds = ms / 1000;
  return [
    `synthesised scenarios, seed 002's reversed order in assign_adapter_store (${file}:${at}): ${r.stats.entries} entry points, ${r.stats.affected} affected, ${r.stats.candidates} candidate pairs, ${r.stats.explored} explored, ${r.stats.states} states, ${(ms / 1000).toFixed(2)} s in all (models of the base and patched tree included)`,
    ...r.findings.map((f) => `  ${f.kind} at ${f.file}:${f.line} (${f.patch}): ${f.message}`),
    ...r.notes.map((n) => `  note ${n.kind}: ${n.pair ?? ''} ${n.detail}`),
  ].join('\n');
}

/** The benchmark. */
export async function bench(o: BenchOptions): Promise<string> {
  const fig: Figures = {
    slowest3: { id: '-', ms: 0 }, firstCex: { abba: null, 'abba-trylock': null, 'check-then-act': null, 'stale-pointer-relock': null },
    gridRate: NaN, slowerThanSpin: [], synthSeconds: NaN, disagree: [],
  };
  const out: string[] = [];
  out.push('== scenarios (in process; states of the exhaustive phase; ms to verdict excludes deriving tree programs)', await catalogue(o, fig), '');
  out.push('== against spin 6 (same models in Promela; each tool in its own process under GNU time; ours includes node + tsx start-up;', '   states: ours of the exhaustive phase, spin "states, stored"; both stop at the first violation)', await versusSpin(o, fig), '');
  out.push('== synthesised (check)', await synthesised(o, fig), '');
  const ok = (b: boolean): string => (b ? 'met' : 'NOT met');
  const cex = Object.entries(fig.firstCex).map(([k, v]) => `${k} ${v === null ? '-' : v.toFixed(2)} ms`).join(', ');
  const worstCex = Math.max(...Object.values(fig.firstCex).map((v) => v ?? Infinity));
  out.push(
    '== targets (issue 5)',
    `- >= 1M states/s on one core: ${(fig.gridRate / 1e6).toFixed(2)}M states per CPU-second on the 3x8 grid without reduction: ${ok(fig.gridRate >= 1e6)}`,
    `- every scenario with up to 3 threads decided exhaustively in under 1 s: slowest ${fig.slowest3.id} ${fig.slowest3.ms.toFixed(0)} ms: ${ok(fig.slowest3.ms < 1000)}`,
    `- all scenarios of one patch in under 10 s: ${fig.synthSeconds.toFixed(2)} s: ${ok(fig.synthSeconds < 10)}`,
    `- first counterexample/witness under 50 ms (ABBA, trylock-TOCTOU, check-then-act, stale pointer): ${cex}: ${ok(worstCex < 50)}`,
    `- time to verdict no worse than spin's compile plus run: ${fig.slowerThanSpin.length ? `slower on ${fig.slowerThanSpin.join(', ')}` : 'faster on every model'}: ${ok(fig.slowerThanSpin.length === 0)}`,
    `- verdicts agree with spin: ${fig.disagree.length ? fig.disagree.join('; ') : 'on every model'}`,
  );
  return out.join('\n');
}
