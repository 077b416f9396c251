/**
 * Counterexamples: a path of transition ids replayed into steps (with the values reads saw and the
 * preemptions it takes), and rendered the way lockdep prints "Possible unsafe locking scenario":
 * one column per CPU, one step per line with its file:line, then the outcome.
 */
import { OP, type Compiled } from './compile.js';
import { showValue, UNKNOWN } from './expr.js';
import type { Src, View } from './model.js';
import { viewOf } from './search.js';
import { Machine } from './state.js';
import { FAULT, Semantics, type Fault } from './step.js';

/** One step of a trace. */
export interface TraceStep {
  thread: number;
  /** The op's pc, or -1 for a store-buffer flush. */
  pc: number;
  text: string;
  at?: Src;
  /** The lock class the step takes or releases, when it is a lock op. */
  lock?: string;
  /** Local bookkeeping (register moves, jumps) that the rendering may elide; `noted` ones (a call into a callee) last. */
  local: boolean;
  noted: boolean;
}

/** A replayed path. */
export interface Trace {
  threads: string[];
  steps: TraceStep[];
  /** Switches away from a thread that could have continued. */
  preemptions: number;
  /** The state at the end (for outcomes), and each thread's pc there (for the ops deadlocked threads wait at). */
  final: View;
  pcs: number[];
}

function where(at: Src | undefined): string {
  if (!at?.file && !at?.line) return '';
  const file = at.file ? at.file.split('/').pop() : '';
  return `${file}${at.line ? `:${at.line}` : ''}`;
}

/** Replay `path` from the initial state. */
export function replay(c: Compiled, path: number[]): Trace {
  const sem = new Semantics(c);
  const m = new Machine(c.init);
  const L = c.layout;
  const steps: TraceStep[] = [];
  let cur = -1;
  let preemptions = 0;
  for (const id of path) {
    const t = id & 31;
    const choice = id >>> 5;
    if (choice >= 2) {
      const cell = choice - 2;
      const b = L.buf[t]!;
      let v = 0;
      for (let i = 0; i < m.s[b]!; i++) if (m.s[b + 2 + 3 * i] === cell + 1) {
        v = m.s[b + 3 + 3 * i]!;
        break;
      }
      steps.push({ thread: t, pc: -1, text: `(${c.cells[cell]} = ${showValue(v, c.objects, c.consts)} reaches memory)`, local: false, noted: false });
      sem.flush(m, t, cell);
      continue;
    }
    if (cur >= 0 && cur !== t && sem.choices(m.s, cur) > 0) preemptions++;
    cur = t;
    const pc = m.s[L.pc + t]!;
    const op = c.threads[t]!.ops[pc]!;
    const r = sem.apply(m, t, choice);
    let text = op.text;
    if (op.code === OP.READ || op.code === OP.TRYLOCK || (op.code === OP.RMW && op.reg >= 0)) {
      const v = m.s[L.reg[t]! + op.reg]!;
      text += ` /* ${showValue(v, c.objects, c.consts)}${choice === 1 ? ', stale' : ''} */`;
    }
    if (op.code === OP.BRANCH && op.e1!(m.s, L.reg[t]!) === UNKNOWN) text += choice === 0 ? ' /* taken */' : ' /* not taken */';
    const isLock = op.code === OP.LOCK || op.code === OP.UNLOCK || op.code === OP.TRYLOCK;
    steps.push({
      thread: t, pc, text, ...(op.at ? { at: op.at } : {}), ...(isLock ? { lock: c.locks[op.lock] } : {}),
      local: op.local && op.code !== OP.RETURN && op.code !== OP.ASSERT,
      noted: op.noted,
    });
    if (r === FAULT) break;
  }
  return { threads: c.threads.map((th) => th.name), steps, preemptions, final: viewOf(c, m.s), pcs: c.threads.map((_, t) => m.s[L.pc + t]!) };
}

const HEADINGS: Record<Fault['kind'] | 'outcome', [string, string]> = {
  deadlock: ['Possible unsafe locking scenario:', '*** DEADLOCK ***'],
  'self-deadlock': ['Possible recursive locking:', '*** DEADLOCK ***'],
  'use-after-free': ['Possible use after free:', '*** USE AFTER FREE ***'],
  'stale-pointer': ['Possible stale pointer after relock:', '*** STALE POINTER ***'],
  'double-free': ['Possible double free:', '*** DOUBLE FREE ***'],
  'null-deref': ['Possible NULL dereference:', '*** NULL POINTER DEREFERENCE ***'],
  'unlock-unheld': ['Unlock of a lock not held:', '*** BAD UNLOCK ***'],
  assert: ['Assertion can fail:', '*** ASSERTION FAILED ***'],
  invariant: ['Invariant can break:', '*** INVARIANT BROKEN ***'],
  outcome: ['Possible outcome:', '*** OUTCOME ***'],
};

/**
 * Render a trace lockdep-style in about `maxLines` lines: local steps are dropped first, then the
 * earliest steps. A deadlock ends with the lock op each stuck thread waits at.
 */
export function render(c: Compiled, trace: Trace, outcome: { fault: Fault | null; text?: string }, maxLines = 25): string {
  const n = trace.threads.length;
  const width = Math.max(30, Math.min(60, Math.floor(150 / n)));
  let steps = trace.steps;
  const rows = (): number => steps.length + 8;
  if (rows() > maxLines) steps = steps.filter((s) => !s.local || s.noted);
  if (rows() > maxLines) steps = steps.filter((s) => !s.local);
  let elided = trace.steps.length - steps.length;
  const blocked: { thread: number; text: string }[] = [];
  if (outcome.fault && (outcome.fault.kind === 'deadlock' || outcome.fault.kind === 'self-deadlock')) {
    trace.pcs.forEach((pc, t) => {
      const op = c.threads[t]!.ops[pc];
      if (op && op.code === OP.LOCK) blocked.push({ thread: t, text: `${op.text};${op.at ? ` ${where(op.at)}` : ''}  <- waits` });
    });
  }
  const budget = maxLines - 8 - blocked.length;
  if (steps.length > budget) {
    elided += steps.length - budget;
    steps = steps.slice(steps.length - budget);
  }
  const kind = outcome.fault?.kind ?? 'outcome';
  const [title, bang] = HEADINGS[kind];
  const pad = (s: string): string => (s.length >= width ? `${s.slice(0, width - 2)}… ` : s.padEnd(width));
  const line = (t: number, text: string): string => '  ' + ' '.repeat(width * t) + text;
  const out: string[] = [` ${title}`, ''];
  out.push('  ' + trace.threads.map((_, i) => pad(`CPU${i}`)).join('').trimEnd());
  out.push('  ' + trace.threads.map((name) => pad(name)).join('').trimEnd());
  out.push('  ' + trace.threads.map(() => pad('----')).join('').trimEnd());
  if (elided > 0) out.push(`  (${elided} earlier or local steps not shown)`);
  for (const st of steps) {
    const w = where(st.at);
    const text = `${st.text};${w ? ` ${w}` : ''}`;
    out.push(line(st.thread, text.length > width * (n - st.thread) ? text.slice(0, width * (n - st.thread) - 1) + '…' : text));
  }
  for (const b of blocked) out.push(line(b.thread, b.text));
  out.push('', ` ${bang}`);
  const msg = outcome.fault?.message ?? outcome.text;
  if (msg) out.push(` ${msg}`);
  return out.join('\n');
}
