import { describe, expect, it } from 'vitest';
import { refProblem, selectCandidates, type BaseMap } from '../../src/apply/base.js';

const map: BaseMap = {
  rules: [
    { list: 'kvm', refs: ['kvm/next'] },
    { prefix: 'vfio', refs: ['vfio/next'] },
    { prefix: 'iommu', refs: ['iommu/next'] },
    { path: 'drivers/iommu/iommufd/**', refs: ['iommufd/for-next'] },
    { path: 'drivers/s390/crypto/vfio_ap*.c', prefix: 's390', refs: ['s390/features'] },
  ],
  default: 'origin/master',
};

const none = { baseCommit: null, hints: [], list: null, prefixes: [], touchedPaths: [] };

describe('selectCandidates', () => {
  it('orders base-commit, hints, mapped refs, default', () => {
    const got = selectCandidates(
      {
        baseCommit: 'a1b2c3d4e5f6',
        hints: ['prereq-head', 'vfio/next'],
        list: 'kvm@vger.kernel.org',
        prefixes: ['PATCH', 'vfio/pci'],
        touchedPaths: ['drivers/vfio/pci/vfio_pci_core.c'],
      },
      map,
    );
    expect(got).toEqual([
      { ref: 'a1b2c3d4e5f6', why: 'base-commit' },
      { ref: 'prereq-head', why: 'hint' },
      { ref: 'vfio/next', why: 'hint' }, // listed once, at its first position
      { ref: 'kvm/next', why: 'mapped' },
      { ref: 'origin/master', why: 'default' },
    ]);
  });

  it('matches lists by address or List-Id, prefixes by subsystem, paths by glob', () => {
    expect(selectCandidates({ ...none, list: '<kvm.vger.kernel.org>' }, map).map((c) => c.ref)).toEqual(['kvm/next', 'origin/master']);
    expect(selectCandidates({ ...none, list: 'kvmarm@lists.linux.dev' }, map).map((c) => c.ref)).toEqual(['origin/master']);
    expect(selectCandidates({ ...none, prefixes: ['IOMMU/VT-d'] }, map).map((c) => c.ref)).toEqual(['iommu/next', 'origin/master']);
    expect(selectCandidates({ ...none, prefixes: ['iommufd'] }, map).map((c) => c.ref)).toEqual(['origin/master']);
    expect(selectCandidates({ ...none, touchedPaths: ['drivers/iommu/iommufd/main.c'] }, map)[0]).toEqual({ ref: 'iommufd/for-next', why: 'mapped' });
    expect(selectCandidates({ ...none, touchedPaths: ['drivers/iommu/iommufd'] }, map).map((c) => c.ref)).toEqual(['origin/master']);
  });

  it('needs every key of a rule to match', () => {
    const paths = ['drivers/s390/crypto/vfio_ap_ops.c'];
    expect(selectCandidates({ ...none, touchedPaths: paths }, map).map((c) => c.ref)).toEqual(['origin/master']);
    expect(selectCandidates({ ...none, touchedPaths: paths, prefixes: ['s390/vfio-ap'] }, map).map((c) => c.ref)).toEqual([
      's390/features',
      'origin/master',
    ]);
  });
});

describe('refProblem', () => {
  it.each(['v6.1', 'vfio/next', 'a1b2c3d', 'debian/6.1', 'HEAD', 'refs/heads/main'])('accepts %s', (ref) => {
    expect(refProblem(ref)).toBeNull();
  });
  it.each(['--output=/tmp/x', '-h', ':/fix', 'HEAD@{1}', 'a..b', 'main^', 'x y', '<msgid@host>', 'x.lock', ''])('refuses %j', (ref) => {
    expect(refProblem(ref)).not.toBeNull();
  });
});
