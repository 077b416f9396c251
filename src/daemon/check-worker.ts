import { parentPort, workerData } from 'node:worker_threads';
import { getHeapStatistics } from 'node:v8';
import { openDb, type Db } from '../store/db.js';
import { checkSeries } from '../check/check.js';
import { reasonOf } from '../errors.js';
import { warmDirectories, warmUp, type WarmUp } from './warm.js';
import type { CheckTask, CheckAnswer } from './pool.js';

/*
 * One check at a time on a worker thread, with its own connection to the store: checkSeries
 * records the check itself. Rules parse C with tree-sitter, which is CPU work that would
 * otherwise stall IMAP IDLE and lease renewal on the main thread.
 */
let db: Db | undefined;
// Warm up while idle (the C parser, the models of the files most series reach), so the first series does not wait for it.
const started = Date.now();
const warmData = (workerData as { warm: WarmUp }).warm;
const warm = warmUp(warmData).then(
  () => parentPort!.postMessage({ warmMs: Date.now() - started, error: null }),
  (err: unknown) => parentPort!.postMessage({ warmMs: Date.now() - started, error: reasonOf(err) }),
);

// Then the rest of the watched directories, one file at a time and only while no check runs.
let checking = 0;
let wake: (() => void) | null = null;
const idle = async (): Promise<void> => {
  await new Promise((r) => setImmediate(r));
  while (checking > 0) await new Promise<void>((r) => (wake = r));
};
void warm.then(() => warmDirectories(warmData, idle)).catch(() => undefined);

async function pauseForTests(): Promise<void> {
  // VFIO_REVIEW_PAUSE_AT=daemon-check: the SIGTERM test needs a check that is surely in progress.
  if (!(process.env.VFIO_REVIEW_PAUSE_AT ?? '').split(',').includes('daemon-check')) return;
  process.stderr.write('vfio-review: paused at daemon-check\n');
  await new Promise<never>(() => setInterval(() => undefined, 1 << 30));
}

parentPort!.on('message', (t: CheckTask) => {
  void (async (): Promise<CheckAnswer> => {
    try {
      checking++;
      db ??= openDb(t.dbPath);
      await warm;
      await pauseForTests();
      const r = await checkSeries(db, t.seriesId, { tree: t.tree, baseMap: t.baseMap, trigger: t.trigger, checkpatch: t.checkpatch });
      return { taskId: t.taskId, ok: true, status: r.apply.status, findings: r.findings.length, heapBytes: getHeapStatistics().used_heap_size };
    } catch (err) {
      return { taskId: t.taskId, ok: false, error: reasonOf(err) };
    } finally {
      checking--;
      if (checking === 0) {
        wake?.();
        wake = null;
      }
    }
  })().then((a) => parentPort!.postMessage(a));
});
