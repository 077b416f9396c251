import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, rmdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { ApplyError, describeFailure, git, gitOk, makeWorkspace, run } from './git.js';

/** What {@link initTreeFromDebian} found or made. */
export interface TreeInitResult {
  dir: string;
  branch: string;
  commit: string;
  /** Debian package version, e.g. `6.1.192-2`. */
  version: string;
  /** False when the tree was already there and nothing was done. */
  created: boolean;
  /** Wall-clock time per step, in milliseconds (empty when nothing was done). */
  timings: Record<string, number>;
}

/** Options for {@link initTreeFromDebian}; the defaults suit the CLI. */
export interface TreeInitOptions {
  /** Branch to create; default `debian/<major.minor>`. */
  branch?: string;
  /** Progress lines; default: written to stderr. */
  log?: (line: string) => void;
}

// Fixed identity and date (the 6.1 release day) so that the same package version gives the
// same commit id on every machine: recorded apply results then name commits anyone can recreate.
const IDENT = { name: 'vfio-review', email: 'vfio-review@localhost', date: '@1670716800 +0000' };
const PKG = /^linux-source-(?<ver>\d+\.\d+)$/;
const INIT_TIMEOUT_MS = 30 * 60_000;

/** Whether a process exists (EPERM: it does, owned by someone else). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Installs `pkg` with apt-get (directly as root, else through `sudo -n`); `apt-get update` only when the first try fails. */
async function aptInstall(pkg: string, log: (l: string) => void): Promise<void> {
  const prefix = process.getuid?.() === 0 ? [] : ['sudo', '-n'];
  const env = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C', DEBIAN_FRONTEND: 'noninteractive' };
  const apt = async (args: string[]): Promise<Awaited<ReturnType<typeof run>>> => {
    const cmd = [...prefix, 'apt-get', ...args];
    log(`running ${cmd.join(' ')}`);
    return run(cmd[0]!, cmd.slice(1), { cwd: '/', env, timeoutMs: INIT_TIMEOUT_MS });
  };
  const install = ['install', '-y', '--no-install-recommends', pkg];
  let r = await apt(install);
  if (r.code === 0) return;
  log(`apt-get install failed (${describeFailure(['apt-get', 'install'], r)}); running apt-get update`);
  const u = await apt(['update']);
  if (u.code !== 0) throw new ApplyError('TREE_INIT', describeFailure([...prefix, 'apt-get', 'update'], u));
  r = await apt(install);
  if (r.code !== 0) throw new ApplyError('TREE_INIT', `${describeFailure([...prefix, 'apt-get', 'install'], r)}\n${r.stdout.slice(-2000)}`);
}

