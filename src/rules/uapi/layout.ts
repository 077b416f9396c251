/**
 * Struct layout on the two ABIs uAPI review cares about: LP64 (x86_64, arm64)
 * and i386, where 8-byte integers are only 4-aligned. Other 32-bit ABIs
 * (arm, 8-aligned __u64) sit between the two and are not modelled.
 */
import type { Aggregate, Field, UapiModel } from '../uapi-model.js';

export type Abi = 'lp64' | 'i386';
export const ABIS: readonly Abi[] = ['lp64', 'i386'];
interface Shape { size: number; align: number }

const FIXED: Record<string, number> = {
  __u8: 1, __s8: 1, char: 1, 'signed char': 1, 'unsigned char': 1, _Bool: 1, bool: 1, uint8_t: 1, int8_t: 1,
  __u16: 2, __s16: 2, __le16: 2, __be16: 2, short: 2, 'unsigned short': 2, uint16_t: 2, int16_t: 2, __sum16: 2,
  __u32: 4, __s32: 4, __le32: 4, __be32: 4, int: 4, 'unsigned int': 4, float: 4, uint32_t: 4, int32_t: 4, __wsum: 4, __poll_t: 4,
  // <asm-generic/posix_types.h> int-sized types (the same on every Linux ABI).
  __kernel_pid_t: 4, __kernel_key_t: 4, __kernel_mqd_t: 4, __kernel_uid32_t: 4, __kernel_gid32_t: 4, __kernel_daddr_t: 4,
  __kernel_timer_t: 4, __kernel_clockid_t: 4, __kernel_rwf_t: 4, __kernel_ipc_pid_t: 4, __kernel_uid_t: 4, __kernel_gid_t: 4,
};
/** 8 bytes, but only 4-aligned on i386: the reason for __aligned_u64. */
export const U64_LIKE = new Set(['__u64', '__s64', '__le64', '__be64', 'long long', 'unsigned long long', 'double', 'uint64_t', 'int64_t', '__kernel_loff_t', '__kernel_time64_t']);
const ALIGNED64 = new Set(['__aligned_u64', '__aligned_s64', '__aligned_le64', '__aligned_be64']);
const WORD = new Set([
  'long', 'unsigned long', 'size_t', 'ssize_t', 'uintptr_t', 'intptr_t', 'ptrdiff_t', '__kernel_size_t', '__kernel_ssize_t',
  '__kernel_long_t', '__kernel_ulong_t', '__kernel_off_t', '__kernel_time_t', '__kernel_clock_t', '__kernel_ptrdiff_t', '__kernel_old_time_t',
]);
/** Types defined in other headers that uAPI structs embed (so their layout is not lost). */
const EXTERNAL: Record<string, Shape> = { 'struct vfio_info_cap_header': { size: 8, align: 4 } };

function scalarShape(type: string, abi: Abi): Shape | null {
  if (type in FIXED) return { size: FIXED[type]!, align: FIXED[type]! };
  if (U64_LIKE.has(type)) return { size: 8, align: abi === 'i386' ? 4 : 8 };
  if (ALIGNED64.has(type)) return { size: 8, align: 8 };
  if (WORD.has(type)) return abi === 'i386' ? { size: 4, align: 4 } : { size: 8, align: 8 };
  if (type.startsWith('enum')) return { size: 4, align: 4 };
  return null;
}

export interface Placed { field: Field; offset: number; size: number; align: number }
export interface Layout { size: number; align: number; members: Placed[]; complete: boolean }

const alignUp = (x: number, a: number): number => Math.ceil(x / a) * a;

/** Layout of an aggregate on one ABI; members past an unknown type are left out (complete = false). */
export function layoutOf(agg: Aggregate, model: UapiModel, abi: Abi, depth = 0): Layout {
  const members: Placed[] = [];
  let bitOff = 0;
  let size = 0;
  let align = 1;
  let complete = true;
  for (const f of agg.fields) {
    const shape = depth > 8 ? null : fieldShape(f, model, abi, depth);
    if (!shape) { complete = false; break; }
    const a = agg.packed && f.aligned === null ? 1 : Math.max(shape.align, f.aligned ?? 1);
    align = Math.max(align, a);
    if (agg.kind === 'union') {
      members.push({ field: f, offset: 0, size: shape.size, align: a });
      size = Math.max(size, shape.size);
      continue;
    }
    if (f.bits !== null) {
      const unit = shape.size * 8;
      if (f.bits === 0) bitOff = alignUp(bitOff, unit);
      else if (!agg.packed && Math.floor(bitOff / unit) !== Math.floor((bitOff + f.bits - 1) / unit)) bitOff = alignUp(bitOff, unit);
      members.push({ field: f, offset: Math.floor(bitOff / 8), size: Math.ceil(f.bits / 8), align: a });
      bitOff += f.bits;
      continue;
    }
    const off = alignUp(Math.ceil(bitOff / 8), a);
    members.push({ field: f, offset: off, size: shape.size, align: a });
    bitOff = (off + shape.size) * 8;
  }
  if (agg.kind === 'struct') size = Math.ceil(bitOff / 8);
  if (agg.aligned) align = Math.max(align, agg.aligned);
  return { size: alignUp(size, align), align, members, complete };
}

function fieldShape(f: Field, model: UapiModel, abi: Abi, depth: number): Shape | null {
  if (depth > 16) return null;
  let elem: Shape | null;
  if (f.pointer > 0) elem = abi === 'i386' ? { size: 4, align: 4 } : { size: 8, align: 8 };
  else if (f.nested) {
    const l = layoutOf(f.nested, model, abi, depth + 1);
    elem = l.complete ? l : null;
  } else if (/^(?:struct|union) /.test(f.type)) {
    const agg = model.aggregates.get(f.type);
    if (agg) {
      const l = layoutOf(agg, model, abi, depth + 1);
      elem = l.complete ? l : null;
    } else elem = EXTERNAL[f.type] ?? null;
  } else {
    elem = scalarShape(f.type, abi);
    const td = elem ? undefined : model.typedefs.get(f.type);
    if (td && td !== f) elem = fieldShape(td, model, abi, depth + 1);
  }
  if (!elem) return null;
  let n = 1;
  for (const d of f.dims) {
    if (d === null) { n = 0; continue; }
    const v = model.evaluate(d);
    if (v === null || v < 0n) return null;
    n *= Number(v);
  }
  return { size: elem.size * n, align: elem.align };
}

/** Every leaf field with its dotted path (anonymous members flattened), offset and size on one ABI. */
export function flattenFields(agg: Aggregate, model: UapiModel, abi: Abi, prefix = '', base = 0): { path: string; field: Field; offset: number | null; size: number | null }[] {
  const out: { path: string; field: Field; offset: number | null; size: number | null }[] = [];
  const l = layoutOf(agg, model, abi);
  agg.fields.forEach((f, i) => {
    const placed = l.members[i];
    const off = placed ? base + placed.offset : null;
    if (f.nested && f.dims.length === 0) {
      const p = f.name ? `${prefix}${f.name}.` : prefix;
      out.push(...flattenFields(f.nested, model, abi, p, off ?? 0).map((x) => (off === null ? { ...x, offset: null } : x)));
      return;
    }
    if (f.name) out.push({ path: prefix + f.name, field: f, offset: off, size: placed?.size ?? null });
  });
  return out;
}
