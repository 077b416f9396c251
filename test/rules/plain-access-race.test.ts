import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { plainAccessRace } from '../../src/rules/plain-access-race.js';
import { runRules } from '../../src/rules/run.js';
import { kernelTree } from '../helpers/kernel-tree.js';
import { realView, itStaysQuietOnTheRealTree } from '../helpers/race-real-tree.js';
import { runRuleTests } from '../helpers/rule-tester.js';

const header = `struct kvm;
struct toy_group {
	struct mutex group_lock;
	struct kvm *kvm;
};
struct toy_group_ops {
	long (*ioctl)(struct toy_group *g, unsigned int cmd);
};
void toy_group_set_kvm(struct toy_group *g, struct kvm *kvm);
`;
const core = `#include "toy.h"

void toy_group_set_kvm(struct toy_group *g, struct kvm *kvm)
{
	mutex_lock(&g->group_lock);
	g->kvm = kvm;
	mutex_unlock(&g->group_lock);
}

static int toy_group_open(struct toy_group *g)
{
	int ret;

	mutex_lock(&g->group_lock);
	ret = g->kvm ? 0 : -EINVAL;
	mutex_unlock(&g->group_lock);
	return ret;
}
`;
const ioctlBefore = `#include "toy.h"

static long toy_group_ioctl(struct toy_group *g, unsigned int cmd)
{
	return -ENOTTY;
}

static const struct toy_group_ops toy_group_ops = {
	.ioctl = toy_group_ioctl,
};
`;
const ioctlAfter = ioctlBefore.replace('\treturn -ENOTTY;', '\tif (cmd == 1)\n\t\treturn g->kvm != NULL;\n\treturn -ENOTTY;');

runRuleTests(plainAccessRace, {
  valid: [
    { name: 'locked, asserted, locked callers, READ_ONCE, per-call objects, probe, racy by precedent', fixture: 'plain-access-race-ok.c' },
    {
      name: 'the reader in the other file takes the lock',
      path: 'drivers/vfio/toy_ioctl.c',
      before: ioctlBefore,
      after: ioctlBefore.replace('\treturn -ENOTTY;', '\tlong ret;\n\n\tmutex_lock(&g->group_lock);\n\tret = g->kvm != NULL;\n\tmutex_unlock(&g->group_lock);\n\treturn ret;'),
      extra: { 'drivers/vfio/toy_core.c': { before: core, after: core }, 'drivers/vfio/toy.h': { before: header, after: header } },
    },
  ],
  invalid: [
    { name: 'plain read and write of locked fields, plain read of a WRITE_ONCE field', fixture: 'plain-access-race.c' },
    {
      name: 'an ioctl reads a pointer another file writes under the group lock',
      path: 'drivers/vfio/toy_ioctl.c',
      before: ioctlBefore,
      after: ioctlAfter,
      extra: { 'drivers/vfio/toy_core.c': { before: core, after: core }, 'drivers/vfio/toy.h': { before: header, after: header } },
      findings: [{ line: 6, message: 'toy_group->kvm is written under toy_group->group_lock everywhere else (toy_group_set_kvm())' }],
    },
  ],
});

describe('plain-access-race on the 6.1 tree', () => {
  let root: string;
  beforeAll(async () => {
    root = await kernelTree();
  });

  itStaysQuietOnTheRealTree(plainAccessRace, () => root);

  it('flags a new vfio_group helper that reads group->kvm without group_lock, not one using the lock', async () => {
    const path = 'drivers/vfio/vfio_main.c';
    const text = readFileSync(join(root, path), 'utf8');
    const add = (body: string): string =>
      text.replace('EXPORT_SYMBOL_GPL(vfio_file_set_kvm);\n', `EXPORT_SYMBOL_GPL(vfio_file_set_kvm);\n\nbool vfio_file_has_kvm(struct file *file)\n{\n\tstruct vfio_group *group = file->private_data;\n${body}}\n`);
    const plain = add('\n\treturn group->kvm != NULL;\n');
    const found = await runRules([plainAccessRace], [realView(root, { path, fn: 'vfio_file_has_kvm', before: text, after: plain })]);
    expect(found.map((f) => f.message)).toEqual([
      'vfio_group->kvm is written under vfio_group->group_lock everywhere else (vfio_file_set_kvm()), but vfio_file_has_kvm() reads it without vfio_group->group_lock',
    ]);
    const locked = add('\tbool ret;\n\n\tmutex_lock(&group->group_lock);\n\tret = group->kvm != NULL;\n\tmutex_unlock(&group->group_lock);\n\treturn ret;\n');
    expect(await runRules([plainAccessRace], [realView(root, { path, fn: 'vfio_file_has_kvm', before: text, after: locked })])).toEqual([]);
  });

  it('flags the reset_done handler of the v18 vfio-pci thread: pci_saved_state is managed under the device set lock', async () => {
    // The root patch of threads/vfio-pci-reset-done-callback-v18-2026 applies to 6.1; the concern raised was
    // that it reloads the saved state holding only the PCI device lock.
    const path = 'drivers/vfio/pci/vfio_pci_core.c';
    const text = readFileSync(join(root, path), 'utf8');
    const handler = [
      'static void vfio_pci_core_aer_reset_done(struct pci_dev *pdev)',
      '{',
      '\tstruct vfio_pci_core_device *vdev = dev_get_drvdata(&pdev->dev);',
      '',
      '\tif (!vdev->pci_saved_state)',
      '\t\treturn;',
      '',
      '\tpci_load_saved_state(pdev, vdev->pci_saved_state);',
      '\tpci_restore_state(pdev);',
      '}',
      '',
      '',
    ].join('\n');
    const after = text
      .replace('int vfio_pci_core_sriov_configure(', `${handler}int vfio_pci_core_sriov_configure(`)
      .replace('\t.error_detected = vfio_pci_core_aer_err_detected,\n', '\t.error_detected = vfio_pci_core_aer_err_detected,\n\t.reset_done = vfio_pci_core_aer_reset_done,\n');
    const found = await runRules([plainAccessRace], [realView(root, { path, fn: 'vfio_pci_core_aer_reset_done', before: text, after })]);
    expect(found.map((f) => f.message)).toEqual([
      'vfio_pci_core_device->pci_saved_state is written under vfio_device_set->lock everywhere else (vfio_pci_core_enable()), ' +
        'but vfio_pci_core_aer_reset_done() reads it without vfio_device_set->lock',
    ]);
    expect(after.split('\n')[found[0]!.line - 1]).toBe('\tif (!vdev->pci_saved_state)');
  });
});
