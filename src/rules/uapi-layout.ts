import { defineRule } from './types.js';
import type { ChangedFile } from './types.js';
import { U64_LIKE, headerImages, isUapiHeader, layoutOf, touched, whollyAdded, type Aggregate, type Field, type UapiModel } from './uapi-model.js';

interface Issue { key: string; messageId: string; line: number; data: Record<string, string | number>; field: Field | null }

const STDINT = /^u?int(?:8|16|32|64)_t$/;

/** Why a field's C type does not belong in a uAPI struct, and what to use; null when it is fine. */
function typeProblem(f: Field): { why: string; use: string } | null {
  if (f.pointer > 0) return { why: 'a pointer is 4 bytes in 32-bit userspace and 8 in the kernel', use: '__aligned_u64 (u64_to_user_ptr() in the kernel)' };
  const t = f.type;
  if (['long', 'unsigned long', 'size_t', 'ssize_t', 'uintptr_t', 'intptr_t', 'ptrdiff_t'].includes(t)) {
    return { why: `\`${t}\` is 4 bytes on i386 and 8 on x86_64/arm64`, use: t.startsWith('unsigned') || t === 'size_t' || t === 'uintptr_t' ? '__u64 (or __aligned_u64)' : '__s64' };
  }
  if (t === 'bool' || t === '_Bool') return { why: '`bool` has no fixed size in the uAPI', use: '__u8, or a bit in flags' };
  if (t.startsWith('enum')) return { why: 'the size of an enum is the compiler\'s choice', use: '__u32 holding a value of the enum' };
  if (STDINT.test(t)) return { why: `\`${t}\` needs <stdint.h>, which uAPI headers do not include`, use: `__${t.startsWith('u') ? 'u' : 's'}${t.replace(/\D/g, '')}` };
  if (['int', 'unsigned int', 'short', 'unsigned short', 'long long', 'unsigned long long'].includes(t)) {
    const bits = t.includes('short') ? 16 : t.includes('long long') ? 64 : 32;
    return { why: `plain \`${t}\` hides the width the ABI depends on`, use: `__${t.startsWith('unsigned') ? 'u' : 's'}${bits}` };
  }
  if (t === 'float' || t === 'double') return { why: 'there is no floating point in the kernel ABI', use: 'a fixed-point __u32/__u64' };
  return null;
}

const is64 = (f: Field): boolean => f.pointer === 0 && U64_LIKE.has(f.type);
const label = (f: Field): string => f.name ?? `(anonymous ${f.type})`;

/** Holes, ABI-dependent offsets and tail padding of one aggregate (nested ones included). */
function layoutIssues(agg: Aggregate, model: UapiModel, path: string): Issue[] {
  if (agg.packed) return packedIssues(agg, model, path);
  const out: Issue[] = [];
  const l64 = layoutOf(agg, model, 'lp64');
  const l32 = layoutOf(agg, model, 'i386');
  let end64 = 0;
  let end32 = 0;
  let delta = 0; // how far i386 lags x86_64 so far: report where it grows, not every field after
  for (let i = 0; i < l64.members.length && i < l32.members.length; i++) {
    const m64 = l64.members[i]!;
    const m32 = l32.members[i]!;
    const f = m64.field;
    // A tagged nested struct is also a top-level one and is checked as such.
    if (f.nested && f.nested.name === null) out.push(...layoutIssues(f.nested, model, `${path}.${f.name ?? f.nested.kind}`));
    const name = `${path}.${label(f)}`;
    if (f.bits === null && agg.kind === 'struct') {
      if (m64.offset - m32.offset !== delta) {
        out.push({ key: `offset:${name}`, messageId: 'abiOffset', line: f.line, field: f, data: { field: label(f), o64: m64.offset, o32: m32.offset, pad: m64.offset - end64 } });
      } else if (m64.offset > end64) {
        out.push({ key: `hole:${name}`, messageId: 'hole', line: f.line, field: f, data: { field: label(f), struct: path, pad: m64.offset - end64, offset: m64.offset } });
      }
    }
    // Pointers and longs are reported as types; an embedded struct whose size varies is reported here.
    if (m64.size !== m32.size && !typeProblem(f) && !(f.nested && f.nested.name === null)) {
      out.push({ key: `member:${name}`, messageId: 'memberSize', line: f.line, field: f, data: { field: label(f), type: f.type, size64: m64.size, size32: m32.size } });
    }
    if (agg.kind === 'union' || f.bits !== null) {
      end64 = Math.max(end64, m64.offset + m64.size);
      end32 = Math.max(end32, m32.offset + m32.size);
    } else {
      end64 = m64.offset + m64.size;
      end32 = m32.offset + m32.size;
    }
    delta = end64 - end32;
  }
  if (!l64.complete || !l32.complete) return out;
  // Tail padding that only one ABI adds is what makes sizeof() differ; offsets and members are reported above.
  const data = { struct: path, size64: l64.size, size32: l32.size, pad: l64.size - end64, pad32: l32.size - end32 };
  if (l64.size !== l32.size && l64.size - end64 !== l32.size - end32) out.push({ key: 'size', messageId: 'size', line: agg.line, field: null, data });
  else if (agg.kind === 'struct' && l64.size > end64) out.push({ key: 'tail', messageId: 'tail', line: agg.line, field: null, data });
  return out;
}

