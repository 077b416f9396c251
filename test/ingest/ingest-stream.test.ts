import { describe, it, expect } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb, type Db } from '../../src/store/db.js';
import { Ingestor } from '../../src/ingest/ingest.js';
import { readMbox } from '../../src/ingest/mbox-source.js';
import { mail, patchBody } from '../helpers/mail.js';
import { HAS_CORPUS, corpusFile } from '../helpers/corpus.js';

async function* fromArray(msgs: Buffer[]): AsyncGenerator<{ bytes: Buffer; locator: string }> {
  let i = 0;
  for (const bytes of msgs) yield { bytes, locator: `i:${i++}` };
}

function snapshot(db: Db): unknown[] {
  return db
    .prepare(
      `SELECT ident, msgid_state, parse_state, parse_error, subject, kind, version, counter, total, has_diff, diff,
              touched_paths, base_commit, body_text FROM messages ORDER BY ident`,
    )
    .all();
}

async function both(feed: () => AsyncIterable<{ bytes: Buffer; locator: string }>): Promise<[unknown[], unknown[]]> {
  const dir = mkdtempSync(join(tmpdir(), 'vr-stream-'));
  try {
    const a = openDb(join(dir, 'a.db'));
    const ia = new Ingestor(a, { batch: 100 });
    const sa = ia.sourceId('mbox', 'x');
    for await (const m of feed()) await ia.add(sa, m.bytes, m.locator);
    ia.finish();
    const b = openDb(join(dir, 'b.db'));
    const ib = new Ingestor(b, { batch: 100 });
    await ib.addStream(ib.sourceId('mbox', 'x'), feed());
    ib.finish();
    expect(ib.counts).toEqual(ia.counts);
    const r: [unknown[], unknown[]] = [snapshot(a), snapshot(b)];
    a.close();
    b.close();
    return r;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('pipelined ingest (worker threads)', () => {
  it('records exactly what one-by-one ingest records, duplicates and failures included', async () => {
    const p = mail({ id: 's1@x', subject: '[PATCH] vfio: s', body: patchBody() });
    const msgs = [p, p, Buffer.from('not mail\n'), mail({ id: 's2@x', subject: 'Re: [PATCH] vfio: s', inReplyTo: 's1@x' }), p];
    const [a, b] = await both(() => fromArray(msgs));
    expect(b).toEqual(a);
    expect(a).toHaveLength(3);
  });

  it.skipIf(!HAS_CORPUS)('agrees with one-by-one ingest on 1,017 real patch mails (needs ../shared/corpus)', async () => {
    async function* feed(): AsyncGenerator<{ bytes: Buffer; locator: string }> {
      yield* readMbox(corpusFile('patches-applying-6.1.192.mbox.gz'));
      yield* readMbox(corpusFile('patches-in-6.1.192.mbox.gz'));
    }
    const [a, b] = await both(feed);
    // A few mails sit in both files (same Message-ID): stored once.
    expect(a.length).toBeGreaterThan(1000);
    expect(b).toEqual(a);
  });
});
