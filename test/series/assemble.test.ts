import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb, type Db } from '../../src/store/db.js';
import { Ingestor } from '../../src/ingest/ingest.js';
import { listSeries, type SeriesView } from '../../src/series/query.js';
import { mail, patchBody } from '../helpers/mail.js';

let dir: string;
let db: Db;
let ing: Ingestor;
let src: number;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vr-series-'));
  db = openDb(join(dir, 'db.sqlite'));
  ing = new Ingestor(db);
  src = ing.sourceId('mbox', 'test');
});
afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

async function add(...msgs: Buffer[]): Promise<void> {
  for (const m of msgs) await ing.add(src, m, `t:${Math.random()}`);
}
function series(): SeriesView[] {
  ing.finish();
  return listSeries(db, { all: true });
}
const cover = (id: string, subject: string, extra: Partial<Parameters<typeof mail>[0]> = {}) =>
  mail({ id, subject, body: 'Cover letter.\n', ...extra });
const patch = (id: string, subject: string, extra: Partial<Parameters<typeof mail>[0]> = {}) =>
  mail({ id, subject, body: patchBody(), ...extra });

describe('series assembly', () => {
  it('orders patches that arrive out of order under their cover', async () => {
    await add(
      patch('p3@x', '[PATCH v2 3/3] vfio: three', { inReplyTo: 'c@x', references: ['c@x'] }),
      patch('p1@x', '[PATCH v2 1/3] vfio: one', { inReplyTo: 'c@x', references: ['c@x'] }),
      cover('c@x', '[PATCH v2 0/3] vfio: a series'),
      patch('p2@x', '[PATCH v2 2/3] vfio: two', { inReplyTo: 'c@x', references: ['c@x'] }),
    );
    const [s, ...rest] = series();
    expect(rest).toEqual([]);
    expect(s).toMatchObject({ cover: 'c@x', patches: ['p1@x', 'p2@x', 'p3@x'], version: 2, versionStated: true, total: 3, complete: true, threading: 'threaded', relevant: true });
  });

  it('follows --chain-reply-to threading without a cover', async () => {
    await add(
      patch('a1@x', '[PATCH 1/3] iommu: one'),
      patch('a2@x', '[PATCH 2/3] iommu: two', { inReplyTo: 'a1@x', references: ['a1@x'] }),
      patch('a3@x', '[PATCH 3/3] iommu: three', { inReplyTo: 'a2@x', references: ['a1@x', 'a2@x'] }),
    );
    const [s] = series();
    expect(s).toMatchObject({ cover: null, patches: ['a1@x', 'a2@x', 'a3@x'], version: 1, versionStated: false, complete: true });
  });

  it('joins patches with no threading headers by sender, version, total and time', async () => {
    await add(
      cover('u0@x', '[PATCH v3 0/2] vfio/pci: unthreaded'),
      patch('u2@x', '[PATCH v3 2/2] vfio/pci: second'),
      patch('u1@x', '[PATCH v3 1/2] vfio/pci: first'),
      // Same shape, other sender: a different series.
      patch('o1@x', '[PATCH v3 1/2] vfio/pci: someone else', { from: 'Other <other@example.org>' }),
    );
    const all = series();
    const mine = all.find((s) => s.cover === 'u0@x')!;
    expect(mine).toMatchObject({ patches: ['u1@x', 'u2@x'], complete: true, threading: 'unthreaded' });
    const other = all.find((s) => s.patches.includes('o1@x'))!;
    expect(other).toMatchObject({ complete: false, missing: [2] });
  });

  it('does not join an unthreaded patch posted outside the time window', async () => {
    await add(
      patch('w1@x', '[PATCH 1/2] vfio: w', { date: 'Mon, 01 Apr 2024 10:00:00 +0000' }),
      patch('w2@x', '[PATCH 2/2] vfio: w', { date: 'Tue, 02 Apr 2024 10:00:00 +0000' }),
    );
    expect(series().map((s) => s.missing)).toEqual([[2], [1]]);
  });

  it('records an incomplete series with the patches that are missing', async () => {
    await add(
      cover('i0@x', '[PATCH 0/4] vfio: incomplete'),
      patch('i1@x', '[PATCH 1/4] vfio: a', { inReplyTo: 'i0@x' }),
      patch('i4@x', '[PATCH 4/4] vfio: d', { inReplyTo: 'i0@x' }),
    );
    const [s] = series();
    expect(s).toMatchObject({ patches: ['i1@x', null, null, 'i4@x'], complete: false, missing: [2, 3] });
  });

  it('links a new version posted in reply to the old one, and keeps versions apart', async () => {
    await add(
      cover('v1c@x', '[PATCH 0/2] vfio: thing'),
      patch('v1p1@x', '[PATCH 1/2] vfio: a', { inReplyTo: 'v1c@x' }),
      patch('v1p2@x', '[PATCH 2/2] vfio: b', { inReplyTo: 'v1c@x' }),
      cover('v2c@x', '[PATCH v2 0/2] vfio: thing, reworked', { inReplyTo: 'v1c@x' }),
      patch('v2p1@x', '[PATCH v2 1/2] vfio: a', { inReplyTo: 'v2c@x', references: ['v1c@x', 'v2c@x'] }),
      patch('v2p2@x', '[PATCH v2 2/2] vfio: b', { inReplyTo: 'v2c@x', references: ['v1c@x', 'v2c@x'] }),
    );
    const [a, b] = series();
    expect(a).toMatchObject({ version: 1, versionStated: false, patches: ['v1p1@x', 'v1p2@x'] });
    expect(b).toMatchObject({ version: 2, versionStated: true, patches: ['v2p1@x', 'v2p2@x'] });
    expect(a!.lineage).toBe(b!.lineage);
  });

  it('links versions by title and change-id, and a RESEND keeps its version', async () => {
    await add(
      patch('s1@x', '[PATCH] iommu/vt-d: Fix the frob'),
      patch('s2@x', '[PATCH v2] iommu/vt-d: Fix the frob.'),
      patch('s3@x', '[PATCH RESEND v2] iommu/vt-d: Fix the frob'),
      patch('k1@x', '[PATCH v4 1/1] iommufd: Alpha', { body: patchBody('drivers/iommu/iommufd/main.c') + 'change-id: 20240101-alpha-1234\n' }),
      patch('k2@x', '[PATCH v5 1/1] iommufd: Renamed entirely', { body: patchBody('drivers/iommu/iommufd/main.c') + 'change-id: 20240101-alpha-1234\n' }),
    );
    const all = series();
    const [s1, s2, s3] = ['s1@x', 's2@x', 's3@x'].map((id) => all.find((s) => s.patches[0] === id)!);
    expect([s1!.version, s2!.version, s3!.version]).toEqual([1, 2, 2]);
    expect(s3!.resend).toBe(true);
    expect(new Set([s1!.lineage, s2!.lineage, s3!.lineage]).size).toBe(1);
    const [k1, k2] = ['k1@x', 'k2@x'].map((id) => all.find((s) => s.patches[0] === id)!);
    expect(k1!.lineage).toBe(k2!.lineage);
    expect(k1!.changeId).toBe('20240101-alpha-1234');
  });

  it('is not fooled by pull requests, replies or patch tags without a diff', async () => {
    await add(
      mail({ id: 'pull@x', subject: '[GIT PULL] iommu fixes for v6.8', body: 'Please pull.\n' + patchBody() }),
      mail({ id: 'r@x', subject: 'Re: [PATCH 1/2] vfio: a', inReplyTo: 'nowhere@x', body: patchBody() }),
      mail({ id: 'nd@x', subject: '[PATCH] vfio: question without a diff', body: 'What about it?\n' }),
    );
    expect(series()).toEqual([]);
  });

  it('attributes trailers to the exact version and patch they were given on', async () => {
    await add(
      cover('t0@x', '[PATCH 0/2] vfio: trailers'),
      patch('t1@x', '[PATCH 1/2] vfio: one', { inReplyTo: 't0@x', body: patchBody('drivers/vfio/a.c', 'One.', ['Reported-by: Rep <rep@example.org>', 'Fixes: 0123456789ab ("vfio: old")', 'Cc: stable@vger.kernel.org']) }),
      patch('t2@x', '[PATCH 2/2] vfio: two', { inReplyTo: 't0@x' }),
      mail({ id: 'rv@x', from: 'Rev <rev@example.org>', subject: 'Re: [PATCH 2/2] vfio: two', inReplyTo: 't2@x', body: '> Signed-off-by: Dev One <dev1@example.org>\n> Reviewed-by: Quoted <q@example.org>\n\nLooks right.\n\nReviewed-by: Rev <rev@example.org>\n' }),
      mail({ id: 'deep@x', from: 'Ack <ack@example.org>', subject: 'Re: [PATCH 0/2] vfio: trailers', inReplyTo: 'sub@x', references: ['t0@x', 'sub@x'], body: 'Acked-by: Ack <ack@example.org>\n' }),
      mail({ id: 'sub@x', from: 'Q <q2@example.org>', subject: 'Re: [PATCH 0/2] vfio: trailers', inReplyTo: 't0@x', body: 'A question.\n-- \nAcked-by: In Signature <sig@example.org>\n' }),
      cover('t20@x', '[PATCH v2 0/2] vfio: trailers'),
      patch('t21@x', '[PATCH v2 1/2] vfio: one', { inReplyTo: 't20@x' }),
      patch('t22@x', '[PATCH v2 2/2] vfio: two', { inReplyTo: 't20@x' }),
    );
    const [v1, v2] = series();
    expect(v1!.trailers).toEqual([
      { patch: 0, name: 'Acked-by', value: 'Ack <ack@example.org>', from: 'deep@x', origin: 'reply' },
      { patch: 1, name: 'Reported-by', value: 'Rep <rep@example.org>', from: 't1@x', origin: 'patch' },
      { patch: 1, name: 'Fixes', value: '0123456789ab ("vfio: old")', from: 't1@x', origin: 'patch' },
      { patch: 1, name: 'Cc', value: 'stable@vger.kernel.org', from: 't1@x', origin: 'patch' },
      { patch: 2, name: 'Reviewed-by', value: 'Rev <rev@example.org>', from: 'rv@x', origin: 'reply' },
    ]);
    expect(v2!.trailers).toEqual([]);
  });

  it('reads base-commit and prerequisite-patch-id from the cover letter', async () => {
    await add(
      cover('b0@x', '[PATCH 0/1] vfio: based', { body: 'Cover.\n\nbase-commit: 0123456789abcdef0123456789abcdef01234567\nprerequisite-patch-id: ' + 'ab'.repeat(20) + '\n' }),
      patch('b1@x', '[PATCH 1/1] vfio: b', { inReplyTo: 'b0@x' }),
    );
    const [s] = series();
    expect(s).toMatchObject({ baseCommit: '0123456789abcdef0123456789abcdef01234567', prerequisitePatchIds: ['ab'.repeat(20)] });
  });

  it('stores series outside vfio/iommu but does not mark them relevant', async () => {
    await add(
      patch('g1@x', '[PATCH] drm/i915: unrelated', { body: patchBody('drivers/gpu/drm/i915/i915_drv.c') }),
      patch('g2@x', '[PATCH vfio] misc: prefix says so', { body: patchBody('drivers/misc/x.c') }),
      patch('g3@x', '[PATCH] vfio/pci: title says so', { body: patchBody('Documentation/x.rst') }),
      patch('g4@x', '[PATCH] docs: vfio: second tag says so', { body: patchBody('Documentation/driver-api/vfio.rst') }),
      patch('g5@x', '[PATCH] docs: fix a typo in the vfio chapter', { body: patchBody('Documentation/x.rst') }),
    );
    const all = series();
    expect(all.map((s) => [s.patches[0], s.relevant])).toEqual([['g1@x', false], ['g2@x', true], ['g3@x', true], ['g4@x', true], ['g5@x', false]]);
    expect(listSeries(db).map((s) => s.patches[0])).toEqual(['g2@x', 'g3@x', 'g4@x']);
  });

  it('keeps series ids when a late cover letter regroups the patches', async () => {
    await add(
      patch('l1@x', '[PATCH 1/2] vfio: late', { inReplyTo: 'l0@x' }),
      patch('l2@x', '[PATCH 2/2] vfio: late', { inReplyTo: 'l0@x' }),
    );
    const before = series();
    expect(before).toHaveLength(1);
    await add(cover('l0@x', '[PATCH 0/2] vfio: late cover'));
    const after = series();
    expect(after).toHaveLength(1);
    expect(after[0]!.id).toBe(before[0]!.id);
    expect(after[0]!.cover).toBe('l0@x');
  });
});

