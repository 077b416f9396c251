import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRepo, numbered, type TestRepo } from '../helpers/git-repo.js';
import { mail } from '../helpers/mail.js';
import { toMboxrd } from '../../src/store/export.js';

const BIN = fileURLToPath(new URL('../../src/cli/bin.js', import.meta.url));
const cli = (args: string[]) => {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
};

/** A format-patch mail body for a diff. */
function body(diff: string, msg = 'Change it.'): string {
  return `${msg}\n\nSigned-off-by: Dev One <dev1@example.org>\n---\n${diff}-- \n2.43.0\n`;
}

describe('vfio-review check on a small hand-written tree', () => {
  let repo: TestRepo;
  let dir: string;
  let goodDiffs: string[];
  let conflict: string;

  beforeAll(async () => {
    repo = await createRepo({ 'drivers/vfio/demo.c': numbered(30) });
    dir = mkdtempSync(join(tmpdir(), 'vr-check-'));
    const base = await repo.git('rev-parse', 'HEAD');
    // Make the series' diffs on a side commit chain, then go back so the tree is at base.
    await repo.commit({ 'drivers/vfio/demo.c': numbered(30, { 3: 'three, changed' }) }, 'one');
    await repo.commit({ 'drivers/vfio/demo.c': numbered(30, { 3: 'three, changed', 20: 'twenty, changed' }) }, 'two');
    goodDiffs = [await repo.gitRaw('diff', `${base}`, 'HEAD~1'), await repo.gitRaw('diff', 'HEAD~1', 'HEAD')];
    await repo.git('reset', '-q', '--hard', base);
    // The second change with a context line the tree does not have.
    conflict = goodDiffs[1]!.replace(/^ (.*19.*)$/m, ' nineteen, not there');
  });
  afterAll(async () => {
    await repo?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('applies a series and prints the documented JSON shape', () => {
    const mbox = join(dir, 'good.mbox');
    writeFileSync(
      mbox,
      toMboxrd([
        mail({ id: 'g0@x', subject: '[PATCH 0/2] vfio/demo: two changes', body: 'Two changes.\n' }),
        mail({ id: 'g1@x', subject: '[PATCH 1/2] vfio/demo: change three', inReplyTo: 'g0@x', body: body(goodDiffs[0]!) }),
        mail({ id: 'g2@x', subject: '[PATCH 2/2] vfio/demo: change twenty', inReplyTo: 'g0@x', body: body(goodDiffs[1]!) }),
      ]),
    );
    const r = cli(['check', '--mbox', mbox, '--tree', repo.dir, '--db', join(dir, 'a.db'), '--json']);
    expect(r.status, r.stderr).toBe(0);
    const [one, ...rest] = JSON.parse(r.stdout);
    expect(rest).toEqual([]);
    expect(one.series).toEqual({ id: 1, subject: '[PATCH 0/2] vfio/demo: two changes', version: 1, cover: 'g0@x', patches: ['g1@x', 'g2@x'], complete: true });
    expect(one.apply.status).toBe('applied');
    expect(one.apply.base.ref).toBe('HEAD');
    expect(one.apply.attempts.map((a: { ref: string; result: string }) => [a.ref, a.result])).toEqual([
      ['vfio/next', 'missing'],
      ['HEAD', 'applied'],
    ]);
    expect(one.findings).toEqual([]);
    // The checkout is untouched.
    expect(spawnSync('git', ['-C', repo.dir, 'status', '--porcelain'], { encoding: 'utf8' }).stdout).toBe('');
  });

  it('names the first failing patch and hunk when nothing applies, and still reports the series', () => {
    const mbox = join(dir, 'bad.mbox');
    writeFileSync(
      mbox,
      toMboxrd([mail({ id: 'b1@x', subject: '[PATCH] vfio/demo: will not apply', body: body(conflict) })]),
    );
    const r = cli(['check', '--mbox', mbox, '--tree', repo.dir, '--db', join(dir, 'b.db'), '--json']);
    expect(r.status, r.stderr).toBe(0);
    const [one] = JSON.parse(r.stdout);
    expect(one.apply.status).toBe('not-applied');
    expect(one.apply.label).toBe('not applied; the diff alone was reviewed');
    expect(one.apply.failedPatch).toBe(1);
    const head = one.apply.attempts.find((a: { ref: string }) => a.ref === 'HEAD');
    expect(head).toMatchObject({ result: 'failed', failedPatch: 1, file: 'drivers/vfio/demo.c' });
    expect(head.hunk).toMatch(/^@@ -\d+,\d+ \+\d+,\d+ @@$/);
  });

  it('reruns a series by Message-ID and records a second check', () => {
    const db = join(dir, 'a.db');
    const r = cli(['rerun', '<g2@x>', '--tree', repo.dir, '--db', db, '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).apply.status).toBe('applied');
    const missing = cli(['rerun', 'nope@x', '--tree', repo.dir, '--db', db]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/NOT_FOUND/);
  });
});
