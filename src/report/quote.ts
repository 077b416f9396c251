import { parseDiff } from '../apply/safety.js';
import type { ParsedFile, ParsedHunk } from '../apply/types.js';
import { bodyText } from './text.js';

/** Where in a patch a finding's line sits: the hunk, and the hunk lines to quote. */
export interface QuoteSpot {
  file: ParsedFile;
  fileIndex: number;
  hunk: ParsedHunk;
  hunkIndex: number;
  /** Indices into hunk.lines, inclusive. */
  from: number;
  to: number;
}

export const ELISION = '[ ... ]';

/** Files and hunks of a patch mail's diff; empty when there is none or it cannot be read. */
export function patchFiles(diff: string | null): ParsedFile[] {
  if (!diff) return [];
  try {
    return parseDiff(diff).files;
  } catch {
    return []; // an unreadable diff only costs the quote; the finding is still reported
  }
}

/**
 * The lines of the hunk that a finding on post-image line `line` of `path` concerns: that line and up
 * to `context` post-image lines before it, with removed lines among them. Null when the line is not in
 * any hunk of the patch (an interprocedural finding pointing at unchanged code).
 */
export function locate(files: ParsedFile[], path: string, line: number, context = 2): QuoteSpot | null {
  const fileIndex = files.findIndex((f) => f.newPath === path || (f.newPath === null && f.oldPath === path));
  const file = files[fileIndex];
  if (!file) return null;
  for (const [hunkIndex, hunk] of file.hunks.entries()) {
    if (hunk.newLines === 0 || line < hunk.newStart || line >= hunk.newStart + hunk.newLines) continue;
    let n = hunk.newStart - 1;
    const postLine: (number | null)[] = hunk.lines.map((l) => (l.startsWith('-') || l.startsWith('\\') ? null : ++n));
    const to = postLine.indexOf(line);
    if (to < 0) return null;
    let from = to;
    for (let i = to - 1; i >= 0; i--) {
      const p = postLine[i];
      if (p !== null && p !== undefined && p < line - context) break;
      from = i;
    }
    // Removed lines just before the window show what the new line replaced; a long removed block is
    // left out (the elision marks it) rather than burying the line the finding is about.
    let removed = 0;
    while (from + removed < to && postLine[from + removed] === null) removed++;
    if (removed > 3) from += removed;
    return { file, fileIndex, hunk, hunkIndex, from, to };
  }
  return null;
}

const q = (l: string): string => (l === '' ? '>' : `> ${bodyText(l)}`);

/**
 * Quote lines for a run of spots in one patch, in order, as a reviewer trims them: the file's
 * `diff --git` line once per file, the hunk header once per hunk, "[ ... ]" wherever lines are left
 * out. `prev` is the spot quoted just before (or null), so consecutive findings in one hunk continue
 * the quote instead of repeating it.
 */
export function quoteLines(spot: QuoteSpot, prev: QuoteSpot | null): string[] {
  const out: string[] = [];
  const sameFile = prev !== null && prev.fileIndex === spot.fileIndex;
  const sameHunk = sameFile && prev.hunkIndex === spot.hunkIndex;
  if (!sameFile) {
    const a = spot.file.oldPath ?? spot.file.newPath!;
    const b = spot.file.newPath ?? spot.file.oldPath!;
    out.push(q(`diff --git a/${a} b/${b}`), `> ${ELISION}`);
  }
  let from = spot.from;
  if (sameHunk) {
    from = Math.max(from, prev.to + 1);
    if (from > prev.to + 1) out.push(`> ${ELISION}`);
  } else {
    if (sameFile) out.push(`> ${ELISION}`);
    out.push(q(`${spot.hunk.header}${spot.hunk.section ? ` ${spot.hunk.section}` : ''}`));
    if (from > 0) out.push(`> ${ELISION}`);
  }
  for (let i = from; i <= spot.to; i++) out.push(q(spot.hunk.lines[i]!));
  return out;
}