describe('ingest bookkeeping', () => {
  it('stores a message seen twice once, with both sources', async () => {
    const m = patch('dup@x', '[PATCH] vfio: dup');
    await ing.add(src, m, 'a');
    const other = ing.sourceId('imap', 'imap://bot@host/INBOX');
    const r = await ing.add(other, m, 'uid:1:7');
    expect(r.outcome).toBe('duplicate');
    // The same message through another list: different bytes (a footer), same Message-ID.
    const viaList = Buffer.concat([m, Buffer.from('_______________\nlist footer\n')]);
    expect((await ing.add(other, viaList, 'uid:1:8')).outcome).toBe('new-copy');
    expect(db.prepare('SELECT count(*) FROM messages').pluck().get()).toBe(1);
    expect(db.prepare('SELECT count(*) FROM raw_messages').pluck().get()).toBe(2);
    expect(db.prepare('SELECT count(*) FROM message_sources').pluck().get()).toBe(3);
  });

  it('keeps a resend that reused a Message-ID for other content as its own message', async () => {
    await add(patch('re@x', '[PATCH] vfio: first'), patch('re@x', '[PATCH v2] vfio: second', { date: 'Mon, 06 May 2024 10:00:00 +0000' }));
    const rows = db.prepare('SELECT msgid_state FROM messages ORDER BY id').pluck().all();
    expect(rows).toEqual(['stated', 'reused']);
  });

  it('records mail it cannot parse with a reason and keeps the raw bytes', async () => {
    const junk = Buffer.from('\x00\x01 this is not mail at all\n');
    const r = await ing.add(src, junk, 'j');
    expect(r.outcome).toBe('failed');
    expect(r.reason).toMatch(/MAIL_NO_HEADERS/);
    const row = db.prepare('SELECT m.parse_state, m.parse_error, r.bytes FROM messages m JOIN raw_messages r ON r.id = m.raw_id').get() as { parse_state: string; parse_error: string; bytes: Buffer };
    expect(row.parse_state).toBe('failed');
    expect(row.bytes.equals(junk)).toBe(true);
  });

  it('stores a message without a Message-ID under its hash', async () => {
    await add(patch('', '[PATCH] vfio: anonymous', { id: null }));
    expect(db.prepare('SELECT msgid_state, ident LIKE \'sha256:%\' AS h FROM messages').get()).toEqual({ msgid_state: 'missing', h: 1 });
    expect(series()).toHaveLength(1);
  });

  it('survives forged References loops and very deep threads without recursion', async () => {
    await add(
      mail({ id: 'x1@x', subject: 'Re: loop', inReplyTo: 'x2@x', references: ['x3@x', 'x2@x'] }),
      mail({ id: 'x2@x', subject: 'Re: loop', inReplyTo: 'x1@x', references: ['x1@x'] }),
      mail({ id: 'x3@x', subject: 'Re: loop', inReplyTo: 'x2@x', references: ['x1@x', 'x2@x'] }),
    );
    ing = new Ingestor(db, { batch: 5000 });
    let prev = 'd0@x';
    await add(mail({ id: prev, subject: 'deep' }));
    for (let i = 1; i < 20_000; i++) {
      const id = `d${i}@x`;
      await ing.add(src, mail({ id, subject: 'Re: deep', inReplyTo: prev }), `d${i}`);
      prev = id;
    }
    const sum = ing.finish();
    expect(sum.threads).toBeGreaterThanOrEqual(2);
    expect(db.prepare("SELECT root FROM thread_nodes WHERE msgid = 'd19999@x'").pluck().get()).toBe('d0@x');
  });
});
