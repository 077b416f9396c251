import { Worker } from 'node:worker_threads';
import type { BaseMap } from '../apply/base.js';
import type { WarmUp } from './warm.js';

/** What a worker is asked to do: check one series version and record the check. */
export interface CheckTask {
  taskId: number;
  dbPath: string;
  seriesId: number;
  tree: string;
  baseMap: BaseMap;
  trigger: 'daemon' | 'rerun';
  checkpatch: boolean;
}

export type CheckAnswer =
  | { taskId: number; ok: true; status: string; findings: number; heapBytes: number }
  | { taskId: number; ok: false; error: string };

/** Young generation of a check worker's heap (see {@link CheckPool}); the bench's `--max-semi-space-size=32` matches it. */
export const WORKER_YOUNG_GENERATION_MB = 96;

/** Thrown for a task whose worker was stopped (shutdown) or died. */
export class WorkerGone extends Error {
  override readonly name = 'WorkerGone';
  constructor(
    message: string,
    readonly stopped: boolean,
  ) {
    super(message);
  }
}

interface Slot {
  worker: Worker;
  task: { id: number; resolve: (a: CheckAnswer) => void; reject: (e: Error) => void } | null;
  /** Set when we terminate it on purpose. */
  stopping: boolean;
  /** Tasks it has answered. */
  done: number;
}

export interface PoolOptions {
  warm: WarmUp;
  /**
   * A worker is replaced after this many checks, or once its heap passes maxHeapBytes: the rules'
   * model cache lives as long as the thread and only grows. Defaults 500 and 1.5 GB.
   */
  maxTasks?: number;
  maxHeapBytes?: number;
  /** A worker finished its warm-up (error: what failed; the worker still works, only slower at first). */
  onWarm?: (e: { ms: number; error: string | null }) => void;
}

/**
 * A fixed number of worker threads, one check each at a time. A worker that dies (an exception
 * outside the task, out of memory) fails only its task and is replaced on the next run. Threads
 * rather than processes: a SIGKILL of the daemon takes them with it, so no orphan can go on writing
 * checks for a lease nobody renews.
 */
export class CheckPool {
  readonly size: number;
  readonly #opts: PoolOptions;
  readonly #slots: (Slot | null)[];
  #next = 1;
  #closed = false;

  constructor(size: number, opts: PoolOptions) {
    this.size = Math.max(1, size);
    this.#opts = opts;
    this.#slots = new Array<Slot | null>(this.size).fill(null);
    // Started at once, so loading the sources and the C parser is done before the first series comes.
    for (let i = 0; i < this.size; i++) this.#spawn(i);
  }

  /** Slots with no task. */
  get idle(): number {
    return this.#slots.filter((s) => !s?.task).length;
  }

  #spawn(i: number): Slot {
    const worker = new Worker(new URL('./check-worker-entry.mjs', import.meta.url), {
      workerData: { warm: this.#opts.warm },
      // A check allocates fast and keeps little: a young generation of 96 MB (32 MB semi-spaces,
      // V8's default is 16) halves the scavenges. `npm run bench` runs its checks with the same.
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
    });
    const slot: Slot = { worker, task: null, stopping: false, done: 0 };
    worker.on('message', (a: CheckAnswer | { warmMs: number; error: string | null }) => {
      if ('warmMs' in a) return void this.#opts.onWarm?.({ ms: a.warmMs, error: a.error });
      const t = slot.task;
      if (!t || t.id !== a.taskId) return;
      slot.task = null;
      slot.done++;
      if (a.ok && !this.#closed && (slot.done >= (this.#opts.maxTasks ?? 500) || a.heapBytes > (this.#opts.maxHeapBytes ?? 1.5 * 2 ** 30))) {
        // Replaced before anyone can give it the next task; the new one warms up meanwhile.
        slot.stopping = true;
        void worker.terminate();
        this.#spawn(i);
      }
      t.resolve(a);
    });
    const gone = (why: string): void => {
      if (this.#slots[i] === slot) this.#slots[i] = null;
      const t = slot.task;
      slot.task = null;
      t?.reject(new WorkerGone(slot.stopping ? 'check stopped' : `check worker died: ${why}`, slot.stopping));
    };
    worker.on('error', (err) => gone(err.message));
    worker.on('exit', (code) => gone(`exit code ${code}`));
    this.#slots[i] = slot;
    return slot;
  }

  /** Runs a task on an idle worker. Rejects with WorkerGone when the worker stops or dies. */
  run(task: Omit<CheckTask, 'taskId'>): { taskId: number; answer: Promise<CheckAnswer> } {
    if (this.#closed) throw new WorkerGone('pool closed', true);
    const i = this.#slots.findIndex((s) => !s?.task);
    if (i < 0) throw new Error('no idle check worker');
    const slot = this.#slots[i] ?? this.#spawn(i);
    const taskId = this.#next++;
    const answer = new Promise<CheckAnswer>((resolve, reject) => {
      slot.task = { id: taskId, resolve, reject };
    });
    slot.worker.postMessage({ ...task, taskId } satisfies CheckTask);
    return { taskId, answer };
  }

  /** Stops the worker running this task (its promise rejects with WorkerGone, stopped = true). */
  async cancel(taskId: number): Promise<void> {
    const slot = this.#slots.find((s) => s?.task?.id === taskId);
    if (!slot) return;
    slot.stopping = true;
    await slot.worker.terminate();
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(
      this.#slots.map(async (s) => {
        if (!s) return;
        s.stopping = true;
        await s.worker.terminate();
      }),
    );
  }
}
