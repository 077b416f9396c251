import { defineScenario } from '../model.js';

/**
 * Seed 003: vfio_dma_do_unmap() finds `dma` under iommu->lock, drops the lock to call the unmap
 * notifier, retakes it and keeps using `dma`; a concurrent unmap may have removed and freed it.
 */
export const stalePointerRelock = defineScenario({
  id: 'stale-pointer-relock',
  expect: 'stale-pointer',
  purpose: 'a pointer looked up under iommu->lock is used after the lock was dropped and retaken; another unmap freed it meanwhile',
  objects: ['dma'],
  init: { 'iommu->dma_list': '&dma' },
  names: ['vfio_dma_do_unmap', 'vfio_dma_do_unmap'],
  threads: [
    (t) => [
      t.lock('iommu->lock', 'vfio_iommu_type1.c:1380'),
      t.read('iommu->dma_list', 'dma', 'vfio_iommu_type1.c:1395'),
      t.branch('dma == NULL', 'out'),
      t.unlock('iommu->lock', 'vfio_iommu_type1.c:1410'),
      t.note(t.set('nb', 1, 'vfio_iommu_type1.c:1411'), 'blocking_notifier_call_chain()'),
      t.lock('iommu->lock', 'vfio_iommu_type1.c:1414'),
      t.use('dma', 'read', 'vfio_iommu_type1.c:1415'),
      t.label('out'),
      t.unlock('iommu->lock', 'vfio_iommu_type1.c:1430'),
      t.ret(0),
    ],
    (t) => [
      t.lock('iommu->lock', 'vfio_iommu_type1.c:1380'),
      t.read('iommu->dma_list', 'dma', 'vfio_iommu_type1.c:1395'),
      t.branch('dma == NULL', 'out'),
      t.write('iommu->dma_list', 'NULL', 'vfio_iommu_type1.c:1180'),
      t.free('dma', 'vfio_iommu_type1.c:1181'),
      t.label('out'),
      t.unlock('iommu->lock', 'vfio_iommu_type1.c:1430'),
      t.ret(0),
    ],
  ],
  bounds: { maxStates: 10_000 },
});
