import type Database from 'better-sqlite3';
import type { Db } from './db.js';
import { nowIso } from './db.js';

/**
 * Where an IMAP mailbox was read up to, in public-inbox's IMAPTracker shape:
 * UIDs only mean something under the UIDVALIDITY they were assigned in, so the
 * two are stored together and a changed UIDVALIDITY invalidates `lastUid`.
 */
export interface ImapCursor {
  sourceId: number;
  mailbox: string;
  /** Kept as a decimal string: RFC 3501 allows the full 32-bit unsigned range, imapflow reports a bigint. */
  uidValidity: string;
  /** The highest UID stored under `uidValidity`; 0 before the first message. */
  lastUid: number;
  updatedAt: string;
}

interface CursorRow {
  source_id: number;
  mailbox: string;
  uidvalidity: string;
  last_uid: number;
  updated_at: string;
}

/** Reads and writes rows of `imap_cursors`, one per (source, mailbox). */
export class CursorStore {
  readonly #get: Database.Statement<[number, string], CursorRow>;
  readonly #set: Database.Statement<[number, string, string, number, string]>;
  readonly #del: Database.Statement<[number, string]>;

  constructor(db: Db) {
    this.#get = db.prepare(
      'SELECT source_id, mailbox, uidvalidity, last_uid, updated_at FROM imap_cursors WHERE source_id = ? AND mailbox = ?',
    );
    this.#set = db.prepare(
      `INSERT INTO imap_cursors (source_id, mailbox, uidvalidity, last_uid, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (source_id, mailbox) DO UPDATE
       SET uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid, updated_at = excluded.updated_at`,
    );
    this.#del = db.prepare('DELETE FROM imap_cursors WHERE source_id = ? AND mailbox = ?');
  }

  get(sourceId: number, mailbox: string): ImapCursor | undefined {
    const row = this.#get.get(sourceId, mailbox);
    if (!row) return undefined;
    return {
      sourceId: row.source_id,
      mailbox: row.mailbox,
      uidValidity: row.uidvalidity,
      lastUid: row.last_uid,
      updatedAt: row.updated_at,
    };
  }

  /** Upserts the cursor. Callers advance it only after the message at `lastUid` is stored. */
  set(sourceId: number, mailbox: string, uidValidity: string | bigint, lastUid: number): void {
    this.#set.run(sourceId, mailbox, String(uidValidity), lastUid, nowIso());
  }

  /** Forgets the cursor, so the next sync reads the mailbox from UID 1. */
  reset(sourceId: number, mailbox: string): void {
    this.#del.run(sourceId, mailbox);
  }
}
