import { execFileSync } from 'node:child_process';
import { gitOk, hermeticEnv, makeWorkspace, HARDENING_CONFIG, type GitOptions } from '../apply/git.js';
import { buildModel, createModelCache, type ModelCache, type SourceReader, type TreeModel } from '../cmodel/index.js';
import { parseDiff } from '../apply/safety.js';
import type { ApplyResult, ParsedFile } from '../apply/types.js';
import { lineDiff } from './linediff.js';
import type { ChangedFile, Report, RuleContext } from './types.js';

/** One patch's view, before `report` is bound. */
export type PatchView = Omit<RuleContext, 'report'>;

/** One model cache per process run: the base files of consecutive patches are parsed once. */
const sharedCache: ModelCache = createModelCache();

const isC = (p: string): boolean => /\.[ch]$/.test(p);

/** Lazily builds (once) the model of a patch's C files over a tree reader. */
export function lazyModel(files: ChangedFile[], side: 'before' | 'after', reader: SourceReader | null): () => Promise<TreeModel | null> {
  let built: Promise<TreeModel | null> | null = null;
  return () => {
    if (!reader) return Promise.resolve(null);
    const paths = files
      .filter((f) => (side === 'before' ? f.status !== 'added' : f.status !== 'deleted'))
      .map((f) => (side === 'before' ? (f.oldPath ?? f.path) : f.path))
      .filter(isC);
    if (paths.length === 0) return Promise.resolve(null);
    built ??= buildModel(reader, paths, { cache: sharedCache });
    return built;
  };
}

/** Added/removed line sets and added text of one file diff (from hunks with exact line numbers). */
export function changedFile(f: ParsedFile): ChangedFile {
  const added = new Set<number>();
  const removed = new Set<number>();
  const addedText = new Map<number, string>();
  for (const h of f.hunks) {
    let o = h.oldStart;
    let n = h.newStart;
    for (const l of h.lines) {
      const c = l[0];
      if (c === '+') {
        added.add(n);
        addedText.set(n, l.slice(1));
        n++;
      } else if (c === '-') {
        removed.add(o);
        o++;
      } else if (c === ' ' || l === '') {
        o++;
        n++;
      }
    }
  }
  const status = f.change === 'added' ? 'added' : f.change === 'deleted' ? 'deleted' : f.change === 'renamed' ? 'renamed' : 'modified';
  return { path: (f.newPath ?? f.oldPath)!, oldPath: f.oldPath, status, added, removed, addedText };
}

/** A view built from two in-memory versions of some files (rule tests, and anything without git). */
export function viewFromSources(
  patch: PatchView['patch'],
  files: Record<string, { before: string | null; after: string | null }>,
  /** Unchanged files of the pretend tree (headers, siblings), the same before and after. */
  tree?: Record<string, string>,
): PatchView {
  const changed: ChangedFile[] = [];
  for (const [path, v] of Object.entries(files)) {
    const d = lineDiff(v.before ?? '', v.after ?? '');
    const lines = (v.after ?? '').split('\n');
    const addedText = new Map<number, string>();
    for (const n of d.added) addedText.set(n, lines[n - 1] ?? '');
    changed.push({
      path,
      oldPath: v.before === null ? null : path,
      status: v.before === null ? 'added' : v.after === null ? 'deleted' : 'modified',
      added: d.added,
      removed: d.removed,
      addedText,
    });
  }
  const reader = (side: 'before' | 'after'): SourceReader => ({
    readFile: (p) => files[p]?.[side] ?? tree?.[p] ?? null,
    // Entry names (not paths) of the directory, as SourceReader.list promises.
    list: (dir) => {
      const d = dir.endsWith('/') ? dir : `${dir}/`;
      const names = [...new Set([...Object.keys(files), ...Object.keys(tree ?? {})])].filter((p) => p.startsWith(d)).map((p) => p.slice(d.length));
      return [...new Set(names.map((n) => n.split('/')[0]!))];
    },
  });
  return {
    patch,
    applied: true,
    files: changed,
    before: (p) => files[p]?.before ?? null,
    after: (p) => files[p]?.after ?? null,
    model: (() => {
      const b = lazyModel(changed, 'before', reader('before'));
      const a = lazyModel(changed, 'after', reader('after'));
      return (side: 'before' | 'after') => (side === 'before' ? b() : a());
    })(),
  };
}

