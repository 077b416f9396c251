import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { openDb, type Db } from '../../src/store/db.js';
import { evidenceKey, fingerprint } from '../../src/report/fingerprint.js';
import { concernsOfCheck, dismissConcern, lineageConcerns, trackConcerns } from '../../src/report/concerns.js';
import { applyEmailCommands, parseCommands } from '../../src/report/commands.js';
import { loadReportPolicy } from '../../src/report/policy.js';
import { planSeries } from '../../src/report/plan.js';
import { mail } from '../helpers/mail.js';
import { coreDiff, finding, insertCheck, otherDiff, seed, type SeededSeries } from './world.js';

describe('fingerprints', () => {
  const base = finding({ patch: 'a@x' });
  it('ignore line numbers, the patch and its position, and survive a reworded line reference', () => {
    const moved = { ...base, patch: 'b@y', line: 231, message: base.message.replace('line 104', 'line 231') };
    expect(fingerprint(moved)).toBe(fingerprint(base));
    expect(fingerprint({ ...base, message: base.message.replace('(line 104)', '(lines 104-106)') })).toBe(fingerprint(base));
  });
  it('differ by rule, file, function and evidence', () => {
    expect(fingerprint({ ...base, rule: 'refcount' })).not.toBe(fingerprint(base));
    expect(fingerprint({ ...base, file: 'drivers/vfio/x.c' })).not.toBe(fingerprint(base));
    expect(fingerprint({ ...base, function: 'other' })).not.toBe(fingerprint(base));
    expect(fingerprint({ ...base, message: 'vdev->memory_lock is taken before vdev->igate' })).not.toBe(fingerprint(base));
  });
  it('prefer the rule-given key, and keep identifiers with digits', () => {
    expect(fingerprint({ ...base, key: 'igate>memory_lock', message: 'anything 1' })).toBe(fingerprint({ ...base, key: 'igate>memory_lock', message: 'else 2' }));
    expect(evidenceKey({ message: 'u32 field at offset 12 of vfio_region_info_cap_v2 (0x1f) at foo.c:88' })).toBe(
      'u32 field at offset # of vfio_region_info_cap_v2 (#) at foo.c',
    );
  });
});

