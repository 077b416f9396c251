import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb } from '../store/db.js';
import { Ingestor } from '../ingest/ingest.js';
import { readMbox } from '../ingest/mbox-source.js';
import { checkSeries, type CheckReport } from '../check/check.js';
import { defaultBaseMap } from '../config/load.js';
import { table } from '../bench/measure.js';
import { evalThreads, type ThreadRow } from './threads.js';

export interface EvalResult {
  threads: ThreadRow[];
  perCategory: Record<string, { threads: number; caught: number; missed: number; noisy: number }>;
  applying: { patches: number; series: number; warnings: number; perRule: Record<string, { count: number; /** Every warning/error, with the patch's Message-ID: each one is judged in the issue note. */ examples: string[] }>; perPatch: number };
}

async function checkMbox(dbPath: string, mbox: string, tree: string): Promise<CheckReport[]> {
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
    const out: CheckReport[] = [];
    for (const id of ids) out.push(await checkSeries(db, id, { tree, baseMap: { rules: [], default: 'HEAD' }, trigger: 'check' }));
    return out;
  } finally {
    db.close();
  }
}

/** `npm run eval`: review quality on the real corpus against the 6.1 tree. */
export async function runEval(corpus: string, tree: string, opts: { parts?: string[] } = {}): Promise<EvalResult> {
  const parts = new Set(opts.parts ?? ['threads', 'applying']);
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
    const applying: EvalResult['applying'] = { patches: 0, series: 0, warnings: 0, perRule: {}, perPatch: 0 };
    if (parts.has('applying')) {
      const reports = await checkMbox(join(dir, 'applying.db'), join(corpus, 'patches-applying-6.1.192.mbox.gz'), tree);
      applying.series = reports.length;
      applying.patches = reports.reduce((n, r) => n + r.series.patches.filter(Boolean).length, 0);
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
    return { threads, perCategory, applying };
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
    const noisy = Object.entries(r.applying.perRule).sort((a, b) => b[1].count - a[1].count).slice(0, 10);
    if (noisy.length) out.push(table(['rule', 'findings', 'examples'], noisy.map(([k, v]) => [k, v.count, v.examples.slice(0, 2).join(' | ').slice(0, 160)])));
  }
  return out.join('\n');
}
