/**
 * Scenarios synthesised from a series: the entry points whose code the series changes (or that
 * reach changed code) are paired with the other entry points of the model that could fault with
 * them, each pair is explored on the patched tree, and a deadlock, use after free or stale pointer
 * is kept only when the same pair on the base tree does not show it (the series introduced it).
 *
 * Precision before recall, because a maintainer drops a bot after a few wrong findings:
 * - a pair is explored only when static facts admit the fault (an AB-BA inversion of two lock
 *   classes, or a free of a pointer cell the other thread dereferences: facts.ts);
 * - only deadlocks where live threads wait for each other in a cycle count (a lock a finished
 *   thread kept is a derivation artefact as often as a bug), and lifetime faults only when the
 *   object was really freed; every other fault (self-deadlock on a lock class, NULL, unlock of an
 *   unheld lock) ends its path without a report, so it cannot hide the faults that count;
 * - the bad interleaving must step through changed code, and the finding is placed at the first
 *   such step;
 * - a pair whose base run hits a bound, or any run that fails, is a note, never a finding.
 */
import {
  buildModel, createModelCache, findFunction, functionKey, type FunctionModel, type ModelCache, type SourceReader, type TreeModel,
} from '../cmodel/index.js';
import { check, explain, type CheckResult } from './checker.js';
import { derivePrograms, deriveThread } from './derive.js';
import { entryPoints, reachable, type Entry } from './entries.js';
import { inversions, lifetimeCells, programFacts, type ProgramFacts } from './facts.js';
import type { ThreadProgram } from './model.js';
import type { Fault } from './step.js';
import { faultSteps, finding, firstChangedStep, relevant, type Changed } from './synth-locate.js';
import { lifetimePair, overlap, pointerCell, roughFacts } from './synth-pairs.js';

/** The verdicts a synthesised scenario reports. */
export type SimKind = 'deadlock' | 'use-after-free' | 'stale-pointer';

/** What a series changed, in the head tree's files and line numbers. */
export interface SeriesChanges {
  /** Message-IDs of the patches in series order. */
  patches: readonly string[];
  /** File -> line -> the patch that wrote the line (lines no patch wrote are absent). */
  lines: ReadonlyMap<string, ReadonlyMap<number, string>>;
  /** File -> line where a patch removed lines before it (removal-only changes) -> that patch. */
  removals: ReadonlyMap<string, ReadonlyMap<number, string>>;
}

/** Bounds of one synthesis. */
export interface SynthLimits {
  /** Wall-clock budget for all explorations (model building not included). */
  timeMs: number;
  /** States per exploration. */
  maxStates: number;
  /** Pairs explored at most (best candidates first). */
  maxPairs: number;
  inlineDepth: number;
  /** Series touching more C files are not modelled (building the models would take too long). */
  maxFiles: number;
}

/** Input of {@link synthesise}. */
export interface SynthInput {
  base: SourceReader;
  head: SourceReader;
  /** C files the series touches, as head paths (deleted files left out). */
  files: string[];
  /** Head path -> base path for renamed files (default: the same path). */
  basePath?: ReadonlyMap<string, string>;
  changes: SeriesChanges;
  limits?: Partial<SynthLimits>;
  cache?: ModelCache;
  /** Models already built over these files (the rule views' ones), to save building them again. */
  models?: { head?: TreeModel; base?: TreeModel | null };
  /** Progress and timings, for the bench and debugging. */
  log?: (line: string) => void;
}

/** A new bad verdict of a synthesised pair. */
export interface SimFinding {
  kind: SimKind;
  /** Message-ID of the patch it is attributed to. */
  patch: string;
  file: string;
  line: number;
  fn: string | null;
  message: string;
  trace: string;
  /** Normalised identity (lock classes, or the freed cell and the two functions). */
  key: string;
  pair: [Entry, Entry];
  /** Other partners showing the same fault (same lock classes, or same cell), folded into this one. */
  also: Entry[];
}

/** Something the synthesis could not decide, recorded instead of a finding. */
export interface SimNote {
  kind: 'bounded' | 'error';
  pair: string | null;
  detail: string;
}

