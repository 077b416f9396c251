/**
 * Which lines of the series' final tree each patch wrote: line provenance carried through the
 * patches in order, so a finding is attributed to the patch that introduced the line it points at
 * rather than to whichever patch last touched the file.
 *
 * Each patch's file diff gives the removed pre-image lines and the added post-image lines; the
 * unchanged lines of the two images pair up in order, which is how a line written by patch 1 keeps
 * its origin through patch 2's edits elsewhere in the file.
 */
import type { SeriesChanges } from './synth.js';

/** One file as one patch changes it (what a rule view's ChangedFile and texts give). */
export interface PatchFileChange {
  path: string;
  oldPath: string | null;
  status: 'added' | 'modified' | 'deleted' | 'renamed';
  /** Post-image line numbers the patch added. */
  added: ReadonlySet<number>;
  /** Pre-image line numbers the patch removed. */
  removed: ReadonlySet<number>;
  /** Line counts of the pre- and post-image (0 when absent). */
  beforeLines: number;
  afterLines: number;
}

/** One patch of the series. */
export interface PatchChange {
  msgid: string;
  files: PatchFileChange[];
}

/** {@link SeriesChanges} plus the files they concern. */
export interface SeriesDelta extends SeriesChanges {
  /** Files present after the series that some patch changed (final paths). */
  files: string[];
  /** Final path -> base path, for files renamed by the series. */
  basePath: Map<string, string>;
}

interface FileState {
  prov: (string | null)[];
  removals: Map<number, string>;
  basePath: string | null;
}

/** Line count of a text as the diffs count lines (a trailing newline ends the last line). */
export function lineCount(text: string | null): number {
  if (text === null || text === '') return 0;
  const n = text.split('\n').length;
  return text.endsWith('\n') ? n - 1 : n;
}

/** Map old line numbers to new ones: unchanged lines pair in order; a removed line maps to minus the new line it precedes. */
function mapLines(f: PatchFileChange): Int32Array {
  const out = new Int32Array(f.beforeLines + 1);
  let i = 1;
  let j = 1;
  while (i <= f.beforeLines) {
    if (f.removed.has(i)) {
      out[i++] = -j;
      continue;
    }
    while (f.added.has(j)) j++;
    out[i++] = j <= f.afterLines ? j++ : -j;
  }
  return out;
}

/** Carry line provenance through the series' patches, in order. */
export function seriesDelta(patches: readonly PatchChange[]): SeriesDelta {
  const state = new Map<string, FileState>();
  for (const p of patches) {
    for (const f of p.files) {
      const prevPath = f.oldPath ?? f.path;
      const prev = state.get(prevPath);
      if (prev) state.delete(prevPath);
      if (f.status === 'deleted') continue;
      const oldProv = prev?.prov ?? new Array<string | null>(f.beforeLines).fill(null);
      const map = mapLines(f);
      const prov = new Array<string | null>(f.afterLines).fill(null);
      const removals = new Map<number, string>();
      for (let i = 1; i <= f.beforeLines; i++) {
        const j = map[i]!;
        if (j > 0) prov[j - 1] = oldProv[i - 1] ?? null;
        else removals.set(Math.max(1, Math.min(-j, f.afterLines)), p.msgid);
      }
      // Earlier removal points move with their line (or to where it went).
      for (const [line, msgid] of prev?.removals ?? []) {
        const j = line <= f.beforeLines ? map[line]! : f.afterLines + 1;
        const to = Math.max(1, Math.min(Math.abs(j), f.afterLines));
        if (!removals.has(to)) removals.set(to, msgid);
      }
      for (const j of f.added) if (j >= 1 && j <= f.afterLines) prov[j - 1] = p.msgid;
      state.set(f.path, { prov, removals, basePath: prev ? prev.basePath : f.status === 'added' ? null : prevPath });
    }
  }
  const lines = new Map<string, Map<number, string>>();
  const removals = new Map<string, Map<number, string>>();
  const basePath = new Map<string, string>();
  for (const [path, s] of state) {
    const m = new Map<number, string>();
    s.prov.forEach((msgid, i) => {
      if (msgid) m.set(i + 1, msgid);
    });
    lines.set(path, m);
    removals.set(path, s.removals);
    if (s.basePath && s.basePath !== path) basePath.set(path, s.basePath);
  }
  return { patches: patches.map((p) => p.msgid), lines, removals, files: [...state.keys()].sort(), basePath };
}
