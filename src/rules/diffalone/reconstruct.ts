/**
 * The diff-alone path for the C-model rules. When a series does not apply to any base (often: it was
 * written against a newer tree), the rules that need whole functions would see nothing. Reviewers in
 * that situation still read the functions the patch shows whole, so this module does the same:
 *
 * - each hunk's post-image (and pre-image) is placed at its real line numbers in a sparse file;
 * - the complete top-level items inside hunks (functions, structs, ops tables, declarations: see
 *   toplevel.ts) are kept; a function the hunks show only in part is completed from the base when every
 *   hunk in it matches the base exactly with the patch's own line spacing, and left out otherwise;
 * - the space around them is filled with whole items of the same file from the closest base tree
 *   (the attempt that got furthest), with earlier patches of the series folded in, so callees, structs
 *   and ops tables resolve; those never carry findings.
 *
 * Line numbers of kept items are the patch's own, so findings need no mapping. Findings on lines the
 * patch does not show whole are dropped, and a message that cites a line of the stand-in code says so.
 * Rejected alternative: fuzzy-applying hunks onto the base file. A hunk that lands in a different
 * version of a function produces code nobody wrote; a missing function only loses recall. Completing
 * a function needs exact context and equal spacing, which is what `git apply` itself would accept.
 */
import type { ApplyResult, ParsedFile } from '../../apply/types.js';
import type { SourceReader } from '../../cmodel/index.js';
import { lazyModel, rulesWorkspace, baseReader, treeGitDir, type PatchView } from '../context.js';
import { runRules } from '../run.js';
import { topLevelItems, type TopItem } from './toplevel.js';
import type { ChangedFile, Rule, RuleFinding } from '../types.js';

const isC = (p: string | null): p is string => p !== null && /\.[ch]$/.test(p);

interface Item {
  key: string;
  lines: string[];
  /** Where it comes from, for messages: `base-tree line N` or `patch N line M`. */
  origin: (offset: number) => string;
}

/** One reconstructed patch view, with what a finding may be placed on. */
export interface ReconstructedView extends PatchView {
  /** Per path: the post-image lines the patch shows inside whole items (findings may sit there). */
  shown: Map<string, Set<number>>;
  /** Per path: stand-in line -> where that line really comes from. */
  standIn: Map<string, Map<number, string>>;
  base: string | null;
}

/** A side of one file diff as a sparse array at real line numbers, with the changed lines. */
function sparseSide(f: ParsedFile, side: 'old' | 'new'): { lines: (string | undefined)[]; changed: Set<number>; ranges: [number, number][] } {
  const lines: (string | undefined)[] = [];
  const changed = new Set<number>();
  const ranges: [number, number][] = [];
  for (const h of f.hunks) {
    let n = (side === 'new' ? h.newStart : h.oldStart) - 1;
    const first = n;
    for (const l of h.lines) {
      const c = l[0];
      if (c === '\\') continue;
      const mine = c === ' ' || l === '' || (side === 'new' ? c === '+' : c === '-');
      if (!mine) continue;
      lines[n] = l.slice(1);
      if (c === (side === 'new' ? '+' : '-')) changed.add(n + 1);
      n++;
    }
    if (n > first) ranges.push([first, n - 1]);
  }
  return { lines, changed, ranges };
}

type Sparse = ReturnType<typeof sparseSide>;

function itemsIn(side: Sparse): TopItem[] {
  return side.ranges.flatMap(([a, b]) => topLevelItems(side.lines, a, b));
}

/** Maximal runs of known lines (after functions were aligned in). */
function rerange(side: Sparse): void {
  side.ranges = [];
  let start = -1;
  for (let i = 0; i <= side.lines.length; i++) {
    const known = i < side.lines.length && side.lines[i] !== undefined;
    if (known && start < 0) start = i;
    if (!known && start >= 0) {
      side.ranges.push([start, i - 1]);
      start = -1;
    }
  }
}

const norm = (l: string): string => l.replace(/\s+$/, '');

