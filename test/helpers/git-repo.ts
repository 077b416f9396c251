import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, readlink, rm, writeFile, lstat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { git as runGit, gitOk, makeWorkspace, type Workspace } from '../../src/apply/git.js';
import type { PatchInput } from '../../src/apply/types.js';

/** A small hand-written repository in a private temp dir, driven with a hermetic git. */
export interface TestRepo {
  /** The work tree (the repository is `dir/.git`). */
  dir: string;
  /** The temp dir holding `dir`, with room for sentinel files next to the repository. */
  root: string;
  /** Runs git in the repository; returns stdout trimmed. */
  git(...args: string[]): Promise<string>;
  /** Runs git in the repository; returns stdout exactly (diffs need their trailing blank lines). */
  gitRaw(...args: string[]): Promise<string>;
  /** Writes files (null deletes one), stages everything and commits on the current branch; returns the commit id. */
  commit(files: Record<string, string | Buffer | null>, message: string): Promise<string>;
  dispose(): Promise<void>;
}

const IDENT = {
  GIT_AUTHOR_NAME: 'Test Author',
  GIT_AUTHOR_EMAIL: 'author@example.org',
  GIT_AUTHOR_DATE: '@1700000000 +0000',
  GIT_COMMITTER_NAME: 'Test Committer',
  GIT_COMMITTER_EMAIL: 'committer@example.org',
  GIT_COMMITTER_DATE: '@1700000000 +0000',
};

/** Creates a repository on branch `main` whose first commit ("base") holds `files`. */
export async function createRepo(files: Record<string, string>): Promise<TestRepo> {
  const ws: Workspace = await makeWorkspace('vfio-review-test-repo-');
  const dir = join(ws.dir, 'repo');
  await mkdir(dir);
  const opts = { gitDir: join(dir, '.git'), workTree: dir, cwd: dir, home: ws.home, env: IDENT };
  const git = (...args: string[]): Promise<string> => gitOk(args, opts);
  const gitRaw = async (...args: string[]): Promise<string> => {
    const r = await runGit(args, opts);
    if (r.code !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  await gitOk(['init', '-q', '--initial-branch=main', dir], { cwd: ws.dir, home: ws.home });
  const repo: TestRepo = {
    dir,
    root: ws.dir,
    git,
    gitRaw,
    async commit(change, message) {
      for (const [path, content] of Object.entries(change)) {
        const abs = join(dir, path);
        if (content === null) await rm(abs, { force: true });
        else {
          await mkdir(dirname(abs), { recursive: true });
          await writeFile(abs, content);
        }
      }
      await git('add', '-A');
      await git('commit', '-q', '--allow-empty', '-m', message);
      return git('rev-parse', 'HEAD');
    },
    dispose: () => ws.dispose(),
  };
  await repo.commit(files, 'base');
  return repo;
}

/** Lines "1".."n", newline-terminated: an easy file to edit at known lines. */
export function numbered(n: number, edit: Record<number, string> = {}): string {
  return Array.from({ length: n }, (_, i) => `${edit[i + 1] ?? String(i + 1)}\n`).join('');
}

/** A PatchInput for `diff` with fixed author and date. */
export function patchInput(diff: string, subject: string, n = 1): PatchInput {
  return {
    msgid: `<test-${n}-${subject.replace(/\W+/g, '-')}@example.org>`,
    subject,
    authorName: 'Patch Author',
    authorEmail: 'patch.author@example.org',
    date: new Date('2024-01-02T03:04:05Z'),
    message: `${subject}\n\nBody of ${subject}.\n\nSigned-off-by: Patch Author <patch.author@example.org>\n`,
    diff,
  };
}

/**
 * Path -> sha256 (or `link:<target>`) for every file below `dir`, skipping `skip` names at
 * the top level: a cheap before/after snapshot to prove nothing was written.
 */
export async function snapshot(dir: string, skip: string[] = []): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (!rel && skip.includes(e.name)) continue;
      const abs = join(d, e.name);
      if (e.isDirectory()) await walk(abs, r);
      else if (e.isSymbolicLink()) out[r] = `link:${await readlink(abs)}`;
      else {
        const st = await lstat(abs);
        out[r] = `${st.mode.toString(8)}:${createHash('sha256').update(await readFile(abs)).digest('hex')}`;
      }
    }
  };
  await walk(dir, '');
  return out;
}

/**
 * Commits `steps` one after another on a scratch branch started at `base`, returns each
 * step's `git diff` (abbreviated `index` lines, as in mailed patches), then goes back to the
 * branch it was on and deletes the scratch branch. The blobs stay in the object database,
 * which is what a 3-way fallback needs.
 */
export async function seriesDiffs(repo: TestRepo, base: string, steps: Record<string, string | Buffer | null>[]): Promise<string[]> {
  const back = await repo.git('symbolic-ref', '--short', 'HEAD');
  await repo.git('checkout', '-q', '-b', 'scratch-series', base);
  const diffs: string[] = [];
  let prev = base;
  for (const [i, files] of steps.entries()) {
    const c = await repo.commit(files, `step ${i + 1}`);
    diffs.push(await repo.gitRaw('diff', '--binary', prev, c));
    prev = c;
  }
  await repo.git('checkout', '-q', back);
  await repo.git('branch', '-q', '-D', 'scratch-series');
  return diffs;
}