describe('concern lifecycle over a hand-made v1 -> v2 -> v3 lineage', () => {
  let db: Db;
  let s: SeededSeries[];
  const policy = loadReportPolicy({ ownDomain: 'bot.example.org', from: 'vfio-review <bot@bot.example.org>', commandsFrom: ['alex@example.org'] });
  beforeEach(async () => {
    db = openDb(':memory:');
    s = await seed(db, [
      { version: 1, cover: true, diffs: [coreDiff(), otherDiff()] },
      { version: 2, cover: true, diffs: [coreDiff('\n+\tvdev->extra = 1;'), otherDiff()] },
      { version: 3, cover: true, diffs: [coreDiff(), otherDiff()] },
    ]);
  });
  afterEach(() => db.close());

  const A = (patch: string, line = 104) => finding({ patch, line, message: `vdev->igate is taken before vdev->memory_lock here (line ${line}), but vfio_pci_bar_rw() takes them in the other order.` });
  const B = (patch: string) => finding({ patch, rule: 'refcount', category: 'refcount', file: 'drivers/vfio/vfio_main.c', line: 11, function: 'vfio_thing', message: 'the reference taken here is not put on the error path' });
  const C = (patch: string) => finding({ patch, rule: 'uapi-layout', category: 'uapi-abi', line: 105, message: 'reset_works is written without memory_lock held for write' });

  it('is one lineage of three versions', () => {
    expect(s.map((x) => x.version)).toEqual([1, 2, 3]);
    const lineages = db.prepare('SELECT DISTINCT lineage_id FROM series').pluck().all();
    expect(lineages).toHaveLength(1);
  });

  it('goes new -> open / resolved / new -> dismissed and is never raised again', () => {
    const [v1, v2, v3] = s as [SeededSeries, SeededSeries, SeededSeries];
    const c1 = trackConcerns(db, insertCheck(db, v1.id, { findings: [A(v1.patches[0]!), B(v1.patches[1]!)] }));
    expect(c1.raised.map((t) => [t.finding.rule, t.concern.state])).toEqual([['lock-order', 'new'], ['refcount', 'new']]);
    expect(c1.resolved).toEqual([]);

    // v2: A moved by three lines in a reworked patch (same concern), B fixed, C new.
    const c2 = trackConcerns(db, insertCheck(db, v2.id, { findings: [A(v2.patches[0]!, 107), C(v2.patches[0]!)] }));
    expect(c2.raised.map((t) => [t.finding.rule, t.concern.state])).toEqual([['lock-order', 'open'], ['uapi-layout', 'new']]);
    expect(c2.resolved.map((c) => c.rule)).toEqual(['refcount']);
    const state = () => Object.fromEntries(lineageConcerns(db, c2.lineageId).map((c) => [c.rule, c.state]));
    expect(state()).toEqual({ 'lock-order': 'open', refcount: 'resolved', 'uapi-layout': 'new' });
    expect(c2.raised[0]!.concern.id).toBe(c1.raised[0]!.concern.id);

    // A maintainer says C is intended, by mail.
    const cId = c2.raised[1]!.concern.id;
    const d = dismissConcern(db, { id: cId, by: 'alex@example.org', why: 'reset_works is only read under igate', via: 'email' });
    expect(d.changed).toBe(true);
    expect(dismissConcern(db, { id: cId, by: 'someone@else', why: 'again', via: 'dashboard' }).changed).toBe(false);

    // v3: A and C still there; C is dismissed and stays quiet, A is still open.
    const c3 = trackConcerns(db, insertCheck(db, v3.id, { findings: [A(v3.patches[0]!), C(v3.patches[0]!)] }));
    expect(c3.raised.map((t) => [t.finding.rule, t.concern.state])).toEqual([['lock-order', 'open']]);
    expect(c3.suppressed.map((t) => t.concern.id)).toEqual([cId]);
    expect(state()).toEqual({ 'lock-order': 'open', refcount: 'resolved', 'uapi-layout': 'dismissed' });
    const row = db.prepare('SELECT dismissed_by, dismissed_why, dismissed_via FROM concerns WHERE public_id = ?').get(cId);
    expect(row).toEqual({ dismissed_by: 'alex@example.org', dismissed_why: 'reset_works is only read under igate', dismissed_via: 'email' });

    // The replies for v3 raise A only: C's id appears nowhere in them.
    const plan = planSeries(db, v3.id, { name: 'stdout' }, policy);
    expect('inserts' in plan).toBe(true);
    if (!('inserts' in plan)) return;
    const all = plan.inserts.map((r) => r.body).join('\n');
    expect(all).toContain(c3.raised[0]!.concern.id);
    expect(all).not.toContain(cId);
    expect(plan.inserts.map((r) => r.kind)).toEqual(['follow-up', 'follow-up']);
  });

  it('does not resolve on a check that did not review the whole series, and is order independent', () => {
    const [v1, v2] = s as [SeededSeries, SeededSeries, SeededSeries];
    trackConcerns(db, insertCheck(db, v1.id, { findings: [A(v1.patches[0]!)] }));
    const partial = trackConcerns(db, insertCheck(db, v2.id, { status: 'partial', complete: false, findings: [] }));
    expect(partial.reviewable).toBe(false);
    expect(partial.resolved).toEqual([]);
    expect(lineageConcerns(db, partial.lineageId).map((c) => c.state)).toEqual(['new']);
    const errored = trackConcerns(db, insertCheck(db, v2.id, { status: 'error', error: 'APPLY_TREE: gone' }));
    expect(errored.reviewable).toBe(false);
    expect(lineageConcerns(db, partial.lineageId).map((c) => c.state)).toEqual(['new']);
    // A full review of v2 without the finding resolves it; re-tracking v1's check afterwards changes nothing.
    const full = trackConcerns(db, insertCheck(db, v2.id, { findings: [] }));
    expect(full.resolved.map((c) => c.rule)).toEqual(['lock-order']);
    trackConcerns(db, db.prepare('SELECT min(id) FROM checks').pluck().get() as number);
    expect(lineageConcerns(db, full.lineageId).map((c) => c.state)).toEqual(['resolved']);
    // Found again in v3: open again, not new.
    const v3 = s[2]!;
    const again = trackConcerns(db, insertCheck(db, v3.id, { findings: [A(v3.patches[0]!)] }));
    expect(again.raised.map((t) => t.concern.state)).toEqual(['open']);
    expect(concernsOfCheck(db, again.checkId).raised).toHaveLength(1);
  });

  it('keeps dismissals when a rebuild moves the series to another lineage', () => {
    const [v1, v2] = s as [SeededSeries, SeededSeries, SeededSeries];
    const c1 = trackConcerns(db, insertCheck(db, v1.id, { findings: [A(v1.patches[0]!), B(v1.patches[1]!)] }));
    dismissConcern(db, { id: c1.raised[1]!.concern.id, by: 'alex@example.org', why: 'refcount is dropped by the caller', via: 'dashboard' });
    // What lineage linking does when an earlier version turns up and the group gets a new key and id.
    const old = c1.lineageId;
    const fresh = Number(db.prepare("INSERT INTO lineages (key, title) VALUES ('new-key', 't')").run().lastInsertRowid);
    db.prepare('UPDATE series SET lineage_id = ? WHERE lineage_id = ?').run(fresh, old);
    db.prepare('DELETE FROM lineages WHERE id = ?').run(old);
    const c2 = trackConcerns(db, insertCheck(db, v2.id, { findings: [A(v2.patches[0]!), B(v2.patches[1]!)] }));
    expect(c2.lineageId).toBe(fresh);
    expect(c2.raised.map((t) => [t.finding.rule, t.concern.state])).toEqual([['lock-order', 'open']]);
    expect(c2.suppressed.map((t) => t.concern.id)).toEqual([c1.raised[1]!.concern.id]);
    expect(db.prepare('SELECT count(*) FROM concerns WHERE lineage_id = ?').pluck().get(old)).toBe(0);
  });

  it('takes dismissals by mail only from allowed senders, and ignores quoted command lines', async () => {
    const v1 = s[0]!;
    const c = trackConcerns(db, insertCheck(db, v1.id, { findings: [A(v1.patches[0]!)] }));
    const id = c.raised[0]!.concern.id;
    const text = `> vfio-review: dismiss ${id} quoted, not a command\nvfio-review: dismiss ${id} the lock order is documented in vfio_pci_core.h\nvfio-review: dismiss nothex oops\n`;
    expect(parseCommands(text)).toEqual({
      commands: [{ kind: 'dismiss', concern: id, reason: 'the lock order is documented in vfio_pci_core.h' }],
      errors: ['malformed command: vfio-review: dismiss nothex oops'],
    });
    const stranger = await applyEmailCommands(db, mail({ from: 'Mallory <mallory@example.net>', subject: 'Re: x', body: text }), policy);
    expect(stranger).toMatchObject({ allowed: false, dismissed: [] });
    expect(lineageConcerns(db, c.lineageId)[0]!.state).toBe('new');
    const alex = await applyEmailCommands(db, mail({ from: 'Alex Maintainer <Alex@Example.org>', subject: 'Re: x', body: `${text}vfio-review: rerun\n` }), policy);
    expect(alex).toMatchObject({ allowed: true, rerun: true, dismissed: [{ concern: id, changed: true }] });
    expect(lineageConcerns(db, c.lineageId)[0]).toMatchObject({ state: 'dismissed', dismissedBy: 'alex@example.org', dismissedWhy: 'the lock order is documented in vfio_pci_core.h' });
  });
});
