import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gitOk, spawnGit, type GitOptions } from './git.js';

/** One object as `git cat-file --batch` hands it over. */
export interface GitObject {
  oid: string;
  type: string;
  data: Buffer;
}

const HEADER = /^(?<oid>[0-9a-f]{40}|[0-9a-f]{64}) (?<type>[a-z]+) (?<size>\d+)$/;
const CLOSE_GRACE_MS = 5_000;

/**
 * One long-running `git cat-file --batch` that answers every object read of an apply run:
 * resolving base refs and reading the tree objects along the paths a patch touches. Spawning
 * git costs ~3.5 ms; a request to the running process costs ~0.1 ms. Requests are answered
 * in order (cat-file flushes after each object when stdout is a pipe).
 */
export class ObjectReader {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #waiting: { resolve: (o: GitObject | null) => void; reject: (e: Error) => void }[] = [];
  #buf: Buffer = Buffer.alloc(0);
  #failed: Error | null = null;
  #stderr = '';
  readonly #closed: Promise<void>;

  constructor(opts: GitOptions) {
    this.#child = spawnGit(['cat-file', '--batch'], opts);
    this.#child.stdout.on('data', (b: Buffer) => {
      this.#buf = this.#buf.length ? Buffer.concat([this.#buf, b]) : b;
      this.#drain();
    });
    this.#child.stderr.on('data', (b: Buffer) => {
      if (this.#stderr.length < 4096) this.#stderr += b.toString('utf8');
    });
    // A write after the child died raises EPIPE here; the 'close' handler reports the death.
    this.#child.stdin.on('error', () => undefined);
    this.#closed = new Promise((resolve) => {
      this.#child.on('error', (e) => {
        this.#fail(e);
        resolve();
      });
      this.#child.on('close', (code, signal) => {
        const why = this.#stderr.split('\n').find((l) => l.trim() !== '');
        this.#fail(new Error(`git cat-file --batch exited (${signal ?? code})${why ? `: ${why}` : ''}`));
        resolve();
      });
    });
  }

  /** The object `name` (an id or any revision expression without newlines), or null when git says missing/ambiguous. */
  read(name: string): Promise<GitObject | null> {
    if (this.#failed) return Promise.reject(this.#failed);
    if (/[\n\r\0]/.test(name)) return Promise.reject(new Error(`object name with a line break: ${JSON.stringify(name)}`));
    return new Promise((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
      this.#child.stdin.write(`${name}\n`);
    });
  }

  /** Ends the process: closes its stdin, and kills it if it has not exited after a grace period. */
  async close(): Promise<void> {
    this.#child.stdin.end();
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), CLOSE_GRACE_MS);
    await this.#closed;
    clearTimeout(timer);
  }

  #fail(e: Error): void {
    this.#failed ??= e;
    for (const w of this.#waiting.splice(0)) w.reject(this.#failed);
  }

  #drain(): void {
    while (this.#waiting.length) {
      const nl = this.#buf.indexOf(0x0a);
      if (nl < 0) return;
      const m = HEADER.exec(this.#buf.subarray(0, nl).toString('latin1'));
      if (!m?.groups) {
        // "<name> missing" or "<name> ambiguous": no body follows.
        this.#buf = this.#buf.subarray(nl + 1);
        this.#waiting.shift()!.resolve(null);
        continue;
      }
      const end = nl + 1 + Number(m.groups.size);
      if (this.#buf.length < end + 1) return; // the body and its trailing newline are not all here yet
      // A copy, so the (possibly large) receive buffer is not kept alive by a small tree.
      const data = Buffer.from(this.#buf.subarray(nl + 1, end));
      this.#buf = this.#buf.subarray(end + 1);
      this.#waiting.shift()!.resolve({ oid: m.groups.oid!, type: m.groups.type!, data });
    }
  }
}

/** One entry of a tree object. */
export interface TreeEntry {
  /** As stored: `100644`, `100755`, `120000`, `160000`, `40000`. */
  mode: string;
  /** The name's bytes as stored, so an entry that is not changed is written back byte for byte. */
  name: Buffer;
  /** The name's bytes as a latin1 string: a lossless map key (paths from git's output are matched through {@link keyOf}). */
  key: string;
  oid: string;
}

/** A blob (or symlink or gitlink) entry at a path: what an index entry holds. */
export interface FileEntry {
  mode: string;
  oid: string;
}

export const isTreeMode = (mode: string): boolean => (parseInt(mode, 8) & 0o170000) === 0o040000;

/** The {@link TreeEntry.key} of a path component as git prints it (UTF-8). */
const keyOf = (component: string): string => Buffer.from(component, 'utf8').toString('latin1');

/** Parses a raw tree object: repeated `<mode> SP <name> NUL <binary id>`. */
export function parseTree(data: Buffer, hashBytes: number): TreeEntry[] {
  const out: TreeEntry[] = [];
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    const nul = data.indexOf(0x00, sp + 1);
    if (sp < 0 || nul < 0 || nul + 1 + hashBytes > data.length) throw new Error('malformed tree object');
    const name = data.subarray(sp + 1, nul);
    out.push({
      mode: data.subarray(i, sp).toString('latin1'),
      name,
      key: name.toString('latin1'),
      oid: data.subarray(nul + 1, nul + 1 + hashBytes).toString('hex'),
    });
    i = nul + 1 + hashBytes;
  }
  return out;
}

