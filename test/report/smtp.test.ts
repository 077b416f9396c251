import { describe, it, expect, beforeAll, afterAll, beforeEach, afterEach } from 'vitest';
import { simpleParser } from 'mailparser';
import { openDb, type Db } from '../../src/store/db.js';
import { Ingestor } from '../../src/ingest/ingest.js';
import { loadReportPolicy, type ReportPolicy } from '../../src/report/policy.js';
import { runReport } from '../../src/report/report.js';
import { deliverDue, outboxRows } from '../../src/report/outbox.js';
import { emailSink } from '../../src/report/sinks/email.js';
import type { Sink } from '../../src/report/types.js';
import { startSmtp, type TestSmtp } from '../helpers/smtp-server.js';
import { coreDiff, finding, insertCheck, otherDiff, seed, type SeededSeries } from './world.js';

const TRACE = '  CPU0                    CPU1\n  ----                    ----\n  lock(&vdev->igate);\n                          lock(&vdev->memory_lock);';

function policyFor(smtp: TestSmtp, over: Record<string, unknown> = {}, list: Record<string, unknown> = {}): ReportPolicy {
  return loadReportPolicy({
    ownDomain: 'bot.example.org',
    from: 'vfio-review <bot@bot.example.org>',
    dashboardUrl: 'https://vr.example.org',
    email: { host: '127.0.0.1', port: smtp.port, ignoreTLS: true },
    retry: { maxAttempts: 3, baseDelayMs: 0, maxDelayMs: 0 },
    lists: [{ id: 'kvm.vger.kernel.org', address: 'kvm@vger.kernel.org', perDay: 20, sinks: { email: { mode: 'author+list' } }, ...list }],
    ...over,
  });
}

