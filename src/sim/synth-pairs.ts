/**
 * Which pairs of entry points a synthesis explores: cheap facts from the summaries first, then
 * the rules that keep lifetime pairs to objects two entries can really share.
 */
import { structTag, type FunctionModel, type TreeModel } from '../cmodel/index.js';
import { isLifecycle, reachable, TEARDOWN, type Entry } from './entries.js';

/** What the summaries say an entry may do, through the functions it reaches: enough to skip pairs. */
export interface Rough {
  locks: Set<string>;
  fields: Set<string>;
  written: Set<string>;
  frees: boolean;
}

/** The {@link Rough} facts of an entry, over what it reaches within `depth` calls. */
export function roughFacts(model: TreeModel, fn: FunctionModel, depth: number): Rough {
  const r: Rough = { locks: new Set(), fields: new Set(), written: new Set(), frees: false };
  for (const k of reachable(model, fn, depth)) {
    const s = model.summaries.get(k);
    // Summaries follow direct and ops calls; `reachable` also follows callbacks handed to APIs.
    for (const t of s?.takes ?? []) if (!t.trylock) r.locks.add(t.cls);
    for (const f of s?.fieldsRead ?? []) r.fields.add(f);
    for (const f of s?.fieldsWritten ?? []) {
      r.fields.add(f);
      r.written.add(f);
    }
    if (!r.frees) {
      const [file, name] = [k.slice(0, k.lastIndexOf(':')), k.slice(k.lastIndexOf(':') + 1)];
      r.frees = model.functions.get(name)?.find((f) => f.file === file)?.events.some((e) => e.kind === 'free') ?? false;
    }
  }
  return r;
}

/** How many elements two sets share. */
export function overlap(a: Set<string>, b: Set<string>): number {
  let n = 0;
  for (const x of a) if (b.has(x)) n++;
  return n;
}

/**
 * Whether two entries can race on one object's lifetime. Exported functions are left out (their
 * callers hold what they pass). A once-per-object callback (release,
 * close_device, remove, ...) does not run concurrently with itself, nor with the other callbacks
 * of its own ops structure: the core has waited for every user of the file or device first.
 */
export function lifetimePair(a: Entry, b: Entry): boolean {
  // An exported function's callers own the lifetime of what they pass in (they hold the reference or
  // the lock): without them the model would pair unrelated objects of one type (two domains' cookies).
  if (a.kind === 'exported' || b.kind === 'exported') return false;
  const sameOps = a.owner !== null && a.owner === b.owner;
  if (a.name === b.name && a.file === b.file) return !isLifecycle(a);
  if (a.member && TEARDOWN.has(a.member) && sameOps) return false;
  if (b.member && TEARDOWN.has(b.member) && sameOps) return false;
  return true;
}

/**
 * Whether a cell holds a typed pointer to a structure. `void *` holders (`file->private_data`,
 * `drvdata`) mean something else in every file, and their field class conflates them all.
 */
export function pointerCell(model: TreeModel, cell: string): boolean {
  const parts = (cell.split(':').pop() ?? cell).split('.');
  let tag: string | null = parts[0] ?? null;
  let type: string | undefined;
  for (const member of parts.slice(1)) {
    if (!tag) return false;
    type = model.env.structs.get(tag)?.get(member);
    if (!type) return false;
    tag = structTag(type);
  }
  return type !== undefined && /\bstruct\s+\w+\s*\*/.test(type) && !/\*\s*\*/.test(type);
}