async function packageVersion(pkg: string): Promise<string> {
  const r = await run('dpkg-query', ['-W', '-f=${Version}', pkg], {
    cwd: '/',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' },
  });
  if (r.code !== 0 || !r.stdout.trim()) throw new ApplyError('TREE_INIT', `dpkg-query: ${pkg} is not installed: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/** The commit on `branch` in `dir` when `dir` is a git repository that has one, else null. */
async function existingCommit(dir: string, branch: string, home: string): Promise<{ commit: string; subject: string } | null> {
  if (!existsSync(join(dir, '.git'))) return null;
  const opts = { gitDir: join(dir, '.git'), cwd: dir, home };
  const r = await git(['rev-parse', '--verify', '--quiet', `refs/heads/${branch}^{commit}`], opts);
  if (r.code !== 0) return null;
  const commit = r.stdout.trim();
  const subject = await gitOk(['log', '-1', '--format=%s', commit], opts);
  return { commit, subject };
}

/** Removes staging directories left by runs that died (their pid is in the name). */
async function removeStaleStaging(dir: string): Promise<void> {
  const parent = dirname(dir);
  const prefix = `${basename(dir)}.partial-`;
  for (const name of await readdir(parent)) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length));
    if (Number.isInteger(pid) && !isAlive(pid)) await rm(join(parent, name), { recursive: true, force: true });
  }
}

/**
 * `vfio-review tree init --from-debian linux-source-6.1 DIR`: makes DIR a git repository whose
 * one commit, on branch `debian/6.1` (checked out), is Debian's kernel source package.
 *
 * Installs the package when `/usr/src/<pkg>.tar.xz` is missing, extracts it (top folder
 * stripped) into a staging directory next to DIR, commits every file (ignored ones too: the
 * tree must be the package, byte for byte) with a fixed author, committer and date and the
 * message `<pkg> <debian version>`, then renames the staging directory to DIR, so DIR is either
 * absent or complete. Idempotent: when DIR already has that commit on that branch, it does
 * nothing. Refuses to touch a DIR that is non-empty and not such a tree.
 * Not safe to run twice at once on the same DIR; callers that may race take a lock.
 *
 * @throws ApplyError TREE_INIT when the package cannot be installed, DIR holds something else, or a step fails.
 */
export async function initTreeFromDebian(pkg: string, dir: string, opts: TreeInitOptions = {}): Promise<TreeInitResult> {
  const m = PKG.exec(pkg);
  if (!m?.groups) throw new ApplyError('TREE_INIT', `not a Debian kernel source package name: ${pkg}`);
  const branch = opts.branch ?? `debian/${m.groups.ver}`;
  const log = opts.log ?? ((l: string) => void process.stderr.write(`vfio-review tree: ${l}\n`));
  const target = resolve(dir);
  const tarball = `/usr/src/${pkg}.tar.xz`;
  const timings: Record<string, number> = {};
  const timed = async <T>(step: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const v = await fn();
    timings[step] = Math.round(performance.now() - t0);
    return v;
  };

  const ws = await makeWorkspace('vfio-review-tree-');
  try {
    if (!existsSync(tarball)) await timed('install', () => aptInstall(pkg, log));
    if (!existsSync(tarball)) throw new ApplyError('TREE_INIT', `${pkg} is installed but ${tarball} is missing`);
    const version = await packageVersion(pkg);
    const message = `${pkg} ${version}`;

    const have = await existingCommit(target, branch, ws.home);
    if (have) {
      if (have.subject === message) {
        log(`${target} already holds ${message} at ${have.commit}`);
        return { dir: target, branch, commit: have.commit, version, created: false, timings: {} };
      }
      throw new ApplyError('TREE_INIT', `${target} has branch ${branch} at "${have.subject}", not "${message}"; use another directory`);
    }
    if (existsSync(target)) {
      if ((await readdir(target)).length > 0) throw new ApplyError('TREE_INIT', `${target} exists and is not a ${pkg} tree; refusing to touch it`);
      await rmdir(target);
    }

    await mkdir(dirname(target), { recursive: true });
    await removeStaleStaging(target);
    const staging = `${target}.partial-${process.pid}`;
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging);
    try {
      log(`extracting ${tarball} into ${staging}`);
      await timed('extract', async () => {
        const r = await run('tar', ['-xJf', tarball, '--strip-components=1', '--no-same-owner', '-C', staging], {
          cwd: staging,
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' },
          timeoutMs: INIT_TIMEOUT_MS,
        });
        if (r.code !== 0) throw new ApplyError('TREE_INIT', describeFailure(['tar', '-x', tarball], r));
      });
      const g = { gitDir: join(staging, '.git'), workTree: staging, cwd: staging, home: ws.home, timeoutMs: INIT_TIMEOUT_MS };
      await gitOk(['init', '-q', `--initial-branch=${branch}`, staging], { cwd: staging, home: ws.home });
      log('adding every file to the index (about half a minute for a kernel)');
      // preloadIndex stats files on several threads; fsyncMethod=batch makes object writes one
      // flush per batch where fsync is enabled at all. Measured on 2 cores / 78k files: ~22 s.
      await timed('add', () => gitOk(['-c', 'core.preloadIndex=true', '-c', 'core.fsyncMethod=batch', 'add', '-A', '-f'], g));
      const tree = await timed('write-tree', () => gitOk(['write-tree'], g));
      const commit = await gitOk(['commit-tree', tree, '-m', message], {
        ...g,
        env: {
          GIT_AUTHOR_NAME: IDENT.name,
          GIT_AUTHOR_EMAIL: IDENT.email,
          GIT_AUTHOR_DATE: IDENT.date,
          GIT_COMMITTER_NAME: IDENT.name,
          GIT_COMMITTER_EMAIL: IDENT.email,
          GIT_COMMITTER_DATE: IDENT.date,
        },
      });
      // HEAD already names the branch (init --initial-branch), so this also moves HEAD.
      await gitOk(['update-ref', `refs/heads/${branch}`, commit, ''], g);
      await rename(staging, target);
      log(`${target}: ${message} committed as ${commit} on ${branch} (${JSON.stringify(timings)} ms)`);
      return { dir: target, branch, commit, version, created: true, timings };
    } catch (err) {
      await rm(staging, { recursive: true, force: true });
      throw err;
    }
  } finally {
    await ws.dispose();
  }
}
