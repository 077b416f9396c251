/**
 * Reading what `git apply -v` prints. Relies on LANG=C (set by hermeticEnv): git translates
 * these messages.
 */
import type { ParsedFile } from './types.js';

/** Where and why a patch did not apply, from `git apply -v` stderr. */
export interface FailureInfo {
  file?: string;
  hunk?: string;
  context?: string;
  detail: string;
}

/**
 * Reads git apply's verbose errors: `error: while searching for:` + the preimage it could not
 * find, then `error: patch failed: <file>:<line>` where line is the hunk's old start, which
 * names the hunk. Other errors (`<file>: does not exist in index`, `corrupt patch at line N`)
 * give the file when there is one.
 */
export function parseApplyFailure(stderr: string, files: ParsedFile[]): FailureInfo {
  const lines = stderr.split('\n');
  const errors: string[] = [];
  const info: FailureInfo = { detail: '' };
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l === 'error: while searching for:') {
      const ctx: string[] = [];
      while (i + 1 < lines.length && !lines[i + 1]!.startsWith('error: ')) ctx.push(lines[++i]!);
      // git prints the preimage (ending in a newline) and then its own newline.
      if (ctx.length && ctx[ctx.length - 1] === '') ctx.pop();
      info.context ??= ctx.join('\n');
      continue;
    }
    if (!l.startsWith('error: ') && !l.startsWith('fatal: ')) continue;
    errors.push(l.replace(/^(?:error|fatal): /, ''));
    const pf = /^error: patch failed: (?<at>.*)$/.exec(l);
    if (pf?.groups && info.file === undefined) {
      const at = pf.groups.at!;
      const colon = at.lastIndexOf(':');
      const file = at.slice(0, colon);
      const line = Number(at.slice(colon + 1));
      info.file = file;
      const f = files.find((x) => x.oldPath === file || x.newPath === file);
      const h = f?.hunks.find((x) => x.oldStart === line) ?? f?.hunks.find((x) => x.newStart === line);
      if (h) info.hunk = h.header;
      continue;
    }
    const named = /^error: (?<file>[^:]+): (?:does not exist in index|already exists in index|does not match index|patch does not apply)/.exec(l);
    if (named?.groups && info.file === undefined) info.file = named.groups.file!;
  }
  info.detail = errors.join('; ') || lines.find((l) => l.trim() !== '') || 'git apply failed without a message';
  return info;
}

const CHECKING = /^Checking patch (?<name>.*)\.\.\.$/;
const HUNK_AT = /^Hunk #(?<n>\d+) succeeded at (?<at>\d+)(?: \(offset (?<off>-?\d+) lines?\))?\.$/;

/** True when git had to move a hunk ("Hunk #n succeeded at ... (offset k lines)"). */
export const movedHunks = (stderr: string): boolean => /^Hunk #\d+ succeeded at /m.test(stderr);

/** The paths git looked at (`Checking patch a...`, `Checking patch old => new...`). */
export function checkedPaths(stderr: string): string[] {
  const out: string[] = [];
  for (const l of stderr.split('\n')) {
    const name = CHECKING.exec(l)?.groups?.name;
    if (name === undefined) continue;
    out.push(name);
    // A rename or copy; a path that itself holds " => " is looked up whole as well.
    const arrow = name.indexOf(' => ');
    if (arrow > 0) out.push(name.slice(0, arrow), name.slice(arrow + 4));
  }
  return out;
}

/** Per `Checking patch` block in order: hunk number -> the line git reported it applied at. */
function reportedHunks(stderr: string): Map<number, number>[] {
  const out: Map<number, number>[] = [];
  for (const l of stderr.split('\n')) {
    if (CHECKING.test(l)) {
      out.push(new Map());
      continue;
    }
    const h = HUNK_AT.exec(l)?.groups;
    if (h && out.length) out[out.length - 1]!.set(Number(h.n), Number(h.at));
  }
  return out;
}

/**
 * Whether a patch that applied forward with moved hunks and also applies in reverse only
 * applied forward onto its own lines: for every hunk, the place the forward apply matched its
 * pre-image overlaps the place the reverse check found its post-image. That is what a merged
 * patch that only adds lines looks like when the added block ends with the very lines it was
 * inserted before (e.g. `goto done; }` + blank line): its context occurs again right after
 * the added block, so it applies a second time one block further down.
 *
 * git reports each hunk's position only when it moved, in the numbering of the file with the
 * earlier hunks already applied (forward) or removed (reverse); both are mapped back to the
 * base's numbering here. False (undecided) when the two outputs do not line up with `files`.
 */
export function appliesOntoOwnLines(forward: string, reverse: string, files: ParsedFile[]): boolean {
  const fwd = reportedHunks(forward);
  const rev = reportedHunks(reverse);
  if (fwd.length !== files.length || rev.length !== files.length) return false;
  let hunks = 0;
  for (const [i, f] of files.entries()) {
    let shift = 0; // lines the earlier hunks of this file add
    for (const [k, h] of f.hunks.entries()) {
      const n = k + 1;
      const preAt = (fwd[i]!.get(n) ?? h.newStart) - shift;
      const postAt = (rev[i]!.get(n) ?? h.oldStart) + shift;
      shift += h.newLines - h.oldLines;
      hunks++;
      if (!(preAt < postAt + h.newLines && postAt < preAt + h.oldLines)) return false;
    }
  }
  return hunks > 0;
}
