import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initTreeFromDebian, isAlive } from '../../src/apply/tree.js';

/** The project root (two levels above this file). */
export const projectRoot = fileURLToPath(new URL('../..', import.meta.url));

const PKG = 'linux-source-6.1';
const LOCK_WAIT_MS = 30 * 60_000;

/**
 * Takes `lock` by creating it exclusively (O_EXCL) with our pid inside. Vitest runs test files
 * in several forked workers, so two files asking for the tree at once must not both extract it.
 * A lock whose pid is dead (a killed run) is broken.
 */
async function withLock<T>(lock: string, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const fh = await open(lock, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number((await readFile(lock, 'utf8').catch(() => '')).trim());
      // An empty file is a holder between open and write; only a named dead pid is stale.
      if (Number.isInteger(pid) && pid > 0 && !isAlive(pid)) {
        await unlink(lock).catch(() => undefined);
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  try {
    return await fn();
  } finally {
    await unlink(lock).catch(() => undefined);
  }
}

let pending: Promise<string> | undefined;

/**
 * Debian's linux-source-6.1 as a git repository in `<project root>/.cache/linux-6.1`,
 * provisioned on first use (installing the package if needed; about a minute) and reused after.
 * Returns the tree's path. Tests calling this need a long hook timeout.
 */
export function kernelTree(): Promise<string> {
  pending ??= (async () => {
    const cache = join(projectRoot, '.cache');
    await mkdir(cache, { recursive: true });
    const dir = join(cache, 'linux-6.1');
    await withLock(join(cache, 'linux-6.1.lock'), () => initTreeFromDebian(PKG, dir));
    return dir;
  })();
  return pending;
}
