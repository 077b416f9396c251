/**
 * Real-tree checks for the concurrency rules: pretend patches over files of the 6.1 tree that add
 * one whole real function (before = the file without it, after = the real file), so a rule sees
 * real kernel code as "new" and must stay quiet unless the code really has the issue.
 */
import { expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildModel, createModelCache, loadParser, modelFile, type SourceReader, type TreeModel } from '../../src/cmodel/index.js';
import type { PatchView } from '../../src/rules/context.js';
import { lineDiff } from '../../src/rules/linediff.js';
import { runRules } from '../../src/rules/run.js';
import type { Rule, RuleFinding } from '../../src/rules/types.js';

const cache = createModelCache();

/** The files the concurrency rules are tried on (group.c only exists in later trees). */
export const RACE_FILES = [
  'drivers/vfio/vfio_iommu_type1.c',
  'drivers/vfio/vfio_main.c',
  'drivers/vfio/group.c',
  'drivers/s390/crypto/vfio_ap_ops.c',
  'drivers/s390/cio/vfio_ccw_drv.c',
  'drivers/iommu/iommu.c',
];

/** A reader over the tree on disk, with some files replaced. `list` gives entry names, as build.ts expects. */
export function diskReader(root: string, override: Record<string, string> = {}): SourceReader {
  return {
    readFile: (p) => {
      if (p in override) return override[p]!;
      try {
        return readFileSync(join(root, p), 'utf8');
      } catch {
        return null;
      }
    },
    list: (d) => {
      try {
        return readdirSync(join(root, d));
      } catch {
        return [];
      }
    },
  };
}

/** One pretend patch: `fn` of `path` is all added. */
export interface RealCase {
  path: string;
  fn: string;
  before: string;
  after: string;
  /** Unchanged files of the tree the patch also touches (so the model holds them, as a series touching both would). */
  alsoTouched?: string[];
}

/**
 * Up to `max` functions of `path` that take, release or assert a lock, spread over the file, each
 * turned into a pretend patch adding it. A file missing from the tree gives none.
 */
export async function lockUsingCases(root: string, path: string, max: number, opts: { anyFunction?: boolean } = {}): Promise<RealCase[]> {
  if (!existsSync(join(root, path))) return [];
  await loadParser();
  const text = readFileSync(join(root, path), 'utf8');
  const fm = modelFile(text, path);
  const lockers = fm.functions.filter((f) => opts.anyFunction || f.events.some((e) => e.kind === 'lock'));
  const step = Math.max(1, lockers.length / max);
  const picked = [];
  for (let i = 0; i < lockers.length && picked.length < max; i += step) picked.push(lockers[Math.floor(i)]!);
  const lines = text.split('\n');
  return picked.map((f) => ({
    path,
    fn: f.name,
    before: [...lines.slice(0, f.line - 1), ...lines.slice(f.endLine)].join('\n'),
    after: text,
  }));
}

/** The view of one pretend patch over the tree at `root`. */
export function realView(root: string, c: RealCase): PatchView {
  const d = lineDiff(c.before, c.after);
  const lines = c.after.split('\n');
  const addedText = new Map<number, string>();
  for (const n of d.added) addedText.set(n, lines[n - 1] ?? '');
  const also = c.alsoTouched ?? [];
  const models = new Map<string, Promise<TreeModel>>();
  const model = (side: 'before' | 'after'): Promise<TreeModel> => {
    let m = models.get(side);
    if (!m) {
      m = buildModel(diskReader(root, { [c.path]: side === 'before' ? c.before : c.after }), [c.path, ...also], { cache });
      models.set(side, m);
    }
    return m;
  };
  const read = (p: string): string | null => diskReader(root).readFile(p);
  return {
    patch: { msgid: `real-${c.fn}@example.org`, index: 1, subject: `add ${c.fn}` },
    applied: true,
    files: [
      { path: c.path, oldPath: c.path, status: 'modified', added: d.added, removed: d.removed, addedText },
      ...also.map((p) => ({ path: p, oldPath: p, status: 'modified' as const, added: new Set<number>(), removed: new Set<number>(), addedText: new Map<number, string>() })),
    ],
    before: (p) => (p === c.path ? c.before : also.includes(p) ? read(p) : null),
    after: (p) => (p === c.path ? c.after : also.includes(p) ? read(p) : null),
    model,
  };
}

/** Findings of `rule` over pretend patches, each labelled with the function it added. */
export async function realFindings(rule: Rule, root: string, cases: RealCase[]): Promise<(RuleFinding & { added: string })[]> {
  const out: (RuleFinding & { added: string })[] = [];
  for (const c of cases) {
    const found = await runRules([rule], [realView(root, c)]);
    for (const f of found) out.push({ ...f, added: `${c.path}:${c.fn}` });
  }
  return out;
}

/** The unchanged-file patch: before = after = the real file. */
export function unchangedCase(root: string, path: string): RealCase | null {
  if (!existsSync(join(root, path))) return null;
  const text = readFileSync(join(root, path), 'utf8');
  return { path, fn: '(none)', before: text, after: text };
}

/**
 * The two real-tree checks every race rule carries: nothing for a patch that changes nothing, and
 * nothing when ~20 real lock-using functions of RACE_FILES are added whole. `adjust` edits the cases
 * first (e.g. files a series touching a driver usually touches too).
 */
export function itStaysQuietOnTheRealTree(rule: Rule, root: () => string, adjust: (cases: RealCase[]) => void = () => undefined): void {
  it('raises nothing for a patch that changes nothing', async () => {
    for (const p of RACE_FILES) {
      const c = unchangedCase(root(), p);
      if (c) expect(await realFindings(rule, root(), [c])).toEqual([]);
    }
  });

  it('raises nothing when ~20 real lock-using functions are added whole', async () => {
    const cases = (await Promise.all(RACE_FILES.map((p) => lockUsingCases(root(), p, 4)))).flat();
    adjust(cases);
    expect(cases.length).toBeGreaterThanOrEqual(18);
    const found = await realFindings(rule, root(), cases);
    expect(found.map((f) => `${f.added}: ${f.line} ${f.message}`)).toEqual([]);
  });
}
