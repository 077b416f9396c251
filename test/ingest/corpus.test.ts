import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb, type Db } from '../../src/store/db.js';
import { Ingestor, type IngestSummary } from '../../src/ingest/ingest.js';
import { readMbox } from '../../src/ingest/mbox-source.js';
import { listSeries } from '../../src/series/query.js';
import { stats } from '../../src/cli/stats.js';
import { CORPUS, HAS_CORPUS, corpusFile } from '../helpers/corpus.js';

/**
 * The whole real archive, both lists, into one store: every raw message kept,
 * the quirks listed in ../shared/corpus/README.md handled.
 */
describe.skipIf(!HAS_CORPUS)('real list archives (needs ../shared/corpus)', () => {
  let dir: string;
  let db: Db;
  const sums: Record<string, IngestSummary> = {};

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vr-corpus-'));
    db = openDb(join(dir, 'db.sqlite'));
    for (const f of ['vfio-iommu-threads.mbox.gz', 'iommu-list-2019-2022.mbox.gz']) {
      const ing = new Ingestor(db, { batch: 2000 });
      const src = ing.sourceId('mbox', f);
      for await (const m of readMbox(corpusFile(f))) await ing.add(src, m.bytes, m.locator);
      sums[f] = ing.finish();
    }
  }, 900_000);
  afterAll(() => {
    db?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('keeps every raw message and parses every one that has a header block', () => {
    const s = stats(db);
    expect(sums['vfio-iommu-threads.mbox.gz']!.seen).toBe(39_692);
    expect(sums['iommu-list-2019-2022.mbox.gz']!.seen).toBe(31_893);
    // Every delivered copy is accounted for: as a message or as another copy of one.
    expect(s.messageCopies).toBe(39_692 + 31_893);
    expect(s.parseErrors).toBe(0);
  });

  it('stores a message that came through both lists once, with both sources', () => {
    const both = db
      .prepare('SELECT count(*) FROM (SELECT message_id FROM message_sources GROUP BY message_id HAVING count(DISTINCT source_id) = 2)')
      .pluck()
      .get() as number;
    expect(both).toBeGreaterThan(1000);
    // Identical bytes (a duplicate) or a list copy with its own headers and footer (a new copy).
    const second = sums['iommu-list-2019-2022.mbox.gz']!;
    expect(second.newCopy + second.duplicate).toBe(both);
  });

  it('keeps resends that reused a Message-ID as messages of their own', () => {
    const reused = db.prepare("SELECT count(*) FROM messages WHERE msgid_state = 'reused'").pluck().get() as number;
    expect(reused).toBeGreaterThanOrEqual(1);
    expect(reused).toBeLessThanOrEqual(10);
  });

  it('stores messages without a usable Message-ID under their hash', () => {
    expect(stats(db).missingMessageId).toBeGreaterThanOrEqual(1);
  });

  it('keeps threads whose parents were never archived, under ghost nodes', () => {
    const s = stats(db);
    expect(s.ghosts).toBeGreaterThan(600);
    // A ghost is never a stored message.
    expect(db.prepare('SELECT count(*) FROM thread_nodes t JOIN messages m ON m.message_id = t.msgid WHERE t.ghost = 1').pluck().get()).toBe(0);
  });

  it('joins unthreaded series patches to their posting', () => {
    const unthreaded = listSeries(db, { all: true }).filter((s) => s.threading === 'unthreaded');
    expect(unthreaded.length).toBeGreaterThan(20);
    // Each joined series is one sender's, with at most one message per counter.
    for (const s of unthreaded) expect(new Set(s.patches.filter(Boolean)).size).toBe(s.patches.filter(Boolean).length);
  });

  it('finds the labelled review threads as complete or explicitly incomplete series', async () => {
    const files = readdirSync(join(CORPUS, 'threads')).filter((f) => f.endsWith('.mbox'));
    const all = listSeries(db, { all: true });
    const member = new Set(all.flatMap((s) => s.patches.filter(Boolean)));
    let found = 0;
    for (const f of files) {
      for await (const m of readMbox(join(CORPUS, 'threads', f))) {
        const id = /^message-id:\s*<([^>]+)>/im.exec(m.bytes.subarray(0, 65536).toString('latin1'))?.[1];
        if (id && member.has(id)) {
          found++;
          break;
        }
      }
    }
    // Most labelled threads' root patches are in the big archive too.
    expect(found).toBeGreaterThanOrEqual(Math.floor(files.length * 0.6));
  });
});
