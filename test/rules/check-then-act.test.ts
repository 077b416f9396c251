import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkThenAct } from '../../src/rules/check-then-act.js';
import { runRules } from '../../src/rules/run.js';
import { kernelTree } from '../helpers/kernel-tree.js';
import { realView, itStaysQuietOnTheRealTree } from '../helpers/race-real-tree.js';
import { runRuleTests } from '../helpers/rule-tester.js';

const header = `struct toy_matrix {
	struct mutex lock;
	unsigned long apm;
	int guests;
};
bool toy_apm_in_use(struct toy_matrix *m, unsigned long apm);
`;
const helper = `#include "toy.h"

bool toy_apm_in_use(struct toy_matrix *m, unsigned long apm)
{
	return m->guests && (m->apm & apm);
}

void toy_matrix_set(struct toy_matrix *m, unsigned long apm)
{
	mutex_lock(&m->lock);
	m->apm = apm;
	mutex_unlock(&m->lock);
}
`;
const storeBefore = `#include "toy.h"

int toy_apm_store(struct toy_matrix *m, unsigned long apm)
{
	int ret = 0;

	mutex_lock(&m->lock);
	if (toy_apm_in_use(m, apm))
		ret = -EBUSY;
	else
		m->apm &= ~apm;
	mutex_unlock(&m->lock);
	return ret;
}
`;
const storeAfter = `#include "toy.h"

int toy_apm_store(struct toy_matrix *m, unsigned long apm)
{
	int busy;

	mutex_lock(&m->lock);
	busy = toy_apm_in_use(m, apm);
	mutex_unlock(&m->lock);
	if (busy)
		return -EBUSY;
	m->apm &= ~apm;
	return 0;
}
`;

runRuleTests(checkThenAct, {
  valid: [
    { name: 'one critical section, retaken lock, unrelated update, other object', fixture: 'check-then-act-ok.c' },
    {
      name: 'the check and the update already split in the base',
      path: 'drivers/s390/crypto/toy_ops.c',
      before: storeAfter,
      after: storeAfter.replace('\treturn 0;', '\tpr_debug("apm %lx\\n", apm);\n\treturn 0;'),
      extra: { 'drivers/s390/crypto/toy_matrix.c': { before: helper, after: helper }, 'drivers/s390/crypto/toy.h': { before: header, after: header } },
    },
  ],
  invalid: [
    { name: 'field test, local and predicate acted on after the unlock', fixture: 'check-then-act.c' },
    {
      name: 'a predicate in another file, its answer acted on after the unlock',
      path: 'drivers/s390/crypto/toy_ops.c',
      before: storeBefore,
      after: storeAfter,
      extra: { 'drivers/s390/crypto/toy_matrix.c': { before: helper, after: helper }, 'drivers/s390/crypto/toy.h': { before: header, after: header } },
      findings: [{ line: 12, message: 'toy_matrix->apm is changed here relying on a decision taken under m->lock at line 8' }],
    },
  ],
});

describe('check-then-act on the 6.1 tree', () => {
  let root: string;
  beforeAll(async () => {
    root = await kernelTree();
  });

  itStaysQuietOnTheRealTree(checkThenAct, () => root);

  it('flags vfio_group_fops_open() if group->opened_file is set after dropping group_lock', async () => {
    const path = 'drivers/vfio/vfio_main.c';
    const text = readFileSync(join(root, path), 'utf8');
    const after = text.replace(
      '\tgroup->opened_file = filep;\n\tfilep->private_data = group;\n\tret = 0;\nout_unlock:',
      '\tmutex_unlock(&group->group_lock);\n\tgroup->opened_file = filep;\n\tfilep->private_data = group;\n\treturn 0;\nout_unlock:',
    );
    expect(after).not.toBe(text);
    const found = await runRules([checkThenAct], [realView(root, { path, fn: 'vfio_group_fops_open', before: text, after })]);
    expect(found).toHaveLength(1);
    expect(found[0]!.message).toMatch(/^vfio_group->opened_file is changed here relying on a decision taken under group->group_lock/);
    const lines = after.split('\n');
    expect(lines[found[0]!.line - 1]!.trim()).toBe('group->opened_file = filep;');
  });
});
