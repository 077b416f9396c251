import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { parseMessage, type ParsedMessage } from '../mail/parse.js';
import { reasonOf } from '../errors.js';

export type ParseOutcome = { ok: true; parsed: ParsedMessage } | { ok: false; reason: string };

/** Parses in-process: what the daemon uses for a trickle of mail, and the fallback. */
export async function parseInline(bytes: Buffer): Promise<ParseOutcome> {
  try {
    return { ok: true, parsed: await parseMessage(bytes) };
  } catch (err) {
    return { ok: false, reason: reasonOf(err) };
  }
}

/**
 * Worker threads that parse while the main thread does the SQLite writes; for
 * backfills, where parsing and storing each cost about half the time. The
 * sources are TypeScript, so each worker's entry registers tsx first.
 */
export class ParsePool {
  private readonly workers: Worker[] = [];
  private readonly waiting = new Map<number, { worker: number; bytes: Buffer; resolve: (o: ParseOutcome) => void }>();
  private next = 0;
  private failed: Error | null = null;

  constructor(size = Math.max(1, availableParallelism() - 1)) {
    for (let i = 0; i < size; i++) {
      const w = new Worker(new URL('./parse-worker-entry.mjs', import.meta.url));
      w.on('message', (m: { id: number } & ParseOutcome) => {
        const job = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        job?.resolve(m);
      });
      // A dead worker must not lose messages: everything it held is parsed inline instead.
      const rescue = (err: Error): void => {
        if (!this.failed) process.emitWarning(`parse worker failed, parsing in-process: ${err.message}`);
        this.failed ??= err;
        for (const [id, job] of this.waiting) {
          if (job.worker !== i) continue;
          this.waiting.delete(id);
          void parseInline(job.bytes).then(job.resolve);
        }
      };
      w.on('error', rescue);
      w.on('exit', (code) => code !== 0 && rescue(new Error(`parse worker exited with ${code}`)));
      this.workers.push(w);
    }
  }

  parse(bytes: Buffer): Promise<ParseOutcome> {
    if (this.failed) return parseInline(bytes);
    const id = this.next++;
    const worker = id % this.workers.length;
    return new Promise((resolve) => {
      this.waiting.set(id, { worker, bytes, resolve });
      this.workers[worker]!.postMessage({ id, bytes });
    });
  }

  async close(): Promise<void> {
    this.failed ??= new Error('closed');
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