/** What {@link synthesise} returns. */
export interface SynthResult {
  findings: SimFinding[];
  notes: SimNote[];
  stats: { entries: number; affected: number; candidates: number; explored: number; states: number; ms: number };
}

/** Default limits: a series checks in a few seconds. */
export const SYNTH_LIMITS: SynthLimits = { timeMs: 3000, maxStates: 150_000, maxPairs: 24, inlineDepth: 4, maxFiles: 12 };

const REPORTED = new Set<Fault['kind']>(['deadlock', 'use-after-free', 'stale-pointer']);

/** The faults a synthesised scenario reports (see the file comment). */
export function reportable(f: Fault): boolean {
  if (!REPORTED.has(f.kind)) return false;
  if (f.kind === 'deadlock') return f.cycle === true;
  return f.freedBy !== undefined;
}

interface Candidate {
  e: Entry;
  p: Entry;
  locks: [string, string][];
  cells: string[];
  score: number;
}

const moduleCache = createModelCache();

/** Explore the series' entry pairs and keep the bad verdicts that are new with it. */
export async function synthesise(input: SynthInput): Promise<SynthResult> {
  const t0 = performance.now();
  const lim = { ...SYNTH_LIMITS, ...input.limits };
  const cache = input.cache ?? moduleCache;
  const notes: SimNote[] = [];
  const findings: SimFinding[] = [];
  const stats = { entries: 0, affected: 0, candidates: 0, explored: 0, states: 0, ms: 0 };
  const done = (): SynthResult => ({ findings, notes, stats: { ...stats, ms: performance.now() - t0 } });
  if (input.files.length === 0) return done();
  if (input.files.length > lim.maxFiles) {
    notes.push({ kind: 'bounded', pair: null, detail: `${input.files.length} C files touched, more than the ${lim.maxFiles} modelled` });
    return done();
  }

  const log = input.log ?? ((): void => undefined);
  const head = input.models?.head ?? (await buildExpanded(input.head, input.files, cache));
  log(`head model ${(performance.now() - t0).toFixed(0)} ms`);
  const changed = changedFunctions(head, input.files, input.changes);
  if (changed.size === 0) return done();
  const entries = entryPoints(head, input.head);
  stats.entries = entries.length;
  const affected = entries.filter((e) => {
    const fn = fnOf(head, e);
    if (!fn) return false;
    for (const k of reachable(head, fn, lim.inlineDepth)) if (changed.has(k)) return true;
    return false;
  });
  stats.affected = affected.length;
  if (affected.length === 0) return done();

  const facts = new Map<string, ProgramFacts | null>();
  const factsOf = (e: Entry): ProgramFacts | null => {
    const k = `${e.file}:${e.name}`;
    if (!facts.has(k)) {
      try {
        facts.set(k, programFacts(deriveThread(head, { entry: e.name, file: e.file }, { inlineDepth: lim.inlineDepth })));
      } catch (err) {
        notes.push({ kind: 'error', pair: null, detail: `${e.name}: ${(err as Error).message}` });
        facts.set(k, null);
      }
    }
    return facts.get(k)!;
  };

  const candidates: Candidate[] = [];
  const affectedKeys = new Set(affected.map((e) => `${e.file}:${e.name}`));
  const rough = new Map(entries.map((e) => [`${e.file}:${e.name}`, roughFacts(head, fnOf(head, e)!, lim.inlineDepth)]));
  for (const e of affected) {
    const re = rough.get(`${e.file}:${e.name}`)!;
    for (const p of entries) {
      const pk = `${p.file}:${p.name}`;
      // Each unordered pair once: two affected entries meet when the first is `e`.
      if (affectedKeys.has(pk) && entries.indexOf(p) < entries.indexOf(e)) continue;
      const rp = rough.get(pk)!;
      const maybeLocks = overlap(re.locks, rp.locks) >= 2;
      const maybeLife = lifetimePair(e, p) && (re.frees || rp.frees) && (overlap(re.written, rp.fields) > 0 || overlap(rp.written, re.fields) > 0);
      if (!maybeLocks && !maybeLife) continue;
      const fe = factsOf(e);
      const fp = factsOf(p);
      if (!fe || !fp) continue;
      const locks = maybeLocks ? inversions(fe, fp) : [];
      const cells = maybeLife ? lifetimeCells(fe, fp).filter((c) => pointerCell(head, c)) : [];
      if (locks.length === 0 && cells.length === 0) continue;
      const score = (affectedKeys.has(pk) ? 2 : 0) + (e.file === p.file ? 1 : 0);
      candidates.push({ e, p, locks, cells, score });
    }
  }
  candidates.sort((a, b) => b.score - a.score || key(a).localeCompare(key(b)));
  stats.candidates = candidates.length;
  log(`${entries.length} entries, ${affected.length} affected, ${facts.size} derived, ${candidates.length} candidate pairs at ${(performance.now() - t0).toFixed(0)} ms`);
  if (candidates.length > lim.maxPairs) {
    notes.push({ kind: 'bounded', pair: null, detail: `${candidates.length} candidate pairs, explored the first ${lim.maxPairs}` });
  }

  // The budget is for exploring; building models and deriving programs is paid before it.
  const deadline = performance.now() + lim.timeMs;
  let base: TreeModel | null | undefined;
  for (const c of candidates.slice(0, lim.maxPairs)) {
    const name = key(c);
    const left = deadline - performance.now();
    if (left <= 0) {
      notes.push({ kind: 'bounded', pair: name, detail: 'time budget spent before this pair' });
      continue;
    }
    stats.explored++;
    const run = explore(head, [c.e, c.p], input.files, lim, left, c.cells.length > 0);
    if (!('error' in run)) log(`${name}: ${run.result.verdict}, ${run.result.stats.states} states, ${run.result.stats.ms.toFixed(0)} ms, ops ${run.programs.map((p) => p.ops.length).join('+')}`);
    if ('error' in run) {
      notes.push({ kind: 'error', pair: name, detail: run.error });
      continue;
    }
    stats.states += run.result.stats.states;
    const r = run.result;
    if (r.verdict === 'bound-reached') {
      notes.push({ kind: 'bounded', pair: name, detail: `patched tree: ${r.bound} bound after ${r.stats.states} states` });
      continue;
    }
    if (!r.fault || !r.trace || !reportable(r.fault)) continue;
    const at = firstChangedStep(faultSteps(r).filter((st) => relevant(r, st, run.objects)), changed, input.changes);
    if (!at) {
      log(`${name}: ${r.verdict} outside the changed code\n${explain(r)}`);
      continue;
    }
    // The same pair on the base tree: the verdict must be new with the series.
    if (base === undefined) base = input.models?.base !== undefined ? input.models.base : await baseModel(input, cache);
    const be = base ? baseEntry(base, c.e, input.basePath) : null;
    const bp = base ? baseEntry(base, c.p, input.basePath) : null;
    if (base && be && bp) {
      const left2 = deadline - performance.now();
      const b = left2 > 0 ? explore(base, [be, bp], baseFiles(input), lim, left2, c.cells.length > 0) : { error: 'time budget spent before the base run' };
      if ('error' in b) {
        notes.push({ kind: 'bounded', pair: name, detail: `${r.verdict} on the patched tree, base run not done: ${b.error}` });
        continue;
      }
      stats.states += b.result.stats.states;
      if (b.result.verdict === 'bound-reached') {
        notes.push({ kind: 'bounded', pair: name, detail: `${r.verdict} on the patched tree; base tree: ${b.result.bound} bound after ${b.result.stats.states} states` });
        continue;
      }
      if (b.result.verdict === r.verdict) continue;
    }
    const f = finding(c, r, at, run.objects);
    const same = findings.find((x) => x.key === f.key);
    if (same) {
      for (const e of f.pair) if (!same.pair.includes(e) && !same.also.includes(e)) same.also.push(e);
      continue;
    }
    findings.push(f);
  }
  return done();
}

