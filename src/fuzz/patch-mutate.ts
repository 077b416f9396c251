/**
 * Mutation operators for the malformed-patch campaign (issue 8): each turns seed diffs (made by
 * git, or real corpus patches) into hostile input for src/apply: wrong hunk counts, CRLF, missing
 * final newlines, renames and copies, binary patches, mode changes, symlinks, paths that climb
 * out of the tree or into `.git`. A case is a series of one to three patches (null: missing).
 */
import { caseRng, type Rng } from './rng.js';
import type { SeedDiff } from './patch-repo.js';

export type PatchFamily = 'hunk' | 'eol' | 'rename' | 'binary' | 'mode' | 'symlink' | 'traversal' | 'header' | 'shape' | 'series';

export interface PatchCtx {
  seeds: readonly SeedDiff[];
  /** A seed diff by name, or any seed. */
  seed(name?: string): string;
  /** The sandbox's `outside/` as an absolute path, for absolute-path targets. */
  outside: string;
}
type PatchApply = (d: string, r: Rng, c: PatchCtx) => string | (string | null)[];

const pop = <const Id extends string>(id: Id, family: PatchFamily, weight: number, apply: PatchApply) => ({ id, family, weight, apply });

/** Replaces each match of `re` in `d` by `f(match)`. */
const each = (d: string, re: RegExp, f: (m: string) => string): string => d.replace(re, f);
const lines = (d: string): string[] => d.split('\n');
const nonce = (r: Rng): string => r.int(2 ** 31).toString(36);

const HUNK = /^@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@/gm;
const PATH_HEADER = /^(diff --git \S+ \S+|--- \S+|\+\+\+ \S+|rename (?:from|to) .+|copy (?:from|to) .+)$/gm;

/**
 * Paths that climb out of the tree, point into `.git`, or are absolute. At most three levels up:
 * from the engine's work tree (sandbox/tmp/<workspace>/wt) that stays inside the sandbox, whose
 * snapshot would show a write; from the repository (sandbox/repo) it may leave it, and the
 * campaign checks those few places by name.
 */
function hostilePath(r: Rng, c: PatchCtx): string {
  const up = '../'.repeat(1 + r.int(3));
  return r.pick([
    `${up}outside/pwned-${nonce(r)}`, `drivers/${up}outside/pwned`, `${c.outside}/abs-pwned`, '/etc/passwd',
    '.git/hooks/post-commit', '.git/config', 'drivers/.GIT/x', 'git~1/config', '.git./HEAD', '.g\u200cit/hooks/x',
    'escape/pwned', 'link/x', 'drivers//../../x', './../x', '..', '.', '', 'drivers/vfio/\u0000nul', 'a\\..\\..\\x',
  ]);
}

const quoteOctal = (p: string): string => `"${[...Buffer.from(p, 'utf8')].map((b) => (b === 0x2e ? '\\056' : String.fromCharCode(b))).join('')}"`;

