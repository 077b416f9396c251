/**
 * The checker: runs the searches for a scenario and turns them into a verdict with the
 * counterexample of fewest preemptions.
 *
 * With 4 or more threads it first searches with at most 0, 1, ... `preemptions` preemptions (bugs
 * hide in few context switches, and the bounded searches are small), then exhaustively with
 * reduction. With fewer threads it goes exhaustive at once; a counterexample found there is then
 * shortened by bounded searches below its preemption count. A bound hit without a violation is the
 * verdict `bound-reached`, never `safe`.
 */
import { compile, type Compiled } from './compile.js';
import { showValue } from './expr.js';
import type { Bounds, Expect, Invariant, MemoryModel, ThreadProgram, View } from './model.js';
import { search, type SearchOptions, type SearchResult, type Tally } from './search.js';
import type { Fault, FaultKind } from './step.js';
import { render, replay, type Trace } from './trace.js';

/** The verdict of a check. */
export type Verdict = 'safe' | FaultKind | 'bound-reached';

/** How often an outcome holds over the reachable final states. */
export type Frequency = 'never' | 'sometimes' | 'always';

/** An outcome's tally with its witness of fewest preemptions. */
export interface OutcomeResult {
  frequency: Frequency;
  sat: number;
  unsat: number;
  witness: Trace | null;
}

/** Statistics of one search phase. */
export interface PhaseStat {
  mode: 'por' | 'icb' | 'full';
  preemptionBound: number | null;
  states: number;
  transitions: number;
  ms: number;
  found: boolean;
}

/** The result of {@link check}. */
export interface CheckResult {
  verdict: Verdict;
  fault: Fault | null;
  /** The counterexample (fault) with fewest preemptions. */
  trace: Trace | null;
  exists: OutcomeResult | null;
  outcomes: Record<string, OutcomeResult>;
  bound: 'states' | 'depth' | 'time' | null;
  stats: {
    /** States over all phases; `exhaustiveStates` of the exhaustive (reduced or full) search alone. */
    states: number;
    exhaustiveStates: number | null;
    transitions: number;
    finals: number;
    maxDepth: number;
    ms: number;
    /** Process CPU time: on a loaded machine wall time says little about the explorer. */
    cpuMs: number;
    statesPerSec: number;
    statesPerCpuSec: number;
    /** Milliseconds from the start to the first counterexample or witness. */
    firstMs: number | null;
    phases: PhaseStat[];
  };
  compiled: Compiled;
}

/** Options of {@link check}. */
export interface CheckOptions {
  memory?: MemoryModel;
  init?: Record<string, number | string>;
  objects?: string[];
  unallocated?: string[];
  exists?: (v: View) => boolean;
  outcomes?: Record<string, (v: View) => boolean>;
  invariants?: Invariant[];
  bounds?: Bounds;
  /** Partial-order reduction (default on); off gives the plain stateful search for comparison. */
  reduction?: boolean;
  /** Faults that count (default all); a rejected one ends its path and the search goes on. */
  accept?: (f: Fault) => boolean;
}

const DEFAULTS = { maxStates: 2_000_000, maxDepth: 20_000, timeMs: 20_000, preemptions: 2 };

function frequency(t: Tally): Frequency {
  return t.sat === 0 ? 'never' : t.unsat === 0 ? 'always' : 'sometimes';
}

