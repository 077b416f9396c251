import type { Db } from '../store/db.js';
import { checkSeries, type CheckReport, type Finding } from '../check/check.js';
import { seriesApplyInputs } from '../check/inputs.js';
import type { ApplyResult, PatchStatus } from '../apply/types.js';
import { reasonOf } from '../errors.js';
import { reverseSeries, withTempRef, type ReverseStatus } from './reverse.js';
import { seriesOfSource } from './source.js';

/** One merged patch, reviewed against the tree with its series taken out. */
export interface PatchInRow {
  series: number;
  /** `n/m` of the series. */
  n: number;
  total: number;
  msgid: string;
  subject: string;
  /** Whether the patch could be taken out of the tree (reverse-applied). */
  reversed: ReverseStatus;
  /** What the forward apply did with it on the base (tree minus the series); 'not-checked' when the check broke. */
  applied: PatchStatus | 'not-checked';
  warnings: number;
  errors: number;
  /** Rule ids of its warnings/errors, with counts (`rule x2`). */
  rules: string[];
}

/** A warning or error on a merged patch: each is a real issue or a false positive, to be judged. */
export interface PatchInFinding extends Pick<Finding, 'rule' | 'severity' | 'category' | 'file' | 'line' | 'function' | 'message'> {
  patch: string;
  subject: string;
}

/** One series-level problem (the check could not run, or nothing reverse-applied). */
export interface PatchInProblem {
  series: number;
  subject: string;
  detail: string;
}

/** The `patches-in` part of `vfio-review eval`. */
export interface PatchesInResult {
  series: number;
  patches: number;
  /** Patches taken out of the tree. */
  reversed: number;
  /** Patches that applied forward again on the base and were reviewed with the tree around them. */
  reviewed: number;
  warnings: number;
  errors: number;
  /** Warnings+errors per patch present. */
  perPatch: number;
  perRule: Record<string, { count: number; /** Every warning/error, with the patch's Message-ID. */ examples: string[] }>;
  rows: PatchInRow[];
  findings: PatchInFinding[];
  problems: PatchInProblem[];
}

/** Options for {@link evalPatchesIn}. */
export interface PatchesInOptions {
  /** Only the series holding one of these Message-IDs. */
  msgids?: readonly string[];
  /** Called after each series (for a progress line). */
  progress?: (done: number, total: number) => void;
}

function lastApply(db: Db, seriesId: number): ApplyResult | null {
  const json = db.prepare('SELECT apply_json FROM checks WHERE series_id = ? ORDER BY id DESC LIMIT 1').pluck().get(seriesId) as string | undefined;
  return json ? (JSON.parse(json) as ApplyResult | null) : null;
}

function countRules(fs: readonly Finding[]): string[] {
  const n = new Map<string, number>();
  for (const f of fs) n.set(f.rule, (n.get(f.rule) ?? 0) + 1);
  return [...n].map(([r, c]) => (c > 1 ? `${r} x${c}` : r));
}

/**
 * Reviews already-merged patches (source `src` of `db`, e.g. patches-in-6.1.192.mbox.gz) the
 * way they were posted: per series, the tree minus that series (every present patch
 * reverse-applied, last first, into git objects only) becomes the base, named by a temporary
 * ref, and the normal check pipeline (apply, rules, checkpatch) runs on the series against it.
 * Since the code is merged, every warning/error is either a real issue that went in or a false
 * positive.
 */
export async function evalPatchesIn(db: Db, src: number, tree: string, opts: PatchesInOptions = {}): Promise<PatchesInResult> {
  const out: PatchesInResult = { series: 0, patches: 0, reversed: 0, reviewed: 0, warnings: 0, errors: 0, perPatch: 0, perRule: {}, rows: [], findings: [], problems: [] };
  const ids = seriesOfSource(db, src, opts.msgids);
  for (const [done, id] of ids.entries()) {
    out.series++;
    const inputs = seriesApplyInputs(db, id);
    const subject = (db.prepare('SELECT subject FROM series WHERE id = ?').pluck().get(id) as string | undefined) ?? '';
    let report: CheckReport | null = null;
    let steps: Awaited<ReturnType<typeof reverseSeries>>['steps'] = [];
    try {
      const rev = await reverseSeries(tree, 'HEAD', inputs.patches);
      steps = rev.steps;
      if (rev.base === rev.head) out.problems.push({ series: id, subject, detail: 'no patch reverse-applied; checked against the tree as it is' });
      report = await withTempRef(tree, rev.base, `patches-in-${id}`, (ref) =>
        checkSeries(db, id, { tree, baseMap: { rules: [], default: ref }, trigger: 'check' }));
    } catch (err) {
      out.problems.push({ series: id, subject, detail: reasonOf(err) });
    }
    if (report && report.apply.status === 'error') out.problems.push({ series: id, subject, detail: report.apply.label });
    const apply = report ? lastApply(db, id) : null;
    inputs.patches.forEach((p, i) => {
      if (!p) return;
      out.patches++;
      const reversed = steps[i]?.status ?? 'failed';
      if (reversed === 'reversed') out.reversed++;
      const applied = apply?.patches[i]?.status ?? 'not-checked';
      if (apply?.patches[i]?.commit) out.reviewed++;
      const mine = (report?.findings ?? []).filter((f) => f.patch === p.msgid && f.severity !== 'info');
      const row: PatchInRow = {
        series: id, n: i + 1, total: inputs.patches.length, msgid: p.msgid, subject: p.subject, reversed, applied,
        warnings: mine.filter((f) => f.severity === 'warning').length,
        errors: mine.filter((f) => f.severity === 'error').length,
        rules: countRules(mine),
      };
      out.rows.push(row);
      out.warnings += row.warnings;
      out.errors += row.errors;
      for (const f of mine) {
        out.findings.push({ rule: f.rule, severity: f.severity, category: f.category, file: f.file, line: f.line, function: f.function, message: f.message, patch: p.msgid, subject: p.subject });
        const e = (out.perRule[f.rule] ??= { count: 0, examples: [] });
        e.count++;
        e.examples.push(`${f.file}:${f.line} ${f.message} (patch <${p.msgid}> "${p.subject}")`);
      }
    });
    opts.progress?.(done + 1, ids.length);
  }
  out.perPatch = out.patches ? (out.warnings + out.errors) / out.patches : 0;
  return out;
}
