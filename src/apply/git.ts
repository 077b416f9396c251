import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ApplyErrorCode } from './types.js';

/** A failure of the machinery (not of a patch): the tree is not a repository, git itself broke. */
export class ApplyError extends Error {
  readonly code: ApplyErrorCode;
  constructor(code: ApplyErrorCode, message: string, opts: { cause?: unknown } = {}) {
    super(message, opts);
    this.name = 'ApplyError';
    this.code = code;
  }
}

/** What one git (or other) process did. Output is decoded as UTF-8; patches and paths in the kernel are UTF-8. */
export interface ProcResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** Output beyond `maxOutput` bytes was dropped. */
  truncated: boolean;
}

/** How to run one git command. */
export interface GitOptions {
  /** The repository's git directory, passed as `--git-dir`, so discovery never walks up from `cwd`. */
  gitDir?: string;
  /**
   * Passed as `--work-tree`. The apply engine points it at an empty private directory: every
   * command it runs is `--cached` or object-only, and if one ever tried to touch a work tree it
   * would land in the throwaway directory, never in the user's checkout.
   */
  workTree?: string;
  cwd: string;
  /** Private HOME; git reads `$HOME/.gitconfig` only when GIT_CONFIG_GLOBAL is unset, but ssh, gpg and credential helpers would read more. */
  home: string;
  input?: string | Buffer;
  /** Extra environment (GIT_INDEX_FILE, GIT_AUTHOR_*); everything else is the fixed minimal set. */
  env?: Record<string, string>;
  timeoutMs?: number;
  maxOutput?: number;
}

/** Default wall-clock limit for one git command; a kernel-sized `git add -A` passes its own. */
export const GIT_TIMEOUT_MS = 120_000;
const MAX_OUTPUT = 16 * 1024 * 1024;

/**
 * `-c` settings for every git command the apply engine runs. The repository's own config
 * (`.git/config`) is still read, so anything in it that could run a program is pinned here.
 * Clean/smudge/process filters (`filter.*`, including LFS) are not pinned: they only run when
 * a file moves between a work tree and the index, and nothing here ever checks out or reads a
 * work tree (`git apply --cached` reads and writes blobs directly).
 */
export const HARDENING_CONFIG: readonly string[] = [
  '-c', 'core.hooksPath=/dev/null',
  '-c', 'core.attributesFile=/dev/null',
  '-c', 'core.fsmonitor=false',
  // A split index keeps its shared part as $GIT_DIR/sharedindex.*, i.e. in the user's repository,
  // wherever GIT_INDEX_FILE points; a repository that turns it on must not make us write there.
  '-c', 'core.splitIndex=false',
  '-c', 'protocol.allow=never',
  // commit-tree honours commit.gpgSign and would run gpg.program.
  '-c', 'commit.gpgSign=false',
  // Writing many loose objects may otherwise start a background gc or maintenance run.
  '-c', 'gc.auto=0',
  '-c', 'maintenance.auto=false',
  // Kernel patches routinely carry whitespace damage; a repository's apply.whitespace=error must not decide.
  '-c', 'apply.whitespace=nowarn',
  '-c', 'core.quotePath=false',
];

/**
 * The whole environment a git child gets: nothing is inherited but PATH, so a caller's
 * GIT_DIR, GIT_OBJECT_DIRECTORY, GIT_EXEC_PATH, GIT_SSH_COMMAND and the like cannot leak in.
 */
export function hermeticEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: home,
    LANG: 'C',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: '/bin/false',
    ...extra,
  };
}

/**
 * Runs `cmd` with an argument array (never a shell), feeding `input` on stdin, collecting
 * output up to a limit, and killing the process with SIGKILL on timeout.
 */
export function run(
  cmd: string,
  args: readonly string[],
  opts: { cwd: string; env: Record<string, string>; input?: string | Buffer; timeoutMs?: number; maxOutput?: number },
): Promise<ProcResult> {
  const max = opts.maxOutput ?? MAX_OUTPUT;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    let truncated = false;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? GIT_TIMEOUT_MS);
    child.stdout.on('data', (b: Buffer) => {
      if (outLen + b.length > max) truncated = true;
      else out.push(b);
      outLen += b.length;
    });
    child.stderr.on('data', (b: Buffer) => {
      if (errLen + b.length > max) truncated = true;
      else err.push(b);
      errLen += b.length;
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
        truncated,
      });
    });
    // A child that exits without reading all of stdin (e.g. git apply rejecting early) raises EPIPE.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** The full argument vector for one git command: repository options, then the hardening, then `args`. */
export function gitArgv(args: readonly string[], opts: Pick<GitOptions, 'gitDir' | 'workTree'>): string[] {
  const pre: string[] = [];
  if (opts.gitDir) pre.push(`--git-dir=${opts.gitDir}`);
  if (opts.workTree) pre.push(`--work-tree=${opts.workTree}`);
  return ['--no-pager', ...pre, ...HARDENING_CONFIG, ...args];
}

/** Runs git with the hardening config and the hermetic environment. */
export function git(args: readonly string[], opts: GitOptions): Promise<ProcResult> {
  const runOpts: Parameters<typeof run>[2] = {
    cwd: opts.cwd,
    env: hermeticEnv(opts.home, opts.env),
    timeoutMs: opts.timeoutMs ?? GIT_TIMEOUT_MS,
  };
  if (opts.input !== undefined) runOpts.input = opts.input;
  if (opts.maxOutput !== undefined) runOpts.maxOutput = opts.maxOutput;
  return run('git', gitArgv(args, opts), runOpts);
}

/**
 * Starts a long-running git command (e.g. `cat-file --batch`) with the same argument vector
 * and environment as {@link git}; the caller owns the child and its streams.
 */
export function spawnGit(args: readonly string[], opts: GitOptions): ChildProcessWithoutNullStreams {
  return spawn('git', gitArgv(args, opts), { cwd: opts.cwd, env: hermeticEnv(opts.home, opts.env), stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Like {@link git} but throws on a non-zero exit; returns trimmed stdout. */
export async function gitOk(args: readonly string[], opts: GitOptions): Promise<string> {
  const r = await git(args, opts);
  if (r.code !== 0) throw new Error(describeFailure(['git', ...args], r));
  return r.stdout.trim();
}

/** One line naming the command, exit status and the first line of stderr. */
export function describeFailure(cmd: readonly string[], r: ProcResult): string {
  const why = r.timedOut ? 'timed out' : r.signal ? `killed by ${r.signal}` : `exit ${r.code}`;
  const first = r.stderr.split('\n').find((l) => l.trim() !== '') ?? '';
  return `${cmd.slice(0, 3).join(' ')}: ${why}${first ? `: ${first}` : ''}`;
}

/** A private temporary directory with a HOME and an empty work tree inside; `dispose` removes it all. */
export interface Workspace {
  dir: string;
  home: string;
  /** Always empty: passed as `--work-tree` so nothing can reach a real checkout. */
  workTree: string;
  dispose(): Promise<void>;
}

/** Creates a {@link Workspace} under the system temp dir (mode 0700, as mkdtemp creates it). */
export async function makeWorkspace(prefix = 'vfio-review-'): Promise<Workspace> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const home = join(dir, 'home');
  const workTree = join(dir, 'wt');
  await mkdir(home);
  await mkdir(workTree);
  return { dir, home, workTree, dispose: () => rm(dir, { recursive: true, force: true }) };
}