/** Where a hunk's pre-image sits in the base, exactly; the candidate nearest `expect`, null when none or a tie. */
function locate(base: string[], pre: string[], expect: number): number | null {
  if (pre.length === 0) return null;
  let best: number | null = null;
  let bestDist = Infinity;
  let tie = false;
  for (let p = 0; p + pre.length <= base.length; p++) {
    let ok = true;
    for (let k = 0; k < pre.length && ok; k++) ok = norm(base[p + k]!) === norm(pre[k]!);
    if (!ok) continue;
    const d = Math.abs(p - expect);
    if (d < bestDist) {
      best = p;
      bestDist = d;
      tie = false;
    } else if (d === bestDist) {
      tie = true;
    }
  }
  return tie ? null : best;
}

const sectionName = (section: string): string | null => /\b(?<name>[A-Za-z_]\w*)\s*\(/.exec(section)?.groups?.name ?? null;

/**
 * Completes functions the patch shows only in part, from the base, when the base function is the
 * one the patch was written against: every hunk inside it matches the base exactly, and the unchanged
 * stretches between hunks have the same length as in the patch (so every line keeps the patch's own
 * number). Then the function is what applying just its hunks gives; any doubt leaves it out.
 */
function alignFunctions(f: ParsedFile, base: string[], post: Sparse, pre: Sparse): void {
  const hunks = f.hunks.map((h) => {
    const preLines = h.lines.filter((l) => l === '' || l[0] === ' ' || l[0] === '-').map((l) => l.slice(1));
    const newLen = h.lines.filter((l) => l === '' || l[0] === ' ' || l[0] === '+').length;
    return { h, preLines, newLen, at: null as number | null };
  });
  let delta = 0;
  for (const x of hunks) {
    x.at = locate(base, x.preLines, x.h.oldStart - 1 + delta);
    if (x.at !== null) delta = x.at - (x.h.oldStart - 1);
  }
  for (const F of topLevelItems(base)) {
    if (!F.key.startsWith('fn:')) continue;
    const name = F.key.slice(3);
    const inside = hunks.filter((x) => x.at !== null && x.at <= F.end && x.at + x.preLines.length - 1 >= F.start).sort((a, b) => a.at! - b.at!);
    if (inside.length === 0 || hunks.some((x) => x.at === null && sectionName(x.h.section) === name)) continue;
    // The shift of every unchanged stretch, old and new side; the stretches must agree on both ends.
    const segments: { from: number; to: number; dNew: number; dOld: number }[] = [];
    let ok = true;
    let from = F.start;
    let dNew = inside[0]!.h.newStart - 1 - inside[0]!.at!;
    let dOld = inside[0]!.h.oldStart - 1 - inside[0]!.at!;
    for (const [k, x] of inside.entries()) {
      if (x.h.newStart - 1 - x.at! !== dNew || x.h.oldStart - 1 - x.at! !== dOld || x.at! < from) {
        ok = false;
        break;
      }
      segments.push({ from, to: x.at! - 1, dNew, dOld });
      from = x.at! + x.preLines.length;
      dNew = x.h.newStart - 1 + x.newLen - from;
      dOld = x.h.oldStart - 1 + x.preLines.length - from;
      if (k === inside.length - 1) segments.push({ from, to: F.end, dNew, dOld });
    }
    if (!ok) continue;
    const place: { side: Sparse; at: number; text: string }[] = [];
    for (const sg of segments) {
      for (let b = sg.from; b <= sg.to; b++) {
        for (const [side, d] of [[post, sg.dNew], [pre, sg.dOld]] as const) {
          const at = b + d;
          const have = side.lines[at];
          if (at < 0 || (have !== undefined && norm(have) !== norm(base[b]!))) ok = false;
          place.push({ side, at, text: base[b]! });
        }
      }
    }
    if (!ok) continue;
    for (const p of place) if (p.side.lines[p.at] === undefined) p.side.lines[p.at] = p.text;
  }
  rerange(post);
  rerange(pre);
}

/**
 * A full text: `items` at their own places, `fill` placed first-fit into the gaps (one blank line
 * around each), the rest blank. Returns the text and the origin of every stand-in line.
 */
function compose(
  side: ReturnType<typeof sparseSide>,
  items: TopItem[],
  fill: Item[],
): { text: string; standIn: Map<number, string>; shown: Set<number> } {
  const out: (string | undefined)[] = [];
  const shown = new Set<number>();
  for (const it of items) {
    for (let i = it.start; i <= it.end; i++) {
      out[i] = side.lines[i];
      shown.add(i + 1);
    }
  }
  const standIn = new Map<number, string>();
  const free = (at: number, len: number): boolean => {
    for (let i = Math.max(0, at - 1); i <= at + len; i++) if (out[i] !== undefined) return false;
    return true;
  };
  let tail = out.length + 1;
  for (const it of fill) {
    let at = -1;
    for (let i = 1; i + it.lines.length < out.length; i++) {
      if (free(i, it.lines.length)) {
        at = i;
        break;
      }
    }
    if (at < 0) {
      at = Math.max(tail, out.length + 1);
    }
    it.lines.forEach((l, k) => {
      out[at + k] = l;
      standIn.set(at + k + 1, it.origin(k));
    });
    tail = at + it.lines.length + 1;
  }
  const text = Array.from({ length: out.length }, (_, i) => out[i] ?? '').join('\n') + '\n';
  return { text, standIn, shown };
}

/** The whole items of a base file, in order. */
function baseItems(text: string, label: string): Item[] {
  const lines = text.split('\n');
  return topLevelItems(lines).map((it) => ({
    key: it.key,
    lines: lines.slice(it.start, it.end + 1),
    origin: (k: number) => `${label} line ${it.start + k + 1}`,
  }));
}

/** Views for a series that did not apply: one per patch that shows at least one whole C item. */
export async function viewsFromDiff(tree: string, result: ApplyResult): Promise<ReconstructedView[]> {
  const attempt = result.attemptIndex !== null ? result.attempts[result.attemptIndex] : result.attempts.find((a) => a.commit);
  const base = attempt?.commit ?? null;
  const ws = await rulesWorkspace();
  const gitDir = await treeGitDir(tree);
  const baseFiles: SourceReader | null = base ? baseReader(gitDir, base, ws.home) : null;
  const label = attempt ? `${attempt.ref} (${attempt.commit?.slice(0, 12)})` : 'no base';
  /** Per path, the file's whole items as the series has them so far. */
  const state = new Map<string, Item[]>();
  const stateOf = (path: string): Item[] => {
    let s = state.get(path);
    if (!s) {
      const text = baseFiles?.readFile(path) ?? null;
      s = text ? baseItems(text, `${label} ${path}`) : [];
      state.set(path, s);
    }
    return s;
  };
  const views: ReconstructedView[] = [];
  for (const p of result.patches) {
    if (p.status === 'missing') continue;
    const files: ChangedFile[] = [];
    const after = new Map<string, string | null>();
    const before = new Map<string, string | null>();
    const shown = new Map<string, Set<number>>();
    const standIn = new Map<string, Map<number, string>>();
    for (const f of p.files) {
      const path = f.newPath ?? f.oldPath;
      if (f.binary || !isC(path) || f.change === 'deleted' || !isC(f.oldPath ?? f.newPath)) continue;
      const post = sparseSide(f, 'new');
      const pre = sparseSide(f, 'old');
      const baseText = f.change === 'added' ? null : (baseFiles?.readFile(f.oldPath ?? path) ?? null);
      if (baseText !== null) alignFunctions(f, baseText.split('\n'), post, pre);
      const postItems = itemsIn(post);
      const preItems = f.change === 'added' ? [] : itemsIn(pre);
      if (postItems.length === 0) continue;
      const postKeys = new Set(postItems.map((i) => i.key));
      const preKeys = new Set(preItems.map((i) => i.key));
      const current = f.change === 'added' ? [] : stateOf(f.oldPath ?? path);
      const a = compose(post, postItems, current.filter((i) => !postKeys.has(i.key) && !preKeys.has(i.key)));
      const b = f.change === 'added' ? null : compose(pre, preItems, current.filter((i) => !preKeys.has(i.key)));
      after.set(path, a.text);
      before.set(path, b?.text ?? null);
      shown.set(path, a.shown);
      standIn.set(path, a.standIn);
      const added = new Set([...post.changed].filter((n) => a.shown.has(n)));
      const removed = b ? new Set([...pre.changed].filter((n) => b.shown.has(n))) : new Set<number>();
      const addedText = new Map([...added].map((n) => [n, post.lines[n - 1] ?? ''] as const));
      files.push({
        path, oldPath: f.change === 'added' ? null : (f.oldPath ?? path), status: f.change === 'added' ? 'added' : 'modified', added, removed, addedText,
        diffAdded: new Set(post.changed), diffRemoved: b ? new Set(pre.changed) : new Set<number>(),
      });
      // Fold this patch in for the next one: its whole items replace or join the file's.
      const next = current.filter((i) => !preKeys.has(i.key) || postKeys.has(i.key));
      for (const it of postItems) {
        const item: Item = { key: it.key, lines: post.lines.slice(it.start, it.end + 1) as string[], origin: (k) => `patch ${p.index} line ${it.start + k + 1}` };
        const at = next.findIndex((i) => i.key === it.key);
        if (at >= 0) next[at] = item;
        else next.push(item);
      }
      state.set(path, next);
    }
    if (files.length === 0) continue;
    const sideReader = (side: Map<string, string | null>): SourceReader => ({
      readFile: (path) => (side.has(path) ? side.get(path)! : (baseFiles?.readFile(path) ?? null)),
      prefetch: (paths) => baseFiles?.prefetch?.(paths.filter((p) => !side.has(p))),
      list: (dir) => {
        const d = dir.endsWith('/') ? dir : `${dir}/`;
        const own = [...side.keys()].filter((k) => k.startsWith(d) && !k.slice(d.length).includes('/')).map((k) => k.slice(d.length));
        return [...new Set([...(baseFiles?.list?.(dir) ?? []), ...own])];
      },
    });
    const beforeModel = lazyModel(files, 'before', sideReader(before));
    const afterModel = lazyModel(files, 'after', sideReader(after));
    views.push({
      patch: { msgid: p.msgid ?? `patch-${p.index}`, index: p.index, subject: p.subject ?? '' },
      applied: true,
      files,
      before: (path) => before.get(path) ?? null,
      after: (path) => after.get(path) ?? null,
      model: (side) => (side === 'before' ? beforeModel() : afterModel()),
      shown,
      standIn,
      base,
    });
  }
  return views;
}

const LINE_REFS = /\b(?<word>lines?)\s+(?<nums>\d+(?:(?:,\s*|\s+and\s+)\d+)*)/g;

/**
 * Runs the C-model rules over reconstructed views. A finding must sit on a line the patch shows
 * whole; a cited line of stand-in code is named as such rather than given a number nobody can find.
 */
export async function runReconstructed(rules: readonly Rule[], views: readonly ReconstructedView[]): Promise<RuleFinding[]> {
  const out: RuleFinding[] = [];
  for (const view of views) {
    for (const f of await runRules(rules, [view])) {
      if (f.severity === 'info' && f.line === 0) {
        out.push(f);
        continue;
      }
      if (!view.shown.get(f.file)?.has(f.line)) continue;
      const standIn = view.standIn.get(f.file);
      const message = standIn
        ? f.message.replace(LINE_REFS, (all, _w: string, nums: string) =>
            [...nums.matchAll(/\d+/g)].some((m) => standIn.has(Number(m[0])))
              ? `${all} (of stand-in code: ${[...nums.matchAll(/\d+/g)].map((m) => standIn.get(Number(m[0])) ?? `line ${m[0]}`).join(', ')})`
              : all,
          )
        : f.message;
      out.push({
        ...f,
        message,
        evidence: [...(f.evidence ?? []), `diff alone: functions shown whole by the patch, the rest of the file from ${view.base?.slice(0, 12) ?? 'no base'}`],
      });
    }
  }
  return out;
}
