import { inflateSync } from 'node:zlib';
import type { FileChange, ParsedFile, ParsedHunk, SafetyLimits } from './types.js';

/** Defaults for {@link SafetyLimits}. */
export const DEFAULT_LIMITS: Readonly<SafetyLimits> = Object.freeze({
  maxBinaryBytes: 1024 * 1024,
  maxPatchBytes: 5 * 1024 * 1024,
  maxFiles: 500,
});

/** The verdict on one untrusted patch, with whatever could be parsed from it. */
export type SafetyVerdict = { ok: true; files: ParsedFile[] } | { ok: false; reason: string; files: ParsedFile[] };

/** A path as written in a header, for the safety checks. */
export interface PathMention {
  path: string;
  /** Whether git strips a leading component (`-p1`): true for `diff --git`, `---`, `+++`. */
  prefixed: boolean;
  /** The header it came from, for the rejection reason. */
  where: string;
}

interface BinaryBlock {
  kind: 'literal' | 'delta';
  size: number;
  data: string[];
}

/** Everything {@link parseDiff} read: the files plus each path, mode and binary block for the checks. */
export interface ParsedDiff {
  files: ParsedFile[];
  paths: PathMention[];
  modes: { mode: string; where: string }[];
  binaries: { path: string | null; blocks: BinaryBlock[] }[];
}

const C_ESCAPES: Record<string, number> = { a: 7, b: 8, t: 9, n: 10, v: 11, f: 12, r: 13, '"': 34, '\\': 92 };

/** Reads a C-quoted name as git writes it (core.quotePath); returns it and the rest of the string. */
function unquote(s: string): { name: string; rest: string } | null {
  const bytes: number[] = [];
  for (let i = 1; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === '"') return { name: Buffer.from(bytes).toString('utf8'), rest: s.slice(i + 1) };
    if (ch !== '\\') {
      bytes.push(...Buffer.from(ch, 'utf8'));
      continue;
    }
    const next = s[++i] ?? '';
    const oct = /^[0-3][0-7]{2}/.exec(s.slice(i, i + 3));
    if (oct) {
      bytes.push(parseInt(oct[0], 8));
      i += 2;
    } else if (C_ESCAPES[next] !== undefined) bytes.push(C_ESCAPES[next]);
    else return null;
  }
  return null;
}

/** A header's path value: unquoted, or up to a tab (traditional diffs append a timestamp). */
function headerPath(v: string): string {
  if (v.startsWith('"')) return unquote(v)?.name ?? v;
  return v.replace(/\t.*$/, '');
}

/** The two names of a `diff --git` line; null when spaces make them ambiguous. */
function gitHeaderNames(rest: string): [string, string] | null {
  if (rest.startsWith('"')) {
    const a = unquote(rest);
    if (!a || !a.rest.startsWith(' ')) return null;
    const b = a.rest.slice(1);
    return [a.name, b.startsWith('"') ? (unquote(b)?.name ?? b) : b];
  }
  const q = rest.indexOf(' "');
  if (q > 0) return [rest.slice(0, q), unquote(rest.slice(q + 1))?.name ?? rest.slice(q + 1)];
  // git's own rule: with spaces in names, the split is where both halves name the same path.
  for (let i = rest.indexOf(' '); i > 0; i = rest.indexOf(' ', i + 1)) {
    const a = rest.slice(0, i);
    const b = rest.slice(i + 1);
    if (stripOne(a) === stripOne(b)) return [a, b];
  }
  const parts = rest.split(' ');
  return parts.length === 2 ? [parts[0]!, parts[1]!] : null;
}

const HUNK = /^@@ -(?<os>\d+)(?:,(?<oc>\d+))? \+(?<ns>\d+)(?:,(?<nc>\d+))? @@ ?(?<section>.*)$/;
const MODE_LINE = /^(?<kind>old mode|new mode|new file mode|deleted file mode) (?<mode>\S+)$/;
const INDEX_LINE = /^index [0-9a-f]+\.\.[0-9a-f]+(?: (?<mode>\S+))?$/;
const BIN_BLOCK = /^(?<kind>literal|delta) (?<size>\d+)$/;

