import { parentPort } from 'node:worker_threads';
import { parseMessage } from '../mail/parse.js';
import { reasonOf } from '../errors.js';

/** Parses messages off the main thread; answers in the order it was asked. */
parentPort!.on('message', (msg: { id: number; bytes: Uint8Array }) => {
  const bytes = Buffer.from(msg.bytes.buffer, msg.bytes.byteOffset, msg.bytes.byteLength);
  parseMessage(bytes).then(
    (parsed) => parentPort!.postMessage({ id: msg.id, ok: true, parsed }),
    (err: unknown) => parentPort!.postMessage({ id: msg.id, ok: false, reason: reasonOf(err) }),
  );
});
