import { resolveCall, type Event, type FunctionModel, type Stmt, type TreeModel } from '../cmodel/index.js';
import { allStmts, beforeFunction, branchesOf, changedFunctions, errnoOf, esc, mentions, unchangedLineMap } from './flow/cflow.js';
import { defineRule, type ChangedFile, type RuleContext } from './types.js';

/** Ops members through which userspace calls a function and sees its return value. */
const USER_MEMBERS = new Set([
  'unlocked_ioctl', 'compat_ioctl', 'ioctl', 'read', 'write', 'read_iter', 'write_iter', 'mmap', 'open', 'release', 'poll',
  'llseek', 'open_device', 'show', 'store', 'get', 'set', 'device_feature', 'migration_set_state', 'migration_get_state',
  // iommu_ops.attach_dev: VFIO_SET_IOMMU and VFIO_GROUP_SET_CONTAINER pass its errno to userspace.
  'attach_dev',
]);

/**
 * Names that say a function is a user entry point: ioctl handlers, sysfs show/store, fops, and iommu
 * attach_dev callbacks (the model misses `.default_domain_ops = &(const struct iommu_domain_ops){ ... }`
 * bindings, so the name stands in for the member).
 */
const ENTRY_NAME = /ioctl|_(?:store|show|write|read|open|release|mmap|poll|llseek)$|_fops_\w+$|_attach_dev(?:ice)?$/;

/**
 * Transient conditions: an exclusive lock not obtained, a busy or in-use flag. Read trylocks on a
 * rwsem are left out: they fail only while a writer holds it, and kernel code uses exactly that to
 * ask "has teardown started?" (mdev's `down_read_trylock(&parent->unreg_sem)` -> -ENODEV is right).
 */
