import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb } from '../store/db.js';
import { Ingestor } from '../ingest/ingest.js';
import { readMbox } from '../ingest/mbox-source.js';
import { checkSeries, type CheckReport } from '../check/check.js';
import { defaultBaseMap } from '../config/load.js';
import { table } from '../bench/measure.js';
import { evalDiffAlone, formatDiffAlone, type DiffAloneResult } from './diffalone.js';
import { evalThreads, type ThreadRow } from './threads.js';
import { evalPatchesIn, type PatchesInResult } from './patches-in.js';
import { evalStable, type StableResult } from './stable.js';
import { removeStaleEvalRefs } from './reverse.js';
import { ingestMbox } from './source.js';
import { formatPatchesIn, formatStable } from './format.js';
import { fingerprint } from '../report/fingerprint.js';

/** The parts of `vfio-review eval`, in the order they run and print. */
export const EVAL_PARTS = ['threads', 'applying', 'patches-in', 'stable', 'diffalone'] as const;
/** Run when no part is named; `diffalone` re-checks every applying series twice (20+ min), so only on request. */
export const DEFAULT_PARTS: readonly EvalPart[] = ['threads', 'applying', 'patches-in', 'stable'];
export type EvalPart = (typeof EVAL_PARTS)[number];

export interface EvalResult {
  threads: ThreadRow[];
  perCategory: Record<string, { threads: number; caught: number; missed: number; noisy: number }>;
  applying: {
    patches: number; series: number; warnings: number;
    perRule: Record<string, { count: number; /** Every warning/error, with the patch's Message-ID: each one is judged in the issue note. */ examples: string[] }>;
    perPatch: number;
    /**
     * Of the warnings/errors, those a reply would show as new: not raised on an earlier version of
     * the same series (lineage, by finding fingerprint). The others a follow-up lists as still open.
     */
    firstRaised: number;
  };
  /** Merged patches reviewed on the tree minus their series; null when the part did not run. */
  patchesIn: PatchesInResult | null;
  /** Concurrency fixes among the merged patches, reviewed in their buggy state; null when the part did not run. */
  stable: StableResult | null;
  /** The diff-alone reconstruction judged against the real apply; null when the part did not run. */
  diffAlone: DiffAloneResult | null;
}

/** Options for {@link runEval}. */
export interface EvalOptions {
  /** Parts to run (default: all of {@link EVAL_PARTS}). */
  parts?: readonly string[];
  /** Only these Message-IDs in the patches-in and stable parts (tests pick a few). */
  msgids?: readonly string[];
  /** Progress per part, e.g. for a terminal progress line. */
  progress?: (part: EvalPart, done: number, total: number) => void;
}

async function checkMbox(dbPath: string, mbox: string, tree: string): Promise<{ report: CheckReport; lineage: number | null }[]> {
  const db = openDb(dbPath);
  try {
    const ing = new Ingestor(db, { batch: 1000 });
    const src = ing.sourceId('mbox', mbox);
    await ing.addStream(src, readMbox(mbox));
    ing.finish();
    const ids = db
      .prepare(`SELECT DISTINCT s.id FROM series s JOIN series_patches sp ON sp.series_id = s.id
                JOIN message_sources ms ON ms.message_id = sp.message_id WHERE ms.source_id = ? AND s.relevant = 1 ORDER BY s.id`)
      .pluck()
      .all(src) as number[];
    const out: { report: CheckReport; lineage: number | null }[] = [];
    const lineageOf = db.prepare('SELECT lineage_id FROM series WHERE id = ?').pluck();
    for (const id of ids) {
      out.push({ report: await checkSeries(db, id, { tree, baseMap: { rules: [], default: 'HEAD' }, trigger: 'check' }), lineage: (lineageOf.get(id) as number | null) ?? null });
    }
    return out;
  } finally {
    db.close();
  }
}

/**
 * How many warnings/errors a reply would show as new: not raised, by fingerprint, on an earlier
 * version of the same series (lineage; a series without one stands alone).
 */
function firstRaised(checked: readonly { report: CheckReport; lineage: number | null }[]): number {
  const seen = new Map<string, Set<string>>();
  let n = 0;
  const byVersion = [...checked].sort((a, b) => a.report.series.version - b.report.series.version || a.report.series.id - b.report.series.id);
  for (const { report: r, lineage } of byVersion) {
    const key = lineage === null ? `series ${r.series.id}` : `lineage ${lineage}`;
    const known = seen.get(key) ?? new Set<string>();
    seen.set(key, known);
    for (const f of r.findings) {
      if (f.severity === 'info') continue;
      const fp = fingerprint(f);
      if (!known.has(fp)) n++;
      known.add(fp);
    }
  }
  return n;
}