function key(c: { e: Entry; p: Entry }): string {
  return `${c.e.name} vs ${c.p.name}`;
}

function fnOf(model: TreeModel, e: Entry): FunctionModel | null {
  return model.functions.get(e.name)?.find((f) => f.file === e.file) ?? null;
}

function baseFiles(input: SynthInput): string[] {
  return input.files.map((f) => input.basePath?.get(f) ?? f);
}

async function baseModel(input: SynthInput, cache: ModelCache): Promise<TreeModel | null> {
  const files = baseFiles(input).filter((f) => input.base.readFile(f) !== null);
  return files.length ? buildExpanded(input.base, files, cache) : null;
}

/**
 * The model of `files`, and once more with the sibling .c files it pulled in promoted to touched
 * when their entry points call ops members nothing in the model binds: apmask_store() in ap_bus.c
 * reaches vfio_ap through `ap_drv->in_use`, bound in vfio_ap_drv.c, which only a touched ap_bus.c
 * makes the model look for. The file models are cached, so the second build mostly recomputes
 * summaries.
 */
async function buildExpanded(reader: SourceReader, files: string[], cache: ModelCache): Promise<TreeModel> {
  const first = await buildModel(reader, files, { cache });
  const promote = first.context.filter((f) => f.endsWith('.c') && (first.files.get(f)?.functions ?? []).some((fn) =>
    fn.events.some((e) => e.kind === 'call' && e.indirect !== null && !first.ops.has(e.indirect.member))));
  return promote.length ? buildModel(reader, [...files, ...promote], { cache }) : first;
}