/**
 * Parses a unified diff (git-style or traditional) into files and hunks, tolerantly: lines it
 * does not understand between files (a diffstat, a signature) are skipped, and hunk bodies
 * are consumed by their line counts so a removed `-- ` line is never taken for a header.
 */
export function parseDiff(diff: string): ParsedDiff {
  const lines = diff.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  const out: ParsedDiff = { files: [], paths: [], modes: [], binaries: [] };
  let file: ParsedFile | null = null;
  let sawMinus = false; // the current file already had its `---` line
  const open = (oldPath: string | null, newPath: string | null): ParsedFile => {
    const f: ParsedFile = { oldPath, newPath, change: 'modified', oldMode: null, newMode: null, binary: false, hunks: [] };
    out.files.push(f);
    sawMinus = false;
    return f;
  };
  const mention = (path: string, prefixed: boolean, where: string): void => void out.paths.push({ path, prefixed, where });
  const setChange = (c: FileChange): void => {
    if (file && (file.change === 'modified' || file.change === 'mode')) file.change = c;
  };

  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.startsWith('diff --git ')) {
      const rest = l.slice('diff --git '.length);
      const names = gitHeaderNames(rest);
      if (names) names.forEach((n) => mention(n, true, 'diff --git'));
      else rest.split(' ').forEach((t) => mention(t, true, 'diff --git'));
      file = open(names ? stripOne(names[0]) : null, names ? stripOne(names[1]) : null);
      continue;
    }
    if (l.startsWith('--- ') && lines[i + 1]?.startsWith('+++ ')) {
      const a = headerPath(l.slice(4));
      const b = headerPath(lines[i + 1]!.slice(4));
      if (a !== '/dev/null') mention(a, true, '---');
      if (b !== '/dev/null') mention(b, true, '+++');
      if (!file || sawMinus || file.hunks.length > 0) file = open(null, null);
      sawMinus = true;
      file.oldPath = a === '/dev/null' ? null : stripOne(a);
      file.newPath = b === '/dev/null' ? null : stripOne(b);
      if (a === '/dev/null') setChange('added');
      if (b === '/dev/null') setChange('deleted');
      i++;
      continue;
    }
    const h = HUNK.exec(l);
    if (h?.groups && file) {
      const g = h.groups;
      const hunk: ParsedHunk = {
        header: `@@ -${g.os}${g.oc === undefined ? '' : `,${g.oc}`} +${g.ns}${g.nc === undefined ? '' : `,${g.nc}`} @@`,
        section: (g.section ?? '').trim(),
        oldStart: Number(g.os),
        oldLines: g.oc === undefined ? 1 : Number(g.oc),
        newStart: Number(g.ns),
        newLines: g.nc === undefined ? 1 : Number(g.nc),
        added: [],
        removed: [],
        lines: [],
      };
      let oldLeft = hunk.oldLines;
      let newLeft = hunk.newLines;
      while (i + 1 < lines.length && (oldLeft > 0 || newLeft > 0 || lines[i + 1]!.startsWith('\\'))) {
        const c = lines[i + 1]!;
        const ch = c[0];
        // An empty line is an empty context line whose space a mailer ate; git accepts it too.
        if (ch === ' ' || c === '') {
          oldLeft--;
          newLeft--;
        } else if (ch === '-') {
          oldLeft--;
          hunk.removed.push(c.slice(1));
        } else if (ch === '+') {
          newLeft--;
          hunk.added.push(c.slice(1));
        } else if (ch !== '\\') break;
        hunk.lines.push(c);
        i++;
      }
      file.hunks.push(hunk);
      if (file.change === 'mode') file.change = 'modified'; // a mode change with content changes
      continue;
    }
    if (!file) continue;
    const m = MODE_LINE.exec(l);
    if (m?.groups) {
      const { kind, mode } = m.groups as { kind: string; mode: string };
      out.modes.push({ mode, where: kind });
      if (kind === 'old mode') file.oldMode = mode;
      else if (kind === 'new mode') {
        file.newMode = mode;
        setChange('mode');
      } else if (kind === 'new file mode') Object.assign(file, { newMode: mode, change: 'added', oldPath: null });
      else Object.assign(file, { oldMode: mode, change: 'deleted', newPath: null });
      continue;
    }
    const rc = /^(?<op>rename|copy) (?<dir>from|to) (?<v>.*)$/.exec(l);
    if (rc?.groups) {
      const p = headerPath(rc.groups.v!);
      mention(p, false, `${rc.groups.op} ${rc.groups.dir}`);
      if (rc.groups.dir === 'from') file.oldPath = p;
      else file.newPath = p;
      file.change = rc.groups.op === 'rename' ? 'renamed' : 'copied';
      continue;
    }
    const ix = INDEX_LINE.exec(l);
    if (ix?.groups) {
      const mode = ix.groups.mode;
      if (mode) {
        out.modes.push({ mode, where: 'index' });
        file.oldMode ??= mode;
        file.newMode ??= mode;
      }
      continue;
    }
    if (l.startsWith('Binary files ')) {
      file.binary = true;
      continue;
    }
    if (l === 'GIT binary patch') {
      file.binary = true;
      const blocks: BinaryBlock[] = [];
      for (;;) {
        const b = BIN_BLOCK.exec(lines[i + 1] ?? '');
        if (!b?.groups) break;
        const block: BinaryBlock = { kind: b.groups.kind as BinaryBlock['kind'], size: Number(b.groups.size), data: [] };
        i++;
        while (i + 1 < lines.length && lines[i + 1] !== '') block.data.push(lines[++i]!);
        if (lines[i + 1] === '') i++;
        blocks.push(block);
      }
      out.binaries.push({ path: file.newPath ?? file.oldPath, blocks });
    }
  }
  return out;
}

