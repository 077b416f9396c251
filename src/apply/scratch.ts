import { copyFile, readFile, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { git, gitOk, type GitOptions, type ProcResult } from './git.js';
import type { Change, FileEntry, NewTree, Trees } from './objects.js';
import type { ParsedFile } from './types.js';

/** Every path a patch names, old and new, as git apply sees them after `-p1`. */
export function namedPaths(files: ParsedFile[]): Set<string> {
  const out = new Set<string>();
  for (const f of files) {
    if (f.oldPath) out.add(f.oldPath);
    if (f.newPath) out.add(f.newPath);
  }
  return out;
}

/** What applying left in the scratch index, as a tree. */
export type ScratchTree = { oid: string; created: NewTree[] } | { conflict: string };

/**
 * The index one patch is applied to: only the entries of the paths the patch names, taken
 * from the tree it applies to, instead of the whole tree. `git apply --cached` looks at the
 * index only at the paths it patches (does it exist, what blob is it), so it behaves the same
 * on this index as on a full one, with two exceptions handled here: a path git names that the
 * parser missed ({@link widen}, from git's own `Checking patch` lines), and a file added where
 * the tree has a directory or the reverse, which a full index refuses and {@link Trees.edit}
 * reports. A kernel index is 8 MB (78k entries): git reads and rewrites it, SHA-1 included,
 * in ~45 ms per command; this one has a handful of entries.
 *
 * A copy of the index as loaded is kept, for the reverse check against the pre-image after a
 * forward apply, and to start over after a failed 3-way merge.
 */
export class ScratchIndex {
  readonly #trees: Trees;
  readonly #opts: GitOptions;
  readonly #file: string;
  readonly #saved: string;
  readonly #root: string;
  readonly #entries = new Map<string, FileEntry>();
  readonly #asked = new Set<string>();

  /** `file` is this attempt's private index path; `root` the tree the patch applies to. */
  constructor(trees: Trees, opts: GitOptions, file: string, root: string) {
    this.#trees = trees;
    this.#file = file;
    this.#saved = `${file}.pre`;
    this.#opts = { ...opts, env: { ...opts.env, GIT_INDEX_FILE: file } };
    this.#root = root;
  }

  /** Loads the entries `root` has for `paths` into a fresh index, and saves a copy of it. */
  async load(paths: Iterable<string>): Promise<void> {
    await this.#add(paths);
    await this.#write();
  }

  /**
   * Adds the entries of `paths` (names git printed) that were not asked for yet and that the
   * tree has; rewrites the index and returns true when there was any.
   */
  async widen(paths: Iterable<string>): Promise<boolean> {
    const added = await this.#add(paths);
    if (added) await this.#write();
    return added;
  }

  /** `git apply --cached <args>` on the index, or with `pre` on the saved copy (only for `--check`). */
  apply(args: string[], diff: string, on: 'index' | 'pre' = 'index'): Promise<ProcResult> {
    const opts = on === 'pre' ? { ...this.#opts, env: { ...this.#opts.env, GIT_INDEX_FILE: this.#saved } } : this.#opts;
    return git(['apply', '--cached', ...args], { ...opts, input: diff });
  }

  /**
   * False when `git apply --reverse` cannot succeed on the index as loaded, which saves that git
   * run for most patches: a reverse apply must find every line a hunk adds, exactly (no fuzz,
   * no whitespace fixing), in the file as it was. Only plain modifications of text files are
   * judged, and lines are compared with trailing white space dropped, so it never says false
   * where git would say yes; anything else is true (let git decide).
   */
  async mayReverse(files: ParsedFile[]): Promise<boolean> {
    for (const f of files) {
      if (f.binary || f.change !== 'modified' || !f.oldPath || f.oldPath !== f.newPath) return true;
      const added = f.hunks.flatMap((h) => h.added);
      if (added.length === 0) continue;
      const e = this.#entries.get(f.oldPath);
      const blob = e && (await this.#trees.blob(e.oid));
      if (!blob) return true;
      const lines = new Set(blob.toString('utf8').split('\n').map((l) => l.trimEnd()));
      if (!added.every((l) => lines.has(l.trimEnd()))) return false;
    }
    return true;
  }

  /** Puts the index back as loaded (after a conflicted 3-way merge left unmerged entries). */
  async restore(): Promise<void> {
    if (this.#entries.size === 0) await rm(this.#file, { force: true });
    else await copyFile(this.#saved, this.#file);
  }

  /** The tree `root` with what git did to the index made to it; a directory/file clash is returned as a conflict. */
  async tree(): Promise<ScratchTree> {
    const read = await this.#readIndex();
    if ('conflict' in read) return read;
    const after = read.entries;
    const changes = new Map<string, Change>();
    for (const path of this.#entries.keys()) if (!after.has(path)) changes.set(path, null);
    for (const [path, e] of after) {
      const was = this.#entries.get(path);
      if (!was || was.mode !== e.mode || was.oid !== e.oid) changes.set(path, e);
    }
    return this.#trees.edit(this.#root, changes);
  }

  /**
   * The index's entries. The index file is read directly when it is a plain version 2 or 3 index
   * (what `update-index` and `apply --cached` write here: the hardening config turns split indexes
   * off); anything else (version 4 from a repository's `index.version`, an unknown layout) is
   * asked of `git ls-files`. Saves a git process per patch.
   */
  async #readIndex(): Promise<{ entries: Map<string, FileEntry> } | { conflict: string }> {
    const buf = await readFile(this.#file).catch(() => null);
    const parsed = buf ? parseIndex(buf) : null;
    const records = parsed ?? (await this.#lsFiles());
    const entries = new Map<string, FileEntry>();
    for (const r of records) {
      if (r.stage !== 0) return { conflict: `${r.path}: unmerged after apply` };
      entries.set(r.path, { mode: r.mode, oid: r.oid });
    }
    return { entries };
  }

  async #lsFiles(): Promise<IndexRecord[]> {
    const out = await gitOk(['ls-files', '--stage', '-z'], this.#opts);
    const records: IndexRecord[] = [];
    for (const rec of out.split('\0')) {
      if (rec === '') continue;
      const m = /^(?<mode>\d+) (?<oid>[0-9a-f]+) (?<stage>\d)\t(?<path>.*)$/s.exec(rec);
      if (!m?.groups) throw new Error(`unexpected ls-files line: ${JSON.stringify(rec.slice(0, 200))}`);
      records.push({ mode: m.groups.mode!, oid: m.groups.oid!, stage: Number(m.groups.stage), path: m.groups.path! });
    }
    return records;
  }

  async #add(paths: Iterable<string>): Promise<boolean> {
    let added = false;
    for (const p of paths) {
      if (this.#asked.has(p)) continue;
      this.#asked.add(p);
      const e = await this.#trees.lookup(this.#root, p);
      if (!e) continue;
      this.#entries.set(p, e);
      added = true;
    }
    return added;
  }

  async #write(): Promise<void> {
    await rm(this.#file, { force: true });
    if (this.#entries.size === 0) {
      await rm(this.#saved, { force: true });
      return;
    }
    const buf = serializeIndex([...this.#entries].map(([path, e]) => ({ path, mode: e.mode, oid: e.oid, stage: 0 })));
    if (buf) {
      await writeFile(this.#file, buf, { flag: 'wx' });
    } else {
      const input = [...this.#entries].map(([path, e]) => `${e.mode} ${e.oid}\t${path}\0`).join('');
      await gitOk(['update-index', '-z', '--index-info'], { ...this.#opts, input });
    }
    await copyFile(this.#file, this.#saved);
  }
}

/** One index entry as `ls-files --stage` shows it. */
export interface IndexRecord {
  mode: string;
  oid: string;
  stage: number;
  path: string;
}

/**
 * The entries of a version 2 or 3 index file (git's index-format.txt), or null for anything else
 * (version 4, a bad signature, a truncated entry, an object id of neither 20 nor 32 bytes): the
 * caller then asks git. Extensions after the entries are not needed and not read.
 */
export function parseIndex(buf: Buffer): IndexRecord[] | null {
  if (buf.length < 12 || buf.toString('latin1', 0, 4) !== 'DIRC') return null;
  const version = buf.readUInt32BE(4);
  if (version !== 2 && version !== 3) return null;
  const count = buf.readUInt32BE(8);
  // The trailing checksum is the hash of everything before it: its length tells the object id length.
  const idLen = buf.length >= 32 && createHash('sha1').update(buf.subarray(0, buf.length - 20)).digest().equals(buf.subarray(buf.length - 20)) ? 20 : 32;
  const out: IndexRecord[] = [];
  let pos = 12;
  for (let i = 0; i < count; i++) {
    const fixed = 40 + idLen + 2;
    if (pos + fixed > buf.length) return null;
    const mode = buf.readUInt32BE(pos + 24);
    const oid = buf.toString('hex', pos + 40, pos + 40 + idLen);
    const flags = buf.readUInt16BE(pos + 40 + idLen);
    const extended = (flags & 0x4000) !== 0;
    if (extended && version < 3) return null;
    const nameStart = pos + fixed + (extended ? 2 : 0);
    const nameLen = flags & 0xfff;
    const end = nameLen < 0xfff ? nameStart + nameLen : buf.indexOf(0, nameStart);
    if (end < 0 || end > buf.length || buf[end] !== 0) return null;
    out.push({ mode: mode.toString(8), oid, stage: (flags >> 12) & 3, path: buf.toString('utf8', nameStart, end) });
    // Entries are NUL-padded to a multiple of 8 bytes (1 to 8 NULs).
    pos += Math.floor((end - pos + 8) / 8) * 8;
  }
  return out;
}

/** A path git would store in an index: relative, no empty, `.`, `..` or `.git` component, no NUL. */
const plainPath = (p: string): boolean =>
  p !== '' && !p.includes('\0') && p.split('/').every((c) => c !== '' && c !== '.' && c !== '..' && c.toLowerCase() !== '.git');

/**
 * A version 2 index file holding `records` (stage 0, stat data zero: `apply --cached` never looks
 * at a work tree), as `git update-index --index-info` would write it, or null when a record is
 * anything but a plain path with a 40- or 64-hex id and an octal mode (the caller then asks git,
 * which applies its own path checks). Saves a git process per patch.
 */
export function serializeIndex(records: IndexRecord[]): Buffer | null {
  const idLen = records[0]?.oid.length === 64 ? 32 : 20;
  const parts: Buffer[] = [];
  const head = Buffer.alloc(12);
  head.write('DIRC', 0, 'latin1');
  head.writeUInt32BE(2, 4);
  head.writeUInt32BE(records.length, 8);
  parts.push(head);
  const sorted = records.map((r) => ({ ...r, name: Buffer.from(r.path, 'utf8') })).sort((a, b) => Buffer.compare(a.name, b.name));
  for (let i = 0; i < sorted.length; i++) {
    const r = sorted[i]!;
    if (!plainPath(r.path) || r.stage !== 0 || !/^[0-7]{5,6}$/.test(r.mode) || r.oid.length !== idLen * 2 || !/^[0-9a-f]+$/.test(r.oid)) return null;
    if (i > 0 && Buffer.compare(sorted[i - 1]!.name, r.name) === 0) return null;
    const fixed = 40 + idLen + 2;
    const len = Math.floor((fixed + r.name.length + 8) / 8) * 8;
    const e = Buffer.alloc(len);
    e.writeUInt32BE(parseInt(r.mode, 8), 24);
    e.write(r.oid, 40, 'hex');
    e.writeUInt16BE(Math.min(r.name.length, 0xfff), 40 + idLen);
    r.name.copy(e, fixed);
    parts.push(e);
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([body, createHash(idLen === 32 ? 'sha256' : 'sha1').update(body).digest()]);
}
