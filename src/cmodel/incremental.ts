/**
 * Reusing function summaries between models. A series check builds two models per patch (its files
 * before and after it) over nearly the same headers and siblings, and a daemon builds many models
 * over one base: recomputing every summary (thousands of functions in a driver and its siblings)
 * was half of a check's time.
 *
 * A summary of a function outside recursion is a function of: its definition (the same object in
 * every model that loaded the same file text, through the file cache), the type declarations its
 * lock and field classes were resolved against, the definitions its calls reach, what those
 * callees' summaries show a caller (see `callerView` in summaries.ts), and the lock annotations on
 * its prototypes. A summary is stored with those dependencies as they were read; a later model
 * takes it only when every one of them reads the same there. Summaries are computed callees first,
 * so the callees' summaries are final when a caller is checked. The result is the same as computing
 * every summary afresh (VFIO_REVIEW_VERIFY_REUSE=1 checks this; see test/cmodel/incremental.test.ts).
 */
import { shifted } from './function-cache.js';
import type { FunctionModel } from './functions.js';
import type { TypeEnv } from './locks.js';
import type { FunctionSummary } from './model.js';

/** One read of the type environment and what it answered. */
type EnvRead = { map: 'typedefs' | 'globals' | 'returns'; key: string; value: string | undefined }
  | { map: 'structs'; key: string; value: boolean }
  | { map: 'field'; key: string; member: string; value: string | undefined }
  | { map: 'fileGlobals'; key: string; member: string; value: string | undefined };

/** What a stored summary was computed from, besides the function's own definition. */
export interface SummaryDeps {
  env: EnvRead[];
  /** The definitions (by file:name) each call event, in event order, resolved to. */
  calls: string[][];
  /** The caller view of each distinct callee's summary, in first-call order (null: none). */
  calleeViews: (string | null)[];
  /** The annotations on the definition and its prototypes, as the summary saw them. */
  annotations: string;
}

interface Stored {
  summary: FunctionSummary;
  /** The line the function started on when the summary was made (summaries hold absolute lines). */
  line: number;
  deps: SummaryDeps;
}

/**
 * Stored summaries by definition: by file, name and text digest when the definition has one (so a
 * function moved down by an edit above it still finds its summary), else by the model object.
 * A definition in several environments keeps a few.
 */
const byText = new Map<string, Stored[]>();
const byObject = new WeakMap<FunctionModel, Stored[]>();
const PER_DEFINITION = 3;
const MAX_TEXT_KEYS = 60_000;

const textKey = (fn: FunctionModel): string | null => (fn.digest ? `${fn.file}\0${fn.name}\0${fn.digest}` : null);

function storedFor(fn: FunctionModel): Stored[] | undefined {
  const k = textKey(fn);
  return k ? byText.get(k) : byObject.get(fn);
}

/** A TypeEnv that records every lookup into `log` (the summary path only calls get/has). */
export function recordingEnv(env: TypeEnv, log: Map<string, EnvRead>): TypeEnv {
  const note = (r: EnvRead): void => {
    const k = `${r.map}\0${r.key}\0${'member' in r ? r.member : ''}`;
    if (!log.has(k)) log.set(k, r);
  };
  const flat = (map: 'typedefs' | 'globals' | 'returns') => ({
    get: (key: string) => {
      const value = env[map].get(key);
      note({ map, key, value });
      return value;
    },
    has: (key: string) => {
      const value = env[map].get(key);
      note({ map, key, value });
      return env[map].has(key);
    },
  });
  const nested = (map: 'structs' | 'fileGlobals', outer: Map<string, Map<string, string>>) => {
    const inner = (key: string, m: Map<string, string>) => ({
      get: (member: string) => {
        const value = m.get(member);
        note(map === 'structs' ? { map: 'field', key, member, value } : { map: 'fileGlobals', key, member, value });
        return value;
      },
      has: (member: string) => {
        const value = m.get(member);
        note(map === 'structs' ? { map: 'field', key, member, value } : { map: 'fileGlobals', key, member, value });
        return m.has(member);
      },
    });
    const get = (key: string) => {
      const m = outer.get(key);
      if (map === 'structs') note({ map: 'structs', key, value: m !== undefined });
      if (!m) {
        // A missing file's statics read as absent members, so a later model that has the file differs.
        if (map === 'fileGlobals') return inner(key, new Map());
        return undefined;
      }
      return inner(key, m);
    };
    return { get, has: (key: string) => get(key) !== undefined };
  };
  return {
    typedefs: flat('typedefs'), globals: flat('globals'), returns: flat('returns'),
    structs: nested('structs', env.structs), fileGlobals: nested('fileGlobals', env.fileGlobals),
  } as unknown as TypeEnv;
}

