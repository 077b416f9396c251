/** A {@link SourceReader} over a kernel work tree on disk (the CLI's `--tree DIR`, tests' 6.1 tree). */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SourceReader } from '../cmodel/index.js';

/** Read files of the tree at `root`; `replace` overrides some paths' text (a patched variant). */
export function treeReader(root: string, replace: Readonly<Record<string, string>> = {}): SourceReader {
  return {
    readFile: (p) => {
      if (Object.hasOwn(replace, p)) return replace[p]!;
      try {
        return readFileSync(join(root, p), 'utf8');
      } catch {
        return null;
      }
    },
    list: (d) => {
      try {
        return readdirSync(join(root, d));
      } catch {
        return [];
      }
    },
  };
}