/** Check thread programs: compile, search, and explain. */
export function check(programs: ThreadProgram[], opts: CheckOptions = {}): CheckResult {
  const c = compile(programs, opts);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const b = { ...DEFAULTS, ...opts.bounds };
  const deadline = t0 + b.timeMs;
  const base: SearchOptions = {
    mode: 'por', reduction: opts.reduction ?? true, preemptionBound: Infinity, maxStates: b.maxStates, maxDepth: b.maxDepth, deadline,
    ...(opts.accept ? { accept: opts.accept } : {}),
    ...(opts.exists ? { exists: opts.exists } : {}), ...(opts.outcomes ? { outcomes: opts.outcomes } : {}), ...(opts.invariants ? { invariants: opts.invariants } : {}),
  };
  const phases: PhaseStat[] = [];
  const all: SearchResult[] = [];
  let firstMs: number | null = null;
  const run = (o: SearchOptions): SearchResult => {
    const start = performance.now() - t0;
    const r = search(c, o);
    all.push(r);
    phases.push({ mode: o.mode === 'icb' ? 'icb' : o.reduction ? 'por' : 'full', preemptionBound: o.mode === 'icb' ? o.preemptionBound : null, states: r.states, transitions: r.transitions, ms: r.ms, found: r.fault !== null });
    if (firstMs === null && r.firstMs !== null && (r.fault || r.exists.witness)) firstMs = start + r.firstMs;
    return r;
  };
  const bounded = (k: number, goal?: SearchOptions['goal']): SearchResult =>
    run({ ...base, mode: 'icb', reduction: false, preemptionBound: k, exists: base.exists, outcomes: undefined, ...(goal ? { goal } : {}) });

  let fault: { fault: Fault; path: number[] } | null = null;
  let main: SearchResult | null = null;
  if (c.threads.length >= 4) {
    for (let k = 0; k <= b.preemptions && !fault; k++) fault = bounded(k).fault;
  }
  if (!fault) {
    main = run(base);
    fault = main.fault;
  }
  let trace = fault ? replay(c, fault.path) : null;
  if (fault && trace && trace.preemptions > 0 && c.threads.length < 4) {
    for (let k = 0; k < trace.preemptions; k++) {
      const r = bounded(k, { fault: fault.fault.kind });
      if (r.fault) {
        fault = r.fault;
        trace = replay(c, r.fault.path);
        break;
      }
    }
  }
  const outcome = (t: Tally, goal: boolean): OutcomeResult => {
    let witness = t.witness ? replay(c, t.witness) : null;
    if (goal && witness && witness.preemptions > 0) {
      for (let k = 0; k < witness.preemptions; k++) {
        const r = bounded(k, { exists: true });
        if (r.exists.witness) {
          witness = replay(c, r.exists.witness);
          break;
        }
      }
    }
    return { frequency: frequency(t), sat: t.sat, unsat: t.unsat, witness };
  };
  const truncated = main?.truncated ?? null;
  const verdict: Verdict = fault ? fault.fault.kind : truncated ? 'bound-reached' : 'safe';
  const exists = main && opts.exists && !fault ? outcome(main.exists, true) : null;
  const outcomes: Record<string, OutcomeResult> = {};
  if (main && !fault) for (const [k, t] of Object.entries(main.outcomes)) outcomes[k] = outcome(t, false);
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const states = all.reduce((n, r) => n + r.states, 0);
  return {
    verdict, fault: fault?.fault ?? null, trace, exists, outcomes, bound: truncated,
    stats: {
      states, exhaustiveStates: main?.states ?? null, transitions: all.reduce((n, r) => n + r.transitions, 0), finals: main?.finals ?? 0,
      maxDepth: Math.max(0, ...all.map((r) => r.maxDepth)), ms, cpuMs,
      statesPerSec: ms > 0 ? Math.round((states / ms) * 1000) : 0, statesPerCpuSec: cpuMs > 0 ? Math.round((states / cpuMs) * 1000) : 0, firstMs, phases,
    },
    compiled: c,
  };
}

/** Whether a result matches a scenario's expectation, and why not. */
export function judge(r: CheckResult, expect: Expect, hasExists: boolean): { pass: boolean; reason: string } {
  if (r.verdict === 'bound-reached') return { pass: false, reason: `bound reached (${r.bound}) before a verdict` };
  if (expect === 'deadlock') {
    const ok = r.verdict === 'deadlock' || r.verdict === 'self-deadlock';
    return { pass: ok, reason: ok ? 'deadlock found' : `expected a deadlock, got ${r.verdict}` };
  }
  if (expect === 'use-after-free' || expect === 'stale-pointer' || expect === 'invariant') {
    return { pass: r.verdict === expect, reason: r.verdict === expect ? `${expect} found` : `expected ${expect}, got ${r.verdict}` };
  }
  if (r.verdict !== 'safe') return { pass: false, reason: `${r.verdict}: ${r.fault?.message ?? ''}` };
  if (!hasExists) return { pass: expect === 'never', reason: expect === 'never' ? 'no violation' : `expected ${expect} but the scenario states no outcome` };
  const f = r.exists?.frequency ?? 'never';
  return { pass: f === expect, reason: `outcome ${f}${f === expect ? '' : `, expected ${expect}`}` };
}

/** The lockdep-style text of a result: the counterexample, else the outcome witness, else a one-line verdict. */
export function explain(r: CheckResult, maxLines = 25): string {
  if (r.trace && r.fault) return render(r.compiled, r.trace, { fault: r.fault }, maxLines);
  const w = r.exists?.witness;
  if (w) {
    // Cells and return values: registers of derived programs are internal (and reset once dead).
    const c = r.compiled;
    const names = new Set([...c.cells, ...c.threads.flatMap((th) => (th.regs.length <= 4 ? th.regs : []))]);
    const shown = [
      ...Object.entries(w.final).filter(([k]) => names.has(k)).map(([k, v]) => `${k}=${showValue(v ?? 0, c.objects, c.consts)}`),
      ...c.threads.map((th, i) => (w.final[`${i}:ret`] === undefined ? '' : `${th.label} returns ${showValue(w.final[`${i}:ret`]!, c.objects, c.consts)}`)).filter(Boolean),
    ].join(', ');
    return render(r.compiled, w, { fault: null, text: `reachable (${r.exists!.frequency}): ${shown}` }, maxLines);
  }
  return `verdict: ${r.verdict}${r.bound ? ` (${r.bound})` : ''}; ${r.stats.states} states`;
}
