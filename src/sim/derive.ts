/**
 * Programs for a tree scenario: build the C model over the scenario's files, derive each thread
 * from its entry function (derive-fn.ts), then keep only what can interact. A cell no other thread
 * touches, or that nobody writes, cannot change an interleaving's outcome: its reads become
 * unknown values and its writes go, which keeps the state space to the shared part (the same
 * reason spin users hide local state). Uses of objects nobody frees go for the same reason.
 */
import { buildModel, findFunction, type SourceReader, type TreeModel } from '../cmodel/index.js';
import { Deriver, type DeriveOptions } from './derive-fn.js';
import { builder as t, type Op, type ThreadProgram, type TreeSource, type TreeThread } from './model.js';

const DEFAULTS: DeriveOptions = { inlineDepth: 4, unroll: 1, maxOps: 3000 };

/** The program of one thread of a tree scenario, unpruned. */
export function deriveThread(model: TreeModel, thread: TreeThread, opts: Partial<DeriveOptions> = {}): ThreadProgram {
  const fn = findFunction(model, thread.entry, thread.file);
  if (!fn || fn.file !== thread.file) throw new Error(`no function ${thread.entry} in ${thread.file}`);
  const d = new Deriver(model, { ...DEFAULTS, ...opts });
  return { name: thread.name ?? thread.entry, ops: d.thread(fn, thread.args ?? {}, thread.after), observable: [] };
}

/** Derive every thread of `tree` from the model and prune what cannot interact. */
export function derivePrograms(model: TreeModel, tree: TreeSource): ThreadProgram[] {
  const opts: Partial<DeriveOptions> = {
    ...(tree.inlineDepth !== undefined ? { inlineDepth: tree.inlineDepth } : {}), ...(tree.unroll !== undefined ? { unroll: tree.unroll } : {}), ...(tree.ops ? { ops: tree.ops } : {}),
    ...(tree.opaque ? { opaque: new Set(tree.opaque) } : {}),
    ...(tree.containers ? { containers: tree.containers } : {}),
  };
  // Two passes: the first finds the cells that can interact, the second treats the others as
  // unknown from the start, so conditions on them are decided once rather than at every test.
  const first = tree.threads.map((th) => deriveThread(model, th, opts));
  const shared = sharedCells(first);
  return prune(tree.threads.map((th) => deriveThread(model, th, { ...opts, shared })));
}

/** Cells written by some thread and touched by at least two. */
export function sharedCells(programs: ThreadProgram[]): Set<string> {
  const touched = new Map<string, Set<number>>();
  const written = new Set<string>();
  programs.forEach((p, i) => {
    for (const o of p.ops) {
      if (o.kind !== 'read' && o.kind !== 'write' && o.kind !== 'rmw') continue;
      const s = touched.get(o.cell) ?? new Set<number>();
      s.add(i);
      touched.set(o.cell, s);
      if (o.kind !== 'read') written.add(o.cell);
    }
  });
  return new Set([...written].filter((c) => (touched.get(c)?.size ?? 0) > 1));
}

/** Build the model of the scenario's files in the tree `reader` reads, and derive its programs. */
export async function deriveScenarioPrograms(reader: SourceReader, tree: TreeSource): Promise<ThreadProgram[]> {
  const model = await buildModel(reader, tree.files);
  return derivePrograms(model, tree);
}

/** Keep cells shared by two threads with a writer, and object uses of objects someone frees. */
export function prune(programs: ThreadProgram[]): ThreadProgram[] {
  const shared = sharedCells(programs);
  // Object uses matter when that object is freed; uses through registers when anything is freed through one.
  const freed = new Set(programs.flatMap((p) => p.ops.flatMap((o) => (o.kind === 'free' ? [o.target.startsWith('&') ? o.target : '*'] : []))));
  const unknown = (reg: string, o: Op): Op => ({ ...t.set(reg, '?'), ...(o.at ? { at: o.at } : {}) });
  return programs.map((p) => ({
    ...p,
    ops: p.ops.flatMap((o): Op[] => {
      if (o.kind === 'read' && !shared.has(o.cell)) return [unknown(o.reg, o)];
      if (o.kind === 'rmw' && !shared.has(o.cell)) return o.reg ? [unknown(o.reg, o)] : [];
      if (o.kind === 'write' && !shared.has(o.cell)) return [];
      if (o.kind === 'use' && !freed.has(o.target.startsWith('&') ? o.target : '*') && !(o.target.startsWith('&') && freed.has('*'))) return [];
      return [o];
    }),
  }));
}
