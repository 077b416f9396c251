/**
 * Summaries taken from earlier models (src/cmodel/incremental.ts): a model built after another over
 * nearly the same files reuses what did not change, and what it reuses is exactly what a fresh
 * computation gives, including when the change is in a callee or a declaration in another file.
 */
import { describe, expect, it } from 'vitest';
import { buildModel, createModelCache, type SourceReader } from '../../src/cmodel/build.js';
import { findFunction, summaryOf, type TreeModel } from '../../src/cmodel/model.js';
import { computeSummaries } from '../../src/cmodel/summaries.js';
import { baseReader, rulesWorkspace, seriesReader } from '../../src/rules/context.js';
import { kernelTree } from '../helpers/kernel-tree.js';

function memoryTree(files: Record<string, string>): SourceReader {
  return {
    readFile: (p) => files[p] ?? null,
    list: (d) => Object.keys(files).filter((p) => p.startsWith(`${d}/`) && !p.slice(d.length + 1).includes('/')).map((p) => p.slice(d.length + 1)),
  };
}

const HEADER = `
struct gadget { struct mutex lock; spinlock_t irq_lock; int state; };
typedef struct gadget gadget_t;
`;
const HELPERS = `
#include "gadget.h"
void gadget_grab(gadget_t *g)
{
	mutex_lock(&g->lock);
}
void gadget_drop(gadget_t *g)
{
	mutex_unlock(&g->lock);
}
`;
const USER = `
#include "gadget.h"
void gadget_grab(gadget_t *g);
void gadget_drop(gadget_t *g);
static void set_state(gadget_t *g, int s)
{
	gadget_grab(g);
	g->state = s;
	gadget_drop(g);
}
int gadget_store(gadget_t *g, int s)
{
	set_state(g, s);
	return 0;
}
static int unrelated(int x)
{
	return x + 1;
}
`;

const tree = (over: Record<string, string> = {}): Record<string, string> => ({
  'drivers/fake/gadget.h': HEADER, 'drivers/fake/helpers.c': HELPERS, 'drivers/fake/user.c': USER, ...over,
});

/** Every summary of `model` against one computed afresh over the same files. */
function expectSameAsFresh(model: TreeModel): void {
  const fresh: TreeModel = { ...model, summaries: new Map() };
  computeSummaries(fresh, 6, { reuse: false });
  expect([...model.summaries.keys()].sort()).toEqual([...fresh.summaries.keys()].sort());
  for (const [k, s] of fresh.summaries) expect(model.summaries.get(k), k).toEqual(s);
}

const takes = (m: TreeModel, name: string): string[] => summaryOf(m, findFunction(m, name)!)!.takes.map((t) => `${t.cls} via ${t.via.join('>')}`).sort();

