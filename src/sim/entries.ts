/**
 * Entry points of a tree model: the functions something outside the model calls, each in its own
 * context, so any two of them may run at once. Synthesised scenarios (synth.ts) pair them.
 *
 * - sysfs `*_store`/`*_show` handlers (by name and their `buf` parameter: DEVICE_ATTR_RW and
 *   friends are macros the model does not expand);
 * - ops-structure callbacks bound in initialisers or by assignment (`.unlocked_ioctl`, `.release`,
 *   `.open_device`, `.remove`, `.probe`, `.notifier_call`, ...);
 * - work functions handed to INIT_WORK/INIT_DELAYED_WORK;
 * - exported functions (EXPORT_SYMBOL*), which other drivers call from their own contexts.
 *
 * Members that run before an object is published or after its last reference is gone (`init`,
 * `release` of a refcounted device) still take part: lock order does not depend on timing, and a
 * lifetime fault needs a use and a free that the pairing checks.
 */
import type { FunctionModel, TreeModel } from '../cmodel/index.js';
import { functionKey, resolveCall } from '../cmodel/index.js';
import type { SourceReader } from '../cmodel/build.js';

/** How an entry point is reached. */
export type EntryKind = 'sysfs' | 'ioctl' | 'fops' | 'ops' | 'notifier' | 'work' | 'exported';

/** An entry point. */
export interface Entry {
  name: string;
  file: string;
  line: number;
  kind: EntryKind;
  /** The ops member it is bound to, when it is a callback. */
  member: string | null;
  /** The ops structure variable binding it (`vfio_device_fops`), when known. */
  owner: string | null;
}

/**
 * Members that run once per object, when nothing else uses it (the core waits for every user of
 * a file or device before calling them): never concurrent with themselves or with the other
 * callbacks of the same ops structure on the same object.
 */
export const TEARDOWN = new Set(['release', 'close_device', 'remove', 'release_dev', 'shutdown', 'flush']);
const LIFECYCLE = new Set([...TEARDOWN, 'open', 'open_device', 'probe', 'init']);

/** Whether `e` is a once-per-object callback (probe/open/close/remove/release). */
export function isLifecycle(e: Entry): boolean {
  return e.member !== null && LIFECYCLE.has(e.member);
}

const FOPS = new Set(['open', 'release', 'read', 'write', 'mmap', 'poll', 'llseek', 'read_iter', 'write_iter', 'flush', 'fasync']);
const WORK_APIS = new Set(['INIT_WORK', 'INIT_DELAYED_WORK', 'INIT_WORK_ONSTACK', 'DECLARE_WORK', 'DECLARE_DELAYED_WORK']);

function kindOf(member: string): EntryKind {
  if (/ioctl$/.test(member)) return 'ioctl';
  if (member === 'notifier_call') return 'notifier';
  if (FOPS.has(member)) return 'fops';
  return 'ops';
}

/** Whether `fn` looks like a sysfs attribute handler. */
function isSysfs(fn: FunctionModel): boolean {
  if (!/_(?:store|show)$/.test(fn.name)) return false;
  return fn.params.some((p) => p.name === 'buf' && /char\s*\*/.test(p.type));
}

/** Entry points defined in the model's .c files (touched ones and the siblings pulled in). */
export function entryPoints(model: TreeModel, reader?: SourceReader): Entry[] {
  const out = new Map<string, Entry>();
  const add = (fn: FunctionModel, kind: EntryKind, member: string | null, owner: string | null = null): void => {
    const k = functionKey(fn);
    if (!out.has(k)) out.set(k, { name: fn.name, file: fn.file, line: fn.line, kind, member, owner });
  };
  const cfiles = [...model.files.keys()].filter((f) => f.endsWith('.c'));
  const byName = (name: string, file: string): FunctionModel | undefined =>
    model.functions.get(name)?.find((f) => f.file === file) ?? model.functions.get(name)?.find((f) => f.file.endsWith('.c'));
  for (const file of cfiles) {
    const fm = model.files.get(file)!;
    for (const fn of fm.functions) if (isSysfs(fn)) add(fn, 'sysfs', null);
    for (const o of fm.ops) {
      const fn = byName(o.fn, file);
      if (fn) add(fn, kindOf(o.member), o.member, o.variable);
    }
    for (const fn of fm.functions) {
      for (const ev of fn.events) {
        if (ev.kind !== 'call' || !WORK_APIS.has(ev.callee)) continue;
        const target = ev.args[1]?.trim();
        const w = target && /^\w+$/.test(target) ? byName(target, file) : undefined;
        if (w) add(w, 'work', null);
      }
    }
    const text = reader?.readFile(file) ?? null;
    if (text) {
      for (const m of text.matchAll(/^EXPORT_SYMBOL(?:_GPL)?\(\s*(?<name>\w+)\s*\)/gm)) {
        const fn = byName(m.groups!.name!, file);
        if (fn) add(fn, 'exported', null);
      }
    }
  }
  // Assignments `x->member = fn` outside initialisers (notifier blocks set up at run time).
  for (const [member, bindings] of model.ops) {
    for (const b of bindings) {
      if (!b.file.endsWith('.c')) continue;
      const fn = byName(b.fn, b.file);
      if (fn) add(fn, kindOf(member), member);
    }
  }
  return [...out.values()].sort((a, b) => (a.file === b.file ? a.line - b.line : a.file < b.file ? -1 : 1));
}

/**
 * The functions `fn` reaches through calls within `depth` levels (itself included), by key.
 * Calls through members with several bindings reach all of them: this decides which entries a
 * change can affect, where over-approximating costs a pairing, not a finding.
 */
export function reachable(model: TreeModel, fn: FunctionModel, depth: number): Set<string> {
  const seen = new Set<string>([functionKey(fn)]);
  let frontier = [fn];
  for (let d = 0; d < depth && frontier.length; d++) {
    const next: FunctionModel[] = [];
    for (const f of frontier) {
      for (const ev of f.events) {
        if (ev.kind !== 'call' || ev.special) continue;
        for (const g of resolveCall(model, ev, f)) {
          const k = functionKey(g);
          if (seen.has(k)) continue;
          seen.add(k);
          next.push(g);
        }
        // A callback handed to an API outside the model (bus_for_each_drv(..., fn)).
        for (const a of ev.args) {
          const name = a.trim();
          if (!/^\w+$/.test(name)) continue;
          const g = model.functions.get(name)?.[0];
          if (!g || seen.has(functionKey(g))) continue;
          seen.add(functionKey(g));
          next.push(g);
        }
      }
    }
    frontier = next;
  }
  return seen;
}
