import { defineScenario } from '../model.js';

/**
 * Seed 003 on the real tree: VFIO_IOMMU_UNMAP_DMA racing a driver's vfio_unpin_pages() on the same
 * container. In 6.1, vfio_dma_do_unmap() looks `dma` up under iommu->lock (vfio_iommu_type1.c
 * 1438-1448), and when pages are still pinned calls vfio_notify_dma_unmap(), which takes
 * iommu->device_list_lock, drops iommu->lock (1351-1352), calls each device's dma_unmap()
 * (here vfio_ap's, which unpins through vfio_unpin_pages() -> vfio_iommu_type1_unpin_pages()),
 * retakes iommu->lock (1358) and `goto again` looks the mapping up afresh (1488): the pointer read
 * before the notifier is not used after it. vfio_iommu_type1_unpin_pages() does its lookup and
 * unpinning under iommu->lock (1007-1021) and never frees a vfio_dma. So: no deadlock (unpin
 * takes iommu->lock alone), no stale pointer, no use after free. Expected `never`.
 *
 * The rb-tree of mappings is one slot (`containers`): vfio_find_dma()/vfio_find_dma_first_node()
 * read it, vfio_unlink_dma() empties it, and vfio_remove_dma() frees what it held. Page accounting
 * (vfio_unmap_unpin, vfio_lock_acct, the dirty bitmap) is opaque: it only takes mmap_lock.
 */
export const type1UnmapVsUnpin = defineScenario({
  id: 'type1-unmap-vs-unpin',
  expect: 'never',
  purpose: 'real 6.1 tree: vfio_dma_do_unmap re-looks dma up after the unmap notifier (goto again) and unpin works under iommu->lock without freeing a vfio_dma: no deadlock, no stale dma',
  objects: ['dma'],
  init: { 'vfio_iommu.dma_list': '&dma' },
  tree: {
    files: ['drivers/vfio/vfio_iommu_type1.c', 'drivers/vfio/container.c', 'drivers/s390/crypto/vfio_ap_ops.c'],
    ops: { dma_unmap: 'vfio_ap_mdev_dma_unmap', unpin_pages: 'vfio_iommu_type1_unpin_pages' },
    opaque: ['vfio_unmap_unpin', 'vfio_lock_acct', 'vfio_dma_bitmap_free', 'update_user_bitmap'],
    containers: [{ cell: 'vfio_iommu.dma_list', lookup: ['vfio_find_dma', 'vfio_find_dma_first_node'], unlink: ['vfio_unlink_dma'] }],
    threads: [
      { name: 'unmap', entry: 'vfio_dma_do_unmap', file: 'drivers/vfio/vfio_iommu_type1.c' },
      { name: 'unpin', entry: 'vfio_iommu_type1_unpin_pages', file: 'drivers/vfio/vfio_iommu_type1.c' },
    ],
  },
  bounds: { maxStates: 500_000, timeMs: 15_000 },
});
