import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb, type Db } from '../../src/store/db.js';
import { loadReportPolicy, type ReportPolicy } from '../../src/report/policy.js';
import { runReport } from '../../src/report/report.js';
import { outboxRows } from '../../src/report/outbox.js';
import { stdoutSink } from '../../src/report/sinks/stdout.js';
import { dismissConcern } from '../../src/report/concerns.js';
import { run as cli } from '../../src/cli/report.js';
import type { DeliverResult, OutboxRow, Sink } from '../../src/report/types.js';
import { coreDiff, finding, insertCheck, otherDiff, seed, type SeededSeries } from './world.js';

/** Collects what a sink was handed; `edits` makes it a sink that replaces its earlier replies (as GitHub does). */
function recordingSink(name: 'stdout' | 'github', edits: boolean): Sink & { got: OutboxRow[] } {
  const got: OutboxRow[] = [];
  return {
    name, got, editsInPlace: edits,
    async deliver(r): Promise<DeliverResult> {
      got.push(r);
      return { ok: true, remoteId: `r${got.length}` };
    },
    async alreadyDelivered() {
      return false;
    },
  };
}

const sinkOut = () => {
  let text = '';
  return { stream: { write: (x: string) => ((text += x), true) } as unknown as NodeJS.WritableStream, text: () => text };
};

describe('reruns of the same series version', () => {
  let db: Db;
  let s: SeededSeries;
  let policy: ReportPolicy;
  beforeEach(async () => {
    db = openDb(':memory:');
    [s] = (await seed(db, [{ version: 1, cover: true, diffs: [coreDiff(), otherDiff()] }])) as [SeededSeries];
    policy = loadReportPolicy({
      ownDomain: 'bot.example.org', from: 'vfio-review <bot@bot.example.org>',
      lists: [{ id: 'kvm.vger.kernel.org', address: 'kvm@vger.kernel.org', sinks: { github: {} } }],
      retry: { maxAttempts: 3, baseDelayMs: 0, maxDelayMs: 0 },
    });
  });
  afterEach(() => db.close());
  const A = () => finding({ patch: s.patches[0]! });
  const B = () => finding({ patch: s.patches[1]!, rule: 'refcount', category: 'refcount', file: 'drivers/vfio/vfio_main.c', line: 11, function: 'vfio_thing', message: 'the reference is not put on the error path' });

  it('by mail: nothing when the findings are the same, one "rerun" follow-up when they changed', async () => {
    const out = sinkOut();
    const sink = stdoutSink({ out: out.stream });
    insertCheck(db, s.id, { findings: [A()] });
    expect((await runReport(db, { seriesIds: [s.id], sink, policy })).delivery!.sent).toBe(2);

    insertCheck(db, s.id, { trigger: 'rerun', findings: [{ ...A(), line: 105 }] });
    const same = await runReport(db, { seriesIds: [s.id], sink, policy });
    expect(same.series[0]!.skipped).toBe('already answered; the findings did not change');

    insertCheck(db, s.id, { trigger: 'rerun', findings: [A(), B()] });
    const changed = await runReport(db, { seriesIds: [s.id], sink, policy });
    expect(changed.delivery!.sent).toBe(1);
    const rerun = outboxRows(db).at(-1)!;
    expect(rerun).toMatchObject({ kind: 'rerun', inReplyTo: `<${s.cover}>`, subject: 'Re: [PATCH 0/2] vfio/pci: take igate around enable' });
    expect(rerun.body).toMatch(/Found now, not in the previous reply:\n- \[2\/2\] [0-9a-f]{12} refcount: the reference is not put on the\s+error\s+path\nNo longer found:\n- none/);
    expect(rerun.body).toContain('> +b');

    // The same change again, and a change that is only a dismissal, send nothing more.
    insertCheck(db, s.id, { trigger: 'rerun', findings: [A(), B()] });
    expect((await runReport(db, { seriesIds: [s.id], sink, policy })).series[0]!.skipped).toMatch(/did not change/);
    dismissConcern(db, { id: rerun.meta.raised[0]!, by: 'alex@example.org', why: 'intended', via: 'dashboard' });
    insertCheck(db, s.id, { trigger: 'rerun', findings: [A(), B()] });
    expect((await runReport(db, { seriesIds: [s.id], sink, policy })).series[0]!.skipped).toBe('already answered; only dismissed concerns changed');
    expect(outboxRows(db)).toHaveLength(3);
  });

  it('on a sink that edits: the earlier replies are re-rendered in place, new targets added', async () => {
    const sink = recordingSink('github', true);
    insertCheck(db, s.id, { findings: [A()] });
    await runReport(db, { seriesIds: [s.id], sink, policy });
    const first = outboxRows(db);
    expect(first.map((r) => [r.kind, r.targetMsgid, r.revision])).toEqual([['review', s.cover, 1], ['review', s.patches[0], 1]]);

    insertCheck(db, s.id, { trigger: 'rerun', findings: [B()] });
    const r = await runReport(db, { seriesIds: [s.id], sink, policy });
    expect(r.series[0]).toMatchObject({ decided: 1, updated: 2 });
    const after = outboxRows(db);
    expect(after.map((x) => [x.key, x.targetMsgid, x.revision, x.state])).toEqual([
      [first[0]!.key, s.cover, 2, 'sent'],
      [first[1]!.key, s.patches[0], 2, 'sent'],
      [expect.any(String), s.patches[1], 1, 'sent'],
    ]);
    // The edited reply to patch 1 no longer raises anything; the cover's summary names the refcount finding.
    expect(after[1]!.body).not.toContain('[warning]');
    expect(after[0]!.body).toContain('refcount (warning)');
    expect(sink.got.map((g) => [g.key, g.revision])).toEqual([
      [first[0]!.key, 1], [first[1]!.key, 1], [first[0]!.key, 2], [first[1]!.key, 2], [after[2]!.key, 1],
    ]);
  });

  it('dry run prints the replies and writes nothing to the outbox; the files sink is idempotent', async () => {
    insertCheck(db, s.id, { findings: [A()] });
    const out = sinkOut();
    const dry = await runReport(db, { seriesIds: [s.id], sink: stdoutSink({ out: sinkOut().stream }), policy, dryRun: true, out: out.stream });
    expect(dry.delivery).toBeNull();
    expect(outboxRows(db)).toEqual([]);
    expect(out.text()).toContain('In-Reply-To: <v1.1@example.org>');
    expect(out.text().match(/^Message-ID: /gm)).toHaveLength(2);

    const dir = mkdtempSync(join(tmpdir(), 'vr-files-'));
    try {
      const files = stdoutSink({ out: sinkOut().stream, dir });
      await runReport(db, { seriesIds: [s.id], sink: files, policy });
      expect(readdirSync(dir).sort()).toEqual(outboxRows(db).map((r) => `${r.key}.eml`).sort());
      expect(await files.alreadyDelivered(outboxRows(db)[0]!)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the CLI refuses bad arguments as usage errors', async () => {
    await expect(cli(['--series', 'x', '--db', ':memory:'])).rejects.toMatchObject({ code: 'USAGE' });
    await expect(cli(['--series', '1', '--all', '--db', ':memory:'])).rejects.toMatchObject({ code: 'USAGE' });
    await expect(cli(['--sink', 'fax', '--db', ':memory:'])).rejects.toMatchObject({ code: 'USAGE' });
    await expect(cli(['--sink', 'email', '--db', ':memory:'])).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });
});
