import { findFunction, resolveCall, structTag, type Event, type FunctionModel, type TreeModel } from '../cmodel/index.js';
import { bareName, fieldOfEvent, fieldUses, opsBindings, reachable, tagOf, type Reached } from './flow/callbacks.js';
import { beforeFunction, changedFunctions, typeOfExpr } from './flow/cflow.js';
import { defineRule, type RuleContext } from './types.js';

type CallEv = Event & { kind: 'call' };

/** Taking a reference that keeps an object alive for as long as the file holds it. */
const REF_GET = /^(?:get_device|kref_get|kref_get_unless_zero|refcount_inc|refcount_inc_not_zero|get_file|kvm_get_kvm|kobject_get|pci_dev_get|__module_get|try_module_get|get_task_struct|mmgrab|mmget|iommufd_ctx_get|vfio_device_try_get_registration|vfio_device_get|vfio_device_get_from_name|vfio_device_get_from_dev|vfio_group_get|vfio_device_get_registration)$|_tryget$|_try_get$|_get_ref$|_ref_get$/;
/** Gets that always return or pin a device. */
const DEVICE_GET = /^(?:get_device|kvm_get_kvm|pci_dev_get|vfio_device_try_get_registration|vfio_device_get|vfio_device_get_from_name|vfio_device_get_from_dev|vfio_device_get_registration)$/;
/** Dropping one. */
const REF_PUT = /^(?:put_device|kref_put|kref_put_mutex|kref_put_lock|refcount_dec|refcount_dec_and_test|fput|kvm_put_kvm|kobject_put|pci_dev_put|module_put|put_task_struct|mmdrop|mmput|iommufd_ctx_put|vfio_device_put_registration|vfio_put_device|vfio_device_put|vfio_group_put)$|_put$/;
/** Ops members the core calls when the device closes or goes away. */
const TEARDOWN_MEMBERS = new Set(['close_device', 'remove', 'shutdown']);
/** Struct tags that are never device state. */
const NOT_DEVICE = new Set(['file', 'inode', 'vm_area_struct', 'poll_table_struct', 'page', 'kvm', 'mm_struct', 'task_struct', 'iov_iter', 'kiocb', 'seq_file',
  // A misc device is a module-lifetime global, and the file pins the module.
  'miscdevice']);
/** Tags that name a device object even when they are the file's private data. */
const DEVICE_TAG = /(?:^|_)(?:vfio_device|device|dev|vdev|core_device|mdev)$/;

/** One file handed out: the call, its file_operations (or dma_buf_ops) and its private data. */
interface Handout {
  call: CallEv;
  api: string;
  ops: string;
  priv: string;
}

/** The files `fn` creates with anon_inode_getfd/getfile or dma_buf_fd, with ops and private data. */
function handouts(fn: FunctionModel): Handout[] {
  const out: Handout[] = [];
  for (const ev of fn.events) {
    if (ev.kind !== 'call') continue;
    if (/^anon_inode_getf(?:d|ile)(?:_secure)?$/.test(ev.callee)) {
      const ops = bareName(ev.args[1] ?? '');
      if (ops && ev.args[2]) out.push({ call: ev, api: ev.callee, ops, priv: ev.args[2].trim() });
    } else if (ev.callee === 'dma_buf_fd') {
      // exp_info.ops = &ops; exp_info.priv = priv; dmabuf = dma_buf_export(&exp_info); dma_buf_fd(dmabuf, flags)
      const stores = fn.events.filter((e): e is Event & { kind: 'store' } => e.kind === 'store');
      const ops = stores.find((s) => s.member === 'ops');
      const priv = stores.find((s) => s.member === 'priv' && ops && s.base === ops.base);
      const name = ops ? bareName(ops.value) : null;
      if (name && priv) out.push({ call: ev, api: ev.callee, ops: name, priv: priv.value.trim() });
    }
  }
  return out;
}

