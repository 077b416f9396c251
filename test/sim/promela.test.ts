import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { check } from '../../src/sim/checker.js';
import { PROMELA_VERDICT, toPromela } from '../../src/sim/promela.js';
import { scenarioById } from '../../src/sim/scenarios/index.js';
import { ensureSystemPackages } from '../../src/util/system-packages.js';

/**
 * The Promela translation the benchmark hands to spin: spin (Debian's, installed like the other
 * tools the tests use) must reach the same verdict as our explorer on each translated scenario.
 */
let dir: string;
beforeAll(async () => {
  await ensureSystemPackages(['spin', 'gcc']);
  dir = mkdtempSync(join(tmpdir(), 'vr-promela-'));
}, 10 * 60_000);
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function spin(pml: string, name: string): string {
  const d = join(dir, name);
  execFileSync('mkdir', ['-p', d]);
  writeFileSync(join(d, 'model.pml'), pml);
  execFileSync('spin', ['-a', 'model.pml'], { cwd: d, stdio: 'ignore' });
  execFileSync('gcc', ['-O2', '-DSAFETY', '-o', 'pan', 'pan.c'], { cwd: d, stdio: 'ignore' });
  const out = execFileSync('./pan', [], { cwd: d, encoding: 'utf8' });
  if (/^pan:\d+: invalid end state/m.test(out)) return 'deadlock';
  const what = /^pan:\d+: assertion violated\s+!\((?<what>.*?)\) \(at depth/m.exec(out)?.groups?.what;
  return what ? (PROMELA_VERDICT[what] ?? 'outcome') : 'safe';
}

describe.each([
  ['abba', undefined, 'deadlock'],
  ['lock-ring-4', undefined, 'deadlock'],
  ['stale-pointer-relock', undefined, 'stale-pointer'],
  ['free-while-in-use', undefined, 'use-after-free'],
  ['mp-plain', 'T1_r0 == 1 && T1_r1 == 0', 'safe'],
  ['abba-trylock', undefined, 'safe'],
] as const)('%s in Promela', (id, outcome, verdict) => {
  it(`spin and our explorer both say ${verdict} (under SC)`, async () => {
    const sc = scenarioById(id)!;
    const programs = await sc.programs();
    const opts = { ...(sc.init ? { init: sc.init } : {}), ...(sc.objects ? { objects: sc.objects } : {}), ...(sc.unallocated ? { unallocated: sc.unallocated } : {}) };
    const ours = check(programs, { ...opts, ...(sc.exists && outcome ? { exists: sc.exists } : {}) });
    const ourVerdict = ours.verdict === 'self-deadlock' ? 'deadlock' : ours.verdict === 'safe' && ours.exists && ours.exists.frequency !== 'never' ? 'outcome' : ours.verdict;
    const pml = toPromela(programs, { ...opts, ...(outcome ? { outcome } : {}), title: id });
    expect(pml).toContain('init {');
    expect(ourVerdict).toBe(verdict);
    expect(spin(pml, id)).toBe(verdict);
  }, 60_000);
});

it('refuses what has no translation instead of translating it wrongly', () => {
  expect(() => toPromela([{ name: 'x', ops: [{ kind: 'set', reg: 'r', value: '?' }] }])).toThrow(/unknown values/);
  expect(() => toPromela([{ name: 'x', ops: [{ kind: 'assume', cond: 'r == 1' }] }])).toThrow(/assume/);
});
