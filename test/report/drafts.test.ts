import { describe, it, expect, beforeAll, afterAll, beforeEach, afterEach } from 'vitest';
import { openDb, type Db } from '../../src/store/db.js';
import { loadReportPolicy, type ReportPolicy } from '../../src/report/policy.js';
import { runReport } from '../../src/report/report.js';
import { deliverDue, outboxRows } from '../../src/report/outbox.js';
import { draftsSink } from '../../src/report/sinks/drafts.js';
import { composeRaw } from '../../src/report/mime.js';
import { countMessageId, withImap } from '../../src/report/imap.js';
import { startDovecot, type Dovecot } from '../helpers/imap-server.js';
import { coreDiff, finding, insertCheck, otherDiff, seed, type SeededSeries } from './world.js';

describe('drafts sink on a real Dovecot', () => {
  let dovecot: Dovecot;
  let db: Db;
  let s: SeededSeries[];
  let policy: ReportPolicy;
  let scenario = 0;
  beforeAll(async () => {
    dovecot = await startDovecot();
  });
  afterAll(async () => dovecot?.stop());
  beforeEach(async () => {
    db = openDb(':memory:');
    // Each test its own Message-IDs, so replies from one test are not "already there" for the next.
    s = await seed(db, [{ version: 1, cover: true, diffs: [coreDiff(), otherDiff()], idPrefix: `d${++scenario}` }]);
    insertCheck(db, s[0]!.id, { findings: [finding({ patch: s[0]!.patches[0]! })] });
    policy = loadReportPolicy(
      {
        ownDomain: 'bot.example.org',
        from: 'vfio-review <bot@bot.example.org>',
        drafts: { imap: { host: '127.0.0.1', port: dovecot.port, secure: false, user: 'bot' }, mailbox: 'Drafts' },
        retry: { maxAttempts: 3, baseDelayMs: 0, maxDelayMs: 0 },
        lists: [{ id: 'kvm.vger.kernel.org', address: 'kvm@vger.kernel.org', sinks: { drafts: { mode: 'author+list' } } }],
      },
      { VFIO_REVIEW_DRAFTS_PASS: 'botpass' },
    );
  });
  afterEach(() => db.close());
  const count = (messageId: string) => withImap(policy.drafts!.imap, (c) => countMessageId(c, 'Drafts', messageId));

  it('appends each reply once, flagged \\Draft, byte for byte as composed', async () => {
    const sink = draftsSink(policy.drafts!);
    const r = await runReport(db, { seriesIds: [s[0]!.id], sink, policy });
    expect(r.delivery).toMatchObject({ sent: 2 });
    const rows = outboxRows(db);
    for (const row of rows) expect(await count(row.messageId)).toBe(1);
    const stored = await withImap(policy.drafts!.imap, async (c) => {
      const lock = await c.getMailboxLock('Drafts');
      try {
        const uid = (await c.search({ header: { 'message-id': rows[1]!.messageId } }, { uid: true })) as number[];
        const m = await c.fetchOne(String(uid[0]), { source: true, flags: true }, { uid: true });
        return m ? { source: m.source!, flags: [...(m.flags ?? [])] } : null;
      } finally {
        lock.release();
      }
    });
    expect(stored!.flags).toContain('\\Draft');
    expect(stored!.source.equals(await composeRaw(rows[1]!))).toBe(true);
    // A second run decides nothing new and appends nothing.
    await runReport(db, { seriesIds: [s[0]!.id], sink, policy });
    for (const row of rows) expect(await count(row.messageId)).toBe(1);
  });

  it('after a crash between APPEND and mark-sent, finds the draft instead of appending it again', async () => {
    const sink = draftsSink(policy.drafts!);
    await runReport(db, { seriesIds: [s[0]!.id], sink, policy });
    const [a, b] = outboxRows(db) as [ReturnType<typeof outboxRows>[0], ReturnType<typeof outboxRows>[0]];
    // What the store holds after a kill right after the server's OK: the attempt counted, not marked sent.
    db.prepare("UPDATE outbox SET state = 'sending', sent_at = NULL WHERE id = ?").run(a.id);
    // And after a kill right before the APPEND: counted, but nothing reached the server.
    await withImap(policy.drafts!.imap, async (c) => {
      const lock = await c.getMailboxLock('Drafts');
      try {
        await c.messageDelete({ header: { 'message-id': b.messageId } }, { uid: true });
      } finally {
        lock.release();
      }
    });
    db.prepare("UPDATE outbox SET state = 'sending', sent_at = NULL WHERE id = ?").run(b.id);
    const d = await deliverDue(db, sink, policy.retry);
    expect(d).toMatchObject({ alreadyThere: 1, sent: 1 });
    expect(await count(a.messageId)).toBe(1);
    expect(await count(b.messageId)).toBe(1);
    expect(outboxRows(db).map((r) => [r.state, r.attempts])).toEqual([['sent', 1], ['sent', 2]]);
  });

  it('waits, without giving up, while the IMAP server is unreachable', async () => {
    const down = loadReportPolicy(
      { drafts: { imap: { host: '127.0.0.1', port: 1, secure: false, user: 'bot' } }, lists: [{ id: '*', sinks: { drafts: {} } }], retry: { maxAttempts: 5, baseDelayMs: 60_000, maxDelayMs: 60_000 } },
      { VFIO_REVIEW_DRAFTS_PASS: 'x' },
    );
    const r = await runReport(db, { seriesIds: [s[0]!.id], sink: draftsSink(down.drafts!), policy: down });
    expect(r.delivery).toMatchObject({ sent: 0, retrying: 2, failed: 0 });
    const row = outboxRows(db)[0]!;
    expect(row.state).toBe('pending');
    expect(Date.parse(row.nextAt) - Date.now()).toBeGreaterThan(50_000);
    expect(row.lastError).toMatch(/ECONNREFUSED|connect/i);
  });
});
