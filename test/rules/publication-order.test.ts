import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { publicationOrder } from '../../src/rules/publication-order.js';
import { runRules } from '../../src/rules/run.js';
import { kernelTree } from '../helpers/kernel-tree.js';
import { realView, itStaysQuietOnTheRealTree } from '../helpers/race-real-tree.js';
import { runRuleTests } from '../helpers/rule-tester.js';

const header = `struct toy_priv {
	int state;
	struct toy_sch *sch;
	struct toy_parent parent;
};
struct toy_mdev_driver {
	int (*probe)(struct toy_mdev *mdev);
};
`;
const ops = `#include "toy.h"

static int toy_mdev_probe(struct toy_mdev *mdev)
{
	struct toy_priv *private = toy_priv_of(mdev);

	if (private->state == 0)
		return -ENODEV;
	toy_msg(private->sch->id);
	return 0;
}

const struct toy_mdev_driver toy_mdev_driver = {
	.probe = toy_mdev_probe,
};
`;
const probeBefore = `#include "toy.h"

static int toy_sch_probe(struct toy_sch *sch)
{
	struct toy_priv *private;
	int ret;

	private = kzalloc(sizeof(*private), GFP_KERNEL);
	if (!private)
		return -ENOMEM;
	private->sch = sch;
	private->state = 1;
	ret = toy_register_parent(&private->parent, &toy_mdev_driver);
	if (ret)
		kfree(private);
	return ret;
}
`;
const probeAfter = `#include "toy.h"

static int toy_sch_probe(struct toy_sch *sch)
{
	struct toy_priv *private;
	int ret;

	private = kzalloc(sizeof(*private), GFP_KERNEL);
	if (!private)
		return -ENOMEM;
	ret = toy_register_parent(&private->parent, &toy_mdev_driver);
	if (ret) {
		kfree(private);
		return ret;
	}
	private->sch = sch;
	private->state = 1;
	return 0;
}
`;

runRuleTests(publicationOrder, {
  valid: [
    { name: 'release/acquire pairing, set-up before registration, locked reader', fixture: 'publication-order-ok.c' },
    {
      name: 'set-up before the registration in a two-file driver',
      path: 'drivers/s390/cio/toy_drv.c',
      before: probeBefore.replace('\tprivate->state = 1;\n', ''),
      after: probeBefore,
      extra: { 'drivers/s390/cio/toy_ops.c': { before: ops, after: ops }, 'drivers/s390/cio/toy.h': { before: header, after: header } },
    },
  ],
  invalid: [
    { name: 'state published after registration, create callback tests it', fixture: 'publication-order.c' },
    { name: 'the reader uses smp_load_acquire() but the writer a plain store', fixture: 'publication-order-acquire.c' },
    {
      name: 'set-up moved after the registration, the mdev probe callback in another file tests it',
      path: 'drivers/s390/cio/toy_drv.c',
      before: probeBefore,
      after: probeAfter,
      extra: { 'drivers/s390/cio/toy_ops.c': { before: ops, after: ops }, 'drivers/s390/cio/toy.h': { before: header, after: header } },
      findings: [{ line: 17, message: 'toy_priv->state is set with a plain store after toy_priv->sch (line 16), and toy_mdev_probe() tests' }],
    },
  ],
});

describe('publication-order on the 6.1 tree', () => {
  let root: string;
  beforeAll(async () => {
    root = await kernelTree();
  });

  itStaysQuietOnTheRealTree(publicationOrder, () => root, (cases) => {
    // vfio-ccw's callbacks live in vfio_ccw_ops.c: a series touching the driver usually touches both.
    for (const c of cases) if (c.path === 'drivers/s390/cio/vfio_ccw_drv.c') c.alsoTouched = ['drivers/s390/cio/vfio_ccw_ops.c'];
  });

  it('flags vfio-ccw probe if the private state is published after mdev_register_parent()', async () => {
    const path = 'drivers/s390/cio/vfio_ccw_drv.c';
    const text = readFileSync(join(root, path), 'utf8');
    const after = text.replace(
      /(\t\t\t\t   private->mdev_types, 1\);\n\tif \(ret\)\n\t\tgoto out_free;\n)/,
      '$1\n\tprivate->sch = sch;\n\tprivate->state = VFIO_CCW_STATE_STANDBY;\n',
    );
    expect(after).not.toBe(text);
    const found = await runRules(
      [publicationOrder],
      [realView(root, { path, fn: 'vfio_ccw_sch_probe', before: text, after, alsoTouched: ['drivers/s390/cio/vfio_ccw_ops.c'] })],
    );
    expect(found.map((f) => f.message)).toEqual([
      'vfio_ccw_private->state is set with a plain store after vfio_ccw_private->sch (line ' +
        `${after.split('\n').lastIndexOf('\tprivate->sch = sch;') + 1}), and vfio_ccw_mdev_probe() tests vfio_ccw_private->state without a lock ` +
        'or acquire and then uses vfio_ccw_private->sch: another CPU may see the new vfio_ccw_private->state before vfio_ccw_private->sch',
    ]);
  });
});
