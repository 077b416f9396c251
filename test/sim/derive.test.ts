import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildModel, type SourceReader, type TreeModel } from '../../src/cmodel/index.js';
import { check, explain, type CheckOptions } from '../../src/sim/checker.js';
import { derivePrograms } from '../../src/sim/derive.js';

/**
 * The derivation on small C programs written for it (test/sim/fixtures/*.c), each pair of entry
 * points with its known verdict.
 */
const files: Record<string, string> = {
  'drivers/sim/locks.c': readFileSync(new URL('./fixtures/locks.c', import.meta.url), 'utf8'),
  'drivers/sim/lifetime.c': readFileSync(new URL('./fixtures/lifetime.c', import.meta.url), 'utf8'),
};
const reader: SourceReader = { readFile: (p) => files[p] ?? null, list: () => [] };

let locks: TreeModel;
let lifetime: TreeModel;
beforeAll(async () => {
  locks = await buildModel(reader, ['drivers/sim/locks.c']);
  lifetime = await buildModel(reader, ['drivers/sim/lifetime.c']);
});

function run(model: TreeModel, file: string, entries: string[], opts: CheckOptions = {}): ReturnType<typeof check> {
  const programs = derivePrograms(model, { files: [file], threads: entries.map((entry) => ({ entry, file })) });
  return check(programs, opts);
}

describe('locks from C', () => {
  it('ABBA deadlocks, with a trace naming both lock classes at their lines', () => {
    const r = run(locks, 'drivers/sim/locks.c', ['writer', 'reader']);
    expect(r.verdict).toBe('deadlock');
    const text = explain(r);
    expect(text).toMatch(/lock\(a_lock\); locks\.c:18/);
    expect(text).toMatch(/lock\(b_lock\); locks\.c:20 {2}<- waits/);
    expect(text).toMatch(/lock\(a_lock\); locks\.c:32 {2}<- waits/);
  });

  it('a trylock on the inner lock: no deadlock, and the -EBUSY return is reachable', () => {
    const r = run(locks, 'drivers/sim/locks.c', ['writer_try', 'reader'], { exists: (v) => v['0:ret'] === -16 });
    expect(r.verdict).toBe('safe');
    expect(r.exists!.frequency).toBe('sometimes');
  });

  it('the same order on both sides is safe', () => {
    expect(run(locks, 'drivers/sim/locks.c', ['writer', 'reader_ordered']).verdict).toBe('safe');
  });

  it('AB-BA through an ops callback (b->ops->in_use bound to drv_in_use in an initialiser)', () => {
    const r = run(locks, 'drivers/sim/locks.c', ['bus_store', 'drv_store']);
    expect(r.verdict).toBe('deadlock');
    expect(explain(r)).toContain('b->ops->in_use() -> drv_in_use()');
    expect(r.fault!.message).toContain('bus.lock');
    expect(r.fault!.message).toContain('drv_lock');
  });

  it('check-then-act: both creators can take the one slot', () => {
    const r = run(locks, 'drivers/sim/locks.c', ['create', 'create'], {
      init: { 'state.avail': 1 }, invariants: [{ name: 'one slot handed out once', cells: ['state.created'], holds: (v) => (v['state.created'] ?? 0) <= 1 }],
    });
    expect(r.verdict).toBe('invariant');
  });
});

describe('lifetimes from C', () => {
  const opts: CheckOptions = { objects: ['obj'], init: { 'holder.cur': '&obj' } };
  const file = 'drivers/sim/lifetime.c';

  it('use after the lock was dropped while a remover unlinks and frees it: stale pointer', () => {
    const r = run(lifetime, file, ['user_unlocked', 'remover'], opts);
    expect(r.verdict).toBe('stale-pointer');
    expect(r.fault!.message).toContain('read from holder.cur under holder.lock');
  });

  it('use after dropping and retaking the lock: stale pointer', () => {
    const r = run(lifetime, file, ['user_relock', 'remover'], opts);
    expect(r.verdict).toBe('stale-pointer');
    expect(explain(r)).toContain('*** STALE POINTER ***');
  });

  it('use under the lock: safe', () => {
    expect(run(lifetime, file, ['user_locked', 'remover'], opts).verdict).toBe('safe');
  });
});

describe('message passing from C (relaxed)', () => {
  const file = 'drivers/sim/lifetime.c';
  const stale = (v: Record<string, number | undefined>): boolean => v['1:ret'] === 0;

  it('smp_store_release/smp_load_acquire: the receiver never sees the flag without the data', () => {
    const r = run(lifetime, file, ['send_release', 'recv_acquire'], { memory: 'relaxed', exists: stale });
    expect(r.exists!.frequency).toBe('never');
  });

  it('WRITE_ONCE/READ_ONCE only: it can', () => {
    const r = run(lifetime, file, ['send_once', 'recv_once'], { memory: 'relaxed', exists: stale });
    expect(r.exists!.frequency).toBe('sometimes');
  });
});