export const PATCH_OPERATORS = [
  pop('as-is', 'shape', 8, (d) => d),
  pop('hunk-counts', 'hunk', 10, (d, r) => each(d, HUNK, () => r.pick([
    `@@ -1,${1 + r.int(9)} +1,${r.int(9)} @@`, '@@ -1,0 +1,0 @@', '@@ -1,99999999 +1,99999999 @@', '@@ -99999999999999999999,1 +1 @@',
    '@@ -1 +1 @@', '@@ -0,0 +0,0 @@', `@@ -${r.int(200)},3 +${r.int(200)},4 @@`, '@@ -1,-1 +1,2 @@', '@@ @@', '@@ -4294967296,1 +1,1 @@',
  ]))),
  pop('hunk-recount', 'hunk', 10, (d, r) => each(d, HUNK, (h) => h.replace(/,(\d+)/g, (_x, n: string) => `,${Math.max(0, Number(n) + r.pick([-2, -1, 1, 2, 5]))}`))),
  pop('hunk-body', 'hunk', 10, (d, r) => {
    const ls = lines(d);
    for (let n = 1 + r.int(4); n > 0; n--) {
      const i = r.int(ls.length);
      const l = ls[i]!;
      if (/^[ +-]/.test(l) && !/^(?:---|\+\+\+) /.test(l)) {
        ls[i] = r.pick([`${r.pick([' ', '+', '-'])}${l.slice(1)}`, `${l[0]}${l.slice(1).toUpperCase()}x`, '', `${l}\t`, l.replace(/\t/g, '        ')]);
      } else if (r.chance(0.3)) ls.splice(i, 0, r.pick([' extra context', '+added', '-removed', '\\ No newline at end of file']));
    }
    return ls.join('\n');
  }),
  pop('whitespace-damage', 'hunk', 6, (d, r) => lines(d).map((l) => (r.chance(0.5) ? l.replace(/[ \t]+$/, '') : l.replace(/^ /, r.pick(['', '  '])))).join('\n')),
  pop('crlf', 'eol', 10, (d, r) => (r.chance(0.5) ? d.replace(/\n/g, '\r\n') : lines(d).map((l) => (r.chance(0.4) ? `${l}\r` : l)).join('\n'))),
  pop('no-final-newline', 'eol', 10, (d, r) => {
    const ls = lines(d.replace(/\n+$/, ''));
    if (r.chance(0.5)) for (let n = 1 + r.int(3); n > 0; n--) ls.splice(r.int(ls.length + 1), 0, '\\ No newline at end of file');
    return ls.join('\n') + r.pick(['', '\n\\ No newline at end of file', '\r']);
  }),
  pop('truncate', 'shape', 8, (d, r) => d.slice(0, r.int(d.length + 1))),
  pop('rename-copy', 'rename', 10, (d, r, c) => {
    const src = r.pick(['drivers/vfio/vfio_main.c', 'drivers/vfio/old.c', 'nonexistent.c', 'drivers/iommu/iommu.c', 'link', 'firmware/blob.bin']);
    const dst = r.chance(0.3) ? hostilePath(r, c) : r.pick([`drivers/vfio/moved-${nonce(r)}.c`, 'drivers/iommu/iommu.c', src, 'drivers/vfio', `drivers/vfio/vfio_main.c/sub`]);
    const op = r.pick(['rename', 'copy']);
    const head = `diff --git a/${src} b/${dst}\nsimilarity index ${r.int(101)}%\n${op} from ${src}\n${op} to ${dst}\n`;
    const body = r.chance(0.5) ? '' : (/^@@[\s\S]*/m.exec(d)?.[0] ?? '');
    return head + body;
  }),
  pop('binary-garbage', 'binary', 10, (d, r, c) => {
    const bin = /GIT binary patch/.test(d) ? d : c.seed('binary');
    return each(bin, /^(literal|delta) \d+\n((?:.+\n)+)/gm, (block) => {
      const [first, ...data] = block.split('\n');
      return r.pick([
        `${first}\n${data.map((l) => (r.chance(0.3) ? `${l.slice(0, -3)}!!!` : l)).join('\n')}`,
        `${first!.replace(/\d+/, String(r.pick([0, 1, 99999999, 2 ** 40])))}\n${data.join('\n')}`,
        `${first}\n${data.slice(0, 1 + r.int(Math.max(1, data.length - 1))).join('\n')}\n`,
        `${first!.startsWith('literal') ? 'delta' : 'literal'}${first!.slice(first!.indexOf(' '))}\n${data.join('\n')}`,
        `${first}\nzcmeIu0Sy2E0K%a6Pi+hzh(KY$fB^#r3>YwAz<>b*1\n\n`,
      ]);
    });
  }),
  pop('binary-no-data', 'binary', 4, (d, r) => `diff --git a/firmware/blob.bin b/firmware/blob.bin\n${r.pick(['index 1111111..2222222 100644\n', ''])}${r.pick(['Binary files a/firmware/blob.bin and b/firmware/blob.bin differ\n', 'GIT binary patch\n', 'GIT binary patch\nliteral 10\n'])}${r.chance(0.3) ? d : ''}`),
  pop('mode-lines', 'mode', 10, (d, r) => {
    const mode = (): string => r.pick(['100644', '100755', '100664', '040000', '120000', '160000', '000000', '777', 'garbage', '1006440', '100644 ']);
    const extra = r.pick([`old mode ${mode()}\nnew mode ${mode()}\n`, `new file mode ${mode()}\n`, `deleted file mode ${mode()}\n`, `index 1111111..2222222 ${mode()}\n`]);
    return d.replace(/^(diff --git .*\n)/m, `$1${extra}`);
  }),
  pop('symlink', 'symlink', 10, (_d, r, c) => {
    const target = r.pick(['../../outside/pwned', '/etc/passwd', c.outside, '.git/config', 'drivers/vfio/vfio_main.c']);
    const name = r.pick(['drivers/vfio/evil', 'link', 'escape', 'escape/pwned']);
    const mode = r.pick(['new file mode 120000\n', 'old mode 100644\nnew mode 120000\n', '', 'index 0000000..1111111 120000\n']);
    return `diff --git a/${name} b/${name}\n${mode}--- ${mode.startsWith('new file') ? '/dev/null' : `a/${name}`}\n+++ b/${name}\n@@ -${mode.startsWith('new file') ? '0,0' : '1'} +1 @@\n${mode.startsWith('new file') ? '' : '-drivers/vfio/vfio_main.c\n\\ No newline at end of file\n'}+${target}\n\\ No newline at end of file\n`;
  }),
  pop('path-traversal', 'traversal', 14, (d, r, c) => {
    const bad = hostilePath(r, c);
    const quoted = r.chance(0.2);
    return each(d, PATH_HEADER, (h) => {
      if (!r.chance(0.6)) return h;
      const name = quoted ? quoteOctal(bad) : bad;
      if (h.startsWith('diff --git ')) return quoted ? `diff --git ${quoteOctal(`a/${bad}`)} ${quoteOctal(`b/${bad}`)}` : `diff --git a/${bad} b/${bad}`;
      if (h.startsWith('--- ')) return `--- ${r.chance(0.5) ? `a/${bad}` : name}`;
      if (h.startsWith('+++ ')) return `+++ ${r.chance(0.5) ? `b/${bad}` : name}`;
      return h.replace(/(from|to) .+$/, `$1 ${name}`);
    });
  }),
  pop('new-file-traversal', 'traversal', 8, (_d, r, c) => {
    const p = hostilePath(r, c);
    return `diff --git a/${p} b/${p}\nnew file mode 100644\nindex 0000000..1111111\n--- /dev/null\n+++ b/${p}\n@@ -0,0 +1 @@\n+pwned\n`;
  }),
  pop('git-header', 'header', 8, (d, r) => d.replace(/^diff --git .*$/m, (l) => r.pick([
    'diff --git', 'diff --git a/x', l.replace(/ b\//, '  b/'), l.replace(/a\//, ''), l.replace(/ b\/.*/, ' b/other.c'), `${l} extra`,
    'diff --git "a/unterminated b/x', 'diff --git a/x\\ny b/x\\ny', `${l}\n${l}`,
  ]))),
  pop('junk-lines', 'header', 6, (d, r) => {
    const ls = lines(d);
    for (let n = 1 + r.int(5); n > 0; n--) ls.splice(r.int(ls.length + 1), 0, r.pick(['-- ', '2.43.0', 'similarity index 999%', 'index zzzz..yyyy', 'Binary files differ', '@@', '+++', '---', '\0', 'GIT binary patch']));
    return ls.join('\n');
  }),
  pop('duplicate-file', 'shape', 6, (d) => d + d),
  pop('empty', 'shape', 3, (_d, r) => r.pick(['', '\n', 'diff --git a/x b/x\n', '--- a/x\n+++ b/x\n', 'not a diff at all\n'])),
  pop('oversized', 'shape', 1, (_d, r) => r.chance(0.5)
    ? Array.from({ length: 501 + r.int(50) }, (_x, i) => `diff --git a/f${i} b/f${i}\nnew file mode 100644\n--- /dev/null\n+++ b/f${i}\n@@ -0,0 +1 @@\n+x\n`).join('')
    : `diff --git a/big.txt b/big.txt\nnew file mode 100644\n--- /dev/null\n+++ b/big.txt\n@@ -0,0 +1 @@\n+${'x'.repeat(5 * 1024 * 1024 + 10)}\n`),
  pop('series', 'series', 10, (d, r, c) => {
    const n = 2 + r.int(2);
    const out: (string | null)[] = [d];
    for (let i = 1; i < n; i++) out.push(r.chance(0.2) ? null : c.seed());
    // A symlink out of the tree, then a write through it.
    if (r.chance(0.3)) return [`diff --git a/sl b/sl\nnew file mode 120000\n--- /dev/null\n+++ b/sl\n@@ -0,0 +1 @@\n+../outside\n\\ No newline at end of file\n`, `diff --git a/sl/pwned b/sl/pwned\nnew file mode 100644\n--- /dev/null\n+++ b/sl/pwned\n@@ -0,0 +1 @@\n+x\n`];
    return out;
  }),
] as const;

export type PatchOperatorId = (typeof PATCH_OPERATORS)[number]['id'];
type PatchOperator = (typeof PATCH_OPERATORS)[number];

export interface PatchCase {
  index: number;
  operators: PatchOperatorId[];
  seed: string;
  /** The series' patches in order; null: missing from the series. */
  patches: (string | null)[];
  /** Base refs to try, in order; now and then a malformed or missing one before `main`. */
  candidates: string[];
}

function weighted(ops: readonly PatchOperator[], r: Rng): PatchOperator {
  let x = r.next() * ops.reduce((s, o) => s + o.weight, 0);
  for (const o of ops) if ((x -= o.weight) < 0) return o;
  return ops[ops.length - 1]!;
}

/** Case `index` of the patch campaign with `seed`: deterministic in (seeds, outside, seed, index). */
export function makePatchCase(seeds: readonly SeedDiff[], outside: string, seed: number, index: number, only?: readonly PatchOperatorId[]): PatchCase {
  // A stream of its own: the mail campaign's case `index` is unrelated.
  const r = caseRng(seed ^ 0x5a17c4, index);
  const ops = only ? PATCH_OPERATORS.filter((o) => only.includes(o.id)) : PATCH_OPERATORS;
  if (ops.length === 0 || seeds.length === 0) throw new Error('makePatchCase: no operators or no seeds');
  const ctx: PatchCtx = {
    seeds, outside,
    seed: (name) => (seeds.find((s) => s.name === name) ?? seeds[r.int(seeds.length)]!).diff,
  };
  const base = seeds[r.int(seeds.length)]!;
  const first = weighted(ops, r);
  const operators: PatchOperatorId[] = [first.id];
  const out = first.apply(base.diff, r, ctx);
  let patches = typeof out === 'string' ? [out] : out;
  // A third of the single patches take a second mutation on top (never the shape-changing ones).
  if (!only && typeof out === 'string' && r.chance(0.33)) {
    const next = weighted(ops.filter((o) => o.family !== 'series' && o.id !== 'oversized'), r);
    operators.push(next.id);
    patches = patches.map((p) => (p === null ? p : (next.apply(p, r, ctx) as string)));
  }
  const candidates = r.chance(0.1) ? [r.pick(['no-such-ref', '-main', 'main..x', 'main@{-1}', '../main', 'main:x', '']), 'main'] : ['main'];
  return { index, operators, seed: base.name, patches, candidates };
}
