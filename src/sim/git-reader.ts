/**
 * A {@link SourceReader} over one commit's objects, for building the models of the base and the
 * patched tree without a checkout. Reads are synchronous (the C model reads synchronously), one
 * hermetic `git cat-file` each, cached; a model reads a few dozen files.
 */
import { execFileSync } from 'node:child_process';
import { HARDENING_CONFIG, hermeticEnv } from '../apply/git.js';
import type { SourceReader } from '../cmodel/index.js';

/** Read files of `commit` in the repository at `gitDir`; `home` is a private HOME for git. */
export function gitReader(gitDir: string, commit: string, home: string): SourceReader {
  const cache = new Map<string, string | null>();
  const env = hermeticEnv(home);
  const gitSync = (args: string[]): string | null => {
    try {
      return execFileSync('git', [...HARDENING_CONFIG, '--git-dir', gitDir, ...args], {
        env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'ignore'],
      });
    } catch {
      return null;
    }
  };
  const safe = (p: string): boolean => /^[\w./+-]+$/.test(p) && !p.split('/').includes('..');
  return {
    readFile(path) {
      if (!cache.has(path)) cache.set(path, safe(path) ? gitSync(['cat-file', 'blob', `${commit}:${path}`]) : null);
      return cache.get(path)!;
    },
    // Entry names, as buildModel wants them (it joins them to the directory itself).
    list(dir) {
      const d = dir.replace(/\/$/, '');
      if (!safe(d)) return [];
      const out = gitSync(['ls-tree', '--name-only', `${commit}:${d}`]);
      return out ? out.split('\n').filter(Boolean) : [];
    },
  };
}
