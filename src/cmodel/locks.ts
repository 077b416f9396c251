/**
 * Lock identity like lockdep classes. `&matrix_mdev->kvm->lock` in one function and
 * `&kvm->lock` in another are the same class `kvm.lock`: the tag of the struct that contains the
 * member, plus the member. A global lock object is its own class (`ap_perms_mutex`). The type of
 * each step comes from the function's parameters and locals, the file's globals, and the tree's
 * struct, typedef, global and prototype declarations.
 */
import type { AccessPath, AccessStep, LockEvent } from './events.js';
import { structTag, type FileModel } from './declarations.js';
import type { FunctionModel, Var } from './functions.js';

/** The declarations lock classes are resolved against, merged over a set of files. */
export interface TypeEnv {
  /** struct/union tag -> member -> type text. */
  structs: Map<string, Map<string, string>>;
  typedefs: Map<string, string>;
  /** Non-static globals by name (externs included). */
  globals: Map<string, string>;
  /** Static globals per file: file -> name -> type. */
  fileGlobals: Map<string, Map<string, string>>;
  /** Function name -> return type (definitions and prototypes). */
  returns: Map<string, string>;
}

/** Merge the declarations of `files` into one environment. Later files do not override earlier ones. */
export function buildTypeEnv(files: Iterable<FileModel>): TypeEnv {
  const env: TypeEnv = { structs: new Map(), typedefs: new Map(), globals: new Map(), fileGlobals: new Map(), returns: new Map() };
  for (const f of files) {
    for (const s of f.structs) {
      // Anonymous structs are keyed by offset, which is only unique within a file.
      const key = s.name.startsWith('@') ? `${s.name}@${f.path}` : s.name;
      const fields = env.structs.get(key) ?? new Map<string, string>();
      for (const fld of s.fields) if (!fields.has(fld.name)) fields.set(fld.name, qualifyAnon(fld.type, f.path));
      env.structs.set(key, fields);
    }
    for (const t of f.typedefs) if (!env.typedefs.has(t.name)) env.typedefs.set(t.name, qualifyAnon(t.type, f.path));
    const statics = new Map<string, string>();
    for (const g of f.globals) {
      if (g.isStatic) statics.set(g.name, qualifyAnon(g.type, f.path));
      else if (!env.globals.has(g.name) || !g.isExtern) env.globals.set(g.name, qualifyAnon(g.type, f.path));
    }
    env.fileGlobals.set(f.path, statics);
    for (const fn of f.functions) if (!env.returns.has(fn.name)) env.returns.set(fn.name, fn.returnType);
    for (const p of f.prototypes) if (!env.returns.has(p.name)) env.returns.set(p.name, p.returnType);
  }
  return env;
}

function qualifyAnon(type: string, file: string): string {
  return type.replace(/\b(struct|union) (@\d+)/, `$1 $2@${file}`);
}

/** A parsed type: the struct tag it names (through typedefs) and its pointer/array depth. */
interface TypeShape {
  tag: string | null;
  /** The base spelling when it is not a struct: `spinlock_t`, `u32`. */
  base: string;
  depth: number;
}

function shape(type: string, env: TypeEnv, guard = 0): TypeShape {
  const depth = (type.match(/\*|\[\]/g) ?? []).length;
  const tag = structTag(type);
  if (tag) return { tag, base: tag, depth };
  const base = type.replace(/\b(?:const|volatile|static|unsigned|signed)\b|\*|\[\]|\(\)/g, ' ').trim().split(/\s+/).pop() ?? type;
  const td = env.typedefs.get(base);
  if (td && guard < 8) {
    const inner = shape(td, env, guard + 1);
    return { ...inner, depth: inner.depth + depth };
  }
  return { tag: null, base, depth };
}

/** Where a variable was declared, which decides whether a bare lock object is its own class. */
type VarScope = 'local' | 'param' | 'global';

function lookupVar(name: string, fn: FunctionModel | null, env: TypeEnv): { type: string; scope: VarScope; index: number } | null {
  if (fn) {
    const local = findLast(fn.locals, name);
    if (local) return { type: local.type, scope: 'local', index: -1 };
    const pi = fn.params.findIndex((p) => p.name === name);
    if (pi >= 0) return { type: fn.params[pi]!.type, scope: 'param', index: pi };
    const st = env.fileGlobals.get(fn.file)?.get(name);
    if (st) return { type: st, scope: 'global', index: -1 };
  }
  const g = env.globals.get(name);
  return g ? { type: g, scope: 'global', index: -1 } : null;
}

function findLast(vars: Var[], name: string): Var | undefined {
  for (let i = vars.length - 1; i >= 0; i--) if (vars[i]!.name === name) return vars[i];
  return undefined;
}

