/**
 * The sandbox of the malformed-patch campaign: one temp directory holding a small git repository
 * (`repo/`), sentinel files beside it (`outside/`), and the temp directory the apply engine makes
 * its workspaces in (`tmp/`). Every path a hostile patch aims at (`../`, absolute, `.git/`) is
 * inside the sandbox, so one snapshot of it before and after a case shows any write outside the
 * workspace. The repository holds a few hand-written files of every kind (text, no final newline,
 * CRLF, executable, binary, symlinks, one pointing out of the repository) and the pre-images of
 * real patches from the corpus, rebuilt from their hunks, so that those patches apply.
 */
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { git, gitOk, type GitOptions } from '../apply/git.js';
import { checkPatch } from '../apply/safety.js';
import type { ParsedFile } from '../apply/types.js';
import { parseMessage } from '../mail/parse.js';

export interface SeedDiff {
  name: string;
  diff: string;
  origin: 'git' | 'corpus';
}

export interface Sandbox {
  root: string;
  repo: string;
  outside: string;
  /** Given to the apply engine as TMPDIR: its workspaces go here, and must be gone after each case. */
  tmp: string;
  seeds: SeedDiff[];
  /** Path -> type, mode and content hash of everything in the sandbox but the object store (which applying may add to). */
  snapshot(): Promise<Map<string, string>>;
  /** Whether `oid` names a commit in the repository. */
  hasCommit(oid: string): Promise<boolean>;
  dispose(): Promise<void>;
}

const IDENT = {
  GIT_AUTHOR_NAME: 'Fuzz Base', GIT_AUTHOR_EMAIL: 'base@fuzz.invalid', GIT_AUTHOR_DATE: '@1700000000 +0000',
  GIT_COMMITTER_NAME: 'Fuzz Base', GIT_COMMITTER_EMAIL: 'base@fuzz.invalid', GIT_COMMITTER_DATE: '@1700000000 +0000',
};

const numbered = (n: number, tag: string): string => Array.from({ length: n }, (_, i) => `${tag} line ${i + 1};\n`).join('');
const BLOB = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7919) % 251));

/** Base content: path -> bytes, or a symlink target. */
const HAND: Record<string, string | Buffer | { link: string }> = {
  'drivers/vfio/vfio_main.c': numbered(80, 'int vfio'),
  'drivers/vfio/old.c': numbered(12, 'int old'),
  'drivers/vfio/rename_me.c': numbered(30, 'int moved'),
  'drivers/iommu/iommu.c': numbered(60, 'int iommu'),
  'scripts/run.sh': '#!/bin/sh\necho run\n',
  'scripts/build.sh': '#!/bin/sh\necho build\n',
  'firmware/blob.bin': BLOB,
  'docs/no-eol.txt': 'first\nsecond\nlast line without a newline',
  'docs/crlf.txt': 'one\r\ntwo\r\nthree\r\n',
  'link': { link: 'drivers/vfio/vfio_main.c' },
  'escape': { link: '../outside' },
};

/** Edits from the base, each turned into one seed diff by git itself. */
const EDITS: { name: string; flags: string[]; files: Record<string, string | Buffer | null | { link: string } | { mode: number }> }[] = [
  { name: 'modify', flags: [], files: { 'drivers/vfio/vfio_main.c': numbered(80, 'int vfio').replace('line 10;', 'line ten;').replace('line 50;\n', 'line 50;\nadded;\n') } },
  { name: 'add', flags: [], files: { 'drivers/vfio/new.c': numbered(5, 'int new') } },
  { name: 'delete', flags: [], files: { 'drivers/vfio/old.c': null } },
  { name: 'rename', flags: ['-M'], files: { 'drivers/vfio/rename_me.c': null, 'drivers/vfio/renamed.c': numbered(30, 'int moved').replace('line 3;', 'line three;') } },
  { name: 'copy', flags: ['-C', '--find-copies-harder'], files: { 'drivers/iommu/iommu_copy.c': numbered(60, 'int iommu').replace('line 7;', 'line seven;') } },
  { name: 'mode', flags: [], files: { 'scripts/run.sh': { mode: 0o644 }, 'scripts/build.sh': { mode: 0o755 } } },
  { name: 'binary', flags: [], files: { 'firmware/blob.bin': Buffer.concat([BLOB, BLOB.subarray(0, 500)]), 'firmware/new.bin': BLOB.subarray(100, 900) } },
  { name: 'symlink', flags: [], files: { 'drivers/vfio/evil': { link: '../../outside/pwned' } } },
  { name: 'no-eol', flags: [], files: { 'docs/no-eol.txt': 'first\nsecond changed\nlast line still without a newline' } },
  { name: 'crlf', flags: [], files: { 'docs/crlf.txt': 'one\r\ntwo and a half\r\nthree\r\n' } },
  { name: 'empty-file', flags: [], files: { 'drivers/vfio/empty.c': '' } },
];

/**
 * The file a corpus patch applies to, rebuilt from its hunks: each hunk's old side (context and
 * removed lines) at its line number, filler lines between hunks. Null when the hunks overlap.
 */