const TRYLOCK = /\b(?:mutex_trylock|spin_trylock\w*|down_write_trylock|device_trylock|write_trylock)\s*\(/;
const BUSY_FLAG = /(?:->|\.)(?:\w*_)?(?:busy|in_use|inuse|in_progress)\b|\b\w*_(?:BUSY|IN_USE|INUSE)\b/;
const WRONG_FOR_TRANSIENT = new Set(['ENODEV', 'EPERM', 'EINVAL', 'EIO', 'ENXIO', 'EACCES']);

const callerCache = new WeakMap<TreeModel, Map<FunctionModel, { fn: FunctionModel; call: Event & { kind: 'call' } }[]>>();
function callersOf(model: TreeModel, fn: FunctionModel): { fn: FunctionModel; call: Event & { kind: 'call' } }[] {
  let map = callerCache.get(model);
  if (!map) {
    map = new Map();
    for (const fm of model.files.values()) {
      for (const f of fm.functions) {
        for (const e of f.events) {
          if (e.kind !== 'call') continue;
          for (const t of resolveCall(model, e, f)) map.set(t, [...(map.get(t) ?? []), { fn: f, call: e }]);
        }
      }
    }
    callerCache.set(model, map);
  }
  return map.get(fn) ?? [];
}

/** Whether `caller` hands the result of `call` back (`return f(...)`, or `ret = f(...)` ... `return ret`). */
function propagates(caller: FunctionModel, call: Event & { kind: 'call' }): boolean {
  const i = caller.events.indexOf(call);
  const assigned = caller.events.slice(i + 1, i + 6).find((e) => e.kind === 'assign' && e.fromCall === call.callee);
  const v = assigned?.kind === 'assign' ? assigned.target.trim() : null;
  return caller.events.some((e) => e.kind === 'return' && e.expr !== null && (new RegExp(String.raw`\b${esc(call.callee)}\s*\(`).test(e.expr) || (v !== null && mentions(e.expr, v))));
}

/** The chain by which userspace reaches `fn` and sees its errno, or null when the model shows none. */
function userEntry(model: TreeModel, fn: FunctionModel, depth = 3, seen = new Set<FunctionModel>()): string[] | null {
  if (seen.has(fn)) return null;
  seen.add(fn);
  if (ENTRY_NAME.test(fn.name)) return [`${fn.name}()`];
  for (const [member, list] of model.ops) if (USER_MEMBERS.has(member) && list.some((b) => b.fn === fn.name)) return [`.${member} = ${fn.name}()`];
  if (depth === 0) return null;
  for (const c of callersOf(model, fn)) {
    if (!propagates(c.fn, c.call)) continue;
    const up = userEntry(model, c.fn, depth - 1, seen);
    if (up) return [...up, `${fn.name}()`];
  }
  return null;
}

/** One path's exit: the errno it returns (when literal) and the line that set it. */
interface Exit {
  skeleton: string;
  errno: string | null;
  line: number | null;
  branches: number;
}

/**
 * Bounded enumeration of `fn`'s paths. A path's skeleton is the sequence of the lines it runs that
 * the patch left alone (`keep` maps them to one numbering for both sides): the same inputs take the
 * same skeleton before and after. Null when the bound is hit.
 */
function exitsOf(fn: FunctionModel, keep: (line: number) => number | null, maxPaths = 4000): Exit[] | null {
  const b = branchesOf(fn);
  const out: Exit[] = [];
  interface Frame { node: number; visits: Map<number, number>; skel: number[]; branches: number; vals: Map<string, { errno: string | null; line: number }> }
  const stack: Frame[] = [{ node: b.cfg.entry, visits: new Map(), skel: [], branches: 0, vals: new Map() }];
  let work = 400_000;
  while (stack.length) {
    if (--work < 0 || out.length > maxPaths) return null;
    const f = stack.pop()!;
    const n = b.cfg.nodes[f.node]!;
    const count = (f.visits.get(f.node) ?? 0) + 1;
    if (count > 2) continue;
    const visits = new Map(f.visits).set(f.node, count);
    const k = n.kind === 'entry' || n.kind === 'exit' ? null : keep(n.line);
    const skel = k === null || f.skel[f.skel.length - 1] === k ? f.skel : [...f.skel, k];
    const branches = f.branches + (k !== null && n.kind === 'branch' ? 1 : 0);
    let vals = f.vals;
    let ret: string | null | undefined;
    for (const ev of n.events) {
      if (ev.kind === 'assign') {
        vals = new Map(vals).set(ev.target.trim(), { errno: errnoOf(ev.value), line: ev.line });
      } else if (ev.kind === 'return') ret = ev.expr;
    }
    if (n.kind === 'return') {
      const e = (ret ?? n.returns)?.trim() ?? null;
      const lit = errnoOf(e);
      const v = e !== null && /^[A-Za-z_]\w*$/.test(e) ? vals.get(e) : undefined;
      out.push({ skeleton: skel.join(','), errno: lit ?? v?.errno ?? null, line: lit ? n.line : (v?.line ?? null), branches });
      continue;
    }
    if (n.kind === 'exit') continue;
    for (let i = n.succ.length - 1; i >= 0; i--) stack.push({ node: n.succ[i]!.to, visits, skel, branches, vals });
  }
  return out;
}

/** Errnos a patch changed on paths that existed before it: [old, new, new's line]. */
function changedErrnos(before: FunctionModel, after: FunctionModel, file: ChangedFile, beforeLines: number, afterLines: number): { old: string; now: string; line: number; oldLine: number | null }[] {
  const map = unchangedLineMap(file, afterLines, beforeLines);
  const kept = new Set(map.values());
  const a = exitsOf(after, (l) => map.get(l) ?? null);
  const b = exitsOf(before, (l) => (file.removed.has(l) || !kept.has(l) ? null : l));
  if (!a || !b) return [];
  const group = (xs: Exit[]): Map<string, Exit[]> => {
    const m = new Map<string, Exit[]>();
    for (const x of xs) m.set(x.skeleton, [...(m.get(x.skeleton) ?? []), x]);
    return m;
  };
  const ga = group(a);
  const out: { old: string; now: string; line: number; oldLine: number | null }[] = [];
  for (const [skel, olds] of group(b)) {
    if (!skel || olds.every((o) => o.branches === 0)) continue;
    const errs = new Set(olds.map((o) => o.errno));
    if (errs.size !== 1 || errs.has(null)) continue;
    const old = olds[0]!.errno!;
    const news = ga.get(skel) ?? [];
    if (news.some((n) => n.errno === old)) continue;
    const changed = news.find((n) => n.errno !== null && n.line !== null && file.added.has(n.line));
    if (changed) out.push({ old, now: changed.errno!, line: changed.line!, oldLine: olds[0]!.line });
  }
  return out;
}

/** Added `return -ENODEV`-style exits taken when a trylock fails or a busy flag is set. */
function transientErrnos(fn: FunctionModel, file: ChangedFile): { errno: string; line: number; cond: string }[] {
  const out: { errno: string; line: number; cond: string }[] = [];
  const exitErrno = (body: Stmt[]): { errno: string; line: number } | null => {
    for (const s of body.slice(0, 3)) {
      if (s.kind === 'return') {
        const e = errnoOf(s.expr);
        return e ? { errno: e, line: s.line } : null;
      }
      if (s.kind === 'expr') {
        const m = /^\s*\w+\s*=\s*(?<v>-\s*E[A-Z0-9]+)\s*;?\s*$/.exec(s.text);
        const e = m ? errnoOf(m.groups!.v!) : null;
        if (e) return { errno: e, line: s.line };
      }
      if (s.kind === 'block') return exitErrno(s.body);
    }
    return null;
  };
  for (const s of allStmts(fn.body)) {
    if (s.kind !== 'if') continue;
    const cond = s.cond.replace(/\s+/g, ' ').trim();
    const negated = /^!\s*\(?\s*(?:mutex_trylock|spin_trylock|down_write_trylock|device_trylock|write_trylock)/.test(cond);
    let failBody: Stmt[] | null = null;
    if (TRYLOCK.test(cond)) failBody = negated ? s.then : s.else;
    else if (BUSY_FLAG.test(cond) && !/^!/.test(cond) && !/[|&]{2}/.test(cond)) failBody = s.then;
    if (!failBody) continue;
    const hit = exitErrno(failBody);
    if (!hit || !WRONG_FOR_TRANSIENT.has(hit.errno)) continue;
    if (!file.added.has(hit.line) && !file.added.has(s.line)) continue;
    out.push({ errno: hit.errno, line: hit.line, cond });
  }
  return out;
}

export const errnoContract = defineRule({
  id: 'errno-contract',
  meta: {
    severity: 'warning',
    category: 'errno-contract',
    confidence: 'moderate',
    description: 'A user-visible errno changes on an existing path, or a transient busy condition is reported as a hard error',
    reviewers:
      'Errnos returned by ioctls and sysfs files are uAPI: reviewers ask why an existing failure now returns ' +
      '-EBADF instead of -EINVAL (QEMU and libvirt test for specific values), and object to reporting a race or ' +
      'a busy lock as -ENODEV/-EPERM ("Which device does not exist? ... I would prefer -EAGAIN").',
    falsePositives:
      'A patch whose purpose is to correct an errno (the change is then intended; the finding still asks for it to ' +
      'be called out in the commit message). Paths the bounded walk cannot tell apart when a patch rewrites most of a function are skipped.',
    messages: {
      changed: '{{fn}}() now returns {{now}} (line {{line}}) where it returned {{old}} for the same case before the patch; {{entry}} hands it to userspace',
      sweep: 'the patch changes the errno of an existing failure to {{now}} (was {{old}}) in {{count}} user-reachable functions, starting with {{fn}}() (line {{line}})',
      transient: '{{fn}}() returns -{{errno}} when {{why}} (line {{line}}): a transient condition, where -EBUSY or -EAGAIN tells userspace to retry',
    },
  },
  async check(ctx: RuleContext) {
    // Nothing changed in C: do not build the model for nothing.
    if (!ctx.files.some((f) => f.path.endsWith('.c') && (f.added.size > 0 || f.removed.size > 0))) return;
    const after = await ctx.model('after');
    if (!after) return;
    const before = await ctx.model('before');
    const changes: Change[] = [];
    for (const f of ctx.files) {
      if (f.status === 'deleted' || !f.path.endsWith('.c')) continue;
      const aText = ctx.after(f.path);
      const bText = ctx.before(f.oldPath ?? f.path);
      for (const fn of changedFunctions(after, before, f)) {
        if (fn.returnType.trim() === 'void') continue;
        const entry = userEntry(after, fn);
        if (!entry) continue;
        const bfn = beforeFunction(before, f, fn.name);
        if (bfn && aText !== null && bText !== null) {
          const found = changedErrnos(bfn, fn, f, bText.split('\n').length, aText.split('\n').length);
          if (found.length) changes.push({ file: f.path, fn, entry, sites: found });
        }
        for (const t of transientErrnos(fn, f)) {
          const why = TRYLOCK.test(t.cond) ? `the trylock in \`${t.cond}\` fails` : `\`${t.cond}\` says the object is busy`;
          ctx.report({
            messageId: 'transient',
            file: f.path,
            line: t.line,
            function: fn.name,
            data: { fn: fn.name, errno: t.errno, why, line: t.line },
            evidence: [`condition: ${t.cond}`, `returns -${t.errno} at line ${t.line}`, `reached from userspace via ${entry.join(' -> ')}`],
            suggestion: 'return -EBUSY (or -EAGAIN) so userspace can tell a retryable race from a hard failure',
          });
        }
      }
    }
    reportChanges(ctx, changes);
  },
});

/** The errno changes of one function. */
interface Change {
  file: string;
  fn: FunctionModel;
  entry: string[];
  sites: { old: string; now: string; line: number; oldLine: number | null }[];
}

/**
 * One finding per function; a patch that moves many functions to the same new errno (a deliberate
 * sweep, like -EINVAL -> -EMEDIUMTYPE across every attach_dev) gets one finding naming them all.
 */
function reportChanges(ctx: RuleContext, changes: Change[]): void {
  const byNew = new Map<string, Change[]>();
  for (const c of changes) {
    const key = [...new Set(c.sites.map((s) => s.now))].sort().join(',');
    byNew.set(key, [...(byNew.get(key) ?? []), c]);
  }
  for (const [now, group] of byNew) {
    const sweep = group.length > 2;
    for (const c of sweep ? [group[0]!] : group) {
      const first = c.sites[0]!;
      const olds = [...new Set((sweep ? group : [c]).flatMap((x) => x.sites.map((s) => `-${s.old}`)))].join('/');
      ctx.report({
        messageId: sweep ? 'sweep' : 'changed',
        file: c.file,
        line: first.line,
        function: c.fn.name,
        data: {
          fn: c.fn.name, now: now.split(',').map((e) => `-${e}`).join('/'), old: olds, line: first.line,
          entry: c.entry.join(' -> '), count: group.length,
        },
        evidence: (sweep ? group : [c]).flatMap((x) => [
          ...x.sites.map((s) => `${x.file}:${s.line}: ${x.fn.name}() returns -${s.now} where it returned -${s.old}${s.oldLine ? ` (old line ${s.oldLine})` : ''}`),
          `reached from userspace via ${x.entry.join(' -> ')}`,
        ]),
        suggestion: `keep ${olds} for the existing cases, or state the uAPI change in the commit message and check that QEMU/libvirt do not test for ${olds}`,
      });
    }
  }
}