// Code points HFS+ ignores when comparing names, so ".g\u200cit" is ".git" there (git's is_hfs_dotgit).
const HFS_IGNORABLE = /[\u200c-\u200f\u202a-\u202e\u206a-\u206f\ufeff]/g;

/** True for a component a filesystem could take for `.git`: any case, trailing dots/spaces (NTFS), 8.3 name, HFS ignorables. */
function isDotGit(component: string): boolean {
  const c = component.replace(HFS_IGNORABLE, '').toLowerCase();
  return c.replace(/[. ]+$/, '') === '.git' || c === 'git~1';
}

/** Why `path` must not be written through, or null when it is fine. */
export function pathProblem(path: string): string | null {
  if (path === '') return 'empty path';
  if (path.startsWith('/')) return 'absolute path';
  if (/[\x00-\x1f\x7f]/.test(path)) return 'control character in path';
  for (const c of path.split('/')) {
    if (c === '..') return "'..' component";
    if (isDotGit(c)) return "'.git' component";
  }
  return null;
}

/**
 * `-p1` as git apply does it: drop everything up to and including the first slash. Only one:
 * git reads `b//etc/passwd` as `/etc/passwd` (GNU patch would take the run of slashes as one),
 * so stripping the run here let an absolute path through to git (found by the robustness
 * campaign; git 2.39 then refused it as an invalid path, but the refusal is meant to be ours).
 */
function stripOne(path: string): string {
  const i = path.indexOf('/');
  return i < 0 ? path : path.slice(i + 1);
}

function mentionProblem(m: PathMention): string | null {
  const raw = pathProblem(m.path);
  if (raw) return raw;
  return m.prefixed ? pathProblem(stripOne(m.path)) : null;
}

const B85 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~';
const B85_VAL = new Map([...B85].map((ch, i) => [ch, i]));

/** Decodes git's base85 binary-patch lines (length letter + 5-char groups); null when malformed. */
function decodeBase85Lines(lines: string[]): Buffer | null {
  const out: number[] = [];
  for (const line of lines) {
    const l = line.charCodeAt(0);
    const len = l >= 65 && l <= 90 ? l - 64 : l >= 97 && l <= 122 ? l - 70 : -1;
    const data = line.slice(1);
    if (len < 0 || data.length % 5 !== 0 || data.length / 5 < Math.ceil(len / 4)) return null;
    const bytes: number[] = [];
    for (let i = 0; i < data.length; i += 5) {
      let acc = 0;
      for (let k = 0; k < 5; k++) {
        const v = B85_VAL.get(data[i + k]!);
        if (v === undefined) return null;
        acc = acc * 85 + v;
      }
      if (acc > 0xffffffff) return null;
      bytes.push((acc >>> 24) & 255, (acc >>> 16) & 255, (acc >>> 8) & 255, acc & 255);
    }
    out.push(...bytes.slice(0, len));
  }
  return Buffer.from(out);
}

