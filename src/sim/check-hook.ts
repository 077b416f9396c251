/**
 * The simulator's part of `check`: the series' line provenance from the rule views, readers over
 * the base and patched commits, {@link synthesise}, and its findings in the check's shape
 * (`sim/<verdict>`, with the lockdep-style trace). Called once per series from checkSeries.
 */
import type { ApplyResult } from '../apply/types.js';
import type { Finding } from '../check/check.js';
import { baseReader, rulesWorkspace, seriesReader, treeGitDir, treeReader, type PatchView } from '../rules/context.js';
import { lineCount, seriesDelta, type PatchChange } from './changes.js';
import { synthesise, type SimFinding, type SimKind, type SynthLimits } from './synth.js';

/** Options of {@link simCheck}. */
export interface SimCheckOptions {
  limits?: Partial<SynthLimits>;
  log?: (line: string) => void;
}

/** Findings, and what could not be decided (`bounded: ...`, `error: ...`): notes, never findings. */
export interface SimCheckResult {
  findings: Finding[];
  notes: string[];
}

const isC = (p: string): boolean => /\.[ch]$/.test(p);

const SUGGESTION: Record<SimKind, string> = {
  deadlock: 'take the two locks in the same order on both paths (or drop the outer one before taking the inner)',
  'use-after-free': 'hold a reference or the lock that the freeing path takes for as long as the object is used',
  'stale-pointer': 'look the object up again after retaking the lock, or keep a reference across the unlocked section',
};

/** The series' changes as {@link seriesDelta} wants them, from the rule views. */
export function patchChanges(views: readonly PatchView[]): PatchChange[] {
  return views.map((v) => ({
    msgid: v.patch.msgid,
    files: v.files.map((f) => ({
      path: f.path, oldPath: f.oldPath, status: f.status, added: f.added, removed: f.removed,
      beforeLines: f.status === 'added' ? 0 : lineCount(v.before(f.path)), afterLines: f.status === 'deleted' ? 0 : lineCount(v.after(f.path)),
    })),
  }));
}

/** A synthesised finding in the check's shape. */
export function toFinding(f: SimFinding): Finding {
  return {
    rule: `sim/${f.kind}`,
    severity: f.kind === 'deadlock' ? 'error' : 'warning',
    category: f.kind === 'deadlock' ? 'lock-order' : 'lifetime-uaf',
    patch: f.patch,
    file: f.file,
    line: f.line,
    function: f.fn,
    message: f.message,
    trace: f.trace,
    confidence: 'moderate',
    key: f.key,
    evidence: [
      ...f.pair.map((e) => `${e.name}() ${e.file}:${e.line} (${e.member ? `.${e.member}` : e.kind})`),
      ...f.also.map((e) => `also with ${e.name}() ${e.file}:${e.line} (${e.member ? `.${e.member}` : e.kind})`),
    ],
    suggestion: SUGGESTION[f.kind],
  };
}

/**
 * Run the synthesised scenarios of an applied series. Never throws: a failure is a note. The
 * models are built here, over readers of the base and head commits (the rules' readers), not
 * taken from the rule views: a view's model covers one patch's files, while the pairs need the
 * series' files and the siblings holding the other entry points (ap_bus.c for vfio_ap).
 */
export async function simCheck(tree: string, result: ApplyResult, views: readonly PatchView[], opts: SimCheckOptions = {}): Promise<SimCheckResult> {
  if (!result.base || !result.head || views.length === 0 || views.some((v) => !v.applied)) return { findings: [], notes: [] };
  const delta = seriesDelta(patchChanges(views).map((p) => ({ ...p, files: p.files.filter((f) => isC(f.path) || (f.oldPath !== null && isC(f.oldPath))) })));
  const files = delta.files.filter(isC);
  if (files.length === 0) return { findings: [], notes: [] };
  try {
    // The rules' readers: the base through the process's shared reader (what the rules read is not
    // read again), the head as the base plus what the series changed.
    const ws = await rulesWorkspace();
    const gitDir = await treeGitDir(tree);
    const base = baseReader(gitDir, result.base.commit, ws.home);
    const headFiles = treeReader(gitDir, result.head, ws.home);
    const changed = [...new Set(views.flatMap((v) => v.files.flatMap((f) => (f.oldPath ? [f.path, f.oldPath] : [f.path]))))];
    headFiles.prefetch?.(changed);
    const head = seriesReader(base, new Map(changed.map((p) => [p, headFiles.readFile(p)])));
    const r = await synthesise({
      base, head,
      files, basePath: delta.basePath, changes: delta,
      ...(opts.limits ? { limits: opts.limits } : {}), ...(opts.log ? { log: opts.log } : {}),
    });
    return { findings: r.findings.map(toFinding), notes: r.notes.map((n) => `${n.kind}: ${n.pair ? `${n.pair}: ` : ''}${n.detail}`) };
  } catch (err) {
    return { findings: [], notes: [`error: ${(err as Error).message}`] };
  }
}
