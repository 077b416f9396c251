import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VrError } from '../../src/errors.js';
import { Ingestor } from '../../src/ingest/ingest.js';
import {
  ImapSource,
  backoffDelay,
  imapSourceName,
  type ImapProgress,
  type ImapSourceConfig,
  type ImapSyncSummary,
  type IngestTarget,
} from '../../src/ingest/imap-source.js';
import { CursorStore } from '../../src/store/cursors.js';
import { openDb, type Db } from '../../src/store/db.js';
import { startDovecot, type Dovecot } from '../helpers/imap-server.js';

// Real Dovecot on loopback, real store, real Ingestor: no mocks (STYLE anti-pattern 3).

let server: Dovecot;
beforeAll(async () => {
  server = await startDovecot();
});
afterAll(async () => {
  await server?.stop();
});

const DATE = 'Sat, 22 Nov 2025 10:00:00 +0000';

function mail(h: { id: string; subject: string; inReplyTo?: string; refs?: string[] }, body: string): string {
  const lines = [
    'From: Alex Dev <alex@example.org>',
    'To: kvm@vger.kernel.org',
    `Subject: ${h.subject}`,
    `Date: ${DATE}`,
    `Message-ID: <${h.id}>`,
    ...(h.inReplyTo ? [`In-Reply-To: <${h.inReplyTo}>`] : []),
    ...(h.refs?.length ? [`References: ${h.refs.map((r) => `<${r}>`).join(' ')}`] : []),
    'List-Id: <kvm.vger.kernel.org>',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    body,
  ];
  return `${lines.join('\r\n')}\r\n`;
}

const patchBody = (n: number, tag: string): string =>
  [
    `vfio/pci: fix step ${n} for ${tag}`,
    '',
    'Signed-off-by: Alex Dev <alex@example.org>',
    '---',
    ` drivers/vfio/pci/vfio_pci_core.c | 2 +-`,
    '',
    'diff --git a/drivers/vfio/pci/vfio_pci_core.c b/drivers/vfio/pci/vfio_pci_core.c',
    '--- a/drivers/vfio/pci/vfio_pci_core.c',
    '+++ b/drivers/vfio/pci/vfio_pci_core.c',
    `@@ -${10 * n},3 +${10 * n},3 @@`,
    ' {',
    `-\tint ${tag}_${n} = 0;`,
    `+\tint ${tag}_${n} = 1;`,
    ' }',
    '-- ',
    '2.47.0',
  ].join('\r\n');

/** A cover letter and two patches threaded under it, all Message-IDs derived from `tag`. */
function thread(tag: string): string[] {
  const cover = `${tag}-0@example.org`;
  const p1 = `${tag}-1@example.org`;
  const p2 = `${tag}-2@example.org`;
  return [
    mail({ id: cover, subject: `[PATCH 0/2] vfio/pci: ${tag} fixes` }, `Two fixes for ${tag}.\r\n`),
    mail({ id: p1, subject: `[PATCH 1/2] vfio/pci: fix step 1 for ${tag}`, inReplyTo: cover, refs: [cover] }, patchBody(1, tag)),
    mail({ id: p2, subject: `[PATCH 2/2] vfio/pci: fix step 2 for ${tag}`, inReplyTo: cover, refs: [cover] }, patchBody(2, tag)),
  ];
}

function config(mailboxes: string[], over: Partial<ImapSourceConfig> = {}): ImapSourceConfig {
  return { host: '127.0.0.1', port: server.port, secure: false, auth: { user: 'list', pass: 'listpass' }, mailboxes, ...over };
}

const count = (db: Db, table: string): number => db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;
const locators = (db: Db): string[] =>
  (db.prepare('SELECT locator FROM message_sources ORDER BY locator').pluck().all() as string[]).sort();