/** `npm run eval`: review quality on the real corpus against the 6.1 tree. */
export async function runEval(corpus: string, tree: string, opts: EvalOptions = {}): Promise<EvalResult> {
  const unknown = (opts.parts ?? []).filter((p) => !(EVAL_PARTS as readonly string[]).includes(p));
  if (unknown.length) throw new Error(`unknown eval part ${unknown.join(', ')} (parts: ${EVAL_PARTS.join(', ')})`);
  const parts = new Set<string>(opts.parts?.length ? opts.parts : DEFAULT_PARTS);
  const dir = mkdtempSync(join(tmpdir(), 'vr-eval-'));
  try {
    let threads: ThreadRow[] = [];
    if (parts.has('threads')) {
      const db = openDb(join(dir, 'threads.db'));
      try {
        threads = await evalThreads(db, corpus, { tree, baseMap: defaultBaseMap(), trigger: 'check' });
      } finally {
        db.close();
      }
    }
    const perCategory: EvalResult['perCategory'] = {};
    for (const r of threads) {
      const c = (perCategory[r.thread.category] ??= { threads: 0, caught: 0, missed: 0, noisy: 0 });
      c.threads++;
      if (r.verdict.startsWith('caught')) c.caught++;
      if (r.verdict === 'missed') c.missed++;
      if (r.verdict.includes('noisy')) c.noisy++;
    }
    const applying: EvalResult['applying'] = { patches: 0, series: 0, warnings: 0, perRule: {}, perPatch: 0, firstRaised: 0 };
    if (parts.has('applying')) {
      const checked = await checkMbox(join(dir, 'applying.db'), join(corpus, 'patches-applying-6.1.192.mbox.gz'), tree);
      const reports = checked.map((c) => c.report);
      applying.series = reports.length;
      applying.patches = reports.reduce((n, r) => n + r.series.patches.filter(Boolean).length, 0);
      applying.firstRaised = firstRaised(checked);
      for (const r of reports) {
        for (const f of r.findings) {
          if (f.severity === 'info') continue;
          applying.warnings++;
          const e = (applying.perRule[f.rule] ??= { count: 0, examples: [] });
          e.count++;
          e.examples.push(`${f.file}:${f.line} ${f.message} (patch <${f.patch}> in "${r.series.subject}")`);
        }
      }
      applying.perPatch = applying.patches ? applying.warnings / applying.patches : 0;
    }
    let patchesIn: PatchesInResult | null = null;
    let stable: StableResult | null = null;
    if (parts.has('patches-in') || parts.has('stable')) {
      // Refs a killed eval left behind (its pid is gone) would otherwise stay in the tree for good.
      await removeStaleEvalRefs(tree);
      const db = openDb(join(dir, 'in.db'));
      try {
        const src = await ingestMbox(db, join(corpus, 'patches-in-6.1.192.mbox.gz'));
        const only = opts.msgids ? { msgids: opts.msgids } : {};
        if (parts.has('patches-in')) patchesIn = await evalPatchesIn(db, src, tree, { ...only, progress: (d, n) => opts.progress?.('patches-in', d, n) });
        if (parts.has('stable')) stable = await evalStable(db, src, tree, { ...only, progress: (d, n) => opts.progress?.('stable', d, n) });
      } finally {
        db.close();
      }
    }
    let diffAlone: DiffAloneResult | null = null;
    if (parts.has('diffalone')) {
      const db = openDb(join(dir, 'diffalone.db'));
      try {
        const src = await ingestMbox(db, join(corpus, 'patches-applying-6.1.192.mbox.gz'));
        const ids = db
          .prepare(`SELECT DISTINCT s.id FROM series s JOIN series_patches sp ON sp.series_id = s.id
                    JOIN message_sources ms ON ms.message_id = sp.message_id WHERE ms.source_id = ? AND s.relevant = 1 ORDER BY s.id`)
          .pluck()
          .all(src) as number[];
        diffAlone = await evalDiffAlone(db, ids, tree);
      } finally {
        db.close();
      }
    }
    return { threads, perCategory, applying, patchesIn, stable, diffAlone };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function formatEval(r: EvalResult): string {
  const out: string[] = [];
  if (r.threads.length) {
    out.push('Labelled review threads (threads/INDEX.md)');
    out.push(table(
      ['#', 'thread', 'label', 'applied', 'raised (warning/error on the root patch)', 'verdict'],
      r.threads.map((t) => [t.thread.n, t.thread.slug.slice(0, 44), t.thread.category, t.applied, t.raised.map((x) => `${x.rule}:${x.line}`).join(' ') || '-', t.verdict]),
    ));
    out.push('', 'Per category');
    out.push(table(['category', 'threads', 'caught', 'missed', 'noisy'], Object.entries(r.perCategory).map(([k, v]) => [k, v.threads, v.caught, v.missed, v.noisy])));
  }
  if (r.applying.series) {
    out.push('', `patches-applying-6.1.192: ${r.applying.patches} patches in ${r.applying.series} series, ${r.applying.warnings} warnings/errors (${r.applying.perPatch.toFixed(3)} per patch; target <= 0.05)`);
    const n = r.applying.firstRaised;
    out.push(`  as a reply shows them: ${n} raised for the first time on their series (${(r.applying.patches ? n / r.applying.patches : 0).toFixed(3)} per patch), ${r.applying.warnings - n} still open from an earlier version of the same series`);
    const noisy = Object.entries(r.applying.perRule).sort((a, b) => b[1].count - a[1].count).slice(0, 10);
    if (noisy.length) out.push(table(['rule', 'findings', 'examples'], noisy.map(([k, v]) => [k, v.count, v.examples.slice(0, 2).join(' | ').slice(0, 160)])));
  }
  if (r.patchesIn) out.push('', formatPatchesIn(r.patchesIn));
  if (r.stable) out.push('', formatStable(r.stable));
  if (r.diffAlone) out.push('', formatDiffAlone(r.diffAlone));
  return out.join('\n').replace(/^\n+/, '');
}
