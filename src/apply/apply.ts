import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { refProblem, resolveCommit } from './base.js';
import { ApplyError, git, gitOk, makeWorkspace, type GitOptions, type ProcResult, type Workspace } from './git.js';
import { checkPatch, DEFAULT_LIMITS } from './safety.js';
import type {
  ApplyMethod,
  ApplyRequest,
  ApplyResult,
  AttemptResult,
  BaseAttempt,
  ParsedFile,
  PatchInput,
  PatchResult,
  SeriesStatus,
} from './types.js';

export { ApplyError };

/** The label of a series whose diff could not be applied anywhere. */
export const NOT_APPLIED_LABEL = 'not applied; the diff alone was reviewed';

const COMMITTER = { name: 'vfio-review', email: 'vfio-review@localhost' };

interface Ctx {
  ws: Workspace;
  opts: GitOptions;
  present: { index: number; patch: PatchInput; files: ParsedFile[] }[];
}

/** Where and why a patch did not apply, from `git apply -v` stderr. */
export interface FailureInfo {
  file?: string;
  hunk?: string;
  context?: string;
  detail: string;
}

/**
 * Reads git apply's verbose errors: `error: while searching for:` + the preimage it could not
 * find, then `error: patch failed: <file>:<line>` where line is the hunk's old start, which
 * names the hunk. Other errors (`<file>: does not exist in index`, `corrupt patch at line N`)
 * give the file when there is one. Relies on LANG=C (set by hermeticEnv): git translates these.
 */
export function parseApplyFailure(stderr: string, files: ParsedFile[]): FailureInfo {
  const lines = stderr.split('\n');
  const errors: string[] = [];
  const info: FailureInfo = { detail: '' };
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l === 'error: while searching for:') {
      const ctx: string[] = [];
      while (i + 1 < lines.length && !lines[i + 1]!.startsWith('error: ')) ctx.push(lines[++i]!);
      // git prints the preimage (ending in a newline) and then its own newline.
      if (ctx.length && ctx[ctx.length - 1] === '') ctx.pop();
      info.context ??= ctx.join('\n');
      continue;
    }
    if (!l.startsWith('error: ') && !l.startsWith('fatal: ')) continue;
    errors.push(l.replace(/^(?:error|fatal): /, ''));
    const pf = /^error: patch failed: (?<at>.*)$/.exec(l);
    if (pf?.groups && info.file === undefined) {
      const at = pf.groups.at!;
      const colon = at.lastIndexOf(':');
      const file = at.slice(0, colon);
      const line = Number(at.slice(colon + 1));
      info.file = file;
      const f = files.find((x) => x.oldPath === file || x.newPath === file);
      const h = f?.hunks.find((x) => x.oldStart === line) ?? f?.hunks.find((x) => x.newStart === line);
      if (h) info.hunk = h.header;
      continue;
    }
    const named = /^error: (?<file>[^:]+): (?:does not exist in index|already exists in index|does not match index|patch does not apply)/.exec(l);
    if (named?.groups && info.file === undefined) info.file = named.groups.file!;
  }
  info.detail = errors.join('; ') || lines.find((l) => l.trim() !== '') || 'git apply failed without a message';
  return info;
}

function ident(name: string, email: string): { name: string; email: string } {
  // git refuses empty names and strips '<' '>' oddly; mail From: headers can hold anything.
  const clean = (s: string): string => s.replace(/[<>\0\r\n]/g, '').trim();
  const e = clean(email) || 'unknown@unknown';
  return { name: clean(name) || e.split('@')[0] || 'unknown', email: e };
}

function gitDate(d: Date): string {
  const t = d.getTime();
  // "@<seconds> <zone>" is git's raw format; the mail's zone is gone once parsed into a Date.
  return `@${Number.isFinite(t) ? Math.floor(t / 1000) : 0} +0000`;
}

