import { mkdir, writeFile } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { git, hermeticEnv, makeWorkspace, run, type GitOptions } from '../apply/git.js';
import type { PatchInput } from '../apply/types.js';
import type { RuleFinding } from '../rules/types.js';
import { treeGitDir, type PatchView } from '../rules/context.js';

/** checkpatch types that one of our rules already reports (ours wins: it says why, and where). */
const DUPLICATES: Record<string, string> = { AVOID_BUG: 'bug-on' };

/** Files checkpatch.pl reads next to itself. */
const SUPPORT = ['scripts/checkpatch.pl', 'scripts/spelling.txt', 'scripts/const_structs.checkpatch'];

const BLOCK = /^(?<level>ERROR|WARNING|CHECK):(?<type>[A-Z0-9_]+): (?<msg>.*)\n#\d+: FILE: (?<file>[^\n:]+):(?<line>\d+):/gm;

/**
 * The base tree's own scripts/checkpatch.pl, run on each patch. The script
 * is read from the BASE commit's objects into a private workspace and run
 * there: a patch that edits checkpatch.pl is never executed, and nothing runs
 * inside the user's checkout. Only findings on lines the patch adds are kept.
 */
export async function runCheckpatch(
  tree: string,
  baseCommit: string,
  patches: (PatchInput | null)[],
  views: readonly PatchView[],
): Promise<RuleFinding[]> {
  const ws = await makeWorkspace('vfio-review-checkpatch-');
  try {
    const gitDir = await treeGitDir(tree);
    const opts: GitOptions = { gitDir, workTree: ws.workTree, cwd: ws.workTree, home: ws.home };
    const root = join(ws.dir, 'base');
    for (const path of SUPPORT) {
      const r = await git(['cat-file', 'blob', `${baseCommit}:${path}`], opts);
      if (r.code !== 0) {
        if (path === SUPPORT[0]) return []; // not a kernel tree with checkpatch: nothing to add
        continue;
      }
      await mkdir(dirname(join(root, path)), { recursive: true });
      await writeFile(join(root, path), r.stdout, 'utf8');
    }
    const out: RuleFinding[] = [];
    for (const view of views) {
      const p = patches[view.patch.index - 1];
      if (!p) continue;
      const mail = `From: ${p.authorName} <${p.authorEmail}>\nSubject: [PATCH] ${p.subject.replace(/^\[[^\]]*\]\s*/, '')}\n\n${p.message}\n---\n${p.diff}`;
      const r = await run('perl', [join(root, 'scripts/checkpatch.pl'), '--no-tree', '--show-types', '--no-summary', '--no-signoff', '--quiet', '-'], {
        cwd: root,
        env: hermeticEnv(ws.home),
        input: mail,
        timeoutMs: 60_000,
      });
      for (const m of r.stdout.matchAll(BLOCK)) {
        const g = m.groups!;
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
    }
    return out;
  } finally {
    await ws.dispose();
  }
}
