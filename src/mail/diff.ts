/**
 * Finds the diff inside a patch mail body and walks it hunk by hunk, so a
 * signature, a `base-commit:` footer or quoted text after the diff is never
 * taken for part of it (a bare "-- " line inside a hunk is a removed line).
 */

export interface DiffExtract {
  /** The diff text, each line terminated by "\n", or null when the body holds none. */
  diff: string | null;
  /** Everything before the diff (commit message, `---` separator, diffstat). */
  before: string;
  /** Everything after the diff (signature, base-commit footer...). */
  after: string;
  /** Paths the diff touches (new names, and old names of renames/deletions). */
  paths: string[];
}

const HEADER_LINE =
  /^(?:diff --git |index |--- |\+\+\+ |new file mode |deleted file mode |old mode |new mode |similarity index |dissimilarity index |rename from |rename to |copy from |copy to |Binary files |GIT binary patch|literal |delta )/;
const HUNK = /^@@ -(?<os>\d+)(?:,(?<oc>\d+))? \+(?<ns>\d+)(?:,(?<nc>\d+))? @@/;
const START = /^(?:diff --git |--- (?!$)|Index: )/;

function isDiffStart(lines: string[], i: number): boolean {
  const l = lines[i]!;
  if (l.startsWith('diff --git ')) return true;
  // A plain (non-git) unified diff: --- / +++ / @@
  if (l.startsWith('--- ') && lines[i + 1]?.startsWith('+++ ') && lines[i + 2]?.startsWith('@@ ')) return true;
  if (l.startsWith('Index: ') && lines[i + 1]?.startsWith('====')) return true;
  return false;
}

function stripPrefix(p: string): string | null {
  const path = p.replace(/\t.*$/, '').trim();
  if (path === '/dev/null') return null;
  return path.replace(/^[ab]\//, '');
}

export function extractDiff(body: string): DiffExtract {
  const text = body.replace(/\r\n/g, '\n');
  const lines = text.split('\n');
  let start = -1;
  for (let i = 0; i < lines.length; i++) {
    if (START.test(lines[i]!) && isDiffStart(lines, i)) {
      start = i;
      break;
    }
  }
  if (start < 0) return { diff: null, before: text, after: '', paths: [] };

  const paths = new Set<string>();
  let i = start;
  let inBinary = false;
  while (i < lines.length) {
    const l = lines[i]!;
    const h = HUNK.exec(l);
    if (h?.groups) {
      inBinary = false;
      let oldLeft = h.groups.oc === undefined ? 1 : Number(h.groups.oc);
      let newLeft = h.groups.nc === undefined ? 1 : Number(h.groups.nc);
      i++;
      while (i < lines.length && (oldLeft > 0 || newLeft > 0)) {
        const c = lines[i]!;
        const ch = c[0];
        if (ch === ' ' || c === '') {
          // An empty line stands for an empty context line (whitespace-mangling MUAs).
          oldLeft--;
          newLeft--;
        } else if (ch === '-') oldLeft--;
        else if (ch === '+') newLeft--;
        else if (ch === '\\') {
          /* "\ No newline at end of file" */
        } else break;
        i++;
      }
      if (lines[i]?.startsWith('\\')) i++;
      continue;
    }
    if (l.startsWith('diff --git ')) {
      inBinary = false;
      const m = /^diff --git (?<a>\S+) (?<b>\S+)/.exec(l);
      for (const p of [m?.groups?.a, m?.groups?.b]) {
        const s = p ? stripPrefix(p) : null;
        if (s) paths.add(s);
      }
      i++;
      continue;
    }
    if (l.startsWith('Index: ') || /^={5,}$/.test(l)) {
      i++;
      continue;
    }
    if (HEADER_LINE.test(l)) {
      if (l.startsWith('--- ') || l.startsWith('+++ ')) {
        const s = stripPrefix(l.slice(4));
        if (s) paths.add(s);
      } else if (l.startsWith('rename from ') || l.startsWith('rename to ') || l.startsWith('copy from ') || l.startsWith('copy to ')) {
        paths.add(l.replace(/^(?:rename|copy) (?:from|to) /, ''));
      } else if (l.startsWith('GIT binary patch')) inBinary = true;
      i++;
      continue;
    }
    // Base85 lines of a binary patch, and the blank line that ends each block.
    if (inBinary && (/^[A-Za-z][0-9A-Za-z!#$%&()*+;<=>?@^_`{|}~-]*$/.test(l) || l === '')) {
      i++;
      continue;
    }
    break;
  }
  const diffLines = lines.slice(start, i);
  while (diffLines.length > 0 && diffLines[diffLines.length - 1] === '') diffLines.pop();
  return {
    diff: diffLines.length ? diffLines.join('\n') + '\n' : null,
    before: lines.slice(0, start).join('\n'),
    after: lines.slice(i).join('\n'),
    paths: [...paths],
  };
}

/**
 * Splits the part before the diff into the commit message and the notes
 * after the `---` separator (diffstat, changelog), as git am does.
 */
export function splitCommitMessage(before: string): { message: string; notes: string } {
  const lines = before.split('\n');
  const sep = lines.findIndex((l) => l === '---' || l === '--- ');
  if (sep < 0) return { message: before.trimEnd(), notes: '' };
  return { message: lines.slice(0, sep).join('\n').trimEnd(), notes: lines.slice(sep + 1).join('\n') };
}