function preImage(f: ParsedFile): string | null {
  const lines: string[] = [];
  let noEol = false;
  for (const h of [...f.hunks].sort((a, b) => a.oldStart - b.oldStart)) {
    const at = h.oldLines === 0 ? h.oldStart : h.oldStart - 1;
    if (lines.length > at) return null;
    while (lines.length < at) lines.push(`/* filler ${lines.length + 1} */`);
    let last = '';
    for (const l of h.lines) {
      if (l.startsWith('\\')) {
        if (last !== '+') noEol = true;
        continue;
      }
      last = l[0] ?? ' ';
      if (l === '' || l[0] === ' ' || l[0] === '-') lines.push(l.slice(1));
    }
  }
  if (lines.length === 0) return null;
  return lines.join('\n') + (noEol ? '' : '\n');
}

/** Up to `max` corpus patches that modify text files only, with the pre-images they apply to. */
async function corpusPatches(mail: readonly string[], max: number, taken: Set<string>): Promise<{ seeds: SeedDiff[]; files: Record<string, string> }> {
  const seeds: SeedDiff[] = [];
  const files: Record<string, string> = {};
  for (const m of mail) {
    if (seeds.length >= max) break;
    let diff: string | null;
    try {
      diff = (await parseMessage(Buffer.from(m, 'latin1'))).diff;
    } catch {
      continue;
    }
    if (!diff || diff.length > 64 * 1024) continue;
    const v = checkPatch(diff);
    if (!v.ok || v.files.length === 0) continue;
    const usable = v.files.every((f) => f.change === 'modified' && !f.binary && f.oldPath && f.oldPath === f.newPath && f.hunks.length && !taken.has(f.oldPath));
    if (!usable) continue;
    const pre = v.files.map((f) => [f.oldPath!, preImage(f)] as const);
    if (pre.some(([, c]) => c === null) || new Set(pre.map(([p]) => p)).size !== pre.length) continue;
    for (const [p, c] of pre) {
      files[p] = c!;
      taken.add(p);
    }
    seeds.push({ name: `corpus-${seeds.length}`, diff, origin: 'corpus' });
  }
  return { seeds, files };
}

async function put(root: string, path: string, content: string | Buffer | { link: string } | { mode: number } | null): Promise<void> {
  const abs = join(root, path);
  if (content === null) return rm(abs, { force: true });
  if (typeof content === 'object' && 'mode' in content) return chmod(abs, content.mode);
  await mkdir(dirname(abs), { recursive: true });
  await rm(abs, { force: true });
  if (typeof content === 'object' && 'link' in content) return symlink(content.link, abs);
  await writeFile(abs, content);
  if (path.endsWith('run.sh')) await chmod(abs, 0o755);
}

/**
 * Creates the sandbox: the repository with its base commit on `main`, one seed diff per edit in
 * EDITS (made by `git diff --binary` from a commit that is then left dangling, so its blobs are
 * there for a 3-way merge), and up to `maxCorpus` patches taken from `mail` (latin1 messages).
 */
export async function makeSandbox(mail: readonly string[], maxCorpus = 30): Promise<Sandbox> {
  const root = await mkdtemp(join(tmpdir(), 'vr-patch-fuzz-'));
  const repo = join(root, 'repo');
  const outside = join(root, 'outside');
  const tmp = join(root, 'tmp');
  const home = join(root, 'home');
  for (const d of [repo, outside, tmp, home]) await mkdir(d);
  await writeFile(join(outside, 'sentinel.txt'), 'untouched\n');
  await writeFile(join(root, 'sentinel.txt'), 'untouched\n');
  const opts: GitOptions = { gitDir: join(repo, '.git'), workTree: repo, cwd: repo, home, env: IDENT };
  const run = (...args: string[]): Promise<string> => gitOk(args, opts);
  await gitOk(['init', '-q', '--initial-branch=main', repo], { cwd: root, home });

  const corpus = await corpusPatches(mail, maxCorpus, new Set(Object.keys(HAND)));
  for (const [p, c] of Object.entries({ ...HAND, ...corpus.files })) await put(repo, p, c);
  await run('add', '-A');
  await run('commit', '-q', '-m', 'base');
  const base = await run('rev-parse', 'HEAD');

  const seeds: SeedDiff[] = [];
  for (const e of EDITS) {
    await run('checkout', '-q', '--detach', base);
    for (const [p, c] of Object.entries(e.files)) await put(repo, p, c);
    await run('add', '-A');
    await run('commit', '-q', '-m', e.name);
    const r = await git(['diff', '--binary', ...e.flags, base, 'HEAD'], opts);
    seeds.push({ name: e.name, diff: r.stdout, origin: 'git' });
  }
  await run('checkout', '-q', 'main');
  seeds.push(...corpus.seeds);

  const snapshot = async (): Promise<Map<string, string>> => {
    const out = new Map<string, string>();
    const skip = join(repo, '.git', 'objects');
    const walk = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        const abs = join(dir, e.name);
        if (abs === skip) continue;
        const rel = abs.slice(root.length + 1);
        const st = await lstat(abs);
        if (e.isSymbolicLink()) out.set(rel, `link:${await readlink(abs)}`);
        else if (e.isDirectory()) {
          out.set(rel, `dir:${st.mode.toString(8)}`);
          await walk(abs);
        } else out.set(rel, `file:${st.mode.toString(8)}:${createHash('sha1').update(await readFile(abs)).digest('hex')}`);
      }
    };
    await walk(root);
    return out;
  };
  const hasCommit = async (oid: string): Promise<boolean> => (await git(['cat-file', '-e', `${oid}^{commit}`], opts)).code === 0;
  return { root, repo, outside, tmp, seeds, snapshot, hasCommit, dispose: () => rm(root, { recursive: true, force: true }) };
}
