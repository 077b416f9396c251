/** The code a finding points at, quoted from the patch as posted (not from the tree: the page shows mail). */
import { parseDiff } from '../../apply/safety.js';

export interface QuoteLine {
  /** Line number in the post-image; null for removed lines. */
  no: number | null;
  /** The line with its diff marker (' ', '+', '-'). */
  text: string;
  /** The line the finding names. */
  hit: boolean;
}

export interface Quote {
  header: string;
  section: string;
  lines: QuoteLine[];
}

/** Lines of context either side of the finding's line. */
const WINDOW = 6;

/** The hunk lines around `line` of `file` in the post-image of `diff`, or null when no hunk covers it. */
export function quoteFromDiff(diff: string, file: string, line: number): Quote | null {
  let parsed;
  try {
    parsed = parseDiff(diff);
  } catch {
    return null; // a diff the parser refuses is shown nowhere else either; the finding still renders
  }
  for (const f of parsed.files) {
    if (f.newPath !== file && f.oldPath !== file) continue;
    for (const h of f.hunks) {
      if (line < h.newStart || line >= h.newStart + Math.max(h.newLines, 1)) continue;
      let no = h.newStart;
      const all: QuoteLine[] = [];
      for (const text of h.lines) {
        if (text.startsWith('\\')) continue; // "\ No newline at end of file"
        const removed = text.startsWith('-');
        all.push({ no: removed ? null : no, text, hit: !removed && no === line });
        if (!removed) no++;
      }
      const at = all.findIndex((l) => l.hit);
      const from = Math.max(0, at - WINDOW);
      return { header: h.header, section: h.section, lines: all.slice(from, at + WINDOW + 1) };
    }
  }
  return null;
}