/** The base tree's version of an entry (same name, same or renamed file). */
function baseEntry(base: TreeModel, e: Entry, renames?: ReadonlyMap<string, string>): Entry | null {
  const file = renames?.get(e.file) ?? e.file;
  const fn = base.functions.get(e.name)?.find((f) => f.file === file) ?? findFunction(base, e.name, file);
  return fn && fn.file.endsWith('.c') ? { ...e, file: fn.file, line: fn.line } : null;
}

/** Functions of the touched files whose lines a patch wrote or removed lines from, with those patches. */
function changedFunctions(model: TreeModel, files: string[], ch: SeriesChanges): Changed {
  const out = new Map<string, { fn: FunctionModel; patches: Set<string> }>();
  for (const file of files) {
    const lines = ch.lines.get(file);
    const removals = ch.removals.get(file);
    for (const fn of model.files.get(file)?.functions ?? []) {
      const patches = new Set<string>();
      for (const m of [lines, removals]) {
        if (!m) continue;
        for (const [line, patch] of m) if (line >= fn.line && line <= fn.endLine) patches.add(patch);
      }
      if (patches.size) out.set(functionKey(fn), { fn, patches });
    }
  }
  return out;
}

interface Explored {
  result: CheckResult;
  programs: ThreadProgram[];
  /** Object name -> the pointer cell it stands for. */
  objects: Map<string, string>;
}

/**
 * Derive and explore one pair. Pointer cells one thread frees through and the other dereferences
 * start out pointing at an object of their own, so the explorer can tell a use after free.
 */
function explore(model: TreeModel, pair: [Entry, Entry], files: string[], lim: SynthLimits, timeMs: number, lifetime: boolean): Explored | { error: string } {
  let programs: ThreadProgram[];
  try {
    programs = derivePrograms(model, {
      files, inlineDepth: lim.inlineDepth,
      threads: pair.map((e, i) => ({ name: pair[0].name === pair[1].name ? `${e.name}#${i}` : e.name, entry: e.name, file: e.file })),
    });
  } catch (err) {
    return { error: (err as Error).message };
  }
  const facts = programs.map(programFacts);
  const cells = lifetime ? lifetimeCells(facts[0]!, facts[1]!).filter((c) => pointerCell(model, c)) : [];
  const objects = new Map<string, string>();
  const init: Record<string, string> = {};
  for (const c of cells) {
    const base = (c.split(/[.:]/).pop() ?? 'obj').replace(/\W/g, '_');
    let name = /^[A-Za-z_]/.test(base) ? base : `o_${base}`;
    for (let i = 2; objects.has(name); i++) name = `${base}${i}`;
    objects.set(name, c);
    init[c] = `&${name}`;
  }
  try {
    const result = check(programs, {
      objects: [...objects.keys()], init, accept: reportable,
      bounds: { maxStates: lim.maxStates, timeMs: Math.max(1, timeMs) },
    });
    return { result, programs, objects };
  } catch (err) {
    return { error: (err as Error).message };
  }
}
