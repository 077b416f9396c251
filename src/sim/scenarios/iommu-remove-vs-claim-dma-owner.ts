import { defineScenario } from '../model.js';

/**
 * Seed 004 on the real tree: device remove and probe racing an explicit DMA ownership claim in the
 * same iommu group. Robin's argument was that the races are harmless because probe, remove and
 * claims are serialised on the group mutex. In 6.1 the remove side
 * (iommu_device_unuse_default_domain(), the bus dma_cleanup path) drops its DMA-API use under
 * group->mutex (iommu.c:3166-3170), a sibling's probe (iommu_device_use_default_domain()) takes
 * one under it (iommu.c:3133-3147), and iommu_group_claim_dma_owner() tests and takes ownership
 * under it too (iommu.c:3210-3232). Starting with the group DMA-API owned by the removed device
 * (owner_cnt = 1), the claim and the sibling's probe never both succeed, and the count never goes
 * negative: expected `never`. A claim that tests owner_cnt without the mutex lets both win.
 */
export const iommuRemoveVsClaimDmaOwner = defineScenario({
  id: 'iommu-remove-vs-claim-dma-owner',
  expect: 'never',
  purpose: 'remove, a sibling probe and iommu_group_claim_dma_owner all serialise on group->mutex (iommu.c:3166, 3133, 3210): the claim and the probe never both own the group',
  init: { 'iommu_group.owner_cnt': 1 },
  objects: ['vfio_owner'],
  tree: {
    files: ['drivers/iommu/iommu.c'],
    threads: [
      { name: 'remove', entry: 'iommu_device_unuse_default_domain', file: 'drivers/iommu/iommu.c' },
      { name: 'probe', entry: 'iommu_device_use_default_domain', file: 'drivers/iommu/iommu.c' },
      // The owner cookie is a real pointer (vfio's), never NULL.
      { name: 'claim', entry: 'iommu_group_claim_dma_owner', file: 'drivers/iommu/iommu.c', args: { owner: 'vfio_owner' } },
    ],
  },
  exists: (v) => v['1:ret'] === 0 && v['2:ret'] === 0 && v['iommu_group.owner_cnt']! > 1,
  outcomes: { 'claim succeeds': (v) => v['2:ret'] === 0, 'claim refused (-EPERM)': (v) => v['2:ret'] === -1 },
  invariants: [{ name: 'owner_cnt >= 0', cells: ['iommu_group.owner_cnt'], holds: (v) => (v['iommu_group.owner_cnt'] ?? 0) >= 0 }],
  bounds: { maxStates: 500_000, timeMs: 15_000 },
});