/** Reads the two size varints that open a git delta; returns the result size. */
function deltaResultSize(delta: Buffer): number | null {
  let pos = 0;
  const varint = (): number | null => {
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = delta[pos++];
      if (b === undefined || shift > 49) return null;
      v += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if (!(b & 0x80)) return v;
    }
  };
  if (varint() === null) return null;
  return varint();
}

/**
 * The size each `literal`/`delta` block of a `GIT binary patch` produces. A literal states it;
 * a delta states only its own inflated size, and a small delta can copy from its base again
 * and again into a huge blob, so its data is decoded (bounded by the limit) to read the result
 * size from the delta header.
 */
function binaryProblem(blocks: { kind: 'literal' | 'delta'; size: number; data: string[] }[], limit: number): string | null {
  for (const b of blocks) {
    if (b.size > limit) return `binary ${b.kind} of ${b.size} bytes exceeds ${limit}`;
    if (b.kind === 'literal') continue;
    const raw = decodeBase85Lines(b.data);
    if (!raw) return 'malformed binary patch data';
    let delta: Buffer;
    try {
      delta = inflateSync(raw, { maxOutputLength: limit + 1 });
    } catch {
      return 'malformed or oversized binary delta';
    }
    const size = deltaResultSize(delta);
    if (size === null) return 'malformed binary delta header';
    if (size > limit) return `binary delta producing ${size} bytes exceeds ${limit}`;
  }
  return null;
}

const ALLOWED_MODE = /^100[0-7]{3}$/;

/**
 * Inspects an untrusted diff before git sees it: size, file count, every path in every header
 * (`diff --git`, `---`/`+++`, rename/copy from/to) and every mode (`new file mode`, `old mode`,
 * `index` ...), and binary sizes. Rejects `..` and `.git` components (case-insensitively, with
 * the NTFS/HFS aliases git itself guards against), absolute paths, symlinks (120000), gitlinks
 * (160000), other non-regular modes, binaries over `maxBinaryBytes`, patches over
 * `maxPatchBytes` and patches touching more than `maxFiles` files.
 *
 * git apply refuses some of these on its own, but not all (symlinks and gitlinks are legal in
 * a patch), and its refusals are version-dependent; rejecting here keeps the reason ours.
 */
export function checkPatch(diff: string, limits: SafetyLimits = DEFAULT_LIMITS): SafetyVerdict {
  const size = Buffer.byteLength(diff, 'utf8');
  // Not parsed at all: the limit exists so hostile input costs nothing.
  if (size > limits.maxPatchBytes) return { ok: false, reason: `patch of ${size} bytes exceeds ${limits.maxPatchBytes}`, files: [] };
  const parsed = parseDiff(diff);
  const files = parsed.files;
  const fail = (reason: string): SafetyVerdict => ({ ok: false, reason, files });
  if (files.length > limits.maxFiles) return fail(`patch touches ${files.length} files, more than ${limits.maxFiles}`);
  for (const m of parsed.paths) {
    const p = mentionProblem(m);
    if (p) return fail(`${p}: ${JSON.stringify(m.path)} (${m.where})`);
  }
  for (const m of parsed.modes) {
    if (m.mode === '120000') return fail(`symlink mode 120000 (${m.where})`);
    if (m.mode === '160000') return fail(`gitlink (submodule) mode 160000 (${m.where})`);
    if (!ALLOWED_MODE.test(m.mode)) return fail(`unexpected file mode ${m.mode} (${m.where})`);
  }
  for (const b of parsed.binaries) {
    const p = binaryProblem(b.blocks, limits.maxBinaryBytes);
    if (p) return fail(`${p} (${b.path ?? 'binary patch'})`);
  }
  return { ok: true, files };
}
