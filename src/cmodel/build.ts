/**
 * Building a {@link TreeModel} for a set of files of one tree (the base or the patched commit).
 * The model covers the touched files plus what they reach, bounded: the headers they include that
 * exist in the tree, and sibling files (same directory) that define their callees or bind the ops
 * members they call. We rejected indexing the whole tree per series: parsing all of drivers/ and
 * include/ takes minutes, and the review must take under a second.
 */
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { lockApi } from './apis.js';
import { modelFile, type FileModel } from './declarations.js';
import { buildTypeEnv } from './locks.js';
import type { TreeModel } from './model.js';
import { loadParser } from './parse.js';
import { computeSummaries } from './summaries.js';

/** Where file contents come from: a work tree, or git objects of one commit. */
export interface SourceReader {
  /** The file's text, or null when the tree has no such file. Paths are tree-relative with `/`. */
  readFile(path: string): string | null;
  /** Entries (names, not paths) of a directory; optional, enables sibling lookup. */
  list?(dir: string): string[];
  /** Optional hint: these paths are about to be read (a git-backed reader reads them in one batch). */
  prefetch?(paths: string[]): void;
}

/** Reuses file models across builds (base and patched trees share most files). */
export interface ModelCache {
  files: Map<string, FileModel>;
  /** The last few models built, most recent last: handed back whole when the same files come again. */
  recent: TreeModel[];
}

/** Bounds and reuse for {@link buildModel}. */
export interface BuildOptions {
  /** Most headers to pull in (default 48). */
  maxHeaders?: number;
  /** Most sibling files to pull in for callees and ops bindings (default 24). */
  maxSiblings?: number;
  /** Local ("...") includes are followed this deep (default 2); system <...> ones one level. */
  includeDepth?: number;
  cache?: ModelCache;
  /** Summary fixpoint rounds (default 6). */
  maxRounds?: number;
}

/** A fresh cache for {@link BuildOptions.cache}. */
export function createModelCache(): ModelCache {
  return { files: new Map(), recent: [] };
}

/** Digests by text: readers hand out the same string for a file, and hashing 2 MB per model build showed. */
const digests = new Map<string, string>();

function digest(text: string): string {
  let d = digests.get(text);
  if (d === undefined) {
    d = createHash('sha1').update(text).digest('hex');
    digests.set(text, d);
    if (digests.size > 4096) digests.delete(digests.keys().next().value!);
  }
  return d;
}

/** File models a cache keeps (a driver with its headers and siblings is 50-100 files). */
const MAX_CACHED_FILES = 3000;

function load(source: SourceReader, path: string, cache: ModelCache | undefined): FileModel | null {
  const text = source.readFile(path);
  if (text === null) return null;
  const key = `${path}\0${digest(text)}`;
  const hit = cache?.files.get(key);
  if (hit) {
    // Least recently used last out: a daemon's cache stays bounded over months of series.
    cache!.files.delete(key);
    cache!.files.set(key, hit);
    return hit;
  }
  const m = modelFile(text, path);
  if (cache) {
    cache.files.set(key, m);
    if (cache.files.size > MAX_CACHED_FILES) cache.files.delete(cache.files.keys().next().value!);
  }
  return m;
}

/** How many recent models a cache keeps, to hand back whole when the same files come again. */
const RECENT_MODELS = 6;

function sameFiles(a: TreeModel, files: Map<string, FileModel>, touched: string[]): boolean {
  if (a.files.size !== files.size || a.touched.length !== touched.length || a.touched.some((t, i) => touched[i] !== t)) return false;
  const bk = [...files];
  let i = 0;
  for (const [p, m] of a.files) {
    const [q, n] = bk[i++]!;
    if (p !== q || m !== n) return false;
  }
  return true;
}

/** Candidate tree paths for an include, most likely first. */
function includeCandidates(from: string, inc: { path: string; system: boolean }, arch: string): string[] {
  const local = posix.normalize(posix.join(posix.dirname(from), inc.path));
  const sys = [`include/${inc.path}`, `include/uapi/${inc.path}`, `arch/${arch}/include/${inc.path}`, `arch/${arch}/include/uapi/${inc.path}`];
  return inc.system ? sys : [local, ...sys];
}