/** A packed struct has one layout everywhere; a 64-bit field off an 8-byte boundary is still slow or faulting. */
function packedIssues(agg: Aggregate, model: UapiModel, path: string): Issue[] {
  const l = layoutOf(agg, model, 'lp64');
  return l.members
    .filter((m) => is64(m.field) && m.field.bits === null && m.offset % 8 !== 0)
    .map((m) => ({ key: `misaligned:${path}.${label(m.field)}`, messageId: 'misaligned64', line: m.field.line, field: m.field, data: { field: label(m.field), offset: m.offset } }));
}

function* allFields(agg: Aggregate): Generator<Field> {
  for (const f of agg.fields) {
    yield f;
    if (f.nested && f.nested.name === null) yield* allFields(f.nested);
  }
}

/** The same declaration in the old struct (a line touched only for its comment, or a moved struct). */
function sameOld(f: Field, old: Aggregate | undefined): boolean {
  if (!old) return false;
  for (const o of allFields(old)) if (o.name === f.name && o.type === f.type && o.pointer === f.pointer && o.bits === f.bits) return true;
  return false;
}

/** An added line to hang a finding on: the given one if added, else the nearest added line inside the struct. */
function anchor(f: ChangedFile, agg: Aggregate, line: number): number {
  if (f.added.has(line)) return line;
  const inside = [...f.added].filter((l) => l >= agg.line && l <= agg.endLine).sort((a, b) => a - b);
  return inside.filter((l) => l <= line).pop() ?? inside[0] ?? line;
}

export const uapiLayout = defineRule({
  id: 'uapi-layout',
  meta: {
    input: 'text',
    severity: 'warning',
    category: 'uapi-abi',
    confidence: 'high',
    description:
      'A new or changed uAPI struct uses a C type whose size varies (long, pointers, bool, enum), or has implicit padding / a layout that differs between x86_64 and i386',
    reviewers:
      'uAPI structs are shared by 32- and 64-bit userspace: reviewers ask for __u32/__u64/__aligned_u64 instead of int/long/' +
      'pointers, for explicit `__u32 __reserved` instead of compiler holes (holes leak kernel stack and cannot be checked for ' +
      'zero), and for __aligned_u64 because i386 aligns __u64 to 4, so the same struct lays out differently and needs compat code.',
    falsePositives:
      'Structs that are never passed across the user/kernel boundary but live in a uapi header; a layout computed from a ' +
      'wrong guess when a macro or typedef from another header hides a size (the rule stops at unknown types); plain `int` ' +
      'in old-style interfaces that maintainers accept.',
    messages: {
      type: '`{{decl}}` in uAPI {{struct}}: {{why}}; use {{use}}',
      bitfield: '`{{decl}}` in uAPI {{struct}} is a bit-field: bit order and packing depend on compiler and endianness; use a __u32 flags word with defined bits',
      abiOffset: '`{{field}}` is at offset {{o64}} on x86_64/arm64 but {{o32}} on i386 ({{pad}} bytes of implicit padding on 64-bit): add an explicit `__u32 __reserved` before it or make it __aligned_u64',
      hole: '{{pad}} bytes of implicit padding before `{{field}}` (offset {{offset}}) in {{struct}}: make it an explicit reserved field that the kernel checks is zero',
      size: '{{struct}} is {{size64}} bytes on x86_64/arm64 but {{size32}} on i386 ({{pad}} bytes of implicit tail padding on x86_64/arm64, {{pad32}} on i386): pad it explicitly to a multiple of 8',
      memberSize: '`{{field}}` ({{type}}) is {{size64}} bytes on x86_64/arm64 but {{size32}} on i386, so this struct\'s layout depends on the ABI',
      tail: '{{struct}} has {{pad}} bytes of implicit tail padding: add an explicit reserved field so the size is a multiple of 8 by construction',
      misaligned64: '64-bit `{{field}}` is at offset {{offset}} in a packed struct: not naturally aligned; reorder or pad so it sits on an 8-byte boundary',
    },
  },
  check(ctx) {
    for (const f of ctx.files) {
      if (f.status === 'deleted' || !isUapiHeader(f.path)) continue;
      const { pre, post, partial } = headerImages(ctx, f);
      if (!post) continue;
      for (const [key, agg] of post.aggregates) {
        if (partial ? !whollyAdded(f, agg.line, agg.endLine) : !touched(f, agg.line, agg.endLine)) continue;
        const old = pre?.aggregates.get(key);
        const what = `${agg.kind} ${agg.name}`;
        for (const fld of allFields(agg)) {
          if (!f.added.has(fld.line) || sameOld(fld, old)) continue;
          const p = fld.nested && fld.name === null ? null : typeProblem(fld);
          if (p) ctx.report({ messageId: 'type', file: f.path, line: fld.line, data: { decl: fld.text, struct: what, ...p }, evidence: [fld.text], suggestion: `${p.use.split(' ')[0]} ${fld.name ?? ''};` });
          if (fld.bits !== null) ctx.report({ messageId: 'bitfield', file: f.path, line: fld.line, data: { decl: fld.text, struct: what }, evidence: [fld.text] });
        }
        // Layout: only what this patch makes worse; an old hole is not the patch's doing.
        const before = new Set(old && pre ? layoutIssues(old, pre, what).map((i) => i.key) : []);
        for (const issue of layoutIssues(agg, post, what)) {
          if (before.has(issue.key)) continue;
          ctx.report({
            messageId: issue.messageId, file: f.path, line: anchor(f, agg, issue.line),
            data: { struct: what, ...issue.data },
            evidence: issue.field ? [issue.field.text] : [],
            suggestion: issue.messageId === 'abiOffset' || issue.messageId === 'hole' ? '__u32 __reserved; /* must be zero */' : 'pad explicitly; use __aligned_u64 for 64-bit fields',
          });
        }
      }
    }
  },
});
