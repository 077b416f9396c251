import { createHash } from 'node:crypto';
import type { Db } from '../store/db.js';
import { applySeries } from '../apply/apply.js';
import type { PatchInput } from '../apply/types.js';
import { seriesApplyInputs } from '../check/inputs.js';
import { runCheckpatch } from '../check/checkpatch.js';
import type { Finding } from '../check/check.js';
import { reasonOf } from '../errors.js';
import { RULES } from '../rules/index.js';
import { runRules } from '../rules/run.js';
import { viewsFromApply } from '../rules/context.js';
import { classifyFix, hasFixesTag, ON_TOPIC, CONCURRENCY_CLASSES, type FixClass } from './classify.js';
import { diffCommits, reverseSeries, withTempRef } from './reverse.js';
import { nearness, touchedFiles, type Nearness } from './touched.js';

/** One merged patch with a `Fixes:` tag, as classified (every one is listed, so the classification can be checked). */
export interface FixRow {
  msgid: string;
  title: string;
  class: FixClass;
  classes: FixClass[];
  keywords: string[];
  /** Other versions of the same patch in the corpus (same title), not reviewed again. */
  otherVersions: string[];
}

/** A finding on the buggy state, with how close it is to the code the fix changes. */
export interface BuggyFinding extends Pick<Finding, 'rule' | 'severity' | 'category' | 'file' | 'line' | 'function' | 'message'> {
  near: Nearness;
  onTopic: boolean;
}

/** What happened to one fix whose buggy state was reviewed. */
export type StableOutcome = 'hit' | 'miss' | 'not-reversible' | 'not-applied' | 'error';

/** One concurrency fix, reviewed in its buggy state (the fix's reverse posted as a patch on the 6.1 tree). */
export interface StableRow {
  msgid: string;
  title: string;
  class: FixClass;
  outcome: StableOutcome;
  /** A hit whose finding category speaks to the class (lock-order for a deadlock, ...). */
  onTopic: boolean;
  /** Lines the reverse patch adds / removes (the buggy code back in / the fix's code out). */
  added: number;
  removed: number;
  functions: string[];
  /** Warnings/errors on the buggy state, nearest first. */
  findings: BuggyFinding[];
  detail?: string;
}

/** The `stable` part of `vfio-review eval`. */
export interface StableResult {
  /** Every patch with `Fixes:` (one per title), classified. */
  fixes: FixRow[];
  rows: StableRow[];
  perClass: Record<string, { fixes: number; reviewed: number; hits: number; onTopic: number; misses: number }>;
  /** Hits / reviewed over every class. */
  hitRate: number;
}

/** Options for {@link evalStable}. */
export interface StableOptions {
  /** Only these Message-IDs (each must carry `Fixes:` to be considered). */
  msgids?: readonly string[];
  progress?: (done: number, total: number) => void;
}

interface FixMessage {
  message_id: string;
  title: string | null;
  subject: string | null;
  commit_msg: string | null;
  date_unix: number | null;
  diff: string | null;
}

/** The `Fixes:` patches of source `src`, one per title (the latest version), with the other versions' ids. */
function fixMessages(db: Db, src: number, only?: readonly string[]): { msg: FixMessage; others: string[] }[] {
  const rows = db
    .prepare(`SELECT m.message_id, m.title, m.subject, m.commit_msg, m.date_unix, m.diff FROM messages m
              JOIN message_sources ms ON ms.message_id = m.id
              WHERE ms.source_id = ? AND m.kind = 'patch' AND m.message_id IS NOT NULL AND m.diff IS NOT NULL
              ORDER BY m.date_unix, m.id`)
    .all(src) as FixMessage[];
  const want = only ? new Set(only) : null;
  const groups: { msg: FixMessage; others: string[] }[] = [];
  // A patch is the same fix as another when its title or its changed lines are the same (a
  // resend may retitle it: "Fix a deadlock in SVM" became "... in intel_svm_drain_prq()").
  const byKey = new Map<string, { msg: FixMessage; others: string[] }>();
  for (const r of rows) {
    if (want && !want.has(r.message_id)) continue;
    if (!hasFixesTag(r.commit_msg ?? '')) continue;
    const keys = [`t:${(r.title ?? r.subject ?? r.message_id).toLowerCase().replace(/\s+/g, ' ').trim()}`, `d:${changedLines(r.diff ?? '')}`];
    const prev = keys.map((k) => byKey.get(k)).find(Boolean);
    if (prev) {
      // Later versions replace earlier ones: the last one posted is the one most likely merged.
      prev.others.push(prev.msg.message_id);
      prev.msg = r;
    }
    const g = prev ?? { msg: r, others: [] };
    if (!prev) groups.push(g);
    for (const k of keys) byKey.set(k, g);
  }
  return groups;
}

/** The diff's removed and added lines, white space squeezed: equal for the same change posted twice. */
function changedLines(diff: string): string {
  const lines = diff.split('\n').filter((l) => /^[+-](?!\+\+ |-- )/.test(l)).map((l) => l.replace(/\s+/g, ' ').trim());
  return createHash('sha1').update(lines.join('\n')).digest('hex');
}

/** The series (latest) and position of a patch. */
function placeOf(db: Db, msgid: string): { series: number; counter: number } | null {
  return (db
    .prepare(`SELECT sp.series_id AS series, sp.counter FROM series_patches sp JOIN messages m ON m.id = sp.message_id
              WHERE m.message_id = ? ORDER BY sp.series_id DESC LIMIT 1`)
    .get(msgid) as { series: number; counter: number } | undefined) ?? null;
}

const RANK: Record<Nearness, number> = { line: 0, hunk: 1, function: 2, elsewhere: 3 };