/**
 * What a sibling file may offer, by text: the names it seems to define (`DEFINITION` matches a line
 * start with the name before the first `(` and no `;` after it on that line) and the members it
 * assigns (`.member =`). Computed once per text instead of one regex scan per model build.
 */
const siblingIndexes = new Map<string, { defined: Set<string>; assigned: Set<string> }>();
const DEFINED_AT = /[A-Za-z_][^;{}()=]*\b([A-Za-z_]\w*)\s*\([^;]*$/my;

export function siblingIndex(text: string): { defined: Set<string>; assigned: Set<string> } {
  let idx = siblingIndexes.get(text);
  if (idx) return idx;
  idx = { defined: new Set(), assigned: new Set() };
  // Every line start, as the multi-line `^...` search would try them: a match may begin on a line
  // (`static int`) and name the function on the next.
  for (let at = 0; at < text.length; at = text.indexOf('\n', at) + 1 || text.length) {
    const c = text.charCodeAt(at);
    if (!((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95)) continue;
    DEFINED_AT.lastIndex = at;
    const m = DEFINED_AT.exec(text);
    if (m) idx.defined.add(m[1]!);
  }
  for (const m of text.matchAll(/\.([A-Za-z_]\w*)\s*=/g)) idx.assigned.add(m[1]!);
  siblingIndexes.set(text, idx);
  if (siblingIndexes.size > 1024) siblingIndexes.delete(siblingIndexes.keys().next().value!);
  return idx;
}

/**
 * Build the model of `files` in the tree `source` can read: parse them and what they reach, merge
 * declarations into one type environment, bind ops members, and compute function summaries.
 */
export async function buildModel(source: SourceReader, files: string[], opts: BuildOptions = {}): Promise<TreeModel> {
  await loadParser();
  const maxHeaders = opts.maxHeaders ?? 48;
  const maxSiblings = opts.maxSiblings ?? 24;
  const depthLimit = opts.includeDepth ?? 2;
  const arch = files.some((f) => /(?:^|\/)s390\//.test(f)) ? 's390' : 'x86';
  const models = new Map<string, FileModel>();
  const context: string[] = [];
  source.prefetch?.(files);
  const touched = files.filter((f) => {
    const m = load(source, f, opts.cache);
    if (m) models.set(f, m);
    return m !== null;
  });

  // Headers, breadth first: system headers only from the touched files, local ones deeper.
  let frontier = touched.map((f) => ({ path: f, depth: 0 }));
  let headers = 0;
  while (frontier.length && headers < maxHeaders) {
    const next: typeof frontier = [];
    // Every candidate of this level in one read (most exist; a missing one costs nothing more).
    source.prefetch?.(
      frontier.flatMap(({ path, depth }) =>
        depth >= depthLimit ? [] : (models.get(path)?.includes ?? []).filter((inc) => !(inc.system && depth > 0)).flatMap((inc) => includeCandidates(path, inc, arch)),
      ).filter((c) => !models.has(c)),
    );
    for (const { path, depth } of frontier) {
      for (const inc of models.get(path)?.includes ?? []) {
        if (headers >= maxHeaders || depth >= depthLimit || (inc.system && depth > 0)) continue;
        for (const cand of includeCandidates(path, inc, arch)) {
          if (models.has(cand)) break;
          const m = load(source, cand, opts.cache);
          if (!m) continue;
          models.set(cand, m);
          context.push(cand);
          headers++;
          next.push({ path: cand, depth: depth + 1 });
          break;
        }
      }
    }
    frontier = next;
  }

  // Sibling files defining missing callees or binding called ops members, two rounds so a binding
  // found in one sibling (`.in_use = f`) can pull in the sibling defining `f`.
  if (source.list) {
    let siblings = 0;
    const dirs = [...new Set(touched.map((f) => posix.dirname(f)))];
    for (let round = 0; round < 2 && siblings < maxSiblings; round++) {
      const defined = new Set<string>();
      const bound = new Set<string>();
      const wanted = new Set<string>();
      const members = new Set<string>();
      for (const m of models.values()) {
        for (const f of m.functions) defined.add(f.name);
        for (const o of m.ops) {
          bound.add(o.member);
          wanted.add(o.fn);
        }
      }
      for (const f of touched) {
        for (const fn of models.get(f)?.functions ?? []) {
          for (const ev of fn.events) {
            if (ev.kind !== 'call' || lockApi(ev.callee)) continue;
            if (ev.indirect) members.add(ev.indirect.member);
            else if (!lockApi(ev.callee) && /^[a-z_]\w*$/.test(ev.callee)) wanted.add(ev.callee);
          }
        }
      }
      const missing = [...wanted].filter((n) => !defined.has(n));
      const unbound = [...members].filter((n) => !bound.has(n));
      if (missing.length === 0 && unbound.length === 0) break;
      const wantedBy = (text: string): boolean => {
        const idx = siblingIndex(text);
        return missing.some((n) => idx.defined.has(n)) || unbound.some((m) => idx.assigned.has(m));
      };
      for (const dir of dirs) {
        const names = source.list(dir).sort().filter((n) => n.endsWith('.c'));
        source.prefetch?.(names.map((n) => (dir === '.' ? n : `${dir}/${n}`)).filter((p) => !models.has(p)));
        for (const name of names) {
          if (siblings >= maxSiblings) break;
          if (!name.endsWith('.c')) continue;
          const path = dir === '.' ? name : `${dir}/${name}`;
          if (models.has(path)) continue;
          const text = source.readFile(path);
          if (text === null || !wantedBy(text)) continue;
          const m = load(source, path, opts.cache);
          if (!m) continue;
          models.set(path, m);
          context.push(path);
          siblings++;
        }
      }
    }
  }

  // The same files (the same objects, so the same texts) and the same touched files: the same model.
  const same = opts.cache?.recent.find((m) => sameFiles(m, models, touched));
  if (same) return same;
  const model: TreeModel = {
    files: models, functions: new Map(), env: buildTypeEnv(models.values()), ops: new Map(), summaries: new Map(), touched, context,
  };
  for (const m of models.values()) {
    for (const fn of m.functions) {
      const list = model.functions.get(fn.name) ?? [];
      list.push(fn);
      model.functions.set(fn.name, list);
    }
    for (const o of m.ops) {
      const list = model.ops.get(o.member) ?? [];
      list.push({ ...o, file: m.path });
      model.ops.set(o.member, list);
    }
  }
  // Assignments `ops->member = fn` bind a member as much as initialisers do.
  for (const m of models.values()) {
    for (const fn of m.functions) {
      for (const ev of fn.events) {
        if (ev.kind !== 'store' || !/^[A-Za-z_]\w*$/.test(ev.value) || !model.functions.has(ev.value)) continue;
        const list = model.ops.get(ev.member) ?? [];
        if (!list.some((b) => b.fn === ev.value)) list.push({ structType: null, variable: null, member: ev.member, fn: ev.value, line: ev.line, file: m.path });
        model.ops.set(ev.member, list);
      }
    }
  }
  computeSummaries(model, opts.maxRounds);
  if (process.env.VFIO_REVIEW_VERIFY_REUSE === '1') verifyReused(model, opts.maxRounds);
  if (opts.cache) {
    opts.cache.recent.push(model);
    if (opts.cache.recent.length > RECENT_MODELS) opts.cache.recent.shift();
  }
  return model;
}

/**
 * A check for tests and evaluations (VFIO_REVIEW_VERIFY_REUSE=1): the summaries (some taken from
 * earlier models) equal those computed from scratch; throws on the first difference.
 */
function verifyReused(model: TreeModel, maxRounds: number | undefined): void {
  const fresh: TreeModel = { ...model, summaries: new Map() };
  computeSummaries(fresh, maxRounds, { reuse: false });
  const keys = new Set([...model.summaries.keys(), ...fresh.summaries.keys()]);
  for (const k of keys) {
    const a = JSON.stringify(model.summaries.get(k) ?? null);
    const b = JSON.stringify(fresh.summaries.get(k) ?? null);
    if (a === b) continue;
    const x = model.summaries.get(k) as unknown as Record<string, unknown> | undefined;
    const y = fresh.summaries.get(k) as unknown as Record<string, unknown> | undefined;
    const fields = Object.keys(x ?? y ?? {}).filter((f) => JSON.stringify(x?.[f]) !== JSON.stringify(y?.[f]));
    const show = (o: Record<string, unknown> | undefined): string => (o ? fields.map((f) => `${f}=${JSON.stringify(o[f])}`).join(' ') : 'none');
    throw new Error(`reused summary of ${k} differs from the one computed from scratch: reused ${show(x)}; from scratch ${show(y)}`);
  }
}
