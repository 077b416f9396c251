import { existsSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { composeRaw } from '../mime.js';
import type { DeliverResult, OutboxRow, Sink } from '../types.js';

/**
 * Dry runs: each reply printed as the exact message bytes the mail sinks would send, and, with a
 * directory, also written to `<key>.eml` (written to a temp name and renamed, so a file that exists
 * is a whole reply and `alreadyDelivered` can trust it).
 */
export function stdoutSink(opts: { out?: NodeJS.WritableStream; dir?: string | null } = {}): Sink {
  const out = opts.out ?? process.stdout;
  const dir = opts.dir ?? null;
  return {
    name: 'stdout',
    async deliver(reply: OutboxRow): Promise<DeliverResult> {
      const raw = (await composeRaw(reply)).toString('utf8').replace(/\r\n/g, '\n');
      if (dir) {
        await mkdir(dir, { recursive: true });
        const file = join(dir, `${reply.key}.eml`);
        await writeFile(`${file}.tmp`, raw);
        await rename(`${file}.tmp`, file);
      }
      out.write(`${'='.repeat(72)}\n${raw}${raw.endsWith('\n') ? '' : '\n'}`);
      return { ok: true, ...(dir ? { remoteId: join(dir, `${reply.key}.eml`) } : {}) };
    },
    async alreadyDelivered(reply: OutboxRow): Promise<boolean> {
      return dir !== null && existsSync(join(dir, `${reply.key}.eml`));
    },
  };
}