/** Calls made by `fn` and the model functions it calls, `depth` levels down. */
function callsDeep(model: TreeModel, fn: FunctionModel, depth: number, seen = new Set<FunctionModel>()): { call: CallEv; in: FunctionModel }[] {
  if (seen.has(fn)) return [];
  seen.add(fn);
  const out: { call: CallEv; in: FunctionModel }[] = [];
  for (const ev of fn.events) {
    if (ev.kind !== 'call') continue;
    out.push({ call: ev, in: fn });
    if (depth > 0) for (const t of resolveCall(model, ev, fn)) out.push(...callsDeep(model, t, depth - 1, seen));
  }
  return out;
}

/** The functions calling `fn` directly anywhere in the model. */
function callers(model: TreeModel, fn: FunctionModel): FunctionModel[] {
  const out: FunctionModel[] = [];
  for (const fm of model.files.values()) {
    for (const f of fm.functions) if (f.events.some((e) => e.kind === 'call' && resolveCall(model, e, f).includes(fn))) out.push(f);
  }
  return out;
}

/** A finding about one handout, or null when the model shows it is safe or cannot tell. */
interface Unsafe {
  h: Handout;
  reach: { fn: FunctionModel; cls: string; line: number; how: string; chain: string[] };
}

function judgeHandout(model: TreeModel, fn: FunctionModel, h: Handout): Unsafe | null {
  const fops = opsBindings(model, h.ops);
  if (fops.length === 0) return null;
  const privType = typeOfExpr(model, fn, h.priv.replace(/^&/, ''));
  const privTag = privType ? structTag(privType) : null;
  const deviceTags = new Set<string>();
  for (const p of fn.params) {
    const t = structTag(p.type);
    if (t && /\*/.test(p.type) && !NOT_DEVICE.has(t) && (t !== privTag || DEVICE_TAG.test(t))) deviceTags.add(t);
  }
  if (privTag && DEVICE_TAG.test(privTag)) deviceTags.add(privTag);
  if (deviceTags.size === 0) return null;
  // What the file's operations reach, and whether any of it is device state.
  const roots: Reached[] = fops.map((b) => ({ fn: b.fn, chain: [`${h.ops}.${b.member} = ${b.fn.name}()`] }));
  let reach: Unsafe['reach'] | null = null;
  for (const [g, r] of reachable(model, roots, 80)) {
    for (const [cls, u] of fieldUses(model, g)) {
      if (deviceTags.has(tagOf(cls))) {
        reach = { fn: g, cls, line: u.line, how: u.how, chain: r.chain };
        break;
      }
    }
    if (reach) break;
  }
  if (!reach) return null;
  // A reference on the device at creation (here, in a helper, or in the caller that installs the fd).
  // `get_file(migf->filp)` and other gets on the file's own objects do not keep the device alive.
  const onDevice = (c: { call: CallEv; in: FunctionModel }): boolean => {
    if (DEVICE_GET.test(c.call.callee)) return true;
    const root = /^\(?&?\s*(?<r>[A-Za-z_]\w*)/.exec(c.call.args[0] ?? '')?.groups?.r;
    const t = root ? structTag(typeOfExpr(model, c.in, root) ?? '') : null;
    return t !== null && (deviceTags.has(t) || DEVICE_TAG.test(t));
  };
  const around = [...callsDeep(model, fn, 1), ...callers(model, fn).flatMap((c) => callsDeep(model, c, 0))];
  if (around.some((c) => REF_GET.test(c.call.callee) && onDevice(c))) return null;
  // A reference dropped on release: the file held one, whoever took it.
  for (const b of fops.filter((x) => x.member === 'release')) {
    for (const c of callsDeep(model, b.fn, 2)) {
      if (!REF_PUT.test(c.call.callee)) continue;
      const root = /^\(?&?\s*(?<r>[A-Za-z_]\w*)/.exec(c.call.args[0] ?? '')?.groups?.r;
      const t = root ? structTag(typeOfExpr(model, c.in, root) ?? '') : null;
      if (!t || t !== privTag || DEVICE_TAG.test(t)) return null;
    }
  }
  // A revoke on close/remove: teardown writes or locks the file's private object (`migf->disabled = true`
  // under `migf->lock`), after which the f_ops stop. Zapping the device's own mmaps is not a revoke of this file.
  if (privTag && !deviceTags.has(privTag)) {
    const teardown: Reached[] = [];
    for (const [member, list] of model.ops) {
      if (!TEARDOWN_MEMBERS.has(member)) continue;
      for (const b of list) {
        const t = findFunction(model, b.fn, b.file);
        if (t) teardown.push({ fn: t, chain: [`.${member}`] });
      }
    }
    for (const g of reachable(model, teardown, 120, 3).keys()) {
      for (const e of g.events) {
        const fld = fieldOfEvent(model, g, e);
        if (fld && fld.how !== 'reads' && tagOf(fld.cls) === privTag) return null;
      }
    }
  }
  return { h, reach };
}

export const fdLifetime = defineRule({
  id: 'fd-lifetime',
  meta: {
    severity: 'warning',
    category: 'lifetime-uaf',
    confidence: 'moderate',
    description: 'A file handed to userspace reaches device state without a reference or a revoke on close/remove',
    reviewers:
      'For migration data FDs and similar anon-inode or dma-buf files, reviewers ask what keeps the device alive while ' +
      'userspace holds the FD: either a reference taken at creation and dropped in .release, or a revoke in ' +
      'close_device() after which the f_ops no longer touch the vfio_device (Jason Gunthorpe: "The driver must ensure ' +
      'any activity triggered by the migration FD against the vfio_device is halted before close_device() returns").',
    falsePositives:
      'Lifetime guaranteed another way the model cannot see: a reference taken by a caller outside the model, a revoke ' +
      'done through a callback in another file, or state that is not freed on close (module-global data).',
    messages: {
      unguarded:
        '{{api}}() in {{fn}}() hands userspace a file whose {{ops}} reach device state ({{callback}}() {{how}} {{field}}) with no reference taken and no revoke on close_device/remove',
    },
  },
  async check(ctx: RuleContext) {
    // Nothing changed in C: do not build the model for nothing.
    if (!ctx.files.some((f) => f.path.endsWith('.c') && (f.added.size > 0 || f.removed.size > 0))) return;
    const after = await ctx.model('after');
    if (!after) return;
    const before = await ctx.model('before');
    for (const f of ctx.files) {
      if (f.status === 'deleted' || !f.path.endsWith('.c')) continue;
      for (const fn of changedFunctions(after, before, f)) {
        const hs = handouts(fn);
        if (hs.length === 0) continue;
        const bfn = beforeFunction(before, f, fn.name);
        const old = new Set<string>();
        if (bfn && before) for (const h of handouts(bfn)) if (judgeHandout(before, bfn, h)) old.add(`${h.api}|${h.ops}`);
        for (const h of hs) {
          const u = judgeHandout(after, fn, h);
          if (!u || old.has(`${h.api}|${h.ops}`)) continue;
          ctx.report({
            messageId: 'unguarded',
            file: f.path,
            line: h.call.line,
            function: fn.name,
            data: { api: h.api, fn: fn.name, ops: h.ops, callback: u.reach.fn.name, how: u.reach.how, field: u.reach.cls },
            evidence: [
              `line ${h.call.line}: ${h.api}(..., ${h.ops}, ${h.priv}, ...)`,
              `${u.reach.chain.join(' -> ')}: ${u.reach.fn.name}() ${u.reach.how} ${u.reach.cls} (${u.reach.fn.file}:${u.reach.line})`,
              'no reference (get_device/kref_get/refcount_inc/vfio_device_try_get_registration) at creation, none dropped in .release',
              'no close_device/remove path that disables the file or clears its private data',
            ],
            suggestion:
              'take a reference for the file and drop it in .release, or disable the file from close_device() under the lock its f_ops take so they stop touching the device',
          });
        }
      }
    }
  },
});
