import { defineRule } from './types.js';
import type { ChangedFile, RuleContext as Ctx } from './types.js';
import { ABIS, flattenFields, headerImages, isUapiHeader, preToPost, splitTopLevel, unparen, type Aggregate, type Ioctl, type UapiModel } from './uapi-model.js';

interface Sym { kind: 'define' | 'enum constant'; line: number; comparable: string; shown: string }

/** Fields whose renaming or resizing is the normal way to extend a struct. */
const RESERVED = /^_*(?:reserved|resv|rsvd|rsv|pad|padding|spare|unused)\w*$/i;
/** Include guards: renaming one breaks nothing. */
const GUARD = /^_\w*_H_*$/;

/** A name that says it is the set of valid bits: VFIO_IRQ_SET_DATA_TYPE_MASK, IOMMU_HWPT_ALLOC_FLAGS_ALL. */
const MASK_NAME = /(?:^|_)(?:MASK|ALL|VALID|SUPPORTED)(?:_|$)/;

/** The terms of a value that is a bitwise OR (`A | B | C`, in parentheses or not), or null. */
function orTerms(comparable: string): string[] | null {
  const s = unparen(comparable.replace(/^= /, ''));
  if (s.includes('||')) return null;
  const out = splitTopLevel(s, '|');
  return out.every((t) => t.length > 0) ? out : null;
}

/**
 * A mask of valid bits that gains bits and keeps all it had: the way a uAPI flag word is extended
 * (a new VFIO_IRQ_SET_ACTION_* joins VFIO_IRQ_SET_ACTION_TYPE_MASK). A binary built against the
 * old header never sets the new bits, so nothing it does changes meaning.
 */
function growsMask(name: string, old: string, now: string): boolean {
  if (!MASK_NAME.test(name)) return false;
  const a = /^= (\d+)$/.exec(old), b = /^= (\d+)$/.exec(now);
  if (a && b) {
    const x = BigInt(a[1]!), y = BigInt(b[1]!);
    return x !== y && (x & y) === x;
  }
  const ta = orTerms(old), tb = orTerms(now);
  return !!ta && !!tb && tb.length > ta.length && ta.every((t) => tb.includes(t));
}

/** A define's value with every identifier that has an integer value replaced by it. */
function comparable(model: UapiModel, body: string, params: string[] | null): string {
  const v = params ? null : model.evaluate(body);
  if (v !== null) return `= ${v}`;
  const out = body.replace(/[A-Za-z_]\w*/g, (id) => {
    if (params?.includes(id)) return id;
    const x = model.evaluate(id);
    return x === null ? id : String(x);
  });
  return `${params ? `(${params.join(',')}) ` : ''}${out.replace(/\s+/g, '')}`;
}

function symbols(model: UapiModel): Map<string, Sym> {
  const out = new Map<string, Sym>();
  const ioctls = new Map(model.ioctls.map((io) => [io.name, io]));
  for (const d of model.defines.values()) {
    if (d.body === '' && GUARD.test(d.name)) continue;
    const io = ioctls.get(d.name);
    const c = io ? `ioctl ${io.dir} ${io.typeValue ?? io.type} ${io.nrValue ?? io.nr} ${io.argType ?? ''}` : comparable(model, d.body, d.params);
    out.set(d.name, { kind: 'define', line: d.line, comparable: c, shown: d.body.length > 60 ? `${d.body.slice(0, 57)}...` : d.body });
  }
  for (const c of model.constants.values()) {
    if (out.has(c.name)) continue;
    out.set(c.name, { kind: 'enum constant', line: c.line, comparable: c.value !== null ? `= ${c.value}` : (c.expr ?? ''), shown: c.value !== null ? String(c.value) : (c.expr ?? '') });
  }
  return out;
}

/** The fd an ioctl is issued on: VFIO reuses numbers across container, group and device fds. */
function fdClass(io: Ioctl): string {
  if (io.type !== 'VFIO_TYPE') return 'fd';
  if (io.name.startsWith('VFIO_DEVICE_')) return 'device';
  if (io.name.startsWith('VFIO_GROUP_')) return 'group';
  if (/^VFIO_(?:IOMMU_SPAPR_|EEH_)/.test(io.name)) return 'container/spapr';
  if (io.name.startsWith('VFIO_IOMMU_')) return 'container/type1';
  return 'container';
}
const sameFd = (a: string, b: string): boolean => a === b || (a === 'container' && b.startsWith('container')) || (b === 'container' && a.startsWith('container'));

