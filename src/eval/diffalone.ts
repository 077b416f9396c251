/**
 * The diff-alone path judged against the real apply: on series that do apply, the C-model rules run
 * twice, once on the applied tree and once on the functions reconstructed from the diff alone (as if
 * the series had not applied). A rebuilt finding the applied tree does not have is a false positive of
 * the reconstruction; an applied finding the rebuild lacks is recall it loses.
 */
import { applySeries } from '../apply/apply.js';
import { selectCandidates } from '../apply/base.js';
import { seriesApplyInputs } from '../check/inputs.js';
import { runReconstructed, viewsFromDiff } from '../rules/diffalone/reconstruct.js';
import { viewsFromApply } from '../rules/context.js';
import { RULES } from '../rules/index.js';
import { runRules } from '../rules/run.js';
import type { Db } from '../store/db.js';

export interface DiffAloneRow {
  series: number;
  kind: 'same' | 'extra' | 'lost';
  rule: string;
  where: string;
  message: string;
  patch: string;
}

export interface DiffAloneResult {
  series: number;
  patches: number;
  applied: number;
  real: number;
  rebuilt: number;
  rows: DiffAloneRow[];
}

/**
 * Findings match by rule, file, function and message with line numbers taken out: a series that
 * applied with an offset has the tree's numbers, the rebuild has the patch's own.
 */
const sameKey = (f: { rule: string; file: string; function: string | null; message: string }): string =>
  `${f.rule}|${f.file}|${f.function}|${f.message.replace(/\d+/g, '#')}`;

export async function evalDiffAlone(db: Db, ids: number[], tree: string): Promise<DiffAloneResult> {
  const model = RULES.filter((r) => r.meta.input !== 'text');
  const out: DiffAloneResult = { series: ids.length, patches: 0, applied: 0, real: 0, rebuilt: 0, rows: [] };
  for (const id of ids) {
    const inputs = seriesApplyInputs(db, id);
    const result = await applySeries({ tree, patches: inputs.patches, candidates: selectCandidates(inputs.candidates, { rules: [], default: 'HEAD' }) });
    out.patches += result.patches.filter((p) => p.status !== 'missing').length;
    const views = await viewsFromApply(tree, result);
    if (!views.every((v) => v.applied)) continue;
    out.applied++;
    const real = (await runRules(model, views)).filter((f) => f.severity !== 'info');
    const rebuilt = (await runReconstructed(model, await viewsFromDiff(tree, result))).filter((f) => f.severity !== 'info');
    out.real += real.length;
    out.rebuilt += rebuilt.length;
    const realKeys = new Set(real.map(sameKey));
    const rebuiltKeys = new Set(rebuilt.map(sameKey));
    const row = (kind: DiffAloneRow['kind'], f: (typeof real)[number]): DiffAloneRow => ({
      series: id, kind, rule: f.rule, where: `${f.file}:${f.line}`, message: f.message, patch: f.patch,
    });
    for (const f of rebuilt) out.rows.push(row(realKeys.has(sameKey(f)) ? 'same' : 'extra', f));
    for (const f of real) if (!rebuiltKeys.has(sameKey(f))) out.rows.push(row('lost', f));
  }
  return out;
}

export function formatDiffAlone(r: DiffAloneResult): string {
  const count = (k: DiffAloneRow['kind']): number => r.rows.filter((x) => x.kind === k).length;
  const lines = [
    `diff-alone reconstruction vs the real apply: ${r.applied} of ${r.series} series applied (${r.patches} patches); ` +
      `${r.real} findings on the applied tree, ${r.rebuilt} from the diff alone: ${count('same')} the same, ${count('extra')} extra (false positives of the rebuild), ${count('lost')} lost`,
  ];
  for (const x of r.rows) lines.push(`  ${x.kind.padEnd(5)} ${x.rule} ${x.where} ${x.message.slice(0, 160)} <${x.patch}>`);
  return lines.join('\n');
}
