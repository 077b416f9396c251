import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRepo, type TestRepo } from '../helpers/git-repo.js';
import { mail } from '../helpers/mail.js';
import { toMboxrd } from '../../src/store/export.js';
import { topLevelItems } from '../../src/rules/diffalone/toplevel.js';

const BIN = fileURLToPath(new URL('../../src/cli/bin.js', import.meta.url));

describe('top-level items from lines alone', () => {
  const src = [
    '#include <linux/mutex.h>', //        0
    '#ifdef CONFIG_X', //                  1 conditionals are never items
    'static DEFINE_MUTEX(demo_lock);', //  2
    '#endif', //                           3
    '', //                                 4
    'static int demo_open(struct demo *d,', // 5
    '\t\t     int flags)', //              6
    '{', //                                7
    '\tif (flags)', //                     8
    '\t\tgoto out;', //                    9
    'out:', //                            10 a label at column 0 inside the body
    '\treturn 0;', //                     11
    '}', //                               12
    '', //                                13
    'static const struct demo_ops ops = {', // 14
    '\t.open = demo_open,', //            15
    '};', //                              16
    '', //                                17
    'static void demo_cut(void)', //      18
    '{', //                               19
    '\tdemo();', //                       20 the region ends before the function does
  ];

  it('finds functions, initialisers, declarations and #include lines, and only whole ones', () => {
    const items = topLevelItems(src);
    expect(items.map((i) => [i.key.split('\n')[0], i.start, i.end])).toEqual([
      ['text:#include <linux/mutex.h>', 0, 0],
      ['text:static DEFINE_MUTEX(demo_lock);', 2, 2],
      ['fn:demo_open', 5, 12],
      ['agg:ops', 14, 16],
    ]);
  });

  it('does not take a fragment that starts at a label or inside a body for an item', () => {
    expect(topLevelItems(src, 10, 20)).toEqual([{ start: 14, end: 16, key: 'agg:ops' }]);
    expect(topLevelItems(src, 8, 12)).toEqual([]);
  });

  it('never spans an unknown line', () => {
    const holes = [...src];
    holes[9] = undefined as unknown as string;
    expect(topLevelItems(holes).map((i) => i.key)).toEqual(['text:#include <linux/mutex.h>', 'text:static DEFINE_MUTEX(demo_lock);', 'agg:ops']);
  });
});

/** The author's file, written against a tree that has moved on (so the series does not apply). */
const AUTHOR = `// SPDX-License-Identifier: GPL-2.0
#include <linux/mutex.h>

struct demo_dev {
	struct mutex lock;
	int users;
	int state;
};

static int demo_open(struct demo_dev *d)
{
	mutex_lock(&d->lock);
	d->users++;
	mutex_unlock(&d->lock);
	return 0;
}

static int demo_drifted(struct demo_dev *d)
{
	int ret = 0;

	mutex_lock(&d->lock);
	if (d->state)
		ret = -EBUSY;
	mutex_unlock(&d->lock);
	return ret;
}
`;

/** The tree: four more lines at the top, and demo_drifted written differently. */
const TREE = AUTHOR.replace('#include <linux/mutex.h>\n', '#include <linux/mutex.h>\n#include <linux/slab.h>\n\n/* Demo driver core. */\n').replace(
  '\tif (d->state)\n\t\tret = -EBUSY;\n',
  '\tif (d->state > 1)\n\t\tret = -EBUSY;\n\telse if (d->state)\n\t\tret = -EAGAIN;\n',
);

const PATCHED = AUTHOR.replace('\tmutex_lock(&d->lock);\n\td->users++;', '\tmutex_lock(&d->lock);\n\tif (d->state < 0)\n\t\treturn -EIO;\n\td->users++;')
  .replace('\tmutex_lock(&d->lock);\n\tif (d->state)\n', '\tmutex_lock(&d->lock);\n\tif (!d->users)\n\t\treturn -ENODEV;\n\tif (d->state)\n')
  .concat(`
static int demo_close(struct demo_dev *d)
{
	mutex_lock(&d->lock);
	if (!d->users)
		return -EINVAL;
	d->users--;
	mutex_unlock(&d->lock);
	return 0;
}
`);