/** Commits `tree` on `parent` with the mail's author; committer date = author date, so ids are reproducible. */
async function commitPatch(ctx: Ctx, tree: string, parent: string, p: PatchInput): Promise<string> {
  const a = ident(p.authorName, p.authorEmail);
  const date = gitDate(p.date);
  // commit-tree refuses a NUL in the message; a hostile mail must not turn into a crash.
  const msg = (p.message.trim() === '' ? p.subject : p.message).replace(/\0/g, '').replace(/\n*$/, '\n');
  return gitOk(['commit-tree', tree, '-p', parent], {
    ...ctx.opts,
    input: msg,
    env: {
      ...ctx.opts.env,
      GIT_AUTHOR_NAME: a.name,
      GIT_AUTHOR_EMAIL: a.email,
      GIT_AUTHOR_DATE: date,
      GIT_COMMITTER_NAME: COMMITTER.name,
      GIT_COMMITTER_EMAIL: COMMITTER.email,
      GIT_COMMITTER_DATE: date,
    },
  });
}

type Outcome =
  | { status: 'applied' | 'applied-with-fuzz'; method: ApplyMethod; reverseApplies?: true }
  | { status: 'already-applied' }
  | { status: 'failed'; failure: FailureInfo };

/**
 * One patch onto the temp index, which holds `headTree`: plain apply; if that fails, a clean
 * reverse apply means it is already in; then a 3-way merge using the blobs named in its
 * `index` lines; then a fuzzy apply (one line of context, recounted hunks). The reverse check
 * runs before the 3-way merge because a 3-way merge of an already-applied change succeeds
 * as a no-op and would hide it.
 *
 * A plain apply that had to move a hunk (git says "Hunk #n succeeded at ... (offset k lines)")
 * is also checked in reverse against the tree before it: a merged patch that only adds lines
 * right after context that its own added lines end with applies forward a second time, one
 * block further down (three such mails in the 6.1.192 corpus). It stays 'applied' (that is what
 * git did) and is flagged `reverseApplies` so a reader can tell.
 */