/** An added line near `line` inside [from, to] to hang a finding on. */
function anchor(f: ChangedFile, line: number, from: number, to: number): number {
  if (f.added.has(line)) return line;
  const inside = [...f.added].filter((l) => l >= from && l <= to).sort((a, b) => a - b);
  return inside.filter((l) => l <= line).pop() ?? inside[0] ?? line;
}

export const uapiAbiBreak = defineRule({
  id: 'uapi-abi-break',
  meta: {
    input: 'text',
    severity: 'error',
    category: 'uapi-abi',
    confidence: 'high',
    description:
      'A uAPI header loses or renames a define, enum constant, struct or field, changes a value or a field offset, or gives a new ioctl a number already in use',
    reviewers:
      '"We don\'t break userspace": a released uAPI name or number is forever. Reviewers ask to keep the old define beside ' +
      'a new one (the v2 migration series had to justify renaming VFIO_DEVICE_STATE_* to *_V1_*), to add struct fields only ' +
      'at the end, and to take the next free ioctl number.',
    falsePositives:
      'Deliberate removal of an interface that never worked or is being retired with the maintainers\' agreement (the ' +
      'VFIO v1 migration region); a definition moved to another header that the old one does not include; ' +
      'a value defined through a macro from another header that only looks changed. (A *_MASK/*_ALL/*_VALID/*_SUPPORTED ' +
      'define that gains bits and keeps the old ones is how a flag word is extended, and is not reported.)',
    messages: {
      removed: '{{kind}} {{name}} is gone from the uAPI header{{renamed}}: userspace that uses it stops building; keep the old name (alias it to the new one)',
      changed: '{{kind}} {{name}} changes value ({{old}} -> {{new}}): binaries built against the old header keep using the old value',
      removedType: '{{name}} is removed from the uAPI{{renamed}}: userspace that uses it stops building',
      removedField: 'field {{field}} of {{struct}} is removed or renamed{{renamed}}: userspace that names it stops building',
      fieldLayout: 'field {{field}} of {{struct}} moves from offset {{old}} to {{new}} ({{abi}}){{more}}: the layout is ABI; add new fields at the end',
      collision: '{{name}} reuses ioctl number {{nr}} of {{other}} on the same file descriptor: take the next free number',
      removedHeader: 'uAPI header {{path}} is deleted: userspace that includes it stops building',
    },
  },
  check(ctx) {
    const uapi = ctx.files.filter((f) => isUapiHeader(f.path));
    const images = new Map(uapi.map((f) => [f.path, headerImages(ctx, f)]));
    // Names this patch defines in any uAPI header: a definition moved between headers is not lost.
    const elsewhere = (path: string, name: string): boolean =>
      [...images].some(([p, im]) => p !== path && !!im.post && (im.post.defines.has(name) || im.post.constants.has(name) || im.post.aggregates.has(name)));
    for (const f of uapi) {
      const { pre, post } = images.get(f.path)!;
      if (f.status === 'deleted') {
        if (pre) ctx.report({ messageId: 'removedHeader', file: f.path, line: 1, data: { path: f.path } });
        continue;
      }
      if (!post) continue;
      if (pre) {
        compareSymbols(ctx, f, pre, post, elsewhere);
        compareAggregates(ctx, f, pre, post, elsewhere);
      }
      collisions(ctx, f, pre, post);
    }
  },
});

function compareSymbols(ctx: Ctx, f: ChangedFile, pre: UapiModel, post: UapiModel, elsewhere: (p: string, n: string) => boolean): void {
  const a = symbols(pre);
  const b = symbols(post);
  for (const [name, old] of a) {
    const now = b.get(name);
    if (now) {
      if (now.comparable !== old.comparable && !growsMask(name, old.comparable, now.comparable)) {
        ctx.report({ messageId: 'changed', file: f.path, line: now.line, data: { kind: now.kind, name, old: old.shown || '(empty)', new: now.shown || '(empty)' }, evidence: [`before: ${old.shown}`, `after: ${now.shown}`] });
      }
      continue;
    }
    if (elsewhere(f.path, name)) continue;
    const line = preToPost(f, old.line);
    // A new name with the same value, added by this patch, is the likely new spelling.
    const to = [...b].filter(([n, s]) => !a.has(n) && s.comparable === old.comparable && f.added.has(s.line)).sort((x, y) => Math.abs(x[1].line - line) - Math.abs(y[1].line - line))[0];
    ctx.report({
      messageId: 'removed', file: f.path, line: to ? to[1].line : line,
      data: { kind: old.kind, name, renamed: to ? ` (renamed to ${to[0]}?)` : '' },
      evidence: [`before: ${name} ${old.shown}`],
      suggestion: to ? `#define ${name} ${to[0]}` : undefined,
    });
  }
}