describe('the diff-alone path: C-model rules on the functions a patch that did not apply shows whole', () => {
  let repo: TestRepo;
  let dir: string;
  let diff: string;
  beforeAll(async () => {
    repo = await createRepo({ 'drivers/vfio/demo/demo_core.c': AUTHOR });
    const author = await repo.git('rev-parse', 'HEAD');
    await repo.commit({ 'drivers/vfio/demo/demo_core.c': PATCHED }, 'patched');
    diff = await repo.gitRaw('diff', author, 'HEAD');
    await repo.commit({ 'drivers/vfio/demo/demo_core.c': TREE }, 'the tree moves on');
    dir = mkdtempSync(join(tmpdir(), 'vr-diffalone-'));
  });
  afterAll(async () => {
    await repo?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reports at the patch\'s own line numbers in whole or completed functions, and nothing in a function it cannot see', () => {
    const mbox = join(dir, 'p.mbox');
    writeFileSync(
      mbox,
      toMboxrd([mail({ id: 'd1@x', subject: '[PATCH] vfio/demo: error paths', body: `Add error paths.\n\nSigned-off-by: Dev One <dev1@example.org>\n---\n${diff}-- \n2.43.0\n` })]),
    );
    const r = spawnSync(process.execPath, [BIN, 'check', '--mbox', mbox, '--tree', repo.dir, '--db', join(dir, 'a.db'), '--json'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const [one] = JSON.parse(r.stdout);
    expect(one.apply.status).toBe('not-applied');
    const lines = PATCHED.split('\n');
    const at = (text: string, from = 0): number => lines.findIndex((l, i) => i >= from && l === text) + 1;
    const openReturn = at('\t\treturn -EIO;');
    const closeReturn = at('\t\treturn -EINVAL;');
    const found = one.findings.filter((f: { rule: string }) => f.rule === 'lock-imbalance');
    expect(found.map((f: { line: number; function: string }) => [f.function, f.line]).sort()).toEqual(
      [['demo_close', closeReturn], ['demo_open', openReturn]].sort(),
    );
    // demo_drifted's hunk does not match the tree: its new early return is not judged from a guess.
    expect(one.findings.some((f: { function: string | null }) => f.function === 'demo_drifted')).toBe(false);
    expect(found[0].evidence.join('\n')).toMatch(/diff alone/);
  });

  it('pairs unchanged lines across lines the diff adds outside the functions it shows (an errno change below a drifted hunk)', async () => {
    // demo_drifted's new lines are not shown (its hunk does not match the tree), yet they still move
    // every later line: demo_ioctl's unchanged paths must pair up, and its fall-through errno change is seen.
    const ioctl = (errno: string): string => `
static long demo_ioctl(struct demo_dev *d, unsigned int cmd)
{
	long ret;

	mutex_lock(&d->lock);
	if (cmd == 1) {
		ret = 0;
		goto out;
	}
	ret = ${errno};
out:
	mutex_unlock(&d->lock);
	return ret;
}
`;
    const author = AUTHOR + ioctl('-EINVAL');
    const patched = author
      .replace('\tmutex_lock(&d->lock);\n\tif (d->state)\n', '\tmutex_lock(&d->lock);\n\tif (!d->users)\n\t\td->state = 0;\n\tif (d->state)\n')
      .replace('\tret = -EINVAL;\n', '\tret = -ENOTTY;\n');
    const tree = TREE + ioctl('-EINVAL');
    const r2 = await createRepo({ 'drivers/vfio/demo/demo_core.c': author });
    try {
      const base = await r2.git('rev-parse', 'HEAD');
      await r2.commit({ 'drivers/vfio/demo/demo_core.c': patched }, 'patched');
      const d2 = await r2.gitRaw('diff', base, 'HEAD');
      await r2.commit({ 'drivers/vfio/demo/demo_core.c': tree }, 'the tree moves on');
      const mbox = join(dir, 'p2.mbox');
      writeFileSync(mbox, toMboxrd([mail({ id: 'd2@x', subject: '[PATCH] vfio/demo: errno', body: `Errno.\n\nSigned-off-by: Dev One <dev1@example.org>\n---\n${d2}-- \n2.43.0\n` })]));
      const r = spawnSync(process.execPath, [BIN, 'check', '--mbox', mbox, '--tree', r2.dir, '--db', join(dir, 'b.db'), '--json'], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const [one] = JSON.parse(r.stdout);
      expect(one.apply.status).toBe('not-applied');
      const line = patched.split('\n').findIndex((l) => l === '\tret = -ENOTTY;') + 1;
      const errno = one.findings.filter((f: { rule: string }) => f.rule === 'errno-contract');
      expect(errno.map((f: { function: string; line: number; message: string }) => [f.function, f.line, /now returns -ENOTTY .* where it returned -EINVAL/.test(f.message)])).toEqual([['demo_ioctl', line, true]]);
    } finally {
      await r2.dispose();
    }
  });
});

