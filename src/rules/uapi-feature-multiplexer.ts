import { defineRule } from './types.js';
import { headerImages } from './uapi-model.js';

const VFIO_H = 'include/uapi/linux/vfio.h';

/** What the new ioctl's name says it does, in the words of the feature interface. */
function purpose(name: string): string {
  if (/MIG|STATE|PRECOPY|STOP_COPY/.test(name)) return 'migration state is already a feature (VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE)';
  if (/POWER|PM_|SUSPEND|WAKE/.test(name)) return 'low-power entry/exit are already features (VFIO_DEVICE_FEATURE_LOW_POWER_*)';
  if (/LOG|DIRTY/.test(name)) return 'DMA logging is already a feature (VFIO_DEVICE_FEATURE_DMA_LOGGING_*)';
  if (/(?:^|_)(?:GET|SET|QUERY|ENABLE|DISABLE|MODE|CONFIG|INFO)(?:_|$)/.test(name)) return 'getting or setting a device property is what the feature GET/SET/PROBE protocol is for';
  return 'a device feature gets GET/SET/PROBE and argsz handling for free';
}

export const uapiFeatureMultiplexer = defineRule({
  id: 'uapi-feature-multiplexer',
  meta: {
    input: 'text',
    severity: 'warning',
    category: 'uapi-abi',
    confidence: 'moderate',
    description: 'A patch adds a new VFIO device ioctl number where a VFIO_DEVICE_FEATURE feature would do',
    reviewers:
      'Since VFIO_DEVICE_FEATURE (5.7; migration v2 moved onto it in 5.18) Alex Williamson asks "did you consider whether this ' +
      'could also be implemented as a VFIO_DEVICE_FEATURE?", and new device-level get/set interfaces (migration state, ' +
      'low-power entry/exit, DMA logging) went in as feature numbers with GET/SET/PROBE rather than new ioctls.',
    falsePositives:
      'A new ioctl is justified when it moves bulk data or needs its own argument semantics that do not fit a ' +
      'feature payload (binding the device to an iommufd, attaching page tables, hot reset with a list of fds), or returns ' +
      'a new file descriptor with its own lifetime; the maintainers then agree to a new number.',
    messages: {
      newIoctl: '{{name}} adds a new VFIO device ioctl ({{nr}}): {{why}}; VFIO maintainers ask for a VFIO_DEVICE_FEATURE_* number under VFIO_DEVICE_FEATURE instead of a new ioctl',
    },
  },
  check(ctx) {
    for (const f of ctx.files) {
      if (f.path !== VFIO_H || f.status === 'deleted') continue;
      const { pre, post } = headerImages(ctx, f);
      if (!post) continue;
      const old = (pre?.ioctls ?? []).filter((io) => io.name.startsWith('VFIO_DEVICE_'));
      for (const io of post.ioctls) {
        if (!io.name.startsWith('VFIO_DEVICE_') || io.name === 'VFIO_DEVICE_FEATURE' || !f.added.has(io.line)) continue;
        // A number the device fd already had (a renamed or reformatted define) is not a new ioctl.
        if (old.some((o) => o.name === io.name || (io.nrValue !== null && o.nrValue === io.nrValue && o.typeValue === io.typeValue))) continue;
        ctx.report({
          messageId: 'newIoctl', file: f.path, line: io.line,
          data: { name: io.name, nr: io.nr, why: purpose(io.name) },
          evidence: [`#define ${io.name} _${io.dir}(${io.type}, ${io.nr})`],
          suggestion: `#define VFIO_DEVICE_FEATURE_${io.name.replace(/^VFIO_DEVICE_/, '')} <next feature number>  /* payload struct after the feature header */`,
        });
      }
    }
  },
});