describe('summaries reused between models', () => {
  it('builds the same files again as the same model, and an unrelated edit recomputes only its file', async () => {
    const cache = createModelCache();
    const a = await buildModel(memoryTree(tree()), ['drivers/fake/user.c'], { cache });
    expect(a.stats).toMatchObject({ reused: 0 });
    const again = await buildModel(memoryTree(tree()), ['drivers/fake/user.c'], { cache });
    expect(again).toBe(a);

    const edited = USER.replace('return x + 1;', 'return x + 2;');
    const b = await buildModel(memoryTree(tree({ 'drivers/fake/user.c': edited })), ['drivers/fake/user.c'], { cache });
    // Only the edited function is summarised again; user.c's other two and the helpers' two are taken as they were.
    expect(b.stats).toMatchObject({ computed: 1, reused: 4, converged: true });
    expectSameAsFresh(b);
  });

  it('takes a function moved down by an edit above it, with its lines moved, equal to a fresh extraction and summary', async () => {
    const cache = createModelCache();
    const a = await buildModel(memoryTree(tree()), ['drivers/fake/user.c'], { cache });
    const grown = USER.replace('static void set_state', '/* two\n * new lines */\nstatic void set_state');
    process.env.VFIO_REVIEW_VERIFY_REUSE = '1';
    try {
      // In this mode every function taken from the earlier version is also extracted afresh and compared
      // (declarations.ts throws on a difference), and every summary is recomputed and compared (build.ts).
      const b = await buildModel(memoryTree(tree({ 'drivers/fake/user.c': grown })), ['drivers/fake/user.c'], { cache: createModelCache() });
      expect(b.stats!.reused).toBeGreaterThan(0);
    } finally {
      delete process.env.VFIO_REVIEW_VERIFY_REUSE;
    }
    const c = await buildModel(memoryTree(tree({ 'drivers/fake/user.c': grown })), ['drivers/fake/user.c'], { cache });
    expect(c.stats).toMatchObject({ computed: 0, reused: 5 });
    const was = summaryOf(a, findFunction(a, 'set_state')!)!;
    const now = summaryOf(c, findFunction(c, 'set_state')!)!;
    expect(now.line).toBe(was.line + 2);
    expect(now.accesses.map((x) => x.line)).toEqual(was.accesses.map((x) => x.line + 2));
    expectSameAsFresh(c);
  });

  it('recomputes a caller in an unchanged file when its callee in the changed file locks differently', async () => {
    const cache = createModelCache();
    const a = await buildModel(memoryTree(tree()), ['drivers/fake/helpers.c', 'drivers/fake/user.c'], { cache });
    expect(takes(a, 'gadget_store')).toEqual(['gadget.lock via set_state>gadget_grab']);
    const spin = HELPERS.replace('mutex_lock(&g->lock);', 'spin_lock(&g->irq_lock);');
    const b = await buildModel(memoryTree(tree({ 'drivers/fake/helpers.c': spin })), ['drivers/fake/helpers.c', 'drivers/fake/user.c'], { cache });
    expect(takes(b, 'gadget_store')).toEqual(['gadget.irq_lock via set_state>gadget_grab']);
    // `unrelated` calls nothing that changed: taken as it was.
    expect(b.stats!.reused).toBeGreaterThanOrEqual(1);
    expectSameAsFresh(b);
  });

  it('recomputes a function of an unchanged file when a declaration in another file changes its lock class', async () => {
    const cache = createModelCache();
    const a = await buildModel(memoryTree(tree()), ['drivers/fake/user.c'], { cache });
    expect(takes(a, 'set_state')).toEqual(['gadget.lock via gadget_grab']);
    const retyped = `${HEADER.replace('typedef struct gadget gadget_t;', 'typedef struct widget gadget_t;')}struct widget { struct mutex lock; };\n`;
    const b = await buildModel(memoryTree(tree({ 'drivers/fake/gadget.h': retyped })), ['drivers/fake/user.c'], { cache });
    expect(takes(b, 'set_state')).toEqual(['widget.lock via gadget_grab']);
    expectSameAsFresh(b);
  });

  it('recomputes callers when a callee moves between definitions (a static one appears in the caller\'s file)', async () => {
    const cache = createModelCache();
    await buildModel(memoryTree(tree()), ['drivers/fake/user.c'], { cache });
    const local = USER.replace('static void set_state', 'static void gadget_grab(gadget_t *g)\n{\n}\nstatic void set_state');
    const b = await buildModel(memoryTree(tree({ 'drivers/fake/user.c': local })), ['drivers/fake/user.c'], { cache });
    expect(takes(b, 'set_state')).toEqual([]);
    expectSameAsFresh(b);
  });

  it('on the real 6.1 tree: a patched vfio_main.c model reuses most summaries and equals a fresh computation', async () => {
    const dir = await kernelTree();
    const ws = await rulesWorkspace();
    const gitDir = `${dir}/.git`;
    const base = baseReader(gitDir, 'HEAD', ws.home);
    const path = 'drivers/vfio/vfio_main.c';
    const text = base.readFile(path)!;
    const patched = text.replace(/(static int vfio_group_fops_release\([^)]*\)\n\{\n)/, '$1\tmutex_lock(&vfio.group_lock);\n\tmutex_unlock(&vfio.group_lock);\n');
    expect(patched).not.toBe(text);
    const cache = createModelCache();
    const before = await buildModel(base, [path], { cache });
    const after = await buildModel(seriesReader(base, new Map([[path, patched]])), [path], { cache });
    expect(before.stats!.reused).toBe(0);
    expect(after.stats!.reused).toBeGreaterThan(after.stats!.computed);
    expectSameAsFresh(after);
  }, 180_000);
});