/** Collects progress events and resolves waits on them, failing loudly instead of at the suite timeout. */
class Events {
  readonly seen: ImapProgress[] = [];
  #waiters: { test: (e: ImapProgress) => boolean; resolve: (e: ImapProgress) => void }[] = [];
  readonly push = (e: ImapProgress): void => {
    this.seen.push(e);
    this.#waiters = this.#waiters.filter((w) => (w.test(e) ? (w.resolve(e), false) : true));
  };
  next(test: (e: ImapProgress) => boolean, what: string, ms = 30_000): Promise<ImapProgress> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; saw ${JSON.stringify(this.seen.slice(-10))}`)), ms);
      this.#waiters.push({ test, resolve: (e) => (clearTimeout(timer), resolve(e)) });
    });
  }
}

describe('ImapSource.syncOnce', () => {
  it('stores a thread with UID locators and a cursor, then picks up only new mail', async () => {
    const db = openDb(':memory:');
    const ingestor = new Ingestor(db);
    const source = new ImapSource(db, config(['lists/vfio']));
    try {
      const uids = await server.appendMany('list', 'lists/vfio', thread('first'));
      const s1 = await source.syncOnce(ingestor);
      const v = s1.mailboxes[0]!.uidValidity;
      expect(s1.stored).toBe(3);
      expect(s1.mailboxes[0]!.outcomes.new).toBe(3);
      expect(s1.ingest).not.toBeNull();
      expect(count(db, 'messages')).toBe(3);
      expect(locators(db)).toEqual(uids.map((u) => `uid:${v}:${u}`).sort());
      const name = db.prepare("SELECT name FROM sources WHERE kind = 'imap'").pluck().get();
      expect(name).toBe(`imap://list@127.0.0.1:${server.port}/lists/vfio`);
      expect(name).toBe(imapSourceName(config([]), 'lists/vfio'));
      const sourceId = s1.mailboxes[0]!.sourceId;
      expect(new CursorStore(db).get(sourceId, 'lists/vfio')).toMatchObject({ uidValidity: v, lastUid: uids[2] });

      // Nothing new: `last+1:*` still matches the last message on the wire; it must not be re-added.
      const s2 = await source.syncOnce(ingestor);
      expect(s2.stored).toBe(0);
      expect(s2.ingest).toBeNull();

      const more = await server.appendMany('list', 'lists/vfio', thread('second'));
      const s3 = await source.syncOnce(ingestor);
      expect(s3.stored).toBe(3);
      expect(s3.mailboxes[0]!.fromUid).toBe(uids[2]! + 1);
      expect(count(db, 'messages')).toBe(6);
      expect(count(db, 'message_sources')).toBe(6);
      expect(new CursorStore(db).get(sourceId, 'lists/vfio')?.lastUid).toBe(more[2]);
    } finally {
      await source.close();
      db.close();
    }
  });

  it('re-reads a mailbox whose UIDVALIDITY changed without duplicating messages', async () => {
    const db = openDb(':memory:');
    const ingestor = new Ingestor(db);
    const events = new Events();
    const source = new ImapSource(db, config(['lists/uv']), { onProgress: events.push });
    try {
      await server.appendMany('list', 'lists/uv', thread('uv'));
      const first = await source.syncOnce(ingestor);
      const sourceId = first.mailboxes[0]!.sourceId;
      const { before, after } = await server.resetUidValidity('list', 'lists/uv');
      expect(first.mailboxes[0]!.uidValidity).toBe(before);

      const s = await source.syncOnce(ingestor);
      expect(s.uidValidityChanges).toEqual([{ mailbox: 'lists/uv', previous: before, current: after }]);
      expect(s.mailboxes[0]!.fromUid).toBe(1);
      expect(s.mailboxes[0]!.outcomes).toMatchObject({ new: 0, failed: 0 });
      expect(s.stored).toBe(3);
      expect(events.seen).toContainEqual({ kind: 'uidvalidity-changed', mailbox: 'lists/uv', previous: before, current: after });
      expect(count(db, 'messages')).toBe(3);
      // Both generations of locators are kept: the old ones are history, the new ones current.
      const locs = locators(db);
      expect(locs.filter((l) => l.startsWith(`uid:${before}:`))).toHaveLength(3);
      expect(locs.filter((l) => l.startsWith(`uid:${after}:`))).toHaveLength(3);
      expect(new CursorStore(db).get(sourceId, 'lists/uv')).toMatchObject({ uidValidity: after, lastUid: 3 });
    } finally {
      await source.close();
      db.close();
    }
  });

  it('reports a refused login as IMAP_CONNECT with the server response', async () => {
    const db = openDb(':memory:');
    const source = new ImapSource(db, config(['INBOX'], { auth: { user: 'list', pass: 'wrong' } }));
    const err = await source.syncOnce(new Ingestor(db)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VrError);
    expect(err).toMatchObject({ code: 'IMAP_CONNECT', step: 'login' });
    expect((err as VrError).response).toMatch(/authentication failed/i);
    // watch() gives up at once too: retrying cannot fix a password.
    const ac = new AbortController();
    await expect(source.watch(new Ingestor(db), { signal: ac.signal })).rejects.toMatchObject({ code: 'IMAP_CONNECT' });
    db.close();
  });

  it('reports an unreachable server as IMAP_CONNECT', async () => {
    const db = openDb(':memory:');
    const other = await startDovecot();
    const port = other.port;
    await other.stop();
    const source = new ImapSource(db, config(['INBOX'], { port }));
    await expect(source.syncOnce(new Ingestor(db))).rejects.toMatchObject({ code: 'IMAP_CONNECT', step: 'connect' });
    db.close();
  });

  it('reports a missing mailbox as IMAP_MAILBOX', async () => {
    const db = openDb(':memory:');
    const source = new ImapSource(db, config(['lists/does-not-exist']));
    try {
      const err = await source.syncOnce(new Ingestor(db)).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'IMAP_MAILBOX', step: 'select' });
      expect((err as VrError).message).toMatch(/lists\/does-not-exist/);
      const ac = new AbortController();
      await expect(source.watch(new Ingestor(db), { signal: ac.signal })).rejects.toMatchObject({ code: 'IMAP_MAILBOX' });
    } finally {
      await source.close();
      db.close();
    }
  });
});

