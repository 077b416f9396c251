import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { SourceReader } from '../../src/cmodel/index.js';
import { lineDiff } from '../../src/rules/linediff.js';
import { lineCount, seriesDelta, type PatchChange } from '../../src/sim/changes.js';
import { synthesise, type SynthLimits, type SynthResult } from '../../src/sim/synth.js';

/**
 * Synthesised scenarios on small hand-written drivers (test/fixtures/sim/): a base file and the
 * file after each patch of a pretend series. Lines a finding may point at carry
 * `// ruleid: sim/<kind>`; `// ok:` lines must not be reported.
 */
const PATH = 'drivers/toy/toy.c';
const fixture = (name: string): string => readFileSync(new URL(`../fixtures/sim/${name}`, import.meta.url), 'utf8');
const mem = (text: string | null): SourceReader => ({ readFile: (p) => (p === PATH ? text : null), list: () => [] });

/** The series base -> versions[0] -> versions[1] ..., patch i named `p<i+1>@toy`. */
function series(base: string, versions: string[]): PatchChange[] {
  let before = base;
  return versions.map((after, i) => {
    const d = lineDiff(before, after);
    const p: PatchChange = {
      msgid: `p${i + 1}@toy`,
      files: [{ path: PATH, oldPath: PATH, status: 'modified', added: d.added, removed: d.removed, beforeLines: lineCount(before), afterLines: lineCount(after) }],
    };
    before = after;
    return p;
  });
}

async function run(base: string, versions: string[], limits: Partial<SynthLimits> = {}): Promise<SynthResult> {
  const delta = seriesDelta(series(base, versions));
  return synthesise({ base: mem(base), head: mem(versions[versions.length - 1]!), files: [PATH], changes: delta, limits });
}

function markers(text: string, kind: 'ruleid' | 'ok', rule: string): number[] {
  return text.split('\n').flatMap((l, i) => (l.includes(`// ${kind}: ${rule}`) ? [i + 1] : []));
}

describe('two sysfs stores, AB-BA (the vfio_ap seed shape)', () => {
  const base = fixture('sysfs-abba.base.c');
  const bad = fixture('sysfs-abba.c');
  const fixed = fixture('sysfs-abba-fixed.c');

  it('a new store taking the locks in the other order deadlocks with the existing one', async () => {
    const r = await run(base, [bad]);
    expect(r.findings).toHaveLength(1);
    const f = r.findings[0]!;
    expect(f.kind).toBe('deadlock');
    expect(f.patch).toBe('p1@toy');
    expect(f.file).toBe(PATH);
    expect(markers(bad, 'ruleid', 'sim/deadlock')).toContain(f.line);
    expect(f.fn).toBe('unassign_adapter_store');
    expect(f.message).toMatch(/unassign_adapter_store\(\) \(sysfs\)/);
    expect(f.message).toMatch(/waits for toy_perms_mutex held by/);
    expect(f.trace).toContain('*** DEADLOCK ***');
    expect(f.trace).toMatch(/lock\(toy_matrix\.lock\); toy\.c:65/);
    expect(f.trace).toMatch(/lock\(toy_perms_mutex\); toy\.c:66 {2}<- waits/);
    expect(f.key).toBe('sim:deadlock:toy_matrix.lock+toy_perms_mutex');
    expect(r.notes).toEqual([]);
  });

  it('the fixed store takes toy_perms_mutex first: quiet', async () => {
    const r = await run(base, [fixed]);
    expect(r.findings).toEqual([]);
    expect(r.stats.affected).toBeGreaterThan(0);
  });

  it('an AB-BA the base already has is not the series\' doing', async () => {
    const touched = bad.replace('toy_matrix_dev->apm &= ~(1UL << apid);', 'toy_matrix_dev->apm &= ~(1UL << (apid & 63));');
    expect(touched).not.toBe(bad);
    const r = await run(bad, [touched]);
    expect(r.stats.explored).toBeGreaterThan(0);
    expect(r.findings).toEqual([]);
  });

  it('is attributed to the patch that wrote the line, not the one that added the function', async () => {
    // Patch 1 adds the store in the right order, patch 2 swaps the two acquisitions.
    const r = await run(base, [fixed, bad]);
    expect(r.findings).toHaveLength(1);
    expect(r.findings[0]!.patch).toBe('p2@toy');
  });

  it('a bound hit is a note, never a finding', async () => {
    const r = await run(base, [bad], { maxStates: 5 });
    expect(r.findings).toEqual([]);
    expect(r.notes.some((n) => n.kind === 'bounded' && /states bound/.test(n.detail))).toBe(true);
  });
});

describe('a notifier that drops and retakes the lock (the type1 seed shape)', () => {
  const base = fixture('notifier-relock.base.c');
  const bad = fixture('notifier-relock.c');
  const fixed = fixture('notifier-relock-fixed.c');

  it('keeps using the mapping after the relock while the unmap ioctl freed it: stale pointer', async () => {
    const r = await run(base, [bad]);
    expect(r.findings).toHaveLength(1);
    const f = r.findings[0]!;
    expect(f.kind).toBe('stale-pointer');
    expect(f.patch).toBe('p1@toy');
    expect(markers(bad, 'ruleid', 'sim/stale-pointer')).toContain(f.line);
    expect(f.message).toMatch(/toy_invalidate_notifier\(\) \(notifier \.notifier_call\) and toy_iommu_ioctl\(\) \(ioctl \.ioctl\)/);
    expect(f.message).toMatch(/read from toy_iommu\.dma under toy_iommu\.lock/);
    expect(f.trace).toContain('*** STALE POINTER ***');
    expect(f.trace).toMatch(/kfree\(dma\); toy\.c:\d+/);
  });

  it('looking the mapping up again after the relock: quiet', async () => {
    const r = await run(base, [fixed]);
    expect(r.stats.explored).toBe(1);
    expect(r.findings).toEqual([]);
  });
});

describe('a new mapping freed by the thread that allocated it', () => {
  const base = fixture('own-alloc.base.c');
  const own = fixture('own-alloc.c');
  const published = fixture('own-alloc-published.c');

  it('freed on its own failure path before it is published: quiet (cells are per member, objects are not)', async () => {
    const r = await run(base, [own]);
    expect(r.stats.explored).toBeGreaterThan(0);
    expect(r.findings).toEqual([]);
  });

  it('freed after it was published: the ioctl can read the freed buffer', async () => {
    const r = await run(base, [published]);
    const uaf = r.findings.filter((f) => f.kind === 'use-after-free');
    expect(uaf).toHaveLength(1);
    expect(uaf[0]!.fn).toBe('toy_refill_notifier');
    expect(uaf[0]!.patch).toBe('p1@toy');
    expect(uaf[0]!.trace).toMatch(/kfree\(buf\); toy\.c:\d+/);
    expect(uaf[0]!.trace).toContain('*** USE AFTER FREE ***');
  });
});

describe('seriesDelta', () => {
  it('keeps each line\'s patch through later patches, and marks removals', () => {
    const base = 'a\nb\nc\nd\n';
    const v1 = 'a\nB1\nc\nd\n';
    const v2 = 'x\na\nB1\nd\n';
    const d = seriesDelta(series(base, [v1, v2]));
    expect([...d.lines.get(PATH)!]).toEqual([[1, 'p2@toy'], [3, 'p1@toy']]);
    expect(d.removals.get(PATH)!.get(4)).toBe('p2@toy');
    expect(d.files).toEqual([PATH]);
  });
});
