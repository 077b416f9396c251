/**
 * The malformed-patch campaign (issue 8): generated series go through `applySeries` against the
 * small repository of a sandbox (see patch-repo.ts), and every result is held to the apply
 * contract: no throw, settles in bounded time, a clear outcome (applied with a commit that
 * exists; failed, or rejected, with a reason; a rejected series never reached git), and nothing
 * written anywhere in the sandbox but new objects in the repository: not the checkout, not
 * `.git` outside `objects/`, not the files beside the repository, and no workspace left behind.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { applySeries } from '../apply/apply.js';
import type { ApplyResult, PatchInput } from '../apply/types.js';
import { reasonOf } from '../errors.js';
import { makeSandbox, type Sandbox } from './patch-repo.js';
import { makePatchCase, type PatchCase, type PatchOperatorId } from './patch-mutate.js';
import { Watchdog } from './watch.js';

export type PatchOutcome = 'applied' | 'failed' | 'rejected';
/**
 * wrote-outside: the sandbox changed outside the object store; workspace-left: an apply workspace
 * survived the call; no-reason: failed or rejected without saying why; bad-result: an outcome
 * that contradicts itself (applied without a commit, a status outside the union ...);
 * git-ran: a rejected series has base attempts, so git saw the patch.
 */
export type PatchViolationKind = 'wrote-outside' | 'workspace-left' | 'no-reason' | 'bad-result' | 'git-ran';
export interface PatchViolation { index: number; operator: string; what: PatchViolationKind; detail: string }
export interface PatchTally { cases: number; applied: number; failed: number; rejected: number; crashes: number; hangs: number; violations: number }

export interface PatchCampaignOptions {
  cases: number;
  seed: number;
  start?: number;
  operators?: readonly PatchOperatorId[];
  /** Latin1 mail messages to take corpus patches from (the mail campaign's seeds). */
  mail?: readonly string[];
  /** Wall-clock bound for one series (default 120 s: git runs in child processes, whose CPU time this process does not see). */
  timeoutMs?: number;
  onProgress?: (p: { done: number; total: number; crashes: number; hangs: number }) => void;
  /** A sandbox to reuse (the caller disposes of it); default: a fresh one, removed afterwards. */
  sandbox?: Sandbox;
}

export interface PatchCampaignResult {
  seed: number;
  start: number;
  cases: number;
  /** Seed diffs: made by git in the sandbox, and real corpus patches with rebuilt pre-images. */
  seeds: { git: number; corpus: number };
  outcomes: Record<PatchOutcome, number>;
  /** ApplyResult.status counts. */
  statuses: Record<string, number>;
  crashes: { index: number; operator: string; error: string; stack?: string }[];
  hangs: { index: number; operator: string; wallMs: number }[];
  violations: PatchViolation[];
  /** Most frequent reasons (paths elided) of failed and rejected series. */
  reasons: { outcome: PatchOutcome; reason: string; count: number }[];
  perOperator: Record<string, PatchTally>;
  seconds: number;
  ok: boolean;
}

const APPLIED = new Set(['applied', 'applied-with-fuzz', 'already-applied', 'partial']);
const PATCH_OK = new Set(['applied', 'applied-with-fuzz', 'already-applied', 'missing']);

function input(diff: string, i: number, c: PatchCase): PatchInput {
  const subject = `[PATCH ${i + 1}/${c.patches.length}] fuzz case ${c.index}`;
  return { msgid: `fuzz-${c.index}-${i}@fuzz.invalid`, subject, authorName: 'Fuzz <Author>', authorEmail: 'fuzz@fuzz.invalid', date: new Date(1_700_000_000_000), message: `${subject}\n\nSigned-off-by: Fuzz <fuzz@fuzz.invalid>\n`, diff };
}

