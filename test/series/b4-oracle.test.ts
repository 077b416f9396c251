import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { openDb, type Db } from '../../src/store/db.js';
import { Ingestor } from '../../src/ingest/ingest.js';
import { readMbox } from '../../src/ingest/mbox-source.js';
import { listSeries, type SeriesView } from '../../src/series/query.js';
import { threadRaw, toMboxrd } from '../../src/store/export.js';
import { CORPUS, HAS_CORPUS, corpusFile } from '../helpers/corpus.js';

/** How many messages of the big archive to take (chronological, so threads there are real ones). */
const BIG_SAMPLE = 8000;
/** How many of its threads to compare, spread evenly. */
const BIG_THREADS = 80;

interface B4Pick {
  ids: string[];
  version: number | null;
  missing: number[];
}

/** What `b4 am` picks for a thread: the patches (Message-IDs, in order), their version, what it says is missing. */
function b4am(home: string, mbox: string, msgid: string): B4Pick {
  const r = spawnSync('b4', ['am', '-m', mbox, '-o', '-', '-T', '--no-partial-reroll', msgid], {
    encoding: 'latin1',
    env: { PATH: process.env.PATH, HOME: home, LANG: 'C.UTF-8' },
    maxBuffer: 256 * 1024 * 1024,
  });
  const ids = [...r.stdout.matchAll(/^Message-Id: <([^>]+)>/gim)].map((m) => m[1]!);
  const subj = /^Subject: \[PATCH[^\]]*?\bv(\d+)/im.exec(r.stdout);
  const missing = [...r.stderr.matchAll(/ERROR: missing \[(\d+)\/\d+\]/g)].map((m) => Number(m[1]));
  return { ids, version: subj ? Number(subj[1]) : ids.length ? 1 : null, missing };
}

/**
 * b4 0.12 on Python 3.11 crashes ("Header values may not contain linefeed") when it copies a folded
 * Subject into its output. Unfolding the header block is meaning-preserving (RFC 5322 2.2.3), so the
 * oracle gets unfolded headers; the bodies are untouched.
 */
function unfoldHeaders(raw: Buffer): Buffer {
  const s = raw.toString('latin1');
  const end = s.search(/\r?\n\r?\n/);
  const head = end < 0 ? s : s.slice(0, end);
  return Buffer.from(head.replace(/\r?\n([ \t])/g, '$1') + (end < 0 ? '' : s.slice(end)), 'latin1');
}

describe.skipIf(!HAS_CORPUS)('series reconstruction matches b4 am on real threads (needs ../shared/corpus)', () => {
  let dir: string;
  let db: Db;
  let series: SeriesView[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vr-b4-'));
    spawnSync('git', ['config', '--global', 'b4.attestation-policy', 'off'], { env: { PATH: process.env.PATH, HOME: dir } });
    db = openDb(join(dir, 'db.sqlite'));
    const ing = new Ingestor(db, { batch: 1000 });
    for (const f of readdirSync(CORPUS + 'threads').filter((n) => n.endsWith('.mbox'))) {
      const id = ing.sourceId('mbox', f);
      for await (const m of readMbox(join(CORPUS, 'threads', f))) await ing.add(id, m.bytes, m.locator);
    }
    const id = ing.sourceId('mbox', 'vfio-iommu-threads.mbox.gz');
    let n = 0;
    for await (const m of readMbox(corpusFile('vfio-iommu-threads.mbox.gz'))) {
      await ing.add(id, m.bytes, m.locator);
      if (++n >= BIG_SAMPLE) break;
    }
    ing.finish();
    series = listSeries(db, { all: true });
  }, 600_000);

  afterAll(() => {
    db?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('picks the same patches, order, version and missing ones as b4 am', () => {
    // Our choice per thread: b4 takes the highest version in the thread.
    const rootOf = db.prepare('SELECT root FROM thread_nodes WHERE msgid = ?').pluck();
    const perThread = new Map<string, SeriesView[]>();
    for (const s of series) {
      const first = s.cover ?? s.patches.find((p) => p);
      if (!first) continue;
      const root = rootOf.get(first) as string | undefined;
      if (!root) continue;
      perThread.set(root, [...(perThread.get(root) ?? []), s]);
    }
    const roots = [...perThread.keys()];
    const step = Math.max(1, Math.floor(roots.length / BIG_THREADS));
    const chosen = roots.filter((_, i) => i % step === 0);
    const mismatches: string[] = [];
    const divergences: string[] = [];
    const senderOf = db.prepare('SELECT from_addr FROM messages WHERE message_id = ?').pluck();
    let compared = 0;
    for (const root of chosen) {
      const all = perThread.get(root)!;
      const top = Math.max(...all.map((s) => s.version));
      const ours = all.filter((s) => s.version === top);
      // Two postings of one version in one thread (a RESEND into the same thread) b4 merges; skip those.
      if (ours.length !== 1) continue;
      const s = ours[0]!;
      const first = s.patches.find((p) => p) ?? s.cover!;
      const mbox = join(dir, 'thread.mbox');
      writeFileSync(mbox, toMboxrd(threadRaw(db, first).map(unfoldHeaders)));
      const b4 = b4am(dir, mbox, first);
      compared++;
      const mine = s.patches.filter((p): p is string => p !== null);
      // Known, intended difference: b4 slots patches by other senders that sit in the same thread
      // (e.g. a stable-bot AUTOSEL thread quoting the original patches) into the series; we keep a
      // series to one sender.
      const extra = b4.ids.filter((id) => !mine.includes(id));
      if (
        extra.length > 0 &&
        mine.every((id) => b4.ids.includes(id)) &&
        extra.every((id) => senderOf.get(id) !== s.author)
      ) {
        divergences.push(`${s.subject}: b4 adds ${extra.join(', ')}`);
        continue;
      }
      if (JSON.stringify(b4.ids) !== JSON.stringify(mine) || b4.version !== s.version || JSON.stringify(b4.missing) !== JSON.stringify(s.missing)) {
        mismatches.push(
          `${s.subject}\n  ours: v${s.version} ${JSON.stringify(mine)} missing ${JSON.stringify(s.missing)}\n  b4:   v${b4.version} ${JSON.stringify(b4.ids)} missing ${JSON.stringify(b4.missing)}`,
        );
      }
    }
    expect(compared).toBeGreaterThan(40);
    expect(divergences.length, divergences.join('\n')).toBeLessThanOrEqual(Math.ceil(compared * 0.05));
    expect(mismatches, mismatches.join('\n')).toEqual([]);
  });
});
