import type { Dirent } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { VrError } from '../errors.js';
import type { RawMail } from './mbox-source.js';

type Sub = 'cur' | 'new';
interface Entry {
  sub: Sub;
  name: string;
}

function maildirError(what: string, step: string, err: unknown): VrError {
  const why = err instanceof Error ? err.message : String(err);
  return new VrError('MAILDIR_READ', `cannot read Maildir ${what}: ${why}`, { step, cause: err });
}

function isErrno(err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code;
}

async function list(dir: string, sub: Sub): Promise<Entry[] | null> {
  let dirents: Dirent[];
  try {
    dirents = await readdir(join(dir, sub), { withFileTypes: true });
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw maildirError(join(dir, sub), 'list', err);
  }
  return dirents
    // Maildir readers skip dot files (MUA bookkeeping); directories are never messages.
    .filter((d) => !d.name.startsWith('.') && (d.isFile() || d.isSymbolicLink()))
    .map((d) => ({ sub, name: d.name }));
}

/** Code-unit order, not localeCompare: the order must not depend on the host's locale. */
function byName(a: Entry, b: Entry): number {
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  if (a.sub === b.sub) return 0;
  return a.sub === 'cur' ? -1 : 1;
}

/**
 * Yields every message in a Maildir's `cur/` and `new/` (never `tmp/`, where
 * deliveries are still being written), in one order by file name across both
 * directories: unique names begin with the delivery time, so this is roughly
 * delivery order whether or not a message has been seen, and it is the same on
 * every run. `locator` is `cur/<name>` or `new/<name>`.
 *
 * The listing is a snapshot taken before the first message is read. A missing
 * `cur/` or `new/` counts as empty, but a directory with neither is not a Maildir.
 *
 * @throws VrError MAILDIR_READ naming the directory or file that could not be read.
 */
export async function* readMaildir(dir: string): AsyncGenerator<RawMail> {
  try {
    const st = await stat(dir);
    if (!st.isDirectory()) throw new Error('not a directory');
  } catch (err) {
    throw maildirError(dir, 'open', err);
  }
  const [cur, fresh] = await Promise.all([list(dir, 'cur'), list(dir, 'new')]);
  if (cur === null && fresh === null) throw maildirError(dir, 'open', new Error('no cur/ or new/ subdirectory'));
  const entries = [...(cur ?? []), ...(fresh ?? [])].sort(byName);
  for (const { sub, name } of entries) {
    const locator = `${sub}/${name}`;
    let bytes: Buffer;
    try {
      bytes = await readFile(join(dir, sub, name));
    } catch (err) {
      // Not skipped: a message moved away mid-read (another MUA marking it seen) must be
      // visible to the caller, who can re-list; silently losing it would look like success.
      throw maildirError(join(dir, locator), 'read', err);
    }
    yield { bytes, locator };
  }
}
