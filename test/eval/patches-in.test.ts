import { beforeAll, describe, expect, it } from 'vitest';
import { kernelTree } from '../helpers/kernel-tree.js';
import { CORPUS, HAS_CORPUS } from '../helpers/corpus.js';
import { gitOk, makeWorkspace } from '../../src/apply/git.js';
import { formatEval, runEval, type EvalResult } from '../../src/eval/run.js';
import { EVAL_REF_PREFIX } from '../../src/eval/reverse.js';

// A one-patch fix, and two patches (1/7 and 7/7) of a seven-patch series of which the corpus holds only those.
const SINGLE = '20190617133101.2817807-1-arnd@arndb.de';
const SERIES = ['20190514234248.36203-2-farman@linux.ibm.com', '20190514234248.36203-8-farman@linux.ibm.com'];
// A merged uAPI rename (VFIO_REGION_TYPE_MIGRATION -> ..._DEPRECATED): something to list for judgement.
const UAPI = '20220207172216.206415-11-yishaih@nvidia.com';
const ALL = [SINGLE, ...SERIES, UAPI];

async function treeState(tree: string): Promise<{ head: string; ours: string }> {
  const ws = await makeWorkspace('vr-eval-test-');
  try {
    const opts = { cwd: tree, home: ws.home };
    return { head: await gitOk(['rev-parse', 'HEAD'], opts), ours: await gitOk(['for-each-ref', `${EVAL_REF_PREFIX}${process.pid}-`], opts) };
  } finally {
    await ws.dispose();
  }
}

describe.skipIf(!HAS_CORPUS)('eval --part patches-in: merged patches reviewed on the tree minus their series', () => {
  let tree: string;
  let r: EvalResult;
  let before: { head: string; ours: string };
  beforeAll(async () => {
    tree = await kernelTree();
    before = await treeState(tree);
    r = await runEval(CORPUS, tree, { parts: ['patches-in'], msgids: ALL });
  }, 30 * 60_000);

  it('has one row per patch present, each reverse-applied and applied again on the base', () => {
    const p = r.patchesIn!;
    expect(r.stable).toBeNull();
    expect(r.threads).toEqual([]);
    expect(p.series).toBe(3);
    expect(p.rows.map((x) => x.msgid).sort()).toEqual([...ALL].sort());
    const farman = p.rows.filter((x) => SERIES.includes(x.msgid));
    expect(farman.map((x) => `${x.n}/${x.total}`).sort()).toEqual(['1/7', '7/7']);
    expect(new Set(farman.map((x) => x.series)).size).toBe(1);
    for (const row of p.rows) {
      expect(row.reversed).toBe('reversed');
      expect(row.applied).toBe('applied');
    }
    expect(p.problems).toEqual([]);
  });

  it('keeps the counts consistent between rows, totals, rules and the finding list', () => {
    const p = r.patchesIn!;
    expect(p.patches).toBe(p.rows.length);
    expect(p.reversed).toBe(p.rows.filter((x) => x.reversed === 'reversed').length);
    expect(p.reviewed).toBe(p.rows.length);
    expect(p.warnings).toBe(p.rows.reduce((n, x) => n + x.warnings, 0));
    expect(p.errors).toBe(p.rows.reduce((n, x) => n + x.errors, 0));
    expect(p.findings.length).toBe(p.warnings + p.errors);
    expect(Object.values(p.perRule).reduce((n, v) => n + v.count, 0)).toBe(p.findings.length);
    for (const f of p.findings) expect(p.rows.map((x) => x.msgid)).toContain(f.patch);
    expect(p.perPatch).toBeCloseTo((p.warnings + p.errors) / p.patches);
  });

  it('prints a row per patch with its Message-ID, the totals, and every finding with its patch', () => {
    const p = r.patchesIn!;
    const text = formatEval(r);
    expect(text).toMatch(/^patches-in-6\.1\.192 .*: 4 patches in 3 series; 4 reverse-applied, 4 reviewed/);
    expect(text).toContain(`; ${p.warnings} warnings, ${p.errors} errors (`);
    expect(p.findings.length).toBeGreaterThan(0);
    expect(text).toContain(`on merged patches (each is a real issue that went in, or a false positive): ${p.findings.length} findings`);
    for (const f of p.findings) {
      expect(text).toContain(`- ${f.rule} (${f.severity}) ${f.file}:${f.line}`);
      expect(text).toContain(`    patch <${f.patch}> "${f.subject}"`);
    }
    for (const id of ALL) expect(text).toMatch(new RegExp(`\\n\\d+ +\\d+/\\d+ +${id.replace(/[.+]/g, '\\$&')} +reversed +applied +\\d+ +\\d+ `));
    expect(JSON.parse(JSON.stringify(r)).patchesIn.rows).toHaveLength(4);
  });

  it('leaves HEAD where it was and no temporary ref behind', async () => {
    expect(await treeState(tree)).toEqual({ head: before.head, ours: '' });
  });
});
