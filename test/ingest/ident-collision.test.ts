import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Ingestor } from '../../src/ingest/ingest.js';
import { openDb, type Db } from '../../src/store/db.js';
import { mail } from '../helpers/mail.js';

/**
 * Regressions found by the robustness campaign (test/robustness): derived idents
 * (`sha256:<hex>` for a message without a Message-ID, `<id>#reused-<hex>` for a reused one)
 * are strings any mail can state as its Message-ID. A message claiming the ident of a later
 * one made the later add() throw (UNIQUE constraint failed: messages.ident).
 */
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

let db: Db;
let ing: Ingestor;
let src: number;
beforeEach(() => {
  db = openDb(':memory:');
  ing = new Ingestor(db);
  src = ing.sourceId('manual', 'test');
});
afterEach(() => db.close());

const rows = (): { ident: string; message_id: string | null; msgid_state: string; parse_state: string }[] =>
  db.prepare('SELECT ident, message_id, msgid_state, parse_state FROM messages ORDER BY id').all() as never;

describe('derived idents claimed by another message', () => {
  it('stores a message without a Message-ID whose sha256 ident an earlier message stated', async () => {
    const plain = mail({ id: null, subject: 'no id here' });
    const claim = mail({ id: `sha256:${sha(plain)}`, subject: 'I claim it' });
    expect((await ing.add(src, claim, 'a')).outcome).toBe('new');
    expect((await ing.add(src, plain, 'b')).outcome).toBe('new');
    expect(rows()).toEqual([
      { ident: `sha256:${sha(plain)}`, message_id: `sha256:${sha(plain)}`, msgid_state: 'stated', parse_state: 'parsed' },
      { ident: `sha256:${sha(plain)}~2`, message_id: null, msgid_state: 'missing', parse_state: 'parsed' },
    ]);
  });

  it('records a parse failure whose ident an earlier message stated', async () => {
    const junk = Buffer.from('no header block at all\n');
    await ing.add(src, mail({ id: `sha256:${sha(junk)}`, subject: 'claim' }), 'a');
    const r = await ing.add(src, junk, 'b');
    expect(r.outcome).toBe('failed');
    expect(r.reason).toMatch(/MAIL_NO_HEADERS/);
    expect(rows()[1]).toMatchObject({ ident: `sha256:${sha(junk)}~2`, parse_state: 'failed' });
  });

  it('stores a reuse of a Message-ID whose #reused ident an earlier message stated', async () => {
    const first = mail({ id: 'r@x', subject: 'first', date: 'Fri, 01 Mar 2024 10:00:00 +0000' });
    const second = mail({ id: 'r@x', subject: 'other content', date: 'Fri, 01 Mar 2024 10:00:00 +0000' });
    const reusedIdent = `r@x#reused-${sha(second).slice(0, 16)}`;
    await ing.add(src, first, 'a');
    await ing.add(src, mail({ id: reusedIdent, subject: 'claim' }), 'b');
    expect((await ing.add(src, second, 'c')).outcome).toBe('new');
    expect(rows().map((r) => [r.ident, r.msgid_state])).toEqual([['r@x', 'stated'], [reusedIdent, 'stated'], [`${reusedIdent}~2`, 'reused']]);
  });

  it('still files a copy of a message under the message that stated its id first', async () => {
    const a = mail({ id: 'c@x', subject: 'same', date: 'Fri, 01 Mar 2024 10:00:00 +0000' });
    const b = Buffer.concat([Buffer.from('List-Id: <kvm.vger.kernel.org>\n'), a]);
    const first = await ing.add(src, a, 'a');
    const copy = await ing.add(src, b, 'b');
    expect(copy).toEqual({ messageRowId: first.messageRowId, outcome: 'new-copy' });
  });
});
