import { describe, expect, it } from 'vitest';
import { check, explain } from '../../src/sim/checker.js';
import { builder as t, type Op, type ThreadProgram } from '../../src/sim/model.js';
import { runScenario } from '../../src/sim/run.js';
import { abba } from '../../src/sim/scenarios/abba.js';
import { abbaTrylock } from '../../src/sim/scenarios/abba-trylock.js';
import { lockRing4 } from '../../src/sim/scenarios/lock-ring-4.js';
import { stalePointerRelock } from '../../src/sim/scenarios/stale-pointer-relock.js';

const prog = (name: string, ops: Op[]): ThreadProgram => ({ name, ops });

describe('deadlock', () => {
  it('renders ABBA like lockdep: CPU columns, file:line, the waiting ops and *** DEADLOCK ***, in about 25 lines', async () => {
    const r = await runScenario(abba);
    expect(r.result.verdict).toBe('deadlock');
    const lines = r.text.split('\n');
    expect(lines[0]).toBe(' Possible unsafe locking scenario:');
    expect(lines[2]).toMatch(/^ {2}CPU0 +CPU1$/);
    expect(r.text).toMatch(/lock\(A\); abba\.c:10/);
    expect(r.text).toMatch(/lock\(B\); abba\.c:12 {2}<- waits/);
    expect(r.text).toMatch(/lock\(A\); abba\.c:22 {2}<- waits/);
    expect(r.text).toContain('*** DEADLOCK ***');
    expect(r.text).toContain('writer waits for B held by reader; reader waits for A held by writer');
    expect(lines.length).toBeLessThanOrEqual(26);
    // The fewest preemptions: one switch while the writer could still run.
    expect(r.result.trace!.preemptions).toBe(1);
    console.info(`[sim] ABBA first counterexample after ${r.result.stats.firstMs?.toFixed(2)} ms, ${r.result.stats.states} states`);
  });

  it('reports taking a held lock again as self-deadlock, even while other threads can run', () => {
    const r = check([
      prog('T0', [t.lock('L', 'a.c:1'), t.lock('L', 'a.c:2'), t.unlock('L'), t.unlock('L')]),
      prog('T1', [t.write('x', 1), t.write('x', 2)]),
    ]);
    expect(r.verdict).toBe('self-deadlock');
    expect(r.fault!.message).toBe('T0 takes L which it already holds');
    expect(explain(r)).toContain('Possible recursive locking:');
  });

  it('a lock leaked by a finished thread blocks the others: a deadlock naming the finished holder', () => {
    const r = check([prog('leaker', [t.lock('L'), t.ret(0)]), prog('waiter', [t.write('x', 1), t.lock('L'), t.unlock('L')])]);
    expect(r.verdict).toBe('deadlock');
    expect(r.fault!.message).toContain('waiter waits for L, still held by leaker which has finished');
  });

  it('finds the 4-thread ring by preemption bounding, stopping at the first bound that has it', async () => {
    const r = await runScenario(lockRing4);
    expect(r.pass).toBe(true);
    expect(r.result.stats.phases.map((p) => [p.mode, p.preemptionBound, p.found])).toEqual([['icb', 0, false], ['icb', 1, true]]);
    expect(r.result.trace!.preemptions).toBe(1);
  });
});

describe('trylock', () => {
  it('ABBA with a trylock never deadlocks, and the -EBUSY path (writer fails) is reachable', async () => {
    const r = await runScenario(abbaTrylock);
    expect(r.result.verdict).toBe('safe');
    expect(r.result.exists!.frequency).toBe('sometimes');
    expect(r.result.outcomes['writer fails']!.frequency).toBe('sometimes');
    expect(r.result.outcomes['writer fails']!.witness!.final['1:ret']).toBe(-16);
  });
});

describe('pointers and objects', () => {
  it('a pointer from under a lock used after the lock was dropped and retaken is stale', async () => {
    const r = await runScenario(stalePointerRelock);
    expect(r.result.verdict).toBe('stale-pointer');
    expect(r.result.fault!.message).toContain('read from iommu->dma_list under iommu->lock which vfio_dma_do_unmap (CPU0) dropped since');
    expect(r.text).toContain('*** STALE POINTER ***');
  });

  it('the same lookup kept under the lock is fine', () => {
    const r = check([
      prog('user', [t.lock('l'), t.read('list', 'p'), t.branch('p == NULL', 'out'), t.use('p'), t.label('out'), t.unlock('l')]),
      prog('remover', [t.lock('l'), t.read('list', 'p'), t.branch('p == NULL', 'out'), t.write('list', 'NULL'), t.free('p'), t.label('out'), t.unlock('l')]),
    ], { objects: ['o'], init: { list: '&o' } });
    expect(r.verdict).toBe('safe');
  });

  it('a pointer unlinked but not freed while the lock was dropped is stale too', () => {
    const r = check([
      prog('user', [t.lock('l'), t.read('list', 'p'), t.unlock('l'), t.lock('l'), t.use('p'), t.unlock('l')]),
      prog('replacer', [t.lock('l'), t.write('list', '&o2'), t.unlock('l')]),
    ], { objects: ['o', 'o2'], init: { list: '&o' } });
    expect(r.verdict).toBe('stale-pointer');
    expect(r.fault!.message).toContain('no longer points to it');
  });

  it('double free and NULL dereference', () => {
    expect(check([prog('a', [t.free('o')]), prog('b', [t.free('o')])], { objects: ['o'] }).verdict).toBe('double-free');
    expect(check([prog('a', [t.read('p', 'q'), t.use('q')])], {}).verdict).toBe('null-deref');
  });
});