/** git's tree order: by name bytes, a directory compared as if its name ended in '/'. */
function compareEntries(a: TreeEntry, b: TreeEntry): number {
  const ka = isTreeMode(a.mode) ? Buffer.concat([a.name, Buffer.from('/')]) : a.name;
  const kb = isTreeMode(b.mode) ? Buffer.concat([b.name, Buffer.from('/')]) : b.name;
  return Buffer.compare(ka, kb);
}

function serializeTree(entries: TreeEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) parts.push(Buffer.from(`${e.mode} `, 'latin1'), e.name, Buffer.from([0]), Buffer.from(e.oid, 'hex'));
  return Buffer.concat(parts);
}

/** The id git gives an object of `type` with `content` (SHA-1 or SHA-256, by the repository's id length). */
export function objectId(type: string, content: Buffer, hexLength: number): string {
  const h = createHash(hexLength === 64 ? 'sha256' : 'sha1');
  h.update(`${type} ${content.length}\0`, 'latin1');
  h.update(content);
  return h.digest('hex');
}

/** A path edit: the new entry, or null to remove it. */
export type Change = FileEntry | null;

/** A new tree object made by {@link Trees.edit}, not yet in the object database. */
export interface NewTree {
  oid: string;
  content: Buffer;
}

interface Node {
  /** Whether `change` applies to this exact path. */
  set: boolean;
  change: Change;
  kids: Map<string, Node>;
}

class DirFileConflict extends Error {}

/** The first path below `node` that gets a file: the one git names when it meets a file in the way. */
function firstAdded(node: Node, path: string): string | null {
  for (const [name, kid] of node.kids) {
    const p = `${path}/${name}`;
    if (kid.set && kid.change) return p;
    const deeper = firstAdded(kid, p);
    if (deeper) return deeper;
  }
  return null;
}

/**
 * Reads and edits trees without an index: {@link edit} rewrites only the trees on the paths
 * of the changed files (a kernel patch touching one file makes ~4 new trees) and computes
 * their ids itself; {@link write} then stores them with one `git hash-object`, which checks
 * the ids agree. Parsed trees are kept for the whole run, so a series reads each directory
 * of the base once.
 */
export class Trees {
  readonly #reader: ObjectReader;
  readonly #parsed = new Map<string, TreeEntry[]>();

  constructor(reader: ObjectReader) {
    this.#reader = reader;
  }

  async entries(oid: string): Promise<TreeEntry[]> {
    const known = this.#parsed.get(oid);
    if (known) return known;
    const obj = await this.#reader.read(oid);
    if (!obj || obj.type !== 'tree') throw new Error(`tree ${oid} is not in the repository`);
    const entries = parseTree(obj.data, oid.length / 2);
    this.#parsed.set(oid, entries);
    return entries;
  }

  /** The content of blob `oid`, or null when the repository lacks it. */
  async blob(oid: string): Promise<Buffer | null> {
    const obj = await this.#reader.read(oid);
    return obj?.type === 'blob' ? obj.data : null;
  }