/** The outcome of a result, with its reason, or why the result contradicts itself. */
async function judge(res: ApplyResult, sb: Sandbox): Promise<{ outcome: PatchOutcome; reason: string } | { bad: PatchViolationKind; detail: string }> {
  if (!res.label) return { bad: 'bad-result', detail: 'empty label' };
  if (APPLIED.has(res.status)) {
    if (!res.head || !res.base) return { bad: 'bad-result', detail: `${res.status} without head or base` };
    if (!(await sb.hasCommit(res.head))) return { bad: 'bad-result', detail: `head ${res.head} is not a commit in the repository` };
    const odd = res.patches.find((p) => !PATCH_OK.has(p.status));
    if (odd) return { bad: 'bad-result', detail: `${res.status} with patch ${odd.index} ${odd.status}` };
    return { outcome: 'applied', reason: res.label };
  }
  if (res.status === 'rejected') {
    if (res.attempts.length) return { bad: 'git-ran', detail: `${res.attempts.length} base attempts on a rejected series` };
    const why = res.patches.find((p) => p.status === 'rejected')?.detail;
    return why ? { outcome: 'rejected', reason: why } : { bad: 'no-reason', detail: 'rejected without a patch detail' };
  }
  if (res.status === 'not-applied') {
    const why = res.patches.find((p) => p.status === 'failed')?.detail ?? res.attempts.find((a) => a.detail)?.detail ?? res.patches.find((p) => p.detail)?.detail;
    return why?.trim() ? { outcome: 'failed', reason: why } : { bad: 'no-reason', detail: `not applied: ${JSON.stringify(res.attempts).slice(0, 200)}` };
  }
  return { bad: 'bad-result', detail: `unknown status ${String(res.status)}` };
}

/**
 * Where `../`-paths of up to three levels land when taken from the repository rather than the
 * engine's work tree: beside and above the sandbox, and the one absolute path aimed at. Outside
 * the snapshot, so checked by name.
 */
function escapes(sb: Sandbox): string[] {
  const up1 = dirname(sb.root);
  return [...new Set([join(up1, 'outside'), join(dirname(up1), 'outside'), '/outside'])];
}
const fingerprint = async (path: string): Promise<string> => {
  try {
    return createHash('sha1').update(await readFile(path)).digest('hex');
  } catch (err) {
    return `missing (${(err as NodeJS.ErrnoException).code})`;
  }
};

function changes(before: Map<string, string>, after: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [p, v] of after) if (before.get(p) !== v) out.push(before.has(p) ? `changed ${p}` : `new ${p}`);
  for (const p of before.keys()) if (!after.has(p)) out.push(`gone ${p}`);
  return out;
}

const tally = (): PatchTally => ({ cases: 0, applied: 0, failed: 0, rejected: 0, crashes: 0, hangs: 0, violations: 0 });
const elide = (reason: string): string => reason.replace(/"[^"]*"/g, '"..."').replace(/[0-9a-f]{7,40}/g, '<id>').replace(/\d+/g, 'N').slice(0, 70);

/**
 * Runs `cases` generated patch series (indices start .. start+cases-1) in a fresh sandbox. The
 * apply engine makes its workspaces under os.tmpdir(); TMPDIR points into the sandbox for the
 * run (and back afterwards), so a workspace left behind, or anything a patch reaches through
 * `../` from one, shows in the sandbox snapshot instead of among other programs' files in /tmp.
 */