async function applyOne(ctx: Ctx, diff: string, files: ParsedFile[], headTree: string): Promise<Outcome> {
  const apply = (extra: string[], opts: GitOptions = ctx.opts): Promise<ProcResult> =>
    git(['apply', '--cached', ...extra], { ...opts, input: diff });
  const index = ctx.opts.env!.GIT_INDEX_FILE!;
  const pre = `${index}.pre`;
  // A copy of the index file (8 MB for a kernel) costs milliseconds; a second read-tree ~200 ms.
  await copyFile(index, pre);
  const plain = await apply(['-v']);
  if (plain.code === 0) {
    if (!/^Hunk #\d+ succeeded at /m.test(plain.stderr)) return { status: 'applied', method: 'plain' };
    const rev = await apply(['--reverse', '--check'], { ...ctx.opts, env: { ...ctx.opts.env, GIT_INDEX_FILE: pre } });
    return { status: 'applied', method: 'plain', ...(rev.code === 0 ? { reverseApplies: true as const } : {}) };
  }
  const failure = parseApplyFailure(plain.stderr, files);
  if ((await apply(['--reverse', '--check'])).code === 0) return { status: 'already-applied' };
  // --3way with --cached exists since git 2.32; on 2.39.5 it needs no work tree (the test suite
  // runs it with an empty one) and a conflict leaves stages 1-3 in the private index only.
  const threeWay = await apply(['-3']);
  if (threeWay.code === 0) return { status: 'applied', method: '3way' };
  // A conflicted 3-way merge leaves unmerged entries in the index; put the tree back.
  await gitOk(['read-tree', headTree], ctx.opts);
  const fuzz = await apply(['-C1', '--recount']);
  if (fuzz.code === 0) return { status: 'applied-with-fuzz', method: 'fuzz' };
  const why3 = threeWay.stderr.split('\n').find((l) => /conflicts|lacks the necessary blob|error:/.test(l));
  if (why3) failure.detail += `; 3-way: ${why3.replace(/^error: /, '')}`;
  return { status: 'failed', failure };
}

interface AttemptRun {
  ok: boolean;
  attempt: Omit<BaseAttempt, 'ref' | 'why' | 'commit'>;
  patches: PatchResult[];
  head: string;
  progress: number;
}

function skeleton(ctx: Ctx, req: ApplyRequest): PatchResult[] {
  return req.patches.map((p, i) => ({
    index: i + 1,
    msgid: p?.msgid ?? null,
    subject: p?.subject ?? null,
    status: p ? 'skipped' : 'missing',
    commit: null,
    files: ctx.present.find((x) => x.index === i + 1)?.files ?? [],
  }));
}

async function applyOnBase(ctx: Ctx, req: ApplyRequest, base: string, n: number): Promise<AttemptRun> {
  const opts: GitOptions = { ...ctx.opts, env: { GIT_INDEX_FILE: join(ctx.ws.dir, `index-${n}`) } };
  const c: Ctx = { ...ctx, opts };
  let head = base;
  let headTree = await gitOk(['rev-parse', '--verify', `${base}^{tree}`], opts);
  await gitOk(['read-tree', headTree], opts);
  const patches = skeleton(ctx, req);
  let progress = 0;
  for (const { index, patch, files } of ctx.present) {
    const r = patches[index - 1]!;
    if (patch.diff.trim() === '') {
      // A patch mail without a diff still gets its commit, so the series keeps one commit per patch.
      progress++;
      Object.assign(r, { status: 'applied', method: 'plain', detail: 'the message carries no diff' });
      head = await commitPatch(c, headTree, head, patch);
      r.commit = head;
      continue;
    }
    const out = await applyOne(c, patch.diff, files, headTree);
    if (out.status === 'failed') {
      Object.assign(r, { status: 'failed', ...out.failure });
      const f = out.failure;
      return { ok: false, attempt: { result: 'failed', failedPatch: index, ...f }, patches, head, progress };
    }
    progress++;
    r.status = out.status;
    if (out.status === 'already-applied') continue;
    r.method = out.method;
    if (out.reverseApplies) r.reverseApplies = true;
    headTree = await gitOk(['write-tree'], opts);
    head = await commitPatch(c, headTree, head, patch);
    r.commit = head;
  }
  const statuses = patches.map((p) => p.status);
  const result: AttemptResult = statuses.every((s) => s === 'already-applied' || s === 'missing')
    ? 'already-applied'
    : statuses.includes('applied-with-fuzz')
      ? 'applied-with-fuzz'
      : 'applied';
  return { ok: true, attempt: { result }, patches, head, progress };
}

function listOf(ns: number[]): string {
  return ns.length === 1 ? `patch ${ns[0]}` : `patches ${ns.join(', ')}`;
}

function successStatus(patches: PatchResult[], complete: boolean): SeriesStatus {
  if (!complete) return 'partial';
  if (patches.every((p) => p.status === 'already-applied')) return 'already-applied';
  return patches.some((p) => p.status === 'applied-with-fuzz') ? 'applied-with-fuzz' : 'applied';
}

function successLabel(status: SeriesStatus, base: { ref: string; commit: string }, patches: PatchResult[]): string {
  const pick = (s: PatchResult['status']): number[] => patches.filter((p) => p.status === s).map((p) => p.index);
  const parts = [`${status === 'already-applied' ? 'already applied' : 'applied'} on ${base.ref} (${base.commit.slice(0, 12)})`];
  const fuzz = pick('applied-with-fuzz');
  const done = pick('already-applied');
  const missing = pick('missing');
  const threeWay = patches.filter((p) => p.method === '3way').map((p) => p.index);
  if (fuzz.length) parts.push(`${listOf(fuzz)} with fuzz`);
  if (threeWay.length) parts.push(`${listOf(threeWay)} by 3-way merge`);
  if (done.length && status !== 'already-applied') parts.push(`${listOf(done)} already applied`);
  const maybe = patches.filter((p) => p.reverseApplies).map((p) => p.index);
  if (maybe.length) parts.push(`${listOf(maybe)} also reverse-applied: possibly already in the base`);
  if (missing.length) parts.push(`incomplete: ${listOf(missing)} missing`);
  return parts.join('; ');
}

async function gitDirOf(tree: string, ws: Workspace): Promise<string> {
  const r = await git(['rev-parse', '--absolute-git-dir'], { cwd: tree, home: ws.home }).catch((err: unknown) => {
    throw new ApplyError('APPLY_TREE', `cannot run git in ${tree}`, { cause: err });
  });
  if (r.code !== 0) throw new ApplyError('APPLY_TREE', `${tree} is not a git repository: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/**
 * Applies a series to the first base candidate that takes every present patch, without
 * touching any checkout, index or ref of the tree: each attempt reads the base tree into a
 * private index file, runs `git apply --cached` per patch and records a commit per patch with
 * `git commit-tree` (author and date from the mail, committer `vfio-review`), so the only
 * writes to the tree are new objects. Several calls may run at once on one tree.
 *
 * Every patch is checked by the safety rules first; one rejected patch rejects the series and
 * git never sees it. Every candidate tried is recorded in `attempts`. When no base works the
 * result is 'not-applied' with the per-patch outcome of the attempt that got furthest and the
 * parsed hunks of every patch, so the diff can still be reviewed alone.
 *
 * @throws ApplyError APPLY_TREE when `req.tree` is not a git repository; APPLY_GIT when git
 * fails at something other than applying a patch (reading a tree, writing an object).
 */
export async function applySeries(req: ApplyRequest): Promise<ApplyResult> {
  const limits = { ...DEFAULT_LIMITS, ...req.limits };
  const complete = req.patches.every((p) => p !== null);
  const present: Ctx['present'] = [];
  const rejected: { index: number; reason: string }[] = [];
  req.patches.forEach((p, i) => {
    if (!p) return;
    const v = checkPatch(p.diff, limits);
    if (!v.ok) rejected.push({ index: i + 1, reason: v.reason });
    present.push({ index: i + 1, patch: p, files: v.files });
  });

  const ws = await makeWorkspace('vfio-review-apply-');
  try {
    const ctx: Ctx = { ws, opts: { cwd: ws.workTree, home: ws.home }, present };
    if (rejected.length) {
      const patches = skeleton(ctx, req);
      for (const r of rejected) Object.assign(patches[r.index - 1]!, { status: 'rejected', detail: r.reason });
      const first = rejected[0]!;
      const label = `rejected by the safety checks (patch ${first.index}: ${first.reason}); not applied`;
      return { status: 'rejected', base: null, head: null, attempts: [], patches, complete, label, attemptIndex: null };
    }
    ctx.opts = { gitDir: await gitDirOf(req.tree, ws), workTree: ws.workTree, cwd: ws.workTree, home: ws.home };

    const attempts: BaseAttempt[] = [];
    let best: { run: AttemptRun; at: number } | null = null;
    const tried = new Map<string, number>();
    for (const cand of req.candidates) {
      const problem = refProblem(cand.ref);
      if (problem) {
        attempts.push({ ...cand, commit: null, result: 'rejected', detail: problem });
        continue;
      }
      const commit = await resolveCommit(cand.ref, ctx.opts);
      if (!commit) {
        attempts.push({ ...cand, commit: null, result: 'missing', detail: `${cand.ref} does not name a commit in this tree` });
        continue;
      }
      const earlier = tried.get(commit);
      if (earlier !== undefined) {
        const e = attempts[earlier]!;
        attempts.push({ ...e, ...cand, commit, detail: `same commit as ${e.ref}; not retried${e.detail ? `; ${e.detail}` : ''}` });
        continue;
      }
      tried.set(commit, attempts.length);
      let run: AttemptRun;
      try {
        run = await applyOnBase(ctx, req, commit, attempts.length);
      } catch (err) {
        throw new ApplyError('APPLY_GIT', `applying on ${cand.ref}: ${(err as Error).message}`, { cause: err });
      }
      attempts.push({ ...cand, commit, ...run.attempt });
      if (run.ok) {
        const base = { ref: cand.ref, commit };
        const status = successStatus(run.patches, complete);
        const label = successLabel(status, base, run.patches);
        return { status, base, head: run.head, attempts, patches: run.patches, complete, label, attemptIndex: attempts.length - 1 };
      }
      if (!best || run.progress > best.run.progress) best = { run, at: attempts.length - 1 };
    }
    const patches = best?.run.patches ?? skeleton(ctx, req);
    if (!best) for (const p of patches) if (p.status === 'skipped') p.detail = 'no base candidate resolved to a commit';
    return {
      status: 'not-applied',
      base: null,
      head: null,
      attempts,
      patches,
      complete,
      label: NOT_APPLIED_LABEL,
      attemptIndex: best?.at ?? null,
    };
  } finally {
    await ws.dispose();
  }
}
