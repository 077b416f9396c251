/**
 * Turns one tracked check into reply bodies: which messages get a reply, and the text of each.
 * Pure: the planner loads the data, this decides the words, prompts/ holds the fixed wording.
 */
import { basename } from 'node:path';
import type { BaseAttempt } from '../apply/types.js';
import type { CheckConcerns, TrackedFinding } from './concerns.js';
import { loadTemplate, render } from './render.js';
import { locate, patchFiles, quoteLines, type QuoteSpot } from './quote.js';
import { bodyText, verbatim } from './text.js';
import type { ConcernRef, ReplyKind } from './types.js';

/** A message of the series that may be replied to. counter 0 = the cover. */
export interface TargetMessage {
  counter: number;
  msgid: string;
  /** As sent; the reply's subject is "Re: " + this. */
  subject: string;
  /** Without the [PATCH ...] tags. */
  title: string;
  diff: string | null;
}

export interface ComposeInput {
  series: { id: number; title: string; version: number; total: number; cover: TargetMessage | null; patches: (TargetMessage | null)[] };
  check: {
    status: string; label: string; tree: string; baseRef: string | null; baseCommit: string | null;
    attempts: BaseAttempt[]; failedPatch: number | null; detail: string | null; error: string | null;
  };
  concerns: CheckConcerns;
  /** The version the follow-up compares with; null on the first checked version. */
  previousVersion: number | null;
  dashboardUrl: string | null;
  /** Send a 'clean' reply when nothing is raised. */
  clean: boolean;
}

/** One reply to write: its kind, the message it answers, whether it carries the series summary. */
export interface ReplyUnit {
  kind: ReplyKind;
  target: TargetMessage;
  summary: boolean;
  findings: TrackedFinding[];
  body: string;
}

const APPLIED = new Set(['applied', 'applied-with-fuzz', 'already-applied', 'partial']);

const label = (input: ComposeInput, counter: number): string => {
  const w = String(input.series.total).length;
  return counter === 0 ? `[0/${input.series.total}]` : `[${String(counter).padStart(w, '0')}/${input.series.total}]`;
};

function seriesName(input: ComposeInput): string {
  return `"${bodyText(input.series.title)}" (v${input.series.version}, ${input.series.total} patch${input.series.total === 1 ? '' : 'es'})`;
}

function attemptLine(a: BaseAttempt): string {
  const at = a.commit ? ` at ${a.commit.slice(0, 12)}` : '';
  const where = a.failedPatch ? `, patch ${a.failedPatch} failed${a.file ? ` in ${a.file}` : ''}` : '';
  return `- ${bodyText(a.ref)}${at} (${a.why}): ${a.result}${where}`;
}

/** The header paragraph: which tree and base it applied to, what else was tried. */
export function appliedBlock(input: ComposeInput): string {
  const c = input.check;
  const tree = basename(c.tree);
  const others = c.attempts.filter((a) => a.ref !== c.baseRef || a.commit !== c.baseCommit);
  const used = APPLIED.has(c.status) && c.baseRef !== null;
  const tried = others.length ? `\n${used ? 'Also tried' : 'Tried'}:\n${others.map(attemptLine).join('\n')}` : '';
  if (APPLIED.has(c.status) && c.baseRef && c.baseCommit) {
    return `Applied to ${bodyText(c.baseRef)} at ${c.baseCommit.slice(0, 12)} in tree ${bodyText(tree)}: ${bodyText(c.label)}.${tried}`;
  }
  if (c.status === 'not-applied') return `Not applied to any base in tree ${bodyText(tree)}; the diff alone was reviewed.${tried}`;
  if (c.status === 'rejected') return `Refused before applying: ${bodyText(c.detail ?? c.label)}. No rule ran.`;
  return `Not checked: ${bodyText(c.error ?? c.label)}.`;
}

function stateText(c: ConcernRef, input: ComposeInput): string {
  if (input.previousVersion === null) return '';
  return c.state === 'open' ? `Still open from v${input.previousVersion}: ` : c.state === 'new' ? `New in v${input.series.version}: ` : '';
}

/** The comment under a quote: severity, confidence, concern id, message, evidence, suggestion, trace. */
function comment(t: TrackedFinding, input: ComposeInput): string[] {
  const f = t.finding;
  const out = [
    `[${f.severity}] ${f.rule}, confidence ${f.confidence ?? 'not stated'}, concern ${t.concern.id}`,
    `${stateText(t.concern, input)}${bodyText(f.message)}`,
  ];
  if (f.evidence?.length) out.push('Evidence:', ...f.evidence.map((e) => `- ${bodyText(e).replace(/\n/g, ' ')}`));
  if (f.suggestion) out.push(`Suggestion: ${bodyText(f.suggestion)}`);
  // Simulator traces keep their CPU columns: verbatim, never wrapped.
  if (f.trace) out.push('', verbatim(bodyText(f.trace).replace(/\n+$/, '')));
  return out;
}