export async function runPatchCampaign(opts: PatchCampaignOptions): Promise<PatchCampaignResult> {
  const t0 = performance.now();
  const seed = opts.seed >>> 0;
  const start = opts.start ?? 0;
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const sb = opts.sandbox ?? (await makeSandbox(opts.mail ?? []));
  const res: PatchCampaignResult = {
    seed, start, cases: 0, seeds: { git: sb.seeds.filter((s) => s.origin === 'git').length, corpus: sb.seeds.filter((s) => s.origin === 'corpus').length },
    outcomes: { applied: 0, failed: 0, rejected: 0 }, statuses: {}, crashes: [], hangs: [], violations: [], reasons: [], perOperator: {}, seconds: 0, ok: false,
  };
  const reasons = new Map<string, number>();
  const watchdog = new Watchdog(seed, 120_000, `vfio-review fuzz --cases 0 --seed ${seed} --patch-start {i} --patch-cases 1`);
  let current = start;
  const onUnhandled = (reason: unknown): void => {
    res.crashes.push({ index: current, operator: 'unhandled rejection', error: reasonOf(reason), stack: (reason as Error | undefined)?.stack?.split('\n').slice(0, 6).join('\n') });
  };
  process.on('unhandledRejection', onUnhandled);
  const savedTmp = process.env.TMPDIR;
  process.env.TMPDIR = sb.tmp;
  try {
    let baseline = await sb.snapshot();
    let away = escapes(sb).filter((p) => !existsSync(p));
    const passwd = await fingerprint('/etc/passwd');
    for (let index = start; index < start + opts.cases; index++) {
      current = index;
      const c = makePatchCase(sb.seeds, sb.outside, seed, index, opts.operators);
      const operator = c.operators.join('+');
      const tallies = c.operators.map((id) => (res.perOperator[id] ??= tally()));
      const bump = (k: keyof PatchTally): void => { for (const t of tallies) t[k]++; };
      const violation = (what: PatchViolationKind, detail: string): void => { res.violations.push({ index, operator, what, detail }); bump('violations'); };
      res.cases++;
      bump('cases');

      const began = performance.now();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), timeoutMs); });
      watchdog.arm(index, false);
      const run = applySeries({
        tree: sb.repo,
        patches: c.patches.map((d, i) => (d === null ? null : input(d, i, c))),
        candidates: c.candidates.map((ref) => ({ ref, why: ref === 'main' ? 'default' : 'hint' })),
      }).then((r): { ok: true; r: ApplyResult } => ({ ok: true, r }), (error: unknown) => ({ ok: false as const, error }));
      const out = await Promise.race([run, timeout]);
      watchdog.disarm();
      clearTimeout(timer);
      if (out === 'timeout') {
        res.hangs.push({ index, operator, wallMs: Math.round(performance.now() - began) });
        bump('hangs');
        await run; // git's own timeouts end it; the sandbox must be checked after it is done
      } else if (!out.ok) {
        const e = out.error as Error | undefined;
        res.crashes.push({ index, operator, error: reasonOf(out.error), stack: e?.stack?.split('\n').slice(0, 6).join('\n') });
        bump('crashes');
      } else {
        res.statuses[out.r.status] = (res.statuses[out.r.status] ?? 0) + 1;
        const j = await judge(out.r, sb);
        if ('bad' in j) violation(j.bad, j.detail);
        else {
          res.outcomes[j.outcome]++;
          bump(j.outcome);
          if (j.outcome !== 'applied') {
            const key = `${j.outcome}\0${elide(j.reason)}`;
            reasons.set(key, (reasons.get(key) ?? 0) + 1);
          }
        }
      }
      const appeared = away.filter((p) => existsSync(p));
      if (appeared.length) {
        violation('wrote-outside', `created ${appeared.join(', ')}`);
        away = away.filter((p) => !appeared.includes(p)); // reported once, by the case that made it
      }
      const diff = changes(baseline, await sb.snapshot());
      if (diff.length) {
        const left = diff.filter((d) => d.startsWith('new tmp/'));
        if (left.length) violation('workspace-left', left.slice(0, 3).join(', '));
        const other = diff.filter((d) => !d.startsWith('new tmp/'));
        if (other.length) violation('wrote-outside', other.slice(0, 5).join(', '));
        // Start the next case from a clean sandbox: remove what a case left in tmp/.
        for (const d of left.filter((x) => x.split('/').length === 2)) await rm(join(sb.root, d.slice('new '.length)), { recursive: true, force: true });
        baseline = await sb.snapshot(); // so that later cases are judged on what they do themselves
      }
      const done = index - start + 1;
      if (opts.onProgress && (done % 10 === 0 || done === opts.cases)) {
        opts.onProgress({ done, total: opts.cases, crashes: res.crashes.length, hangs: res.hangs.length });
      }
    }
    if ((await fingerprint('/etc/passwd')) !== passwd) res.violations.push({ index: -1, operator: '*', what: 'wrote-outside', detail: '/etc/passwd changed' });
  } finally {
    process.off('unhandledRejection', onUnhandled);
    if (savedTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmp;
    await watchdog.stop();
    if (!opts.sandbox) await sb.dispose();
  }
  res.reasons = [...reasons].map(([k, count]) => {
    const [outcome, reason] = k.split('\0') as [PatchOutcome, string];
    return { outcome, reason, count };
  }).sort((a, b) => b.count - a.count).slice(0, 15);
  res.seconds = Math.round((performance.now() - t0) / 100) / 10;
  res.ok = res.crashes.length === 0 && res.hangs.length === 0 && res.violations.length === 0;
  return res;
}
