import { defineRule } from './types.js';

/** The subsystem's uAPI headers: vfio*.h, iommu*.h and iommufd.h (other uAPI headers have their own customs). */
const SUBSYSTEM_UAPI = /^include\/uapi\/linux\/(?:vfio[\w-]*|iommu[\w-]*)\.h$/;

/** An added line that opens a static or inline function definition: storage, a return type, a name and `(`. */
const FUNCTION_HEAD = /^\s*(?:(?:static|(?:__)?inline(?:__)?|__always_inline)\s+)+(?:const\s+)?(?:struct\s+|unsigned\s+|signed\s+)?\w+[\s*]+(?<name>\w+)\s*\(/;

/** `#define FOO_VERSION 1`, `#define FOO_API_VERSION (2)`: one number for an interface's version. */
const VERSION_DEFINE = /^\s*#\s*define\s+(?<name>\w*VERSION)\s+\(?\s*(?<value>\d+)[uUlL]*\s*\)?\s*(?:\/[*/].*)?$/;

export const uapiExtension = defineRule({
  id: 'uapi-extension',
  meta: {
    input: 'text',
    severity: 'warning',
    category: 'uapi-abi',
    confidence: 'moderate',
    description:
      'A VFIO/IOMMU uAPI header gains code (an inline function) or a version number for the whole interface, where the subsystem extends its uAPI per ioctl (argsz, flags, capabilities, feature numbers)',
    reviewers:
      'On the IOMMU uAPI version proposal (2020) the reviewers objected that "a single global UAPI version number plus inline ' +
      'helper functions in a user-visible header is a poor extension mechanism": per-structure flags and argsz-style sizing let ' +
      'userspace check compatibility feature by feature, and code in a uAPI header is compiled into every binary, frozen there. ' +
      'VFIO has kept VFIO_API_VERSION at 0 since 3.6 and extends through argsz, flags, capability chains, ' +
      'VFIO_CHECK_EXTENSION and VFIO_DEVICE_FEATURE.',
    falsePositives:
      'A helper macro-like inline that only computes from its arguments (a sizeof helper) is sometimes accepted in uAPI ' +
      'headers of other subsystems; a version field *value* of one structure (IOMMU_PAGE_RESP_VERSION_1) is not reported.',
    messages: {
      inlineFunction: '{{name}}() is a function body in a uAPI header: userspace compiles it into every binary, so its behaviour can never change; uAPI headers carry types and constants, and the kernel answers queries through an ioctl',
      globalVersion: '{{name}} is a version number for the whole interface: VFIO and IOMMU uAPIs are extended per ioctl (argsz, flags, capability chains, VFIO_CHECK_EXTENSION, VFIO_DEVICE_FEATURE), so userspace can tell which structure changed',
    },
  },
  check(ctx) {
    for (const f of ctx.files) {
      if (f.status === 'deleted' || !SUBSYSTEM_UAPI.test(f.path)) continue;
      const lines = [...f.addedText].sort((a, b) => a[0] - b[0]);
      for (const [line, text] of lines) {
        const fn = FUNCTION_HEAD.exec(text);
        // A definition, not a prototype: no `;` before the line (or the next added line) opens a body.
        if (fn && !text.includes(';') && (text.includes('{') || f.addedText.get(line + 1)?.trim().startsWith('{') || /\)\s*$/.test(text))) {
          ctx.report({
            messageId: 'inlineFunction', file: f.path, line, data: { name: fn.groups!.name! },
            evidence: [text.trim()],
            suggestion: 'drop the helper from the uAPI header (keep it in the kernel, or let userspace ask through an ioctl)',
          });
          continue;
        }
        // A version number added to a header that existed: a new header's own constants are its design, not an extension.
        const v = f.status === 'added' ? null : VERSION_DEFINE.exec(text);
        if (v) {
          ctx.report({
            messageId: 'globalVersion', file: f.path, line, data: { name: v.groups!.name! },
            evidence: [text.trim()],
            suggestion: 'report what is supported per structure: a flags bit or argsz growth for each new field, a capability or VFIO_CHECK_EXTENSION for a new feature',
          });
        }
      }
    }
  },
});