/** Findings on one patch, each under the hunk lines it concerns (quoted hunks are verbatim). */
export function findingsBlock(findings: TrackedFinding[], target: TargetMessage | null, input: ComposeInput): string {
  if (findings.length === 0) return '';
  const files = patchFiles(target?.diff ?? null);
  const located = findings
    .map((t) => ({ t, spot: locate(files, t.finding.file, t.finding.line) }))
    .sort((a, b) => {
      if (a.spot && b.spot) {
        return a.spot.fileIndex - b.spot.fileIndex || a.spot.hunkIndex - b.spot.hunkIndex || a.spot.to - b.spot.to;
      }
      return a.spot ? -1 : b.spot ? 1 : a.t.finding.file.localeCompare(b.t.finding.file) || a.t.finding.line - b.t.finding.line;
    });
  const parts: string[] = [];
  let prev: QuoteSpot | null = null;
  for (const { t, spot } of located) {
    const f = t.finding;
    const where = `${bodyText(f.file)}:${f.line}${f.function ? `, ${bodyText(f.function)}()` : ''}`;
    if (spot) {
      parts.push([verbatim(quoteLines(spot, prev).join('\n')), '', ...comment(t, input)].join('\n'));
      prev = spot;
    } else {
      const of = target && target.counter > 0 ? '' : ` (patch ${label(input, patchCounter(input, f.patch))})`;
      parts.push([`At ${where}${of}, outside the lines this patch changes:`, ...comment(t, input)].join('\n'));
    }
  }
  return parts.join('\n\n');
}

function patchCounter(input: ComposeInput, msgid: string): number {
  const i = input.series.patches.findIndex((p) => p?.msgid === msgid);
  return i < 0 ? 0 : i + 1;
}

function concernLine(c: ConcernRef): string {
  const fn = c.function ? `, ${bodyText(c.function)}()` : '';
  return `- ${c.id} ${c.rule} in ${bodyText(c.file)}${fn}: ${bodyText(c.message)}`;
}

/** Per patch: how many findings and of which rules; the reviewer then opens the per-patch replies. */
function perPatchLines(input: ComposeInput): string[] {
  const by = new Map<number, TrackedFinding[]>();
  for (const t of input.concerns.raised) {
    const n = patchCounter(input, t.finding.patch);
    by.set(n, [...(by.get(n) ?? []), t]);
  }
  return [...by.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([n, ts]) => {
      const p = n === 0 ? null : input.series.patches[n - 1];
      const rules = [...new Set(ts.map((t) => `${t.finding.rule} (${t.finding.severity})`))].join(', ');
      return `- ${label(input, n)} ${p ? bodyText(p.title) : 'series'}: ${rules}`;
    });
}

/** The series summary: findings per patch, and on a follow-up what was resolved, is still open, is new. */
export function summaryBlock(input: ComposeInput): string {
  const raised = input.concerns.raised;
  const patches = new Set(raised.map((t) => t.finding.patch)).size;
  const lines: string[] = [];
  if (input.previousVersion !== null) {
    const open = raised.filter((t) => t.concern.state === 'open').map((t) => t.concern);
    const fresh = raised.filter((t) => t.concern.state === 'new').map((t) => t.concern);
    const uniq = (cs: ConcernRef[]) => [...new Map(cs.map((c) => [c.id, c])).values()];
    lines.push(`Compared with v${input.previousVersion}:`);
    lines.push(`Resolved in v${input.series.version}:`, ...(input.concerns.resolved.length ? uniq(input.concerns.resolved).map(concernLine) : ['- none']));
    lines.push('Still open:', ...(open.length ? uniq(open).map(concernLine) : ['- none']));
    lines.push(`New in v${input.series.version}:`, ...(fresh.length ? uniq(fresh).map(concernLine) : ['- none']));
    lines.push('');
  }
  if (raised.length === 0) {
    lines.push(`Nothing is raised on v${input.series.version}.`);
  } else if (input.series.cover || input.series.total > 1) {
    // On the cover every patch with findings has its own reply; without one, patch 1's reply carries
    // this summary and its own findings, the other patches have theirs.
    const where = input.series.cover ? 'each patch with findings has its own reply' : 'findings on other patches are in replies to them';
    lines.push(`Findings: ${raised.length} in ${patches} of ${input.series.total} patch${input.series.total === 1 ? '' : 'es'}; ${where}.`);
    lines.push(...perPatchLines(input));
  }
  return lines.join('\n');
}

/** How to rerun, how to dismiss, where the dashboard is. */
export function footerBlock(input: ComposeInput, target: TargetMessage): string {
  const lines = [
    'vfio-review is an automated checker; this is not a maintainer review.',
    `To check again: vfio-review rerun <${bodyText(target.msgid)}>, or reply with the line "vfio-review: rerun".`,
    'To dismiss a concern for good on this series, reply with the line "vfio-review: dismiss <concern id> <reason>".',
  ];
  if (input.dashboardUrl) lines.push(`Dashboard: ${input.dashboardUrl}/series/${input.series.id}`);
  return lines.join('\n');
}

