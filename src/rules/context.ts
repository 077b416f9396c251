import { git, gitOk, makeWorkspace, type GitOptions } from '../apply/git.js';
import { parseDiff } from '../apply/safety.js';
import type { ApplyResult, ParsedFile } from '../apply/types.js';
import { lineDiff } from './linediff.js';
import type { ChangedFile, Report, RuleContext } from './types.js';

/** One patch's view, before `report` is bound. */
export type PatchView = Omit<RuleContext, 'report'>;

/** Added/removed line sets and added text of one file diff (from hunks with exact line numbers). */
export function changedFile(f: ParsedFile): ChangedFile {
  const added = new Set<number>();
  const removed = new Set<number>();
  const addedText = new Map<number, string>();
  for (const h of f.hunks) {
    let o = h.oldStart;
    let n = h.newStart;
    for (const l of h.lines) {
      const c = l[0];
      if (c === '+') {
        added.add(n);
        addedText.set(n, l.slice(1));
        n++;
      } else if (c === '-') {
        removed.add(o);
        o++;
      } else if (c === ' ' || l === '') {
        o++;
        n++;
      }
    }
  }
  const status = f.change === 'added' ? 'added' : f.change === 'deleted' ? 'deleted' : f.change === 'renamed' ? 'renamed' : 'modified';
  return { path: (f.newPath ?? f.oldPath)!, oldPath: f.oldPath, status, added, removed, addedText };
}

/** A view built from two in-memory versions of some files (rule tests, and anything without git). */
export function viewFromSources(
  patch: PatchView['patch'],
  files: Record<string, { before: string | null; after: string | null }>,
): PatchView {
  const changed: ChangedFile[] = [];
  for (const [path, v] of Object.entries(files)) {
    const d = lineDiff(v.before ?? '', v.after ?? '');
    const lines = (v.after ?? '').split('\n');
    const addedText = new Map<number, string>();
    for (const n of d.added) addedText.set(n, lines[n - 1] ?? '');
    changed.push({
      path,
      oldPath: v.before === null ? null : path,
      status: v.before === null ? 'added' : v.after === null ? 'deleted' : 'modified',
      added: d.added,
      removed: d.removed,
      addedText,
    });
  }
  return {
    patch,
    applied: true,
    files: changed,
    before: (p) => files[p]?.before ?? null,
    after: (p) => files[p]?.after ?? null,
  };
}

async function readBlobs(opts: GitOptions, specs: string[]): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>();
  if (specs.length === 0) return out;
  // One cat-file for all of them; a missing object answers "<spec> missing".
  const r = await git(['cat-file', '--batch'], { ...opts, input: specs.join('\n') + '\n', maxOutput: 512 * 1024 * 1024 });
  const buf = Buffer.from(r.stdout, 'latin1');
  let pos = 0;
  for (const spec of specs) {
    const nl = buf.indexOf(0x0a, pos);
    const head = buf.subarray(pos, nl).toString('latin1');
    pos = nl + 1;
    const m = /^[0-9a-f]+ blob (\d+)$/.exec(head);
    if (!m) {
      out.set(spec, null);
      continue;
    }
    const size = Number(m[1]);
    out.set(spec, buf.subarray(pos, pos + size).toString('utf8'));
    pos += size + 1;
  }
  return out;
}

/**
 * One view per patch of an apply result: from git objects when the series
 * applied (exact line numbers even after a 3-way or fuzzy apply), from the
 * patch's own hunks when it did not (then only the added text is known).
 */
export async function viewsFromApply(tree: string, result: ApplyResult): Promise<PatchView[]> {
  const views: PatchView[] = [];
  const meta = (i: number) => {
    const p = result.patches[i]!;
    return { msgid: p.msgid ?? `patch-${p.index}`, index: p.index, subject: p.subject ?? '' };
  };
  const appliedAll = result.base !== null && result.patches.every((p) => p.status === 'missing' || p.commit !== null || p.status === 'already-applied');
  if (!appliedAll) {
    result.patches.forEach((p, i) => {
      if (p.status === 'missing') return;
      views.push({ patch: meta(i), applied: false, files: p.files.map(changedFile), before: () => null, after: () => null });
    });
    return views;
  }
  const ws = await makeWorkspace('vfio-review-rules-');
  try {
    const gitDir = (await gitOk(['rev-parse', '--absolute-git-dir'], { cwd: tree, home: ws.home })).trim();
    const opts: GitOptions = { gitDir, workTree: ws.workTree, cwd: ws.workTree, home: ws.home };
    let parent = result.base!.commit;
    for (let i = 0; i < result.patches.length; i++) {
      const p = result.patches[i]!;
      if (!p.commit) continue;
      const diff = await gitOk(['diff', '-U0', '--no-color', '--no-ext-diff', '-M', parent, p.commit], opts);
      const files = parseDiff(diff).files.map(changedFile);
      const specs: string[] = [];
      for (const f of files) {
        if (f.oldPath) specs.push(`${parent}:${f.oldPath}`);
        if (f.status !== 'deleted') specs.push(`${p.commit}:${f.path}`);
      }
      const blobs = await readBlobs(opts, specs);
      const before = new Map(files.map((f) => [f.path, f.oldPath ? (blobs.get(`${parent}:${f.oldPath}`) ?? null) : null]));
      const commit = p.commit;
      views.push({
        patch: meta(i),
        applied: true,
        files,
        before: (path) => before.get(path) ?? null,
        after: (path) => blobs.get(`${commit}:${path}`) ?? null,
      });
      parent = p.commit;
    }
    return views;
  } finally {
    await ws.dispose();
  }
}

export type { Report };
