import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { treeReader as reader } from '../../src/sim/fs-reader.js';
import { runScenario } from '../../src/sim/run.js';
import { scenarios } from '../../src/sim/scenarios/index.js';
import { iommuRemoveVsClaimDmaOwner } from '../../src/sim/scenarios/iommu-remove-vs-claim-dma-owner.js';
import { mlx5MigrationFdVsClose } from '../../src/sim/scenarios/mlx5-migration-fd-vs-close.js';
import { type1UnmapVsUnpin } from '../../src/sim/scenarios/type1-unmap-vs-unpin.js';
import { vfioApApmaskVsAssign } from '../../src/sim/scenarios/vfio-ap-apmask-vs-assign.js';
import { vfioCcwProbeVsMdevCreate } from '../../src/sim/scenarios/vfio-ccw-probe-vs-mdev-create.js';
import { kernelTree } from '../helpers/kernel-tree.js';

let root: string;
beforeAll(async () => {
  root = await kernelTree();
});

describe.each(scenarios.filter((s) => s.tree).map((s) => [s.id, s] as const))('%s on the 6.1 tree', (_id, sc) => {
  it(`gives its expected verdict (${sc.expect})`, async () => {
    const r = await runScenario(sc, { reader: reader(root) });
    expect(r.pass, `${r.reason}\n${r.text}`).toBe(true);
    console.info(`[sim] ${sc.id}: ${r.result.verdict}, ${r.result.stats.states} states in ${r.result.stats.ms.toFixed(0)} ms; ops ${r.programs.map((p) => p.ops.length).join('+')}`);
  });
});

describe('vfio-ap-apmask-vs-assign, patched', () => {
  it('taking ap_perms_mutex after get_update_locks_for_mdev() in assign_adapter_store deadlocks, and the trace names the locks', async () => {
    const path = 'drivers/s390/crypto/vfio_ap_ops.c';
    const text = readFileSync(join(root, path), 'utf8');
    const before = '\tmutex_lock(&ap_perms_mutex);\n\tget_update_locks_for_mdev(matrix_mdev);\n\n\tret = kstrtoul(buf, 0, &apid);';
    expect(text).toContain(before);
    const patched = text.replace(before, '\tget_update_locks_for_mdev(matrix_mdev);\n\tmutex_lock(&ap_perms_mutex);\n\n\tret = kstrtoul(buf, 0, &apid);');
    const r = await runScenario(vfioApApmaskVsAssign, { reader: reader(root, { [path]: patched }) });
    expect(r.result.verdict).toBe('deadlock');
    expect(r.pass).toBe(false);
    expect(r.text).toContain('*** DEADLOCK ***');
    expect(r.text).toMatch(/lock\(ap_perms_mutex\); ap_bus\.c:1406/);
    expect(r.text).toMatch(/ap_drv->in_use\(\) -> vfio_ap_mdev_resource_in_use\(\)/);
    expect(r.text).toMatch(/lock\(ap_matrix_dev\.guests_lock\); vfio_ap_ops\.c:1997 {2}<- waits/);
    expect(r.text).toMatch(/lock\(ap_perms_mutex\); vfio_ap_ops\.c:971 {2}<- waits/);
    expect(r.result.fault!.message).toBe('apmask_store waits for ap_matrix_dev.guests_lock held by assign_adapter_store; assign_adapter_store waits for ap_perms_mutex held by apmask_store');
    expect(r.text.split('\n').length).toBeLessThanOrEqual(26);
    console.info(r.text);
  });
});

describe('vfio-ccw-probe-vs-mdev-create, patched', () => {
  it('setting state = STANDBY after mdev_register_parent() (the 2018 order) lets create see NOT_OPER and fail with -ENODEV', async () => {
    const path = 'drivers/s390/cio/vfio_ccw_drv.c';
    const text = readFileSync(join(root, path), 'utf8');
    const init = '\tprivate->state = VFIO_CCW_STATE_STANDBY;\n\tINIT_LIST_HEAD';
    const registered = '\tif (ret)\n\t\tgoto out_free;\n\n\tVFIO_CCW_MSG_EVENT(4, "bound';
    expect(text).toContain(init);
    expect(text).toContain(registered);
    const patched = text.replace(init, '\tINIT_LIST_HEAD').replace(registered, '\tif (ret)\n\t\tgoto out_free;\n\tprivate->state = VFIO_CCW_STATE_STANDBY;\n\n\tVFIO_CCW_MSG_EVENT(4, "bound');
    const r = await runScenario(vfioCcwProbeVsMdevCreate, { reader: reader(root, { [path]: patched }) });
    expect(r.result.verdict).toBe('safe');
    expect(r.result.exists!.frequency).toBe('sometimes');
    expect(r.pass).toBe(false);
    expect(r.text).toContain('mdev_register_parent() publishes (release); vfio_ccw_drv.c:243');
    expect(r.text).toMatch(/return - ENODEV; vfio_ccw_ops\.c:62/);
    console.info(r.text);
  });
});

