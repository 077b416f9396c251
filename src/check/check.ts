import type { Db } from '../store/db.js';
import { nowIso } from '../store/db.js';
import { applySeries } from '../apply/apply.js';
import { selectCandidates, type BaseMap } from '../apply/base.js';
import type { ApplyResult } from '../apply/types.js';
import { listSeries } from '../series/query.js';
import { seriesApplyInputs } from './inputs.js';
import { reasonOf } from '../errors.js';
import { RULES } from '../rules/index.js';
import { runRules } from '../rules/run.js';
import { viewsFromApply } from '../rules/context.js';
import { runReconstructed, viewsFromDiff } from '../rules/diffalone/reconstruct.js';
import type { Confidence } from '../rules/types.js';
import { startCheckpatch } from './checkpatch.js';
import { trackConcerns } from '../report/concerns.js';

export type Category =
  | 'lock-order' | 'race-toctou' | 'lifetime-uaf' | 'lockless-access' | 'init-order'
  | 'uapi-abi' | 'errno-contract' | 'refcount' | 'robustness' | 'style';

/** One finding, as `check --json` prints it. Stable shape. */
export interface Finding {
  rule: string;
  severity: 'error' | 'warning' | 'info';
  category: Category;
  /** Message-ID of the patch the finding belongs to. */
  patch: string;
  file: string;
  line: number;
  function: string | null;
  message: string;
  trace?: string;
  /** How often this rule is right on real code. */
  confidence?: Confidence;
  /** The evidence's normalised identity (lock classes, field, call) for concern fingerprints. */
  key?: string;
  evidence?: string[];
  suggestion?: string | null;
}

/** One element of `check --json`: one series version. */
export interface CheckReport {
  series: { id: number; subject: string; version: number; cover: string | null; patches: (string | null)[]; complete: boolean };
  apply: {
    status: ApplyResult['status'] | 'error';
    base: ApplyResult['base'];
    attempts: ApplyResult['attempts'];
    label: string;
    failedPatch?: number;
    detail?: string;
  };
  findings: Finding[];
  /** What the simulator could not decide (bounds hit, derivation errors); absent when nothing. */
  notes?: string[];
}

export interface CheckOptions {
  tree: string;
  baseMap: BaseMap;
  trigger: 'check' | 'rerun' | 'daemon';
  /** Run the base tree's scripts/checkpatch.pl too (default: when the tree has one). */
  checkpatch?: boolean;
  /** Explore synthesised concurrency scenarios of the changed entry points (default on). */
  sim?: boolean;
}

/** Applies one series version, records the check, and returns its report. Never throws for bad patches. */
export async function checkSeries(db: Db, seriesId: number, opts: CheckOptions): Promise<CheckReport> {
  const view = listSeries(db, { all: true, ids: [seriesId] })[0];
  if (!view) throw new Error(`no series ${seriesId}`);
  const started = nowIso();
  let result: ApplyResult | null = null;
  let error: string | null = null;
  let inputs: ReturnType<typeof seriesApplyInputs> | null = null;
  try {
    inputs = seriesApplyInputs(db, seriesId);
    result = await applySeries({ tree: opts.tree, patches: inputs.patches, candidates: selectCandidates(inputs.candidates, opts.baseMap) });
  } catch (err) {
    // A broken tree or git, not a bad patch: recorded so the series is not silently skipped.
    error = reasonOf(err);
  }
  const failed = result?.patches.find((p) => p.status === 'failed' || p.status === 'rejected');
  const report: CheckReport = {
    series: { id: view.id, subject: view.subject, version: view.version, cover: view.cover, patches: view.patches, complete: view.complete },
    apply: {
      status: result?.status ?? 'error',
      base: result?.base ?? null,
      attempts: result?.attempts ?? [],
      label: result?.label ?? `not checked: ${error}`,
      ...(failed ? { failedPatch: failed.index } : {}),
      ...(failed?.detail || error ? { detail: failed?.detail ?? error! } : {}),
    },
    findings: [],
  };
  if (result && result.status !== 'rejected') {
    try {
      const views = await viewsFromApply(opts.tree, result);
      // checkpatch.pl runs in its own process while our rules run here (two cores, not one after the other).
      const checkpatch = opts.checkpatch !== false && result.base && inputs ? await startCheckpatch(opts.tree, result.base.commit, inputs.patches, views) : null;
      report.findings = await runRules(RULES, views);
      if (views.some((v) => !v.applied)) {
        // Did not apply: the C-model rules read the functions the diff shows whole (reconstruct.ts).
        const rebuilt = await viewsFromDiff(opts.tree, result);
        report.findings.push(...(await runReconstructed(RULES.filter((r) => r.meta.input !== 'text'), rebuilt)));
      }
      if (checkpatch) report.findings.push(...(await checkpatch()));
      // --- simulator hook (owned by src/sim): synthesised concurrency scenarios, bounded in time ---
      if (opts.sim !== false) {
        const sim = await (await import('../sim/check-hook.js')).simCheck(opts.tree, result, views);
        report.findings.push(...sim.findings);
        if (sim.notes.length) report.notes = sim.notes;
      }
      // --- end simulator hook ---
    } catch (err) {
      error = reasonOf(err);
    }
  }
  const ins = db.prepare(
    `INSERT INTO checks (series_id, trigger, tree, status, base_ref, base_commit, head_commit, label, complete,
       apply_json, findings_json, error, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    seriesId, opts.trigger, opts.tree, report.apply.status, result?.base?.ref ?? null, result?.base?.commit ?? null,
    result?.head ?? null, report.apply.label, view.complete ? 1 : 0, JSON.stringify(result ?? null),
    JSON.stringify(report.findings), error, started, nowIso(),
  );
  // Concerns move with every check (new / still open / resolved), so the dashboard and the next
  // reply see the same state whether or not anything is posted.
  trackConcerns(db, Number(ins.lastInsertRowid));
  return report;
}
