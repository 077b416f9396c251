import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kernelTree } from '../helpers/kernel-tree.js';
import { mail } from '../helpers/mail.js';
import { toMboxrd } from '../../src/store/export.js';

const BIN = fileURLToPath(new URL('../../src/cli/bin.js', import.meta.url));
let tree: string;
beforeAll(async () => {
  tree = await kernelTree();
}, 30 * 60_000);

/** A hand-written patch adding `added` after line `after` of a real file; context read from the tree. */
function patchAt(path: string, after: number, added: string[]): string {
  const lines = readFileSync(join(tree, path), 'utf8').split('\n');
  const ctx = lines.slice(after - 3, after + 3);
  const before = ctx.slice(0, 3).map((l) => ` ${l}`);
  const rest = ctx.slice(3).map((l) => ` ${l}`);
  return [
    `diff --git a/${path} b/${path}`,
    `--- a/${path}`,
    `+++ b/${path}`,
    `@@ -${after - 2},6 +${after - 2},${6 + added.length} @@`,
    ...before,
    ...added.map((a) => `+${a}`),
    ...rest,
    '',
  ].join('\n');
}

describe('check on the real 6.1 tree with the tree\'s own checkpatch.pl', () => {
  it('keeps checkpatch findings on added lines only, never duplicates ours, and never runs a patched checkpatch', () => {
    const path = 'drivers/vfio/vfio_main.c';
    const diff =
      patchAt(path, 21, ['int  vfio_review_demo = 0 ;', 'static void vfio_review_demo_fn(void) { BUG_ON(1); }']) +
      // The same patch also rewrites scripts/checkpatch.pl: that version must never run.
      'diff --git a/scripts/checkpatch.pl b/scripts/checkpatch.pl\n--- a/scripts/checkpatch.pl\n+++ b/scripts/checkpatch.pl\n' +
      `@@ -1,3 +1,4 @@\n${readFileSync(join(tree, 'scripts/checkpatch.pl'), 'utf8').split('\n').slice(0, 1).map((l) => ` ${l}`).join('\n')}\n+system("touch /tmp/vfio-review-pwned"); print "ERROR:PWNED: x\\n#1: FILE: ${path}:22:\\n"; exit 1;\n` +
      readFileSync(join(tree, 'scripts/checkpatch.pl'), 'utf8').split('\n').slice(1, 3).map((l) => ` ${l}`).join('\n') + '\n';
    const dir = mkdtempSync(join(tmpdir(), 'vr-kcheck-'));
    const mbox = join(dir, 'p.mbox');
    writeFileSync(mbox, toMboxrd([mail({ id: 'k1@x', subject: '[PATCH] vfio: demo', body: `Demo.\n\nSigned-off-by: Dev One <dev1@example.org>\n---\n${diff}-- \n2.43.0\n` })]));
    const r = spawnSync(process.execPath, [BIN, 'check', '--mbox', mbox, '--tree', tree, '--db', join(dir, 'db'), '--json'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const [one] = JSON.parse(r.stdout);
    expect(one.apply.status).toBe('applied');
    const rules = one.findings.map((f: { rule: string; line: number }) => `${f.rule}@${f.line}`).sort();
    expect(rules).toContain('bug-on@23');
    expect(rules).toContain('checkpatch/GLOBAL_INITIALISERS@22');
    expect(rules.filter((x: string) => x.startsWith('checkpatch/AVOID_BUG'))).toEqual([]);
    expect(rules.filter((x: string) => x.includes('PWNED'))).toEqual([]);
    expect(existsSync('/tmp/vfio-review-pwned')).toBe(false);
    for (const f of one.findings.filter((x: { file: string }) => x.file === path)) expect([22, 23]).toContain(f.line);
  });

  it('runs checkpatch.pl once for a whole series and gives each finding to its own patch', () => {
    // Two patches to the same file, each with its own style slip at a different line.
    const path = 'drivers/vfio/vfio_main.c';
    const first = patchAt(path, 21, ['int  vfio_review_one = 0 ;']);
    const second = patchAt(path, 41, ['int  vfio_review_two = 0 ;']).replace(/@@ -(\d+),6 \+(\d+),7 @@/, (_, a, b) => `@@ -${Number(a) + 1},6 +${Number(b) + 1},7 @@`);
    const dir = mkdtempSync(join(tmpdir(), 'vr-kcheck2-'));
    const mbox = join(dir, 'p.mbox');
    const body = (d: string): string => `Demo.\n\nSigned-off-by: Dev One <dev1@example.org>\n---\n${d}-- \n2.43.0\n`;
    writeFileSync(mbox, toMboxrd([
      mail({ id: 'c0@x', subject: '[PATCH 0/2] vfio: two demos', body: 'Two.\n' }),
      mail({ id: 'c1@x', subject: '[PATCH 1/2] vfio: demo one', inReplyTo: 'c0@x', references: ['c0@x'], body: body(first) }),
      mail({ id: 'c2@x', subject: '[PATCH 2/2] vfio: demo two', inReplyTo: 'c0@x', references: ['c0@x'], body: body(second) }),
    ]));
    const r = spawnSync(process.execPath, [BIN, 'check', '--mbox', mbox, '--tree', tree, '--db', join(dir, 'db'), '--json'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const [one] = JSON.parse(r.stdout);
    expect(one.apply.status).toBe('applied');
    const cp = one.findings.filter((f: { rule: string }) => f.rule === 'checkpatch/GLOBAL_INITIALISERS').map((f: { patch: string; line: number }) => `${f.patch}@${f.line}`).sort();
    expect(cp).toEqual(['c1@x@22', 'c2@x@43']);
  });
});