function failureBlock(input: ComposeInput): string {
  const c = input.check;
  const attempt = c.attempts.find((a) => a.result === 'failed' && a.failedPatch) ?? null;
  if (!attempt) return c.detail ? `git said: ${bodyText(c.detail)}` : '';
  const lines = [
    `Patch ${label(input, attempt.failedPatch!)} did not apply to ${bodyText(attempt.ref)}` +
      `${attempt.file ? ` in ${bodyText(attempt.file)}` : ''}${attempt.hunk ? `, hunk ${attempt.hunk}` : ''}.`,
  ];
  if (attempt.context) {
    lines.push('The context git looked for and did not find:', verbatim(attempt.context.replace(/\n+$/, '').split('\n').map((l) => `> ${bodyText(l)}`).join('\n')));
  }
  if (attempt.detail) lines.push(`git said: ${bodyText(attempt.detail)}`);
  return lines.join('\n');
}

/** Which messages get a reply for this check, and in which kind; bodies rendered from prompts/. */
export function composeReplies(input: ComposeInput, kindOverride?: ReplyKind): ReplyUnit[] {
  const s = input.series;
  const summaryTarget = s.cover ?? s.patches.find((p) => p !== null) ?? null;
  if (!summaryTarget) return [];
  const failed = ['not-applied', 'rejected', 'error'].includes(input.check.status);
  const base: ReplyKind = kindOverride ?? (input.previousVersion !== null ? 'follow-up' : 'review');
  const byPatch = new Map<string, TrackedFinding[]>();
  const known = new Set(s.patches.filter((p) => p).map((p) => p!.msgid));
  for (const t of input.concerns.raised) {
    const key = known.has(t.finding.patch) ? t.finding.patch : summaryTarget.msgid;
    byPatch.set(key, [...(byPatch.get(key) ?? []), t]);
  }
  let summaryKind: ReplyKind = failed ? 'apply-failed' : base;
  const somethingToSay = input.concerns.raised.length > 0 || input.concerns.resolved.length > 0;
  if (!failed && !somethingToSay) {
    if (!input.clean) return [];
    summaryKind = 'clean';
  }
  const units: ReplyUnit[] = [];
  const targets = [summaryTarget, ...s.patches.filter((p): p is TargetMessage => p !== null && p.msgid !== summaryTarget.msgid)];
  for (const target of targets) {
    const summary = target === summaryTarget;
    const findings = byPatch.get(target.msgid) ?? [];
    if (!summary && findings.length === 0) continue;
    const kind = summary ? summaryKind : base;
    units.push({ kind, target, summary, findings, body: renderUnit(kind, input, target, summary, findings) });
  }
  return units;
}

/** Renders one reply of a kind. Exported for the template meta-test. */
export function renderUnit(kind: ReplyKind, input: ComposeInput, target: TargetMessage, summary: boolean, findings: TrackedFinding[]): string {
  const common = { series: seriesName(input), footer: footerBlock(input, target) };
  const found = findingsBlock(findings, target, input);
  switch (kind) {
    case 'review':
      return render(loadTemplate('review'), { ...common, applied: appliedBlock(input), summary: summary ? summaryBlock(input) : '', findings: found });
    case 'follow-up':
      return render(loadTemplate('follow-up'), {
        ...common, previous: `v${input.previousVersion ?? input.series.version}`, applied: appliedBlock(input),
        summary: summary ? summaryBlock(input) : '', findings: found,
      });
    case 'apply-failed':
      return render(loadTemplate('apply-failed'), {
        ...common, attempts: [appliedBlock(input)].join('\n'), failure: failureBlock(input),
        summary: input.concerns.raised.length ? summaryBlock(input) : '', findings: found,
      });
    case 'clean':
      return render(loadTemplate('clean'), { ...common, applied: appliedBlock(input) });
    case 'rerun':
      throw new Error('rerun replies are rendered by renderRerun');
  }
}

/** The email follow-up after a rerun of the same version whose findings changed. */
export function renderRerun(input: ComposeInput, target: TargetMessage, added: TrackedFinding[], gone: ConcernRef[]): string {
  const changes = [
    'Found now, not in the previous reply:',
    ...(added.length ? added.map((t) => `- ${label(input, patchCounter(input, t.finding.patch))} ${t.concern.id} ${t.finding.rule}: ${bodyText(t.finding.message)}`) : ['- none']),
    'No longer found:',
    ...(gone.length ? gone.map(concernLine) : ['- none']),
  ].join('\n');
  const byPatch = new Map<string, TrackedFinding[]>();
  for (const t of added) byPatch.set(t.finding.patch, [...(byPatch.get(t.finding.patch) ?? []), t]);
  const found = [...byPatch.entries()]
    .map(([msgid, ts]) => {
      const p = input.series.patches.find((x) => x?.msgid === msgid) ?? null;
      return `${p ? `On ${label(input, p.counter)} ${bodyText(p.title)}:` : 'On the series:'}\n\n${findingsBlock(ts, p, input)}`;
    })
    .join('\n\n');
  return render(loadTemplate('rerun'), {
    series: seriesName(input), applied: appliedBlock(input), changes, findings: found, footer: footerBlock(input, target),
  });
}
