/**
 * Watching one step of a campaign: CPU time, an idle process waiting on a promise nothing will
 * settle, and a frozen event loop (a regex or a parser spinning synchronously).
 */
import { Worker } from 'node:worker_threads';

export type Outcome<T> = { kind: 'ok'; value: T } | { kind: 'threw'; error: unknown } | { kind: 'stuck'; why: 'cpu' | 'idle' | 'wall' };
export type Settled<T> = Outcome<T> & { cpuMs: number; wallMs: number; pending: Promise<T> };
export interface Limits { cpuMs: number; idleMs: number; wallMs: number }

const POLL_MS = 250;
export const cpuNow = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/**
 * Starts `run` and awaits it under watch (started in here: an async function's synchronous part,
 * a whole fast-path parse included, runs before it returns its promise). Time is judged as this process's CPU time, so a machine loaded by others
 * does not turn slow cases into hangs. A promise still pending while the process does nothing
 * (under 2% of a core) for `idleMs` has nothing left to settle it, and is given up; `wallMs` is
 * the backstop. The referenced poll timer also keeps Node from draining its event loop and
 * exiting 0 mid-campaign when an awaited promise holds no handle (found the hard way).
 */
export async function settle<T>(run: () => Promise<T>, limits: Limits): Promise<Settled<T>> {
  const cpu0 = cpuNow();
  const wall0 = performance.now();
  const p = run();
  let poll: NodeJS.Timeout | undefined;
  const stuck = new Promise<Outcome<T>>((res) => {
    let last = cpu0;
    let busy = wall0;
    poll = setInterval(() => {
      const now = performance.now();
      const cpu = cpuNow();
      if (cpu - last > 0.02 * POLL_MS) busy = now;
      last = cpu;
      if (cpu - cpu0 > limits.cpuMs) res({ kind: 'stuck', why: 'cpu' });
      else if (now - busy >= limits.idleMs) res({ kind: 'stuck', why: 'idle' });
      else if (now - wall0 > limits.wallMs) res({ kind: 'stuck', why: 'wall' });
    }, POLL_MS);
  });
  try {
    const out = await Promise.race([
      p.then((value): Outcome<T> => ({ kind: 'ok', value }), (error: unknown): Outcome<T> => ({ kind: 'threw', error })),
      stuck,
    ]);
    return { ...out, cpuMs: Math.round(cpuNow() - cpu0), wallMs: Math.round(performance.now() - wall0), pending: p };
  } finally {
    clearInterval(poll);
  }
}

// A timer cannot fire while the parser spins synchronously, so a separate thread watches a shared
// deadline and, past it, prints the case and kills the process: a frozen campaign reports nothing.
const WATCHDOG = `const { workerData: w } = require('node:worker_threads'); const { writeSync } = require('node:fs');
const cell = new Int32Array(w.sab);
setInterval(() => { const d = Atomics.load(cell, 1); if (d && Date.now() / 1000 - w.base > d) {
  const i = Atomics.load(cell, 0); const what = Atomics.load(cell, 2) ? 'finish() after case ' + i : 'case ' + i;
  writeSync(2, 'vfio-review fuzz: ' + what + ' (seed ' + w.seed + ') froze for over ' + w.limit + ' s; replay: ' + w.replay.replace('{i}', String(i)) + '\\n');
  process.kill(process.pid, 'SIGKILL'); } }, 500);`;

export class Watchdog {
  readonly #cell: Int32Array | null;
  readonly #worker: Worker | null;
  readonly #base = Math.floor(Date.now() / 1000);
  /** `replay` is the command that replays one case, `{i}` standing for its index. */
  constructor(seed: number, readonly stallMs: number, replay = `vfio-review fuzz --seed ${seed} --start {i} --cases 1`) {
    const sab = stallMs > 0 ? new SharedArrayBuffer(12) : null;
    this.#cell = sab && new Int32Array(sab);
    this.#worker = sab && new Worker(WATCHDOG, { eval: true, workerData: { sab, seed, replay, base: this.#base, limit: Math.ceil(stallMs / 1000) } });
    this.#worker?.unref();
  }
  arm(index: number, finishing: boolean, ms = this.stallMs): void {
    if (!this.#cell) return;
    Atomics.store(this.#cell, 0, index);
    Atomics.store(this.#cell, 2, finishing ? 1 : 0);
    Atomics.store(this.#cell, 1, Math.ceil((Date.now() + ms) / 1000) - this.#base);
  }
  disarm(): void { if (this.#cell) Atomics.store(this.#cell, 1, 0); }
  async stop(): Promise<void> { await this.#worker?.terminate(); }
}

