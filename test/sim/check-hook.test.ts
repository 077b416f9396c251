import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toMboxrd } from '../../src/store/export.js';
import { createRepo, type TestRepo } from '../helpers/git-repo.js';
import { mail } from '../helpers/mail.js';

/**
 * `vfio-review check` end to end on a hand-written tree: the simulator hook in checkSeries turns
 * a synthesised deadlock into a `sim/deadlock` finding on the patch, with its trace, and stays
 * quiet on the fixed series.
 */
const BIN = fileURLToPath(new URL('../../src/cli/bin.js', import.meta.url));
const PATH = 'drivers/vfio/toy_ap.c';
const fixture = (name: string): string => readFileSync(new URL(`../fixtures/sim/${name}`, import.meta.url), 'utf8');

function body(diff: string): string {
  return `Add unassign_adapter.\n\nSigned-off-by: Dev One <dev1@example.org>\n---\n${diff}-- \n2.43.0\n`;
}

describe('check runs the synthesised scenarios', () => {
  let repo: TestRepo;
  let dir: string;
  const diffs: Record<string, string> = {};

  beforeAll(async () => {
    repo = await createRepo({ [PATH]: fixture('sysfs-abba.base.c') });
    dir = mkdtempSync(join(tmpdir(), 'vr-sim-check-'));
    const base = await repo.git('rev-parse', 'HEAD');
    for (const name of ['sysfs-abba.c', 'sysfs-abba-fixed.c']) {
      await repo.commit({ [PATH]: fixture(name) }, name);
      diffs[name] = await repo.gitRaw('diff', base, 'HEAD');
      await repo.git('reset', '-q', '--hard', base);
    }
  });
  afterAll(async () => {
    await repo?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const check = (name: string, id: string): { status: number; stderr: string; report: { findings: { rule: string; patch: string; file: string; line: number; category: string; trace?: string; message: string }[]; notes?: string[] } } => {
    const mbox = join(dir, `${id}.mbox`);
    writeFileSync(mbox, toMboxrd([mail({ id, subject: '[PATCH] vfio/toy_ap: add unassign_adapter', body: body(diffs[name]!) })]));
    const r = spawnSync(process.execPath, [BIN, 'check', '--mbox', mbox, '--tree', repo.dir, '--db', join(dir, `${id}.db`), '--json'], { encoding: 'utf8' });
    return { status: r.status ?? -1, stderr: r.stderr, report: r.status === 0 ? JSON.parse(r.stdout)[0] : { findings: [] } };
  };

  it('reports the AB-BA the patch introduces as sim/deadlock on the patch, at the new lock line, with the trace', () => {
    const { status, stderr, report } = check('sysfs-abba.c', 'abba@toy');
    expect(status, stderr).toBe(0);
    const sim = report.findings.filter((f) => f.rule.startsWith('sim/'));
    expect(sim).toHaveLength(1);
    expect(sim[0]).toMatchObject({ rule: 'sim/deadlock', category: 'lock-order', patch: 'abba@toy', file: PATH, line: 65 });
    expect(sim[0]!.trace).toContain('*** DEADLOCK ***');
    expect(sim[0]!.message).toMatch(/unassign_adapter_store/);
  }, 120_000);

  it('is quiet on the fixed patch', () => {
    const { status, stderr, report } = check('sysfs-abba-fixed.c', 'fixed@toy');
    expect(status, stderr).toBe(0);
    expect(report.findings.filter((f) => f.rule.startsWith('sim/'))).toEqual([]);
    expect(report.notes ?? []).toEqual([]);
  }, 120_000);
});