/**
 * Reviews one fix's buggy state: the tree minus the fix (and minus the patches after it in its
 * series, which may build on it) is the post-image; the tree minus only the later patches is
 * the base. Their diff, the fix reversed, is posted as a patch on that base and goes through
 * the apply stage, the rules and checkpatch like any posted patch.
 */
async function reviewBuggy(db: Db, tree: string, fix: FixMessage, cls: FixClass): Promise<StableRow> {
  const title = fix.title ?? fix.subject ?? '';
  const row: StableRow = { msgid: fix.message_id, title, class: cls, outcome: 'error', onTopic: false, added: 0, removed: 0, functions: [], findings: [] };
  const place = placeOf(db, fix.message_id);
  if (!place) return { ...row, detail: 'not in any series' };
  const inputs = seriesApplyInputs(db, place.series);
  const fixInput = inputs.patches[place.counter - 1];
  if (!fixInput) return { ...row, detail: 'the series lacks the patch' };
  const rev = await reverseSeries(tree, 'HEAD', inputs.patches.map((p, i) => (i + 1 >= place.counter ? p : null)));
  const step = rev.steps[place.counter - 1]!;
  if (step.status !== 'reversed' || !step.commit) return { ...row, outcome: 'not-reversible', detail: step.detail ?? step.status };
  const diff = await diffCommits(tree, step.from, step.commit);
  if (diff.trim() === '') return { ...row, outcome: 'not-reversible', detail: 'the fix changes nothing on this tree' };
  const posted: PatchInput = {
    ...fixInput,
    subject: `[PATCH] Revert "${title}"`,
    message: `Revert "${title}"\n\nThe buggy state that ${fix.message_id} fixed, posted as a patch.\n`,
    diff,
  };
  return withTempRef(tree, step.from, 'stable', async (ref) => {
    const result = await applySeries({ tree, patches: [posted], candidates: [{ ref, why: 'default' }] });
    if (!result.base || !result.patches[0]?.commit) return { ...row, outcome: 'not-applied', detail: result.label };
    const views = await viewsFromApply(tree, result);
    const findings = await runRules(RULES, views);
    findings.push(...(await runCheckpatch(tree, result.base.commit, [posted], views)));
    const view = views[0]!;
    const touched = touchedFiles(result.patches[0].files, view.after);
    row.added = view.files.reduce((n, f) => n + f.added.size, 0);
    row.removed = view.files.reduce((n, f) => n + f.removed.size, 0);
    row.functions = [...new Set(touched.flatMap((t) => [...t.functions]))];
    const topics = ON_TOPIC[cls as Exclude<FixClass, 'other'>] ?? [];
    row.findings = findings
      .filter((f) => f.severity !== 'info')
      .map((f) => ({
        rule: f.rule, severity: f.severity, category: f.category, file: f.file, line: f.line, function: f.function, message: f.message,
        near: nearness(touched, f, view.after),
        onTopic: topics.includes(f.category) || topics.includes(f.rule),
      }))
      .sort((a, b) => RANK[a.near] - RANK[b.near] || a.line - b.line);
    const hits = row.findings.filter((f) => f.near !== 'elsewhere');
    row.outcome = hits.length ? 'hit' : 'miss';
    row.onTopic = hits.some((f) => f.onTopic);
    return row;
  });
}

/**
 * The stable fixes among merged patches (source `src`): every patch with `Fixes:` is
 * classified by keywords; those fixing a deadlock, use-after-free, race, refcount or locking
 * bug are reviewed in their buggy state (see reviewBuggy). A hit is a warning/error on a line the
 * reverse patch changes, inside one of its hunks, or in a function it touches.
 */
export async function evalStable(db: Db, src: number, tree: string, opts: StableOptions = {}): Promise<StableResult> {
  const fixes: FixRow[] = [];
  const todo: { msg: FixMessage; cls: FixClass }[] = [];
  for (const { msg, others } of fixMessages(db, src, opts.msgids)) {
    const c = classifyFix(msg.title ?? msg.subject ?? '', msg.commit_msg ?? '');
    fixes.push({ msgid: msg.message_id, title: msg.title ?? msg.subject ?? '', class: c.class, classes: c.classes, keywords: c.keywords, otherVersions: others });
    if (c.class !== 'other') todo.push({ msg, cls: c.class });
  }
  const rows: StableRow[] = [];
  for (const [i, { msg, cls }] of todo.entries()) {
    try {
      rows.push(await reviewBuggy(db, tree, msg, cls));
    } catch (err) {
      rows.push({ msgid: msg.message_id, title: msg.title ?? '', class: cls, outcome: 'error', onTopic: false, added: 0, removed: 0, functions: [], findings: [], detail: reasonOf(err) });
    }
    opts.progress?.(i + 1, todo.length);
  }
  const perClass: StableResult['perClass'] = {};
  for (const c of CONCURRENCY_CLASSES) perClass[c] = { fixes: 0, reviewed: 0, hits: 0, onTopic: 0, misses: 0 };
  for (const r of rows) {
    const p = perClass[r.class]!;
    p.fixes++;
    if (r.outcome === 'hit' || r.outcome === 'miss') p.reviewed++;
    if (r.outcome === 'hit') p.hits++;
    if (r.outcome === 'miss') p.misses++;
    if (r.onTopic) p.onTopic++;
  }
  const reviewed = rows.filter((r) => r.outcome === 'hit' || r.outcome === 'miss').length;
  return { fixes, rows, perClass, hitRate: reviewed ? rows.filter((r) => r.outcome === 'hit').length / reviewed : 0 };
}
