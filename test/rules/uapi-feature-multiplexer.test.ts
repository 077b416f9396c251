import { describe, expect, it } from 'vitest';
import { uapiFeatureMultiplexer } from '../../src/rules/uapi-feature-multiplexer.js';
import { runRuleTests } from '../helpers/rule-tester.js';
import { MINI_VFIO_H, notApplied, realHeaderTests, withLines } from '../helpers/uapi.js';

const VFIO = 'include/uapi/linux/vfio.h';
const lineOf = (text: string, needle: string): number => text.split('\n').findIndex((l) => l.includes(needle)) + 1;
const dirty = withLines(MINI_VFIO_H, '#define VFIO_DEVICE_DMA_LOGGING_REPORT _IO(VFIO_TYPE, VFIO_BASE + 25)\n');

runRuleTests(uapiFeatureMultiplexer, {
  valid: [
    { name: 'a comment-only change', path: VFIO, before: MINI_VFIO_H, after: MINI_VFIO_H.replace(' * Caller sets argsz.', ' * Caller sets argsz first.') },
    {
      name: 'new feature numbers and a payload struct',
      path: VFIO,
      before: MINI_VFIO_H,
      after: withLines(MINI_VFIO_H, '\nstruct vfio_device_feature_zone {\n\t__u32 zone;\n\t__u32 reserved;\n};\n#define VFIO_DEVICE_FEATURE_ZONE 12\n#define VFIO_DEVICE_FEATURE_ZONE_RESET 13\n'),
    },
    { name: 'a new container ioctl', path: VFIO, before: MINI_VFIO_H, after: withLines(MINI_VFIO_H, '#define VFIO_IOMMU_ZAP_DMA _IO(VFIO_TYPE, VFIO_BASE + 19)\n') },
    {
      name: 'an existing device ioctl moved and reformatted',
      path: VFIO,
      before: withLines(MINI_VFIO_H, '#define VFIO_DEVICE_RESET _IO(VFIO_TYPE, VFIO_BASE + 11)\n'),
      after: withLines(MINI_VFIO_H, '#define VFIO_DEVICE_RESET\t\t_IO(VFIO_TYPE, VFIO_BASE + 11)\n\n', 'enum vfio_device_mig_state'),
    },
    { name: 'a device ioctl in another vfio header', path: 'include/uapi/linux/vfio_ccw.h', before: MINI_VFIO_H, after: withLines(MINI_VFIO_H, '#define VFIO_DEVICE_CCW_ZAP _IO(VFIO_TYPE, VFIO_BASE + 30)\n') },
    { name: 'a device-like ioctl outside uAPI', path: 'drivers/vfio/demo.h', before: '', after: '#define VFIO_DEVICE_ZAP _IO(VFIO_TYPE, VFIO_BASE + 30)\n' },
  ],
  invalid: [
    { name: 'fixture: the migration and low-power proposals as ioctls', fixture: 'uapi-feature-multiplexer.h', path: VFIO },
    { name: 'DMA logging as an ioctl', path: VFIO, before: MINI_VFIO_H, after: dirty, findings: [{ line: lineOf(dirty, 'DMA_LOGGING_REPORT'), message: 'DMA logging is already a feature' }] },
  ],
});

describe('uapi-feature-multiplexer when the series did not apply', () => {
  it('judges an ioctl define in the added lines alone', async () => {
    const found = await notApplied(uapiFeatureMultiplexer, { [VFIO]: { before: MINI_VFIO_H, after: dirty } });
    expect(found.map((f) => f.line)).toEqual([lineOf(dirty, 'DMA_LOGGING_REPORT')]);
  });
  it('keeps quiet on added feature numbers', async () => {
    const after = withLines(MINI_VFIO_H, '#define VFIO_DEVICE_FEATURE_ZONE 12\n');
    expect(await notApplied(uapiFeatureMultiplexer, { [VFIO]: { before: MINI_VFIO_H, after } })).toEqual([]);
  });
});

// A whole new vfio.h "adds" every device ioctl but VFIO_DEVICE_FEATURE itself: that is what the rule says
// of a new ioctl, and no patch adds the whole header.
realHeaderTests(uapiFeatureMultiplexer, { 'include/uapi/linux/vfio.h': [220, 267, 525, 579, 592, 670, 685, 737, 747, 774] });
