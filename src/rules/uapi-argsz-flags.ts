import { defineRule } from './types.js';
import { headerImages, isIommufdHeader, isVfioHeader, whollyAdded, type Aggregate, type Field, type Ioctl } from './uapi-model.js';

type Convention = 'vfio' | 'iommufd';

const isU32 = (f: Field | undefined, name: string): boolean =>
  !!f && f.name === name && f.type === '__u32' && f.pointer === 0 && f.dims.length === 0 && f.bits === null;

/** The head the convention asks for is in place. */
function headOk(agg: Aggregate, conv: Convention): boolean {
  return conv === 'vfio' ? isU32(agg.fields[0], 'argsz') && isU32(agg.fields[1], 'flags') : isU32(agg.fields[0], 'size');
}

/** VFIO_DEVICE_FEATURE payloads and capability-chain entries are sized by their container, not by argsz. */
function exempt(agg: Aggregate): boolean {
  if (/^vfio_device_feature_/.test(agg.name ?? '')) return true;
  const first = agg.fields[0];
  return !!first && first.type === 'struct vfio_info_cap_header';
}

function conventionOf(io: Ioctl, path: string): Convention | null {
  if (io.type === 'VFIO_TYPE') return 'vfio';
  if (io.type === 'IOMMUFD_TYPE') return 'iommufd';
  return isVfioHeader(path) ? 'vfio' : isIommufdHeader(path) ? 'iommufd' : null;
}

const headText = (agg: Aggregate, n: number): string =>
  agg.fields.slice(0, n).map((f) => `${f.text};`).join(' ') || '(no fields)';

export const uapiArgszFlags = defineRule({
  id: 'uapi-argsz-flags',
  meta: {
    input: 'text',
    severity: 'error',
    category: 'uapi-abi',
    confidence: 'high',
    description:
      'A new VFIO ioctl argument struct does not start with `__u32 argsz; __u32 flags;` (iommufd: `__u32 size;`), or a patch moves them from the front',
    reviewers:
      'Alex Williamson on the v2 migration uAPI: "argsz and flags layout is inconsistent with all other vfio ioctls". Every ' +
      'VFIO ioctl is _IO() with no size in the number, so the kernel learns the struct size from argsz at offset 0 and ' +
      'which optional fields are valid from flags at offset 4; iommufd reads `size` from the first u32 the same way.',
    falsePositives:
      'An ioctl taking a fixed scalar or an old-style struct that will never be extended; a struct the parser ties to the ' +
      'wrong ioctl when the doc comment names neither the ioctl nor the struct (it then uses the struct right above the define).',
    messages: {
      vfio: 'struct {{struct}} is the argument of {{ioctl}} but starts with `{{found}}`: VFIO ioctl structs begin with `__u32 argsz; __u32 flags;` so the kernel can size and extend them',
      iommufd: 'struct {{struct}} is the argument of {{ioctl}} but starts with `{{found}}`: iommufd ioctl structs begin with `__u32 size;` (then `__u32 flags;` when the command takes options)',
      moved: 'this patch moves {{fields}} away from the front of struct {{struct}} ({{ioctl}}): existing userspace passes them at offset 0 and 4',
    },
  },
  check(ctx) {
    for (const f of ctx.files) {
      if (f.status === 'deleted' || !(isVfioHeader(f.path) || isIommufdHeader(f.path))) continue;
      const { pre, post, partial } = headerImages(ctx, f);
      if (!post) continue;
      const seen = new Set<string>();
      for (const io of post.ioctls) {
        const conv = conventionOf(io, f.path);
        const agg = io.arg ? post.aggregates.get(`struct ${io.arg}`) : undefined;
        if (!conv || !agg || seen.has(io.arg!) || exempt(agg)) continue;
        if (partial && !whollyAdded(f, agg.line, agg.endLine)) continue;
        seen.add(io.arg!);
        const old = pre?.aggregates.get(`struct ${io.arg}`);
        const evidence = [`${io.name} takes struct ${io.arg} (${io.argVia === 'macro' ? 'named in the _IOx() define' : io.argVia === 'doc' || io.argVia === 'doc-near' ? 'named in its doc comment' : io.argVia === 'name' ? 'same name' : 'defined right above it'})`];
        if (!old) {
          if (headOk(agg, conv) || !f.added.has(agg.line)) continue;
          ctx.report({
            messageId: conv, file: f.path, line: agg.line,
            data: { struct: io.arg!, ioctl: io.name, found: headText(agg, conv === 'vfio' ? 2 : 1) },
            evidence,
            suggestion: conv === 'vfio' ? 'struct ' + io.arg + ' {\n\t__u32 argsz;\n\t__u32 flags;\n\t...\n};' : 'struct ' + io.arg + ' {\n\t__u32 size;\n\t__u32 flags;\n\t...\n};',
          });
        } else if (headOk(old, conv) && !headOk(agg, conv)) {
          const line = agg.fields.slice(0, 3).find((x) => f.added.has(x.line))?.line ?? [...f.added].find((l) => l > agg.line && l <= agg.endLine) ?? agg.line;
          ctx.report({
            messageId: 'moved', file: f.path, line,
            data: { struct: io.arg!, ioctl: io.name, fields: conv === 'vfio' ? 'argsz/flags' : 'size' },
            evidence: [...evidence, `before: ${headText(old, 2)}`, `after: ${headText(agg, 2)}`],
            suggestion: 'keep argsz and flags first; add new fields at the end',
          });
        }
      }
    }
  },
});