function replay(env: TypeEnv, r: EnvRead): boolean {
  switch (r.map) {
    case 'structs':
      return env.structs.has(r.key) === r.value;
    case 'field':
      return env.structs.get(r.key)?.get(r.member) === r.value;
    case 'fileGlobals':
      return env.fileGlobals.get(r.key)?.get(r.member) === r.value;
    default:
      return env[r.map].get(r.key) === r.value;
  }
}

/** What a stored summary needs to be taken in another model. */
export interface ReuseProbe {
  env: TypeEnv;
  /** The definitions each call event of the function resolves to in this model. */
  calls: () => FunctionModel[][];
  /** The caller view of a callee's current summary in this model. */
  view: (callee: FunctionModel) => string | null;
  annotations: () => string;
}

const sameTargets = (a: string[][], b: string[][]): boolean =>
  a.length === b.length && a.every((x, i) => x.length === b[i]!.length && x.every((f, j) => f === b[i]![j]));

/** Call targets as keys (file:name): a callee's identity beyond that is in its caller view. */
export const targetKeys = (calls: FunctionModel[][]): string[][] => calls.map((ts) => ts.map((t) => `${t.file}:${t.name}`));

/** The distinct callees of a call list, in first-call order. */
export function distinctCallees(calls: FunctionModel[][]): FunctionModel[] {
  const out = new Set<FunctionModel>();
  for (const ts of calls) for (const t of ts) out.add(t);
  return [...out];
}

/** A stored summary of `fn` whose dependencies all read the same through `probe`, or null. */
export function reuse(fn: FunctionModel, probe: ReuseProbe): FunctionSummary | null {
  const list = storedFor(fn);
  if (!list) return null;
  let calls: FunctionModel[][] | null = null;
  let keys: string[][] | null = null;
  let annotations: string | null = null;
  for (const s of list) {
    if (!s.deps.env.every((r) => replay(probe.env, r))) continue;
    calls ??= probe.calls();
    keys ??= targetKeys(calls);
    if (!sameTargets(keys, s.deps.calls)) continue;
    if (!distinctCallees(calls).every((c, i) => probe.view(c) === s.deps.calleeViews[i])) continue;
    annotations ??= probe.annotations();
    if (annotations !== s.deps.annotations) continue;
    return s.line === fn.line ? s.summary : shifted(s.summary, fn.line - s.line, 0);
  }
  return null;
}

/** Keep `summary` of `fn` with what it was computed from. */
export function store(fn: FunctionModel, summary: FunctionSummary, deps: SummaryDeps): void {
  const k = textKey(fn);
  const list = storedFor(fn) ?? [];
  list.unshift({ summary, line: fn.line, deps });
  if (list.length > PER_DEFINITION) list.pop();
  if (!k) {
    byObject.set(fn, list);
    return;
  }
  // Most recently stored last, and bounded: a daemon meets new function texts every day.
  byText.delete(k);
  byText.set(k, list);
  if (byText.size > MAX_TEXT_KEYS) byText.delete(byText.keys().next().value!);
}
