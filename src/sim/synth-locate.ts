/**
 * Where a synthesised finding points and what it says: the first step of the bad interleaving in
 * changed code (through call sites of inlined callees), the patch that wrote that line, and the
 * finding's message and identity.
 */
import type { FunctionModel } from '../cmodel/index.js';
import { explain, type CheckResult } from './checker.js';
import { OP } from './compile.js';
import type { Entry } from './entries.js';
import type { Src } from './model.js';
import type { Fault } from './step.js';
import type { SeriesChanges, SimFinding, SimKind } from './synth.js';
import type { TraceStep } from './trace.js';

/** Changed functions by key, with the patches that changed them. */
export type Changed = Map<string, { fn: FunctionModel; patches: Set<string> }>;

/** A place in changed code and the patch it is attributed to. */
export interface Located {
  file: string;
  line: number;
  fn: string | null;
  patch: string;
}

/**
 * Whether a trace step is part of the fault rather than incidental: for a deadlock, an acquisition
 * of a lock class of the cycle; for a lifetime fault, the load of the pointer cell, the free or
 * the use.
 */
export function relevant(r: CheckResult, st: TraceStep, objects: Map<string, string>): boolean {
  if (st.pc < 0) return false;
  const op = r.compiled.threads[st.thread]?.ops[st.pc];
  if (!op) return false;
  if (r.verdict === 'deadlock') {
    const cycle = new Set(cycleLocks(r.fault!));
    return op.code === OP.LOCK && st.lock !== undefined && cycle.has(st.lock);
  }
  if (op.code === OP.READ) return [...objects.values()].includes(r.compiled.cells[op.cell] ?? '');
  return op.code === OP.FREE || op.code === OP.USE;
}

/** The lock classes a deadlock's threads wait for. */
function cycleLocks(f: Fault): string[] {
  return [...f.message.matchAll(/waits for (?<lock>\S+?),? (?:held|still)/g)].map((m) => m.groups!.lock!);
}

/** The trace's steps, then for a deadlock the acquisitions the threads are stuck at. */
export function faultSteps(r: CheckResult): TraceStep[] {
  const steps = [...r.trace!.steps];
  if (r.verdict !== 'deadlock') return steps;
  r.trace!.pcs.forEach((pc, t) => {
    const op = r.compiled.threads[t]?.ops[pc];
    if (op?.code === OP.LOCK) steps.push({ thread: t, pc, text: op.text, ...(op.at ? { at: op.at } : {}), lock: r.compiled.locks[op.lock]!, local: false, noted: false });
  });
  return steps;
}

/** A source position and its call sites, innermost first. */
function chain(at: Src | undefined): Src[] {
  const out: Src[] = [];
  for (let s = at; s && out.length < 16; s = s.caller) out.push(s);
  return out;
}

/**
 * The first step of the trace in changed code: at a changed line (itself, or the call site in a
 * changed line that led to it), else in a changed function; with the patch it is attributed to.
 */
export function firstChangedStep(steps: TraceStep[], changed: Changed, ch: SeriesChanges): Located | null {
  for (const s of steps) {
    for (const at of chain(s.at)) {
      const patch = at.file && at.line ? ch.lines.get(at.file)?.get(at.line) : undefined;
      if (patch) return { file: at.file!, line: at.line!, fn: at.fn ?? null, patch };
    }
  }
  for (const s of steps) {
    for (const at of chain(s.at)) {
      const c = at.file && at.line && at.fn ? changed.get(`${at.file}:${at.fn}`) : undefined;
      // The patch that introduced the change: the first of the series to touch the function.
      const patch = c ? ch.patches.find((p) => c.patches.has(p)) ?? [...c.patches][0] : undefined;
      if (patch) return { file: at.file!, line: at.line!, fn: at.fn ?? null, patch };
    }
  }
  return null;
}

const KIND_TEXT: Record<SimKind, string> = {
  deadlock: 'can deadlock',
  'use-after-free': 'can use an object after the other frees it',
  'stale-pointer': 'can use a pointer after the lock it was read under was dropped and the object freed',
};
/** The finding of a pair's bad verdict located at `at`. */
export function finding(c: { e: Entry; p: Entry }, r: CheckResult, at: Located, objects: Map<string, string>): SimFinding {
  const kind = r.verdict as SimKind;
  const who = (e: Entry): string => `${e.name}() (${e.member ? `${e.kind} .${e.member}` : e.kind})`;
  const pair: [Entry, Entry] = [c.e, c.p];
  const same = c.e.name === c.p.name && c.e.file === c.p.file;
  const subject = same ? `two concurrent calls of ${who(c.e)}` : `${who(c.e)} and ${who(c.p)}`;
  const involved = cycleLocks(r.fault!);
  const k = kind === 'deadlock'
    ? `sim:deadlock:${[...new Set(involved)].sort().join('+')}`
    : `sim:${kind}:${[...objects.values()].sort().join('+')}:${[c.e.name, c.p.name].sort().join('+')}`;
  return {
    kind, patch: at.patch, file: at.file, line: at.line, fn: at.fn,
    message: `${subject} ${KIND_TEXT[kind]}: ${r.fault!.message}`,
    trace: explain(r), key: k, pair, also: [],
  };
}