describe('iommu-remove-vs-claim-dma-owner, patched', () => {
  it('a claim testing owner_cnt without group->mutex can win together with the probe', async () => {
    const path = 'drivers/iommu/iommu.c';
    const text = readFileSync(join(root, path), 'utf8');
    const lock = '\tmutex_lock(&group->mutex);\n\tif (group->owner_cnt) {\n\t\tret = -EPERM;';
    const unlock = 'unlock_out:\n\tmutex_unlock(&group->mutex);\n\n\treturn ret;\n}\nEXPORT_SYMBOL_GPL(iommu_group_claim_dma_owner);';
    expect(text).toContain(lock);
    expect(text).toContain(unlock);
    const patched = text.replace(lock, '\tif (group->owner_cnt) {\n\t\tret = -EPERM;').replace(unlock, 'unlock_out:\n\treturn ret;\n}\nEXPORT_SYMBOL_GPL(iommu_group_claim_dma_owner);');
    const r = await runScenario(iommuRemoveVsClaimDmaOwner, { reader: reader(root, { [path]: patched }) });
    expect(r.pass).toBe(false);
    expect(r.result.exists?.frequency).toBe('sometimes');
    expect(r.text).toMatch(/claim returns 0/);
    console.info(r.text);
  });
});

describe('type1-unmap-vs-unpin, patched', () => {
  it('unpinning with iommu->lock dropped around vfio_unpin_page_external() uses a dma the unmap freed', async () => {
    const path = 'drivers/vfio/vfio_iommu_type1.c';
    const text = readFileSync(join(root, path), 'utf8');
    const before = '\t\tif (!dma)\n\t\t\tbreak;\n\n\t\tvfio_unpin_page_external(dma, iova, do_accounting);\n';
    expect(text).toContain(before);
    const patched = text.replace(before, '\t\tif (!dma)\n\t\t\tbreak;\n\n\t\tmutex_unlock(&iommu->lock);\n\t\tvfio_unpin_page_external(dma, iova, do_accounting);\n\t\tmutex_lock(&iommu->lock);\n');
    const r = await runScenario(type1UnmapVsUnpin, { reader: reader(root, { [path]: patched }) });
    expect(r.result.verdict).toBe('stale-pointer');
    expect(r.pass).toBe(false);
    expect(r.text).toContain('*** STALE POINTER ***');
    expect(r.result.fault!.message).toMatch(/unpin uses dma, read from vfio_iommu\.dma_list under vfio_iommu\.lock which unpin dropped since/);
    console.info(r.text);
  });
});

describe('mlx5-migration-fd-vs-close, patched', () => {
  it('dropping migf->lock around the copy to user space lets close_device free the page being read', async () => {
    const path = 'drivers/vfio/pci/mlx5/main.c';
    const text = readFileSync(join(root, path), 'utf8');
    const before = '\t\tfrom_buff = kmap_local_page(page);\n\t\tret = copy_to_user(buf, from_buff + page_offset, page_len);\n\t\tkunmap_local(from_buff);\n';
    expect(text).toContain(before);
    const patched = text.replace(before, '\t\tmutex_unlock(&migf->lock);\n' + before + '\t\tmutex_lock(&migf->lock);\n');
    const r = await runScenario(mlx5MigrationFdVsClose, { reader: reader(root, { [path]: patched }) });
    expect(r.result.verdict).toBe('stale-pointer');
    expect(r.result.fault!.message).toBe('read uses mig_data freed by close_device, read from mlx5_vf_migration_file.table under mlx5_vf_migration_file.lock which read dropped since');
    expect(r.text).toMatch(/kmap_local_page\(page\); main\.c:187/);
    console.info(r.text);
  });
});