describe('ImapSource.watch', () => {
  it('receives new mail through IDLE', async () => {
    const db = openDb(':memory:');
    const events = new Events();
    // A poll interval far beyond the test: only IDLE can deliver the message in time.
    const source = new ImapSource(db, config(['lists/idle'], { pollIntervalMs: 600_000 }), { onProgress: events.push });
    await server.appendMany('list', 'lists/idle', thread('before-idle'));
    let delivered!: (s: ImapSyncSummary) => void;
    const batch = new Promise<ImapSyncSummary>((r) => (delivered = r));
    const ac = new AbortController();
    const idling = events.next((e) => e.kind === 'idling', 'IDLE');
    const firstSync = events.next((e) => e.kind === 'synced', 'first sync');
    const running = source.watch(new Ingestor(db), {
      signal: ac.signal,
      onBatch: (s) => {
        if (s.mailboxes.some((m) => m.fromUid > 1)) delivered(s);
      },
    });
    try {
      await Promise.all([idling, firstSync]);
      expect(count(db, 'messages')).toBe(3);
      const exists = events.next((e) => e.kind === 'exists' && e.mailbox === 'lists/idle', 'EXISTS');
      const [uid] = await server.appendMany('list', 'lists/idle', [
        mail({ id: 'idle-reply@example.org', subject: 'Re: [PATCH 0/2] vfio/pci: before-idle fixes', inReplyTo: 'before-idle-0@example.org' }, 'Looks good.\r\n'),
      ]);
      await exists;
      const s = await batch;
      expect(s.stored).toBe(1);
      expect(s.mailboxes[0]?.lastUid).toBe(uid);
      expect(count(db, 'messages')).toBe(4);
      expect(events.seen.some((e) => e.kind === 'poll')).toBe(false);
    } finally {
      ac.abort();
      await running;
      db.close();
    }
    expect(events.seen.at(-1)).toEqual({ kind: 'stopped' });
  });

  it('falls back to polling when IDLE is off', async () => {
    const db = openDb(':memory:');
    const events = new Events();
    const source = new ImapSource(db, config(['lists/poll'], { idle: false, pollIntervalMs: 200 }), { onProgress: events.push });
    await server.append('list', 'lists/poll', thread('poll')[0]!);
    const ac = new AbortController();
    const firstSync = events.next((e) => e.kind === 'synced', 'first sync');
    const running = source.watch(new Ingestor(db), { signal: ac.signal });
    try {
      await firstSync;
      // A poll may land between the two APPENDs: wait for the store, not for one sync of both.
      const stored = events.next((e) => e.kind === 'synced' && count(db, 'messages') === 3, 'polled syncs');
      await server.appendMany('list', 'lists/poll', thread('poll').slice(1));
      await stored;
      expect(count(db, 'messages')).toBe(3);
      expect(events.seen.some((e) => e.kind === 'idling' || e.kind === 'exists')).toBe(false);
    } finally {
      ac.abort();
      await running;
      db.close();
    }
  });

  it('survives a server restart in the middle of a fetch: 200 messages, none lost, none twice', async () => {
    const db = openDb(':memory:');
    const real = new Ingestor(db);
    const events = new Events();
    const raws = Array.from({ length: 200 }, (_, i) =>
      mail({ id: `bulk-${i}@example.org`, subject: `[RFC] bulk message ${i}` }, `message ${i}\r\n`),
    );
    const uids = await server.appendMany('list', 'lists/bulk', raws);
    let adds = 0;
    let restarted: Promise<void> | undefined;
    // Wraps the real ingestor: after the 50th stored message the server goes down under the open FETCH.
    const ingestor: IngestTarget = {
      sourceId: (kind, name) => real.sourceId(kind, name),
      finish: () => real.finish(),
      async add(sourceId, bytes, locator) {
        const r = await real.add(sourceId, bytes, locator);
        if (++adds === 50) {
          // Down until the watcher has also been refused a connection, so the backoff path runs.
          const refused = events.next((e) => e.kind === 'reconnecting' && /cannot connect/.test(e.error), 'a refused reconnect');
          restarted = server.restart({ whileDown: () => refused });
        }
        return r;
      },
    };
    const source = new ImapSource(db, config(['lists/bulk'], { batchSize: 20 }), { onProgress: events.push });
    const ac = new AbortController();
    const done = events.next(() => count(db, 'messages') === 200 && events.seen.at(-1)?.kind === 'synced', 'all 200 stored', 60_000);
    const running = source.watch(ingestor, { signal: ac.signal });
    try {
      await done;
      await restarted;
    } finally {
      ac.abort();
      await running;
    }
    const kinds = events.seen.map((e) => e.kind);
    expect(kinds).toContain('disconnected');
    const retries = events.seen.filter((e): e is Extract<ImapProgress, { kind: 'reconnecting' }> => e.kind === 'reconnecting');
    expect(retries.map((e) => e.attempt)).toEqual(retries.map((_, i) => i + 1));
    expect(retries.length).toBeGreaterThanOrEqual(2);
    // Mail was still being stored after the reconnect: the restart really cut the sync short.
    expect(kinds.lastIndexOf('stored')).toBeGreaterThan(kinds.indexOf('reconnecting'));
    expect(adds).toBe(200);
    expect(count(db, 'messages')).toBe(200);
    expect(count(db, 'message_sources')).toBe(200);
    expect(count(db, 'raw_messages')).toBe(200);
    const sourceId = real.sourceId('imap', imapSourceName(config([]), 'lists/bulk'));
    expect(new CursorStore(db).get(sourceId, 'lists/bulk')?.lastUid).toBe(uids[199]);
    db.close();
  });
});

describe('backoffDelay', () => {
  it('doubles from 500 ms to a 60 s cap, with jitter in the upper half', () => {
    expect(backoffDelay(0, {}, () => 0)).toBe(250);
    expect(backoffDelay(0, {}, () => 1)).toBe(500);
    expect(backoffDelay(3, {}, () => 1)).toBe(4_000);
    expect(backoffDelay(20, {}, () => 0)).toBe(30_000);
    expect(backoffDelay(20, {}, () => 1)).toBe(60_000);
  });
});