describe('bounds', () => {
  const many = (name: string): ThreadProgram => prog(name, Array.from({ length: 12 }, (_, i) => t.write(`c${i % 3}`, i)));

  it('exceeding the state bound is its own verdict, never safe', () => {
    const r = check([many('a'), many('b'), many('c')], { bounds: { maxStates: 50 } });
    expect(r.verdict).toBe('bound-reached');
    expect(r.bound).toBe('states');
  });

  it('and the depth bound', () => {
    const r = check([many('a'), many('b')], { bounds: { maxDepth: 5 } });
    expect(r.verdict).toBe('bound-reached');
    expect(r.bound).toBe('depth');
  });

  it('and the time bound', () => {
    const r = check([many('a'), many('b'), many('c'), many('d')], { bounds: { timeMs: 1, preemptions: 0 } });
    expect(r.verdict).toBe('bound-reached');
    expect(r.bound).toBe('time');
  });
});

describe('outcomes', () => {
  it('always, sometimes, never', () => {
    const two = [prog('a', [t.write('x', 1)]), prog('b', [t.read('x', 'r')])];
    expect(check(two, { exists: (v) => v.x === 1 }).exists!.frequency).toBe('always');
    expect(check(two, { exists: (v) => v.r === 1 }).exists!.frequency).toBe('sometimes');
    expect(check(two, { exists: (v) => v.r === 2 }).exists!.frequency).toBe('never');
  });

  it('nondeterministic branches explore both ways; assume prunes', () => {
    const r = check([prog('a', [t.either('skip'), t.write('x', 1), t.label('skip'), t.ret(0)])], { exists: (v) => v.x === 1 });
    expect(r.exists!.frequency).toBe('sometimes');
    // Paths where the assumption fails are infeasible: no final state has the reader past it with y != 1.
    const p = check([prog('w', [t.write('y', 1), t.write('y', 2)]), prog('r', [t.read('y', 'r'), t.assume('r == 1'), t.write('x', 1)])], { exists: (v) => v.x === 1 });
    expect(p.exists!.frequency).toBe('always');
    expect(p.exists!.sat).toBeGreaterThan(0);
  });
});

describe('memory model', () => {
  it("answers seed 000: another CPU can see state = STANDBY before atomic_set(&avail, 1), and not with smp_wmb()/acquire", () => {
    const reader = prog('create', [t.acquire('state', 's'), t.atomicRead('avail', 'a')]);
    const seen = (v: Record<string, number | undefined>): boolean => v.s === 2 && v.a === 0;
    const plain = check([prog('probe', [t.atomicSet('avail', 1), t.write('state', 2)]), reader], { memory: 'relaxed', exists: seen });
    expect(plain.exists!.frequency).toBe('sometimes');
    const fenced = check([prog('probe', [t.atomicSet('avail', 1), t.wmb(), t.write('state', 2)]), reader], { memory: 'relaxed', exists: seen });
    expect(fenced.exists!.frequency).toBe('never');
    const sc = check([prog('probe', [t.atomicSet('avail', 1), t.write('state', 2)]), reader], { exists: seen });
    expect(sc.exists!.frequency).toBe('never');
  });

  it('a lock orders accesses in the relaxed model (unlock releases, lock acquires)', () => {
    const r = check([
      prog('w', [t.lock('l'), t.write('x', 1), t.write('y', 1), t.unlock('l')]),
      prog('r', [t.lock('l'), t.read('y', 'r0'), t.read('x', 'r1'), t.unlock('l')]),
    ], { memory: 'relaxed', exists: (v) => v.r0 === 1 && v.r1 === 0 });
    expect(r.exists!.frequency).toBe('never');
  });

  it('a thread always sees its own stores (forwarding and coherence)', () => {
    const r = check([prog('a', [t.write('x', 1), t.read('x', 'r0'), t.write('x', 2), t.read('x', 'r1')]), prog('b', [t.write('x', 3)])], {
      memory: 'relaxed', exists: (v) => v.r0 !== 1 && v.r0 !== 3,
    });
    expect(r.exists!.frequency).toBe('never');
  });
});
