import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { run } from '../../src/cli/sim.js';
import { VrError } from '../../src/errors.js';
import { kernelTree } from '../helpers/kernel-tree.js';

let out = '';
afterEach(() => vi.restoreAllMocks());
function capture(): void {
  out = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
}

let root: string;
beforeAll(async () => {
  root = await kernelTree();
});

describe('vfio-review sim', () => {
  it('--list names every scenario with its expectation', async () => {
    capture();
    expect(await run(['--list', '--json'])).toBe(0);
    const rows = JSON.parse(out) as { id: string; expect: string; tree: boolean }[];
    expect(rows.map((r) => r.id)).toContain('vfio-ap-apmask-vs-assign');
    expect(rows.find((r) => r.id === 'abba')).toMatchObject({ expect: 'deadlock', tree: false });
  });

  it('--scenario prints the verdict and the lockdep-style trace; exit 0 when as expected', async () => {
    capture();
    expect(await run(['--scenario', 'abba'])).toBe(0);
    expect(out).toContain('abba: deadlock (expected deadlock: as expected)');
    expect(out).toContain('*** DEADLOCK ***');
  });

  it('--json carries verdict, trace steps with file:line, and stats', async () => {
    capture();
    expect(await run(['--scenario', 'abba-trylock', '--json'])).toBe(0);
    const j = JSON.parse(out);
    expect(j).toMatchObject({ id: 'abba-trylock', verdict: 'safe', pass: true, exists: { frequency: 'sometimes' } });
    expect(j.outcomes['writer fails'].frequency).toBe('sometimes');
    expect(j.trace.steps[0]).toMatchObject({ cpu: 0, text: 'lock(ap_perms_mutex)', at: { file: 'ap_bus.c', line: 1406 }, lock: 'ap_perms_mutex' });
    expect(j.stats.states).toBeGreaterThan(0);
  });

  it('runs a tree scenario on --tree', async () => {
    capture();
    expect(await run(['--scenario', 'vfio-ap-apmask-vs-assign', '--tree', root])).toBe(0);
    expect(out).toMatch(/^vfio-ap-apmask-vs-assign: safe \(expected never: as expected\)/);
  });

  it('exit 1 when the verdict is not the expected one (a bound hit is never a pass)', async () => {
    capture();
    expect(await run(['--scenario', 'lock-ring-4', '--max-states', '10'])).toBe(1);
  });

  it('usage errors', async () => {
    await expect(run([])).rejects.toThrow(VrError);
    await expect(run(['--scenario', 'nope'])).rejects.toThrow(/unknown scenario/);
    await expect(run(['--scenario', 'vfio-ap-apmask-vs-assign'])).rejects.toThrow(/--tree DIR/);
    await expect(run(['--scenario', 'abba', '--max-states', 'x'])).rejects.toThrow(/positive integer/);
  });
});