/** Reads many blobs with one `git cat-file --batch` (sizes are byte counts); a missing one is null. */
export function readBlobsSync(gitDir: string, home: string, specs: string[], cwd?: string): Map<string, string | null> {
  const out = new Map<string, string | null>();
  if (specs.length === 0) return out;
  const buf = execFileSync('git', [...HARDENING_CONFIG, '--git-dir', gitDir, 'cat-file', '--batch'], {
    input: specs.join('\n') + '\n',
    env: hermeticEnv(home),
    ...(cwd ? { cwd } : {}),
    maxBuffer: 512 * 1024 * 1024,
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  let pos = 0;
  for (const spec of specs) {
    const nl = buf.indexOf(0x0a, pos);
    const head = buf.subarray(pos, nl).toString('latin1');
    pos = nl + 1;
    // A missing object answers "<spec> missing"; a tree or commit is not a file.
    const m = /^[0-9a-f]+ (\w+) (\d+)$/.exec(head);
    if (!m) {
      out.set(spec, null);
      continue;
    }
    const size = Number(m[2]);
    out.set(spec, m[1] === 'blob' ? buf.subarray(pos, pos + size).toString('utf8') : null);
    pos += size + 1;
  }
  return out;
}

/**
 * `git diff -U0 -M parent commit` of each pair, with one `git diff-tree --stdin` fed
 * "<commit> <parent>" lines: git prints the commit's id before its diff against that parent (and
 * nothing for an empty one).
 */
async function diffPairs(opts: GitOptions, pairs: { parent: string; commit: string }[]): Promise<string[]> {
  if (pairs.length === 0) return [];
  const out = await gitOk(['diff-tree', '--stdin', '-p', '-U0', '--no-color', '--no-ext-diff', '-M'], {
    ...opts, input: pairs.map((p) => `${p.commit} ${p.parent}\n`).join(''), maxOutput: 512 * 1024 * 1024,
  });
  const diffs = pairs.map(() => '');
  let k = -1;
  const lines = out.split('\n');
  let acc: string[] = [];
  const flush = (): void => {
    if (k >= 0) diffs[k] = acc.join('\n');
    acc = [];
  };
  for (const line of lines) {
    const next = k + 1 < pairs.length && line === pairs[k + 1]!.commit;
    if (next) {
      flush();
      k++;
      continue;
    }
    // An empty pair prints nothing, so a later pair's line may come next.
    const later = /^[0-9a-f]{40,64}$/.test(line) ? pairs.findIndex((p, j) => j > k + 1 && line === p.commit) : -1;
    if (later > 0) {
      flush();
      k = later;
      continue;
    }
    acc.push(line);
  }
  flush();
  return diffs;
}

/** A path the readers pass to git: plain tree-relative names only (no `..`, no spaces or options). */
const safePath = (path: string): boolean => /^[\w./+-]+$/.test(path) && !path.includes('..') && !path.startsWith('-');

/**
 * One view per patch of an apply result: from git objects when the series
 * applied (exact line numbers even after a 3-way or fuzzy apply), from the
 * patch's own hunks when it did not (then only the added text is known).
 */
export async function viewsFromApply(tree: string, result: ApplyResult): Promise<PatchView[]> {
  const views: PatchView[] = [];
  const meta = (i: number) => {
    const p = result.patches[i]!;
    return { msgid: p.msgid ?? `patch-${p.index}`, index: p.index, subject: p.subject ?? '' };
  };
  const appliedAll = result.base !== null && result.patches.every((p) => p.status === 'missing' || p.commit !== null || p.status === 'already-applied');
  if (!appliedAll) {
    result.patches.forEach((p, i) => {
      if (p.status === 'missing') return;
      views.push({ patch: meta(i), applied: false, files: p.files.map(changedFile), before: () => null, after: () => null, model: async () => null });
    });
    return views;
  }
  const ws = await rulesWorkspace();
  {
    const gitDir = await treeGitDir(tree);
    const opts: GitOptions = { gitDir, workTree: ws.workTree, cwd: ws.workTree, home: ws.home };
    let parent = result.base!.commit;
    // Most files a model reads (headers, siblings) are the same at every commit of the series as at
    // its base: they are read once per base and process, not once per patch and side. What the
    // series changed so far is held in memory (`current`), so a series commit costs no git reads.
    const base = baseReader(gitDir, parent, ws.home);
    const current = new Map<string, string | null>();
    // Every patch's diff in one `git diff-tree --stdin`, every blob the views need in one cat-file.
    const pairs: { index: number; parent: string; commit: string }[] = [];
    for (let i = 0, at = parent; i < result.patches.length; i++) {
      const c = result.patches[i]!.commit;
      if (!c) continue;
      pairs.push({ index: i, parent: at, commit: c });
      at = c;
    }
    const diffs = await diffPairs(opts, pairs);
    const changedFiles = pairs.map((_, k) => parseDiff(diffs[k]!).files.map(changedFile));
    const specs = new Set<string>();
    const seen = new Set<string>();
    pairs.forEach((pr, k) => {
      for (const f of changedFiles[k]!) {
        if (f.oldPath && !seen.has(f.oldPath)) specs.add(`${pr.parent}:${f.oldPath}`);
        if (f.status !== 'deleted') specs.add(`${pr.commit}:${f.path}`);
      }
      for (const f of changedFiles[k]!) {
        seen.add(f.path);
        if (f.oldPath) seen.add(f.oldPath);
      }
    });
    // A spec is a line of cat-file's input, not an argument: any path without a line break is fine.
    const blobs = readBlobsSync(gitDir, ws.home, [...specs].filter((x) => !/[\r\n]/.test(x)), ws.workTree);
    for (let k = 0; k < pairs.length; k++) {
      const { index: i, commit } = pairs[k]!;
      parent = pairs[k]!.parent;
      const files = changedFiles[k]!;
      const old = (path: string): string | null => (current.has(path) ? current.get(path)! : (blobs.get(`${parent}:${path}`) ?? null));
      const before = new Map(files.map((f) => [f.path, f.oldPath ? old(f.oldPath) : null]));
      const after = new Map(files.map((f) => [f.path, f.status === 'deleted' ? null : (blobs.get(`${commit}:${f.path}`) ?? null)]));
      const atParent = new Map(current);
      for (const f of files) {
        if (f.oldPath && f.oldPath !== f.path) current.set(f.oldPath, null);
        current.set(f.path, after.get(f.path) ?? null);
      }
      const atCommit = new Map(current);
      const beforeModel = lazyModel(files, 'before', atParent.size ? seriesReader(base, atParent) : base);
      const afterModel = lazyModel(files, 'after', seriesReader(base, atCommit));
      views.push({
        patch: meta(i),
        applied: true,
        files,
        before: (path) => before.get(path) ?? null,
        after: (path) => after.get(path) ?? null,
        model: (side) => (side === 'before' ? beforeModel() : afterModel()),
      });
    }
    return views;
  }
}

/** Git directories of trees, by the tree's path: every stage of a check asks, and the answer does not change. */
const gitDirs = new Map<string, Promise<string>>();

/** The absolute git directory of the tree at `tree` (one `git rev-parse` per tree and process; a failure is not remembered). */
export function treeGitDir(tree: string): Promise<string> {
  let d = gitDirs.get(tree);
  if (!d) {
    d = rulesWorkspace().then(async (ws) => (await gitOk(['rev-parse', '--absolute-git-dir'], { cwd: tree, home: ws.home })).trim());
    gitDirs.set(tree, d);
    d.catch(() => gitDirs.delete(tree));
  }
  return d;
}

let workspace: Promise<Awaited<ReturnType<typeof makeWorkspace>>> | null = null;
/** One private HOME and empty work tree for the process: lazily built models read git after views are returned. */
export function rulesWorkspace(): ReturnType<typeof makeWorkspace> {
  workspace ??= makeWorkspace('vfio-review-rules-').then((ws) => {
    process.once('exit', () => {
      try {
        execFileSync('rm', ['-rf', ws.dir]);
      } catch {
        /* best effort at exit */
      }
    });
    return ws;
  });
  return workspace;
}

/** Readers of base commits, most recent last; a few are kept (a daemon checks many series on one base). */
const baseReaders = new Map<string, SourceReader>();
const BASE_READERS = 4;

/** The process's shared reader of one base commit (its reads are cached for the next series on that base). */
export function baseReader(gitDir: string, commit: string, home: string): SourceReader {
  const key = `${gitDir}\0${commit}`;
  const hit = baseReaders.get(key);
  if (hit) {
    baseReaders.delete(key);
    baseReaders.set(key, hit);
    return hit;
  }
  const r = treeReader(gitDir, commit, home);
  baseReaders.set(key, r);
  if (baseReaders.size > BASE_READERS) baseReaders.delete(baseReaders.keys().next().value!);
  return r;
}

/**
 * A reader of a series commit: the paths the series changed up to it from `changed` (null: deleted
 * or renamed away), everything else from the base's reader.
 */
export function seriesReader(base: SourceReader, changed: ReadonlyMap<string, string | null>): SourceReader {
  return {
    readFile: (path) => (changed.has(path) ? changed.get(path)! : base.readFile(path)),
    prefetch: (paths) => base.prefetch?.(paths.filter((p) => !changed.has(p))),
    list(dir) {
      const d = dir.replace(/\/$/, '');
      const names = new Set(base.list?.(dir) ?? []);
      const prefix = d === '.' || d === '' ? '' : `${d}/`;
      for (const [p, text] of changed) {
        if (!p.startsWith(prefix)) continue;
        const rest = p.slice(prefix.length);
        const slash = rest.indexOf('/');
        if (slash < 0) {
          if (text === null) names.delete(rest);
          else names.add(rest);
        } else if (text !== null) {
          names.add(rest.slice(0, slash));
        }
      }
      return [...names];
    },
  };
}

/**
 * A synchronous reader over one commit's objects (the C model reads files synchronously), with
 * results cached. `prefetch` reads many paths with one `git cat-file --batch`; a path read without
 * it costs one hermetic `git cat-file` process.
 */
export function treeReader(gitDir: string, commit: string, home: string): SourceReader {
  const cache = new Map<string, string | null>();
  const lists = new Map<string, string[]>();
  const env = hermeticEnv(home);
  const gitSync = (args: string[]): string | null => {
    try {
      return execFileSync('git', [...HARDENING_CONFIG, '--git-dir', gitDir, ...args], {
        env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'ignore'],
      });
    } catch {
      return null;
    }
  };
  return {
    readFile(path) {
      if (!cache.has(path)) cache.set(path, safePath(path) ? gitSync(['cat-file', 'blob', `${commit}:${path}`]) : null);
      return cache.get(path)!;
    },
    prefetch(paths) {
      const want = [...new Set(paths)].filter((p) => !cache.has(p) && safePath(p));
      if (want.length === 0) return;
      if (want.length === 1) {
        this.readFile(want[0]!);
        return;
      }
      let blobs: Map<string, string | null>;
      try {
        blobs = readBlobsSync(gitDir, home, want.map((p) => `${commit}:${p}`));
      } catch {
        return; // each path is then read on its own
      }
      for (const p of want) cache.set(p, blobs.get(`${commit}:${p}`) ?? null);
    },
    list(dir) {
      const d = dir.replace(/\/$/, '');
      let names = lists.get(d);
      if (!names) {
        const out = safePath(d) || d === '' ? gitSync(['ls-tree', '--name-only', `${commit}:${d}`]) : null;
        // Entry names (not paths), as SourceReader.list promises.
        names = out ? out.split('\n').filter(Boolean) : [];
        lists.set(d, names);
      }
      return [...names];
    },
  };
}

export type { Report };
