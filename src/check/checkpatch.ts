import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { git, hermeticEnv, run, type GitOptions } from '../apply/git.js';
import type { PatchInput } from '../apply/types.js';
import type { RuleFinding } from '../rules/types.js';
import { rulesWorkspace, treeGitDir, type PatchView } from '../rules/context.js';

/** checkpatch types that one of our rules already reports (ours wins: it says why, and where). */
const DUPLICATES: Record<string, string> = { AVOID_BUG: 'bug-on' };

/** Files checkpatch.pl reads next to itself. */
const SUPPORT = ['scripts/checkpatch.pl', 'scripts/spelling.txt', 'scripts/const_structs.checkpatch'];

/** One report block of `checkpatch.pl --emacs`: the patch file it is about, then where in the patched file. */
const BLOCK = /^(?<src>p\d+\.patch):\d+: (?<level>ERROR|WARNING|CHECK):(?<type>[A-Z0-9_]+): (?<msg>.*)\n#\d+: FILE: (?<file>[^\n:]+):(?<line>\d+):/gm;

/**
 * checkpatch.pl and its data files as the base commit has them, in a directory of the process's
 * workspace: read from the base's objects once per base (a daemon checks many series on one base),
 * never from a patched tree, so a patch that edits checkpatch.pl is never executed. Null when the
 * base has no scripts/checkpatch.pl. A few bases are kept.
 */
const roots = new Map<string, Promise<string | null>>();
const ROOTS = 4;

function checkpatchRoot(gitDir: string, baseCommit: string): Promise<string | null> {
  const key = `${gitDir}\0${baseCommit}`;
  let r = roots.get(key);
  if (r) return r;
  r = (async () => {
    const ws = await rulesWorkspace();
    const opts: GitOptions = { gitDir, workTree: ws.workTree, cwd: ws.workTree, home: ws.home };
    const root = join(ws.dir, 'checkpatch', baseCommit);
    for (const path of SUPPORT) {
      const got = await git(['cat-file', 'blob', `${baseCommit}:${path}`], opts);
      if (got.code !== 0) {
        if (path === SUPPORT[0]) return null; // not a kernel tree with checkpatch: nothing to add
        continue;
      }
      await mkdir(dirname(join(root, path)), { recursive: true });
      await writeFile(join(root, path), got.stdout, 'utf8');
    }
    return root;
  })();
  // A failed preparation is not remembered; the oldest base goes when there are too many.
  r.catch(() => roots.delete(key));
  roots.set(key, r);
  if (roots.size > ROOTS) {
    const [oldKey, old] = roots.entries().next().value!;
    roots.delete(oldKey);
    void old.then((dir) => (dir ? rm(dir, { recursive: true, force: true }) : undefined)).catch(() => undefined);
  }
  return r;
}

/**
 * The base tree's own scripts/checkpatch.pl on every patch of a series, in one perl process (perl
 * start-up and checkpatch's compilation are most of its time on one patch). Resolves once perl is
 * running, to a function giving its findings: the check runs our rules meanwhile, so checkpatch.pl
 * uses the second core instead of adding its time after theirs. Only findings on lines the patch
 * adds are kept.
 */
export async function startCheckpatch(
  tree: string,
  baseCommit: string,
  patches: (PatchInput | null)[],
  views: readonly PatchView[],
): Promise<() => Promise<RuleFinding[]>> {
  const root = await checkpatchRoot(await treeGitDir(tree), baseCommit);
  const names = new Map<string, PatchView>();
  const mails: [string, string][] = [];
  for (const view of views) {
    const p = patches[view.patch.index - 1];
    if (!p) continue;
    const name = `p${view.patch.index}.patch`;
    names.set(name, view);
    mails.push([name, `From: ${p.authorName} <${p.authorEmail}>\nSubject: [PATCH] ${p.subject.replace(/^\[[^\]]*\]\s*/, '')}\n\n${p.message}\n---\n${p.diff}`]);
  }
  if (!root || mails.length === 0) return async () => [];
  const ws = await rulesWorkspace();
  const dir = await mkdtemp(join(root, 'run-'));
  try {
    for (const [name, mail] of mails) await writeFile(join(dir, name), mail, 'utf8');
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const perl = run('perl', [join(root, 'scripts/checkpatch.pl'), '--no-tree', '--show-types', '--no-summary', '--no-signoff', '--quiet', '--emacs', ...mails.map(([n]) => n)], {
    cwd: dir,
    env: hermeticEnv(ws.home),
    timeoutMs: 60_000 + 10_000 * mails.length,
  });
  // Settled either way, so a failure surfaces when the findings are asked for, not as an unhandled rejection.
  const done = perl.then((r) => ({ r, err: null }), (err: unknown) => ({ r: null, err }));
  return async () => {
    const { r, err } = await done;
    await rm(dir, { recursive: true, force: true });
    if (err) throw err;
    const out: RuleFinding[] = [];
    for (const m of r!.stdout.matchAll(BLOCK)) {
      const g = m.groups!;
      const view = names.get(g.src!);
      if (!view) continue;
      const line = Number(g.line);
      const file = view.files.find((f) => f.path === g.file);
      if (!file?.added.has(line) || DUPLICATES[g.type!]) continue;
      out.push({
        rule: `checkpatch/${g.type}`,
        // Style nits, whatever checkpatch calls them: they never outrank a finding of ours.
        severity: 'info',
        category: 'style',
        confidence: 'moderate',
        patch: view.patch.msgid,
        file: g.file!,
        line,
        function: null,
        message: g.msg!,
        evidence: [],
        suggestion: null,
      });
    }
    return out;
  };
}

/** {@link startCheckpatch} and its findings, for callers with nothing to do meanwhile. */
export async function runCheckpatch(
  tree: string,
  baseCommit: string,
  patches: (PatchInput | null)[],
  views: readonly PatchView[],
): Promise<RuleFinding[]> {
  return (await startCheckpatch(tree, baseCommit, patches, views))();
}