/** The type of a path's root, when the model can tell. */
function rootType(path: AccessPath, fn: FunctionModel | null, env: TypeEnv): string | null {
  const r = path.root;
  switch (r.kind) {
    case 'var':
      return lookupVar(r.name, fn, env)?.type ?? null;
    case 'cast':
      return r.type;
    case 'call':
      // container_of(ptr, type, member) and the list_*entry family name their result type.
      if (/^(?:container_of|container_of_const|list_entry|list_first_entry|list_last_entry|list_first_entry_or_null|list_next_entry|hlist_entry|rb_entry|llist_entry)$/.test(r.callee)) {
        const t = r.callee === 'list_next_entry' ? null : r.args[1];
        if (t && /^(?:struct|union)\s/.test(t)) return `${t} *`;
        return null;
      }
      return env.returns.get(r.callee) ?? null;
    default:
      return null;
  }
}

/** A resolved class: the id rules compare, and whether the model knew every type on the way. */
export interface ClassId {
  /** `kvm.lock`, `ap_perms_mutex`, `?.lock`, `rcu`. */
  id: string;
  known: boolean;
  /** Set when the object is reached through parameter `index` with these steps (for call-site substitution). */
  param: { index: number; steps: AccessStep[] } | null;
}

/**
 * The class of the object an access path names: `<struct tag>.<member>` for the last member step
 * whose containing struct is known, the global's name for a bare global, `?.<member>` when the
 * base type is unknown. A `*` at the end (a lock passed by pointer) gives `*<class>`.
 */
export function classOfPath(path: AccessPath | null, fn: FunctionModel | null, env: TypeEnv): ClassId {
  if (!path) return { id: '?', known: false, param: null };
  const root = path.root.kind === 'var' ? lookupVar(path.root.name, fn, env) : null;
  const param = root?.scope === 'param' ? { index: root.index, steps: path.steps } : null;
  const steps = path.steps;
  const lastMember = [...steps].reverse().find((s): s is { op: '->' | '.'; member: string } => s.op === '->' || s.op === '.');
  const trailingStar = steps.length > 0 && steps[steps.length - 1]!.op === '*';
  const star = (id: string): string => (trailingStar ? `*${id}` : id);
  if (!lastMember) {
    // A bare name that is not a local or parameter is a global, possibly declared in a header the
    // model did not load: it is its own class either way, as in lockdep.
    if (path.root.kind === 'var' && (!root || root.scope === 'global')) return { id: star(path.root.name), known: true, param: null };
    if (path.root.kind === 'var' && root) return { id: star(`${root.scope}:${path.root.name}`), known: false, param };
    return { id: star(`?:${path.root.kind === 'var' ? path.root.name : '?'}`), known: false, param };
  }
  let type = rootType(path, fn, env);
  let owner: string | null = null;
  const rest: string[] = [];
  for (const st of steps) {
    if (st.op === '*' || st.op === '[]') {
      if (type) type = type.replace(/\s*(?:\*|\[\])\s*$/, '');
      continue;
    }
    if (rest.length > 0) {
      rest.push(st.member);
      continue;
    }
    const sh = type ? shape(type, env) : null;
    if (!sh?.tag) {
      rest.push(st.member);
      continue;
    }
    owner = sh.tag;
    const fieldType = env.structs.get(sh.tag)?.get(st.member);
    if (st === lastMember) {
      return { id: star(`${displayTag(owner)}.${st.member}`), known: true, param };
    }
    if (!fieldType) {
      // The struct is not in the model: keep the remaining member chain under the last known tag.
      rest.push(st.member);
      continue;
    }
    type = fieldType;
  }
  if (owner) return { id: star(`${displayTag(owner)}.${rest.join('.')}`), known: false, param };
  return { id: star(`?.${lastMember.member}`), known: false, param };
}

function displayTag(tag: string): string {
  return tag.startsWith('@') ? `anon${tag}` : tag;
}

/** The lock class of a lock event in `fn` (rcu has one global class, like lockdep's rcu_read_lock map). */
export function lockClassOf(ev: LockEvent, fn: FunctionModel | null, env: TypeEnv): ClassId {
  if (ev.flavor === 'rcu') return { id: 'rcu', known: true, param: null };
  const c = classOfPath(ev.path, fn, env);
  if (c.id === '?') return { ...c, id: `?:${ev.lock}` };
  // device_lock(dev) on any struct device is the device mutex class; mmap_*_lock(mm) the mmap_lock one.
  if (ev.flavor === 'device' && !c.known) return { ...c, id: 'device.mutex', known: true };
  if (!c.known && /(?:->|\.)mmap_lock$/.test(ev.lock)) return { ...c, id: 'mm_struct.mmap_lock', known: true };
  return c;
}

/** The field class `struct.member` of a load/store path, or null when the base type is unknown. */
export function fieldClassOf(path: AccessPath | null, fn: FunctionModel | null, env: TypeEnv): string | null {
  const c = classOfPath(path, fn, env);
  return c.known ? c.id : null;
}