/** Header block of raw bytes, unfolded, as name -> values. */
function headers(raw: Buffer): { block: string; get: (name: string) => string[] } {
  const text = raw.toString('utf8');
  const block = text.slice(0, text.indexOf('\r\n\r\n'));
  const unfolded = block.replace(/\r\n[ \t]+/g, ' ').split('\r\n');
  return { block, get: (name) => unfolded.filter((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`)).map((l) => l.slice(name.length + 1).trim()) };
}

describe('email sink on a real SMTP server', () => {
  let smtp: TestSmtp;
  let db: Db;
  let s: SeededSeries[];
  let sink: Sink;
  beforeAll(async () => {
    smtp = await startSmtp();
  });
  afterAll(async () => smtp?.close());
  beforeEach(async () => {
    smtp.received.length = 0;
    db = openDb(':memory:');
    s = await seed(db, [{ version: 1, cover: true, diffs: [coreDiff(), otherDiff()] }]);
    insertCheck(db, s[0]!.id, { findings: [finding({ patch: s[0]!.patches[0]!, trace: TRACE })] });
  });
  afterEach(async () => {
    await sink?.close?.();
    db.close();
  });
  const run = (policy: ReportPolicy, ids = [s[0]!.id]) => {
    sink = emailSink(policy.email!);
    return runReport(db, { seriesIds: ids, sink, policy });
  };

  it('sends one threaded, plain, wrapped reply per patch with findings and the summary to the cover', async () => {
    const r = await run(policyFor(smtp));
    expect(r.delivery).toMatchObject({ sent: 2, failed: 0 });
    expect(smtp.received).toHaveLength(2);
    const [toCover, toPatch] = smtp.received as [(typeof smtp.received)[0], (typeof smtp.received)[0]];
    const h = headers(toPatch.raw);
    expect(h.get('From')).toEqual(['"vfio-review" <bot@bot.example.org>']);
    expect(h.get('To')).toEqual(['Dev One <dev1@example.org>']);
    expect(h.get('Cc')).toEqual(['kvm@vger.kernel.org, alex@example.org, other@example.org']);
    expect(h.get('Subject')).toEqual(['Re: [PATCH 1/2] vfio/pci: take igate around enable part 1']);
    expect(h.get('In-Reply-To')).toEqual(['<v1.1@example.org>']);
    expect(h.get('References')).toEqual(['<v1.0@example.org> <v1.1@example.org>']);
    expect(h.get('Message-ID')[0]).toMatch(/^<vfio-review\.[0-9a-f]{24}@bot\.example\.org>$/);
    expect(h.block).toMatch(/^X-vfio-review: review; series=\d+; v=1; key=[0-9a-f]{24}\r$/m);
    expect(h.get('Content-Type')).toEqual(['text/plain; charset=us-ascii']);
    expect(h.get('Content-Transfer-Encoding')).toEqual(['7bit']);
    expect(h.block).not.toMatch(/^(?:Reviewed|Acked|Tested)-by:/im);
    expect(toPatch.from).toBe('bot@bot.example.org');
    expect(toPatch.to.sort()).toEqual(['alex@example.org', 'dev1@example.org', 'kvm@vger.kernel.org', 'other@example.org']);
    const body = toPatch.raw.toString('utf8').split('\r\n\r\n').slice(1).join('\r\n\r\n');
    expect(body).not.toMatch(/[^\r]\n/); // CRLF throughout
    expect(body).not.toMatch(/<html|<p>|<br/i);
    expect(body).not.toMatch(/^[A-Z][a-z-]+-by:/m);
    expect(body).toContain('> @@ -100,6 +100,9 @@ static int vfio_pci_core_enable(struct vfio_pci_core_device *vdev)\r\n> [ ... ]\r\n>  \tpci_set_power_state(pdev, PCI_D0);\r\n> +\tmutex_lock(&vdev->igate);\r\n> +\tdown_write(&vdev->memory_lock);\r\n\r\n[warning] lock-order, confidence moderate, concern ');
    expect(body).toContain(TRACE.replace(/\n/g, '\r\n'));
    for (const line of body.split('\r\n')) {
      if (line.startsWith('>') || TRACE.includes(line)) continue;
      expect(line.length, line).toBeLessThanOrEqual(72);
    }
    // The cover gets the series summary, threaded under the cover.
    expect(headers(toCover.raw).get('In-Reply-To')).toEqual(['<v1.0@example.org>']);
    expect(headers(toCover.raw).get('Subject')).toEqual(['Re: [PATCH 0/2] vfio/pci: take igate around enable']);
    expect(toCover.raw.toString()).toContain('Findings: 1 in 1 of 2 patches');
    // A MIME parser reads the same threading.
    const parsed = await simpleParser(toPatch.raw);
    expect(parsed.inReplyTo).toBe('<v1.1@example.org>');
    expect(parsed.references).toEqual(['<v1.0@example.org>', '<v1.1@example.org>']);
    // Running again sends nothing: every reply is already decided and sent.
    const again = await run(policyFor(smtp));
    expect(again.series[0]!.skipped).toMatch(/already answered/);
    expect(smtp.received).toHaveLength(2);
    // The bot's own reply, read back by the ingester, is marked not to be processed and starts no series.
    const ing = new Ingestor(db);
    const added = await ing.add(ing.sourceId('manual', 'echo'), toPatch.raw, 'echo');
    ing.finish();
    expect(db.prepare('SELECT no_process, kind FROM messages WHERE id = ?').get(added.messageRowId)).toEqual({ no_process: 1, kind: 'reply' });
    expect(db.prepare('SELECT count(*) FROM series').pluck().get()).toBe(1);
  });

  it('keeps CR/LF from a patch subject out of the headers and folds a long subject', async () => {
    db.close();
    db = openDb(':memory:');
    const title = 'vfio/pci: a subject long enough that the reply subject must be folded across lines';
    s = await seed(db, [{
      version: 1, diffs: [coreDiff()], title,
      // RFC 2047 lets a sender smuggle CR LF into the decoded subject.
      subjectOf: () => `=?UTF-8?Q?[PATCH]_${title.replace(/ /g, '_').replace(/:/g, '=3A')}=0D=0ABcc=3A_victim@evil.example?=`,
    }]);
    insertCheck(db, s[0]!.id, { findings: [finding({ patch: s[0]!.patches[0]! })] });
    await run(policyFor(smtp));
    expect(smtp.received).toHaveLength(1);
    const raw = smtp.received[0]!.raw;
    const h = headers(raw);
    expect(h.get('Bcc')).toEqual([]);
    expect(h.get('Subject')).toEqual([`Re: [PATCH] ${title} Bcc: victim@evil.example`]);
    expect(h.block).toMatch(/^Subject: Re: \[PATCH\] vfio\/pci: [^\r]*\r\n [^\r]+/m);
    for (const l of h.block.split('\r\n')) expect(l.length).toBeLessThanOrEqual(78);
    expect(smtp.received[0]!.to).not.toContain('victim@evil.example');
  });

  it('sends a non-ASCII body as 8bit with BODY=8BITMIME, never quoted-printable', async () => {
    db.close();
    db = openDb(':memory:');
    s = await seed(db, [{ version: 1, diffs: [coreDiff()] }]);
    insertCheck(db, s[0]!.id, { findings: [finding({ patch: s[0]!.patches[0]!, message: 'Jörg’s lock → taken twice', evidence: [], suggestion: null })] });
    await run(policyFor(smtp));
    const m = smtp.received[0]!;
    expect(m.eightBit).toBe(true);
    expect(headers(m.raw).get('Content-Transfer-Encoding')).toEqual(['8bit']);
    expect(headers(m.raw).get('Content-Type')).toEqual(['text/plain; charset=utf-8']);
    expect(m.raw.toString('utf8')).toContain('Jörg’s lock → taken twice');
    expect((await simpleParser(m.raw)).text).toContain('Jörg’s lock → taken twice');
  });

  it('retries a 4xx with backoff and records a 5xx with the server answer', async () => {
    smtp.fail({ code: 451, message: 'Greylisted, come back later' });
    const first = await run(policyFor(smtp));
    expect(first.delivery).toMatchObject({ sent: 1, retrying: 1 });
    const waiting = outboxRows(db).find((r) => r.state === 'pending')!;
    expect(waiting).toMatchObject({ attempts: 1 });
    expect(waiting.lastError).toMatch(/451.*Greylisted/);
    const second = await deliverDue(db, sink, { maxAttempts: 3, baseDelayMs: 0, maxDelayMs: 0 });
    expect(second).toMatchObject({ sent: 1, retrying: 0 });
    expect(outboxRows(db).map((r) => [r.state, r.attempts])).toEqual([['sent', 2], ['sent', 1]]);
    expect(smtp.received).toHaveLength(2);

    db.close();
    db = openDb(':memory:');
    s = await seed(db, [{ version: 1, diffs: [coreDiff()] }]);
    insertCheck(db, s[0]!.id, { findings: [finding({ patch: s[0]!.patches[0]! })] });
    smtp.fail({ code: 554, message: 'Message refused: policy' });
    const refused = await run(policyFor(smtp));
    expect(refused.delivery).toMatchObject({ sent: 0, failed: 1 });
    const row = outboxRows(db)[0]!;
    expect(row.state).toBe('failed');
    expect(row.lastError).toMatch(/^554 .*Message refused: policy/);
    expect((await deliverDue(db, sink, { maxAttempts: 3, baseDelayMs: 0, maxDelayMs: 0 })).sent).toBe(0);
    expect(smtp.received).toHaveLength(2);

    // A 4xx that never clears gives up after maxAttempts, saying so.
    db.prepare("UPDATE outbox SET state = 'pending', attempts = 0").run();
    smtp.fail({ code: 421, message: 'busy', times: 3 });
    for (let i = 0; i < 3; i++) await deliverDue(db, sink, { maxAttempts: 3, baseDelayMs: 0, maxDelayMs: 0 });
    expect(outboxRows(db)[0]).toMatchObject({ state: 'failed', attempts: 3 });
    expect(outboxRows(db)[0]!.lastError).toMatch(/^gave up after 3 attempts: 421/);
  });

  describe('policy', () => {
    it('sends nothing to a list that has not opted in', async () => {
      const r = await run(policyFor(smtp, { lists: [{ id: 'linux-pci.vger.kernel.org', sinks: { email: {} } }, { id: 'kvm.vger.kernel.org', sinks: { drafts: {} } }] }));
      expect(r.series[0]!.skipped).toMatch(/^muted/);
      expect(outboxRows(db)).toEqual([]);
      expect(smtp.received).toEqual([]);
    });

    it('applies the deny and allow lists, and skips a reply with nobody left', async () => {
      await run(policyFor(smtp, { deny: ['other@example.org', '*@vger.kernel.org'] }));
      expect(smtp.received.map((m) => m.to.sort())).toEqual([['alex@example.org', 'dev1@example.org'], ['alex@example.org', 'dev1@example.org']]);
      smtp.received.length = 0;
      db.close();
      db = openDb(':memory:');
      s = await seed(db, [{ version: 1, diffs: [coreDiff()] }]);
      insertCheck(db, s[0]!.id, { findings: [finding({ patch: s[0]!.patches[0]! })] });
      const r = await run(policyFor(smtp, { allow: ['*@kernel.org'] }));
      expect(r.series[0]!.notes).toEqual([expect.stringMatching(/no recipient is left/)]);
      expect(smtp.received).toEqual([]);
    });

    it('honours the per-list daily rate limit, whole series or nothing', async () => {
      const r = await run(policyFor(smtp, {}, { perDay: 1 }));
      expect(r.series[0]!.skipped).toMatch(/^rate limit: 0 replies to kvm\.vger\.kernel\.org in the last 24 h, limit 1/);
      expect(smtp.received).toEqual([]);
      const ok = await run(policyFor(smtp, {}, { perDay: 3 }));
      expect(ok.delivery!.sent).toBe(2);
    });

    it("ignores the bot's own mail, mail that asks not to be processed and replies to its own replies", async () => {
      db.close();
      db = openDb(':memory:');
      const own = await seed(db, [
        { version: 1, diffs: [coreDiff()], idPrefix: 'own', title: 'vfio: own', headers: { 'X-vfio-review': 'review' } },
        { version: 1, diffs: [coreDiff()], idPrefix: 'nope', title: 'vfio: no review', headers: { 'X-No-Review': 'yes' } },
        { version: 1, diffs: [coreDiff()], idPrefix: 'child', title: 'vfio: child', headers: { 'In-Reply-To': '<vfio-review.abc@bot.example.org>' } },
        { version: 1, diffs: [coreDiff()], idPrefix: 'mine', title: 'vfio: mine', domain: 'bot.example.org' },
      ]);
      for (const x of own) insertCheck(db, x.id, { findings: [finding({ patch: x.patches[0]! })] });
      const r = await run(policyFor(smtp), own.map((x) => x.id));
      expect(r.series.map((x) => x.skipped)).toEqual([
        expect.stringMatching(/asks not to be processed/),
        expect.stringMatching(/asks not to be processed/),
        expect.stringMatching(/replies to the bot's own mail/),
        expect.stringMatching(/is the bot's own mail/),
      ]);
      expect(smtp.received).toEqual([]);
    });
  });
});