function compareAggregates(ctx: Ctx, f: ChangedFile, pre: UapiModel, post: UapiModel, elsewhere: (p: string, n: string) => boolean): void {
  const names = (agg: Aggregate): string => agg.fields.map((x) => x.name ?? x.type).join(',');
  for (const [key, old] of pre.aggregates) {
    const now = post.aggregates.get(key);
    if (!now) {
      if (elsewhere(f.path, key)) continue;
      const twin = [...post.aggregates].find(([k, a]) => !pre.aggregates.has(k) && names(a) === names(old));
      const line = twin ? twin[1].line : preToPost(f, old.line);
      ctx.report({ messageId: 'removedType', file: f.path, line, data: { name: key, renamed: twin ? ` (renamed to ${twin[0]}?)` : '' } });
      continue;
    }
    let moved: { path: string; line: number; old: number; now: number; abi: string } | null = null;
    let more = 0;
    for (const abi of ABIS) {
      const a = flattenFields(old, pre, abi);
      const b = new Map(flattenFields(now, post, abi).map((x) => [x.path, x]));
      for (const x of a) {
        const y = b.get(x.path);
        if (!y) {
          if (abi !== 'lp64' || RESERVED.test(x.path.split('.').pop()!)) continue;
          const twin = flattenFields(now, post, abi).find((z) => z.offset === x.offset && z.offset !== null && !a.some((w) => w.path === z.path) && f.added.has(z.field.line));
          const line = twin ? twin.field.line : anchor(f, preToPost(f, x.field.line), now.line, now.endLine);
          ctx.report({ messageId: 'removedField', file: f.path, line, data: { field: x.path, struct: key, renamed: twin ? ` (renamed to ${twin.path}?)` : '' } });
          continue;
        }
        if (RESERVED.test(x.path.split('.').pop()!) || x.offset === null || y.offset === null) continue;
        if (x.offset !== y.offset || (x.size !== y.size && x.size !== 0)) {
          if (!moved) moved = { path: x.path, line: y.field.line, old: x.offset, now: y.offset, abi: abi === 'lp64' ? 'x86_64/arm64' : 'i386' };
          else if (abi === 'lp64' || moved.abi === 'i386') more++;
        }
      }
      if (moved) break;
    }
    if (moved) {
      ctx.report({
        messageId: 'fieldLayout', file: f.path, line: anchor(f, moved.line, now.line, now.endLine),
        data: { field: moved.path, struct: key, old: moved.old, new: moved.now, abi: moved.abi, more: more ? ` and ${more} more field${more > 1 ? 's' : ''} move` : '' },
      });
    }
  }
}

/** An ioctl's (type, number): values when the header defines them, else the text (diff-alone mode). */
const code = (io: Ioctl): string => `${io.typeValue ?? io.type.replace(/\s+/g, '')}:${io.nrValue ?? io.nr.replace(/\s+/g, '')}`;

function collisions(ctx: Ctx, f: ChangedFile, pre: UapiModel | null, post: UapiModel): void {
  const old = new Map((pre?.ioctls ?? []).map((io) => [io.name, io]));
  for (const io of post.ioctls) {
    if (!f.added.has(io.line)) continue;
    const was = old.get(io.name);
    if (was && code(was) === code(io)) continue;
    // The request code is dir|size|type|nr: a GET/SET pair may share a number (common outside VFIO);
    // VFIO and iommufd use _IO() only, so for them the number alone must be unique per fd.
    const other = post.ioctls.find((x) => x !== io && x.name !== io.name && code(x) === code(io) &&
      x.dir === io.dir && (x.argType ?? '').replace(/\s+/g, ' ') === (io.argType ?? '').replace(/\s+/g, ' ') && sameFd(fdClass(x), fdClass(io)));
    if (!other) continue;
    ctx.report({ messageId: 'collision', file: f.path, line: io.line, data: { name: io.name, nr: io.nr, other: other.name }, evidence: [`${other.name} is ${other.nr}`] });
  }
}