  /** The non-directory entry at `path` in tree `root`, or null when there is none (absent or a directory). */
  async lookup(root: string, path: string): Promise<FileEntry | null> {
    let oid = root;
    const parts = path.split('/');
    for (const [i, part] of parts.entries()) {
      const key = keyOf(part);
      const e = (await this.entries(oid)).find((x) => x.key === key);
      if (!e) return null;
      if (i === parts.length - 1) return isTreeMode(e.mode) ? null : { mode: e.mode, oid: e.oid };
      if (!isTreeMode(e.mode)) return null;
      oid = e.oid;
    }
    return null;
  }

  /**
   * Tree `root` with `changes` made. Directories left empty disappear, as in git. A file where
   * a directory is needed, or the reverse, is the conflict git's index reports as "'<path>'
   * appears as both a file and as a directory"; it is returned with that path.
   */
  async edit(root: string, changes: Map<string, Change>): Promise<{ oid: string; created: NewTree[] } | { conflict: string }> {
    if (changes.size === 0) return { oid: root, created: [] };
    const top: Node = { set: false, change: null, kids: new Map() };
    for (const [path, change] of changes) {
      let n = top;
      for (const part of path.split('/')) {
        let k = n.kids.get(part);
        if (!k) n.kids.set(part, (k = { set: false, change: null, kids: new Map() }));
        n = k;
      }
      n.set = true;
      n.change = change;
    }
    const created: NewTree[] = [];
    const hexLength = root.length;
    const walk = async (oid: string | null, node: Node, prefix: string): Promise<string | null> => {
      const byName = new Map<string, TreeEntry>();
      if (oid) for (const e of await this.entries(oid)) byName.set(e.key, e);
      for (const [name, kid] of node.kids) {
        const path = prefix + name;
        const key = keyOf(name);
        // git apply removes files before it adds any, so `a` -> `a/b` and `a/b` -> `a` both work.
        const cur = byName.get(key);
        if (kid.set && kid.change === null && cur && !isTreeMode(cur.mode)) byName.delete(key);
        if (kid.kids.size > 0) {
          const dir = byName.get(key);
          if (dir && !isTreeMode(dir.mode)) throw new DirFileConflict(firstAdded(kid, path) ?? path);
          const sub = await walk(dir?.oid ?? null, kid, `${path}/`);
          if (sub === null) byName.delete(key);
          else byName.set(key, { mode: '40000', name: Buffer.from(key, 'latin1'), key, oid: sub });
        }
        if (kid.set && kid.change) {
          const now = byName.get(key);
          if (now && isTreeMode(now.mode)) throw new DirFileConflict(path);
          byName.set(key, { mode: kid.change.mode, name: Buffer.from(key, 'latin1'), key, oid: kid.change.oid });
        }
      }
      if (byName.size === 0 && prefix !== '') return null;
      const entries = [...byName.values()].sort(compareEntries);
      const content = serializeTree(entries);
      const id = objectId('tree', content, hexLength);
      this.#parsed.set(id, entries);
      created.push({ oid: id, content });
      return id;
    };
    try {
      return { oid: (await walk(root, top, ''))!, created };
    } catch (err) {
      if (err instanceof DirFileConflict) return { conflict: err.message };
      throw err;
    }
  }

  /**
   * Stores `trees` in the object database with one `git hash-object -w -t tree`, which also
   * checks each object's format; throws when git's id for one differs from ours.
   */
  static write(trees: NewTree[], opts: GitOptions, scratchDir: string): Promise<void> {
    return writeObjects('tree', trees, opts, scratchDir);
  }
}

/**
 * Stores objects of one type with one `git hash-object -w -t <type>`, which checks each
 * object's format (fsck's checks: a commit with a bad ident or a tree with a `..` entry is
 * refused); throws when git's id for one differs from the one computed here.
 */
export async function writeObjects(type: 'tree' | 'commit', objects: NewTree[], opts: GitOptions, scratchDir: string): Promise<void> {
  if (objects.length === 0) return;
  const files = objects.map((t) => join(scratchDir, `${type}-${t.oid}`));
  await Promise.all(objects.map((t, i) => writeFile(files[i]!, t.content)));
  const out = await gitOk(['hash-object', '-w', '-t', type, '--no-filters', '--stdin-paths'], { ...opts, input: `${files.join('\n')}\n` });
  const ids = out.split('\n');
  objects.forEach((t, i) => {
    if (ids[i] !== t.oid) throw new Error(`git stored ${type} ${ids[i] ?? '(none)'} where ${t.oid} was computed`);
  });
}
