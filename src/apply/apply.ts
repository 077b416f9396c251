import { join } from 'node:path';
import { appliesOntoOwnLines, checkedPaths, movedHunks, parseApplyFailure, type FailureInfo } from './apply-output.js';
import { refProblem } from './base.js';
import { ApplyError, git, makeWorkspace, type GitOptions, type Workspace } from './git.js';
import { ObjectReader, objectId, Trees, writeObjects, type NewTree } from './objects.js';
import { checkPatch, DEFAULT_LIMITS } from './safety.js';
import { namedPaths, ScratchIndex } from './scratch.js';
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

export { ApplyError, parseApplyFailure, type FailureInfo };

/** The label of a series whose diff could not be applied anywhere. */
export const NOT_APPLIED_LABEL = 'not applied; the diff alone was reviewed';

const COMMITTER = { name: 'vfio-review', email: 'vfio-review@localhost' };

type Present = { index: number; patch: PatchInput; files: ParsedFile[] }[];

interface Ctx {
  ws: Workspace;
  opts: GitOptions;
  present: Present;
  trees: Trees;
  /** Objects made during the current attempt, stored when it ends ({@link flush}). */
  pending: { trees: NewTree[]; commits: NewTree[] };
}

/** git's "crud" at either end of an ident part, which commit-tree strips (ident.c). */
const CRUD = /^[\x00-\x20.,:;<>"\\']+|[\x00-\x20.,:;<>"\\']+$/g;

function ident(name: string, email: string): { name: string; email: string } {
  // git refuses empty names and strips '<' '>' oddly; mail From: headers can hold anything.
  const clean = (s: string): string => s.replace(/[<>\0\r\n]/g, '').replace(CRUD, '');
  const e = clean(email) || 'unknown@unknown';
  return { name: clean(name) || clean(e.split('@')[0] ?? '') || 'unknown', email: e };
}

function gitDate(d: Date): string {
  const t = d.getTime();
  // "<seconds> <zone>" is git's raw format; the mail's zone is gone once parsed into a Date.
  return `${Number.isFinite(t) ? Math.max(0, Math.floor(t / 1000)) : 0} +0000`;
}

/**
 * The commit of `tree` on `parent` with the mail's author; committer date = author date, so ids
 * are reproducible. The object is made here, as `git commit-tree` would make it, and stored with
 * the attempt's other new objects in one `git hash-object` (which checks its format) when the
 * attempt ends: a git process per patch saved.
 */
function commitPatch(ctx: Ctx, tree: string, parent: string, p: PatchInput): string {
  const a = ident(p.authorName, p.authorEmail);
  const date = gitDate(p.date);
  // A commit refuses a NUL in the message; a hostile mail must not turn into a crash.
  const msg = (p.message.trim() === '' ? p.subject : p.message).replace(/\0/g, '').replace(/\n*$/, '\n');
  const content = Buffer.from(
    `tree ${tree}\nparent ${parent}\nauthor ${a.name} <${a.email}> ${date}\ncommitter ${COMMITTER.name} <${COMMITTER.email}> ${date}\n\n${msg}`,
    'utf8',
  );
  const oid = objectId('commit', content, tree.length);
  ctx.pending.commits.push({ oid, content });
  return oid;
}

/** Stores the attempt's new trees and commits (one `hash-object` each). */
async function flush(ctx: Ctx): Promise<void> {
  const { trees, commits } = ctx.pending;
  ctx.pending = { trees: [], commits: [] };
  await writeObjects('tree', trees, ctx.opts, ctx.ws.dir);
  await writeObjects('commit', commits, ctx.opts, ctx.ws.dir);
}

type Applied = { tree: string; created: NewTree[] };

type Outcome =
  | ({ status: 'applied' | 'applied-with-fuzz'; method: ApplyMethod; reverseApplies?: true } & Applied)
  | { status: 'already-applied'; detail?: string }
  | { status: 'failed'; failure: FailureInfo };

/** git's own words for a file/directory clash in the index, so the failure reads as it would with a full index. */
const clash = (path: string): string => `error: '${path}' appears as both a file and as a directory\nerror: unable to add cache entry for ${path}\n`;

/**
 * One patch onto `headTree`, through a {@link ScratchIndex} holding only the paths it names:
 * plain apply; if that fails, a clean reverse apply means it is already in; then a 3-way
 * merge using the blobs named in its `index` lines; then a fuzzy apply (one line of context,
 * recounted hunks). The reverse check runs before the 3-way merge because a 3-way merge of an
 * already-applied change succeeds as a no-op and would hide it.
 *
 * A plain apply that had to move a hunk (git says "Hunk #n succeeded at ... (offset k lines)")
 * is also checked in reverse against the tree before it: a merged patch that only adds lines
 * right after context that its own added lines end with applies forward a second time, one
 * block further down (three such mails in the 6.1.192 corpus). When every hunk matched forward
 * where the reverse check found that hunk's own post-image, the patch is already applied;
 * when both directions apply at unrelated places, it stays 'applied' (that is what git did)
 * and is flagged `reverseApplies` so a reader can tell.
 */
async function applyOne(ctx: Ctx, index: string, diff: string, files: ParsedFile[], headTree: string): Promise<Outcome> {
  const scratch = new ScratchIndex(ctx.trees, ctx.opts, index, headTree);
  await scratch.load(namedPaths(files));
  /** One `git apply --cached`; a success whose result puts a file where the tree has a directory (or back) fails as on a full index. */
  const run = async (args: string[]): Promise<{ done: Applied | null; code: number | null; stderr: string }> => {
    const r = await scratch.apply(args, diff);
    if (r.code !== 0) return { done: null, code: r.code, stderr: r.stderr };
    const t = await scratch.tree();
    if ('oid' in t) return { done: { tree: t.oid, created: t.created }, code: 0, stderr: r.stderr };
    await scratch.restore();
    return { done: null, code: 0, stderr: r.stderr + clash(t.conflict) };
  };

  let plain = await run(['-v']);
  // The scratch index must hold every path git looks at; git names them in `Checking patch` lines.
  if (await scratch.widen(checkedPaths(plain.stderr))) plain = await run(['-v']);
  if (plain.done) {
    if (!movedHunks(plain.stderr) || !(await scratch.mayReverse(files))) return { status: 'applied', method: 'plain', ...plain.done };
    const rev = await scratch.apply(['--reverse', '--check', '-v'], diff, 'pre');
    if (rev.code !== 0) return { status: 'applied', method: 'plain', ...plain.done };
    if (appliesOntoOwnLines(plain.stderr, rev.stderr, files)) {
      return { status: 'already-applied', detail: 'also applies forward, but only onto a copy of its own added lines' };
    }
    return { status: 'applied', method: 'plain', reverseApplies: true, ...plain.done };
  }
  const failure = parseApplyFailure(plain.stderr, files);
  if ((await scratch.apply(['--reverse', '--check'], diff)).code === 0) return { status: 'already-applied' };
  // --3way with --cached exists since git 2.32; on 2.39.5 it needs no work tree (the test suite
  // runs it with an empty one) and a conflict leaves stages 1-3 in the private index only.
  const threeWay = await run(['-3']);
  if (threeWay.done) return { status: 'applied', method: '3way', ...threeWay.done };
  // A conflicted 3-way merge leaves unmerged entries in the index; put it back as loaded.
  if (threeWay.code !== 0) await scratch.restore();
  const fuzz = await run(['-C1', '--recount']);
  if (fuzz.done) return { status: 'applied-with-fuzz', method: 'fuzz', ...fuzz.done };
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

function skeleton(present: Present, req: ApplyRequest): PatchResult[] {
  return req.patches.map((p, i) => ({
    index: i + 1,
    msgid: p?.msgid ?? null,
    subject: p?.subject ?? null,
    status: p ? 'skipped' : 'missing',
    commit: null,
    files: present.find((x) => x.index === i + 1)?.files ?? [],
  }));
}

async function applyOnBase(ctx: Ctx, req: ApplyRequest, base: { commit: string; tree: string }, n: number): Promise<AttemptRun> {
  const index = join(ctx.ws.dir, `index-${n}`);
  let head = base.commit;
  let headTree = base.tree;
  const patches = skeleton(ctx.present, req);
  let progress = 0;
  for (const { index: at, patch, files } of ctx.present) {
    const r = patches[at - 1]!;
    if (patch.diff.trim() === '') {
      // A patch mail without a diff still gets its commit, so the series keeps one commit per patch.
      progress++;
      Object.assign(r, { status: 'applied', method: 'plain', detail: 'the message carries no diff' });
      head = commitPatch(ctx, headTree, head, patch);
      r.commit = head;
      continue;
    }
    const out = await applyOne(ctx, index, patch.diff, files, headTree);
    if (out.status === 'failed') {
      Object.assign(r, { status: 'failed', ...out.failure });
      const f = out.failure;
      return { ok: false, attempt: { result: 'failed', failedPatch: at, ...f }, patches, head, progress };
    }
    progress++;
    r.status = out.status;
    if (out.status === 'already-applied') {
      if (out.detail) r.detail = out.detail;
      continue;
    }
    r.method = out.method;
    if (out.reverseApplies) r.reverseApplies = true;
    ctx.pending.trees.push(...out.created);
    headTree = out.tree;
    head = commitPatch(ctx, headTree, head, patch);
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

/**
 * The commit `ref` names and its tree, read through the running `cat-file --batch` (the
 * same peeling as `rev-parse --verify <ref>^{commit}`), or null. `ref` has passed refProblem,
 * so it holds no whitespace that could break cat-file's line protocol.
 */
async function resolveBase(reader: ObjectReader, ref: string): Promise<{ commit: string; tree: string } | null> {
  let obj;
  try {
    obj = await reader.read(`${ref}^{commit}`);
  } catch (err) {
    throw new ApplyError('APPLY_GIT', `resolving ${ref}: ${(err as Error).message}`, { cause: err });
  }
  if (!obj || obj.type !== 'commit') return null;
  const tree = /^tree (?<oid>[0-9a-f]{40}|[0-9a-f]{64})\n/.exec(obj.data.toString('latin1'))?.groups?.oid;
  if (!tree) throw new ApplyError('APPLY_GIT', `commit ${obj.oid} (${ref}) has no tree line`);
  return { commit: obj.oid, tree };
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
  const present: Present = [];
  const rejected: { index: number; reason: string }[] = [];
  req.patches.forEach((p, i) => {
    if (!p) return;
    const v = checkPatch(p.diff, limits);
    if (!v.ok) rejected.push({ index: i + 1, reason: v.reason });
    present.push({ index: i + 1, patch: p, files: v.files });
  });

  const ws = await makeWorkspace('vfio-review-apply-');
  let reader: ObjectReader | null = null;
  try {
    if (rejected.length) {
      const patches = skeleton(present, req);
      for (const r of rejected) Object.assign(patches[r.index - 1]!, { status: 'rejected', detail: r.reason });
      const first = rejected[0]!;
      const label = `rejected by the safety checks (patch ${first.index}: ${first.reason}); not applied`;
      return { status: 'rejected', base: null, head: null, attempts: [], patches, complete, label, attemptIndex: null };
    }
    const opts: GitOptions = { gitDir: await gitDirOf(req.tree, ws), workTree: ws.workTree, cwd: ws.workTree, home: ws.home };
    reader = new ObjectReader(opts);
    const ctx: Ctx = { ws, opts, present, trees: new Trees(reader), pending: { trees: [], commits: [] } };

    const attempts: BaseAttempt[] = [];
    let best: { run: AttemptRun; at: number } | null = null;
    const tried = new Map<string, number>();
    for (const cand of req.candidates) {
      const problem = refProblem(cand.ref);
      if (problem) {
        attempts.push({ ...cand, commit: null, result: 'rejected', detail: problem });
        continue;
      }
      const resolved = await resolveBase(reader, cand.ref);
      if (!resolved) {
        attempts.push({ ...cand, commit: null, result: 'missing', detail: `${cand.ref} does not name a commit in this tree` });
        continue;
      }
      const { commit } = resolved;
      const earlier = tried.get(commit);
      if (earlier !== undefined) {
        const e = attempts[earlier]!;
        attempts.push({ ...e, ...cand, commit, detail: `same commit as ${e.ref}; not retried${e.detail ? `; ${e.detail}` : ''}` });
        continue;
      }
      tried.set(commit, attempts.length);
      let run: AttemptRun;
      try {
        try {
          run = await applyOnBase(ctx, req, resolved, attempts.length);
        } finally {
          // The commits of the patches that applied are stored whatever happened next (a failed
          // attempt's results still name them).
          await flush(ctx);
        }
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
    const patches = best?.run.patches ?? skeleton(present, req);
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
    await reader?.close();
    await ws.dispose();
  }
}
