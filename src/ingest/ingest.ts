import { createHash } from 'node:crypto';
import type { Db } from '../store/db.js';
import { nowIso } from '../store/db.js';
import { reasonOf } from '../errors.js';
import type { ParsedMessage } from '../mail/parse.js';
import { ParsePool, parseInline, type ParseOutcome } from './parse-pool.js';
import { rebuildThreads } from '../series/threads.js';
import { rebuildSeries, type SeriesRebuildSummary } from '../series/assemble.js';
import { defaultRelevance, type Relevance } from '../series/relevance.js';

export type SourceKind = 'mbox' | 'maildir' | 'imap' | 'manual';
export type AddOutcome = 'new' | 'duplicate' | 'new-copy' | 'failed';

export interface AddResult {
  messageRowId: number;
  outcome: AddOutcome;
  reason?: string;
}

export interface IngestCounts {
  seen: number;
  new: number;
  duplicate: number;
  newCopy: number;
  failed: number;
}

export interface IngestSummary extends IngestCounts, SeriesRebuildSummary {
  threads: number;
}

/** Messages in flight between reading and recording in addStream. */
const PIPELINE_DEPTH = 256;

interface Staged {
  sourceId: number;
  rawId: number;
  sha: string;
  locator: string;
  /** A message already stored for these exact bytes. */
  known: number | undefined;
}

export interface IngestorOptions {
  relevance?: Relevance;
  /** Messages per write transaction; 1 commits every message (a daemon), larger is faster for backfill. */
  batch?: number;
}

/** Two copies with one Message-ID are the same message when they agree on these (list copies rewrite From). */
function sameMessage(a: { subject: string | null; date_unix: number | null }, p: ParsedMessage): boolean {
  const date = p.date ? Math.floor(p.date.getTime() / 1000) : null;
  const norm = (s: string | null): string => (s ?? '').replace(/\s+/g, ' ').trim();
  if (norm(a.subject) !== norm(p.subject)) return false;
  if (a.date_unix === null || date === null) return a.date_unix === date;
  return Math.abs(a.date_unix - date) <= 36 * 3600;
}

/** Lines that can carry a trailer a reviewer gives, or a link to an earlier version. */
const TRAILER_OR_LINK = /^[ \t]*(?:[A-Za-z-]+-by|Fixes|Cc|Link to v\d+):|https?:\/\/lore\.kernel\.org\//im;

/**
 * The decoded text kept beside the raw bytes: covers always (lineage links, the
 * series page), replies only when they may carry a trailer. The raw message is
 * always there to re-derive the rest.
 */
function keepText(kind: string, text: string): string | null {
  if (kind === 'patch') return null;
  if (kind !== 'cover' && !TRAILER_OR_LINK.test(text)) return null;
  return text.slice(0, 256 * 1024);
}

/**
 * Turns raw mail into stored messages. The raw bytes are written before the
 * parse is attempted, a parse failure is recorded on the message row, and
 * the same message seen again (another list, a re-fetch) adds a source row,
 * never a second message.
 */
export class Ingestor {
  readonly db: Db;
  readonly counts: IngestCounts = { seen: 0, new: 0, duplicate: 0, newCopy: 0, failed: 0 };
  private readonly relevance: Relevance;
  private readonly batch: number;
  private pending = 0;
  private readonly st;

  constructor(db: Db, opts: IngestorOptions = {}) {
    this.db = db;
    this.relevance = opts.relevance ?? defaultRelevance();
    this.batch = Math.max(1, opts.batch ?? 1);
    this.st = {
      rawGet: db.prepare('SELECT id FROM raw_messages WHERE sha256 = ?').pluck(),
      rawIns: db.prepare('INSERT INTO raw_messages (sha256, bytes, size, first_seen) VALUES (?, ?, ?, ?)'),
      msgByRaw: db.prepare('SELECT id FROM messages WHERE raw_id = ?').pluck(),
      // The parsed message that stated this Message-ID first; by message_id, not ident, since an
      // ident may have been moved aside (see freeIdent) and a derived ident may read like an id.
      msgStated: db.prepare(
        "SELECT id, subject, date_unix, list_ids FROM messages WHERE message_id = ? AND msgid_state = 'stated' AND parse_state = 'parsed' ORDER BY id LIMIT 1",
      ),
      identTaken: db.prepare('SELECT 1 FROM messages WHERE ident = ?').pluck(),
      srcIns: db.prepare(
        `INSERT OR IGNORE INTO message_sources (message_id, source_id, raw_id, locator, list_id, seen_at)
         VALUES (?, ?, ?, ?, ?, ?)`,
      ),
      listIds: db.prepare('UPDATE messages SET list_ids = ? WHERE id = ?'),
      failIns: db.prepare(
        `INSERT INTO messages (ident, raw_id, message_id, msgid_state, parse_state, parse_error, ingested_at)
         VALUES (?, ?, ?, ?, 'failed', ?, ?)`,
      ),
      msgIns: db.prepare(`INSERT INTO messages (
          ident, raw_id, message_id, msgid_state, parse_state, subject, from_name, from_addr, reply_to_addr,
          date_unix, in_reply_to, refs, list_ids, kind, title, prefixes, version, version_stated, counter, total,
          counter_stated, rfc, resend, has_diff, diff, commit_msg, touched_paths, base_commit, change_id,
          prereq_ids, based_on, no_process, body_text, author_name, author_addr, ingested_at)
        VALUES (?, ?, ?, ?, 'parsed', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
                ?, ?, ?, ?, ?)`),
    };
  }

  /** The id of a source row, created on first use. */
  sourceId(kind: SourceKind, name: string): number {
    this.db.prepare('INSERT OR IGNORE INTO sources (kind, name) VALUES (?, ?)').run(kind, name);
    return this.db.prepare('SELECT id FROM sources WHERE kind = ? AND name = ?').pluck().get(kind, name) as number;
  }

  private begin(): void {
    if (!this.db.inTransaction) this.db.exec('BEGIN');
  }

  private tick(): void {
    if (++this.pending >= this.batch) this.flush();
  }

  /** Commits the open write transaction, if any. */
  flush(): void {
    if (this.db.inTransaction) this.db.exec('COMMIT');
    this.pending = 0;
  }

  /** Stores one raw message, then parses it. Never throws for bad mail: failures are recorded. */
  async add(sourceId: number, bytes: Buffer, locator: string): Promise<AddResult> {
    const staged = this.stage(sourceId, bytes, locator);
    const outcome = staged.known === undefined ? await parseInline(bytes) : null;
    return this.complete(staged, bytes, outcome);
  }

  /**
   * Ingests a stream of messages, parsing on worker threads while this thread
   * stores: raw rows are written as messages are read, message rows in input
   * order as parses complete (so deduplication decides exactly as `add` would).
   */
  async addStream(sourceId: number, mails: AsyncIterable<{ bytes: Buffer; locator: string }>, onEach?: () => void): Promise<void> {
    const pool = new ParsePool();
    const window: { staged: Staged; bytes: Buffer; outcome: Promise<ParseOutcome> | null }[] = [];
    const drainOne = async (): Promise<void> => {
      const head = window.shift()!;
      this.complete(head.staged, head.bytes, head.outcome ? await head.outcome : null);
      onEach?.();
    };
    try {
      for await (const m of mails) {
        const staged = this.stage(sourceId, m.bytes, m.locator);
        window.push({ staged, bytes: m.bytes, outcome: staged.known === undefined ? pool.parse(m.bytes) : null });
        if (window.length >= PIPELINE_DEPTH) await drainOne();
      }
      while (window.length) await drainOne();
    } finally {
      await pool.close();
    }
  }

  /** Hashes and stores the raw bytes (before any parse); notes a message already known for them. */
  private stage(sourceId: number, bytes: Buffer, locator: string): Staged {
    this.counts.seen++;
    const sha = createHash('sha256').update(bytes).digest('hex');
    this.begin();
    let rawId = this.st.rawGet.get(sha) as number | undefined;
    let known: number | undefined;
    if (rawId === undefined) rawId = Number(this.st.rawIns.run(sha, bytes, bytes.length, nowIso()).lastInsertRowid);
    else known = this.st.msgByRaw.get(rawId) as number | undefined;
    return { sourceId, rawId, sha, locator, known };
  }

  /** Records the message for staged raw bytes, given the parse outcome (null: not parsed, known bytes). */
  private complete(s: Staged, bytes: Buffer, outcome: ParseOutcome | null): AddResult {
    this.begin();
    const now = nowIso();
    // Bytes seen before (possibly earlier in this very stream): another copy of that message.
    const known = s.known ?? (this.st.msgByRaw.get(s.rawId) as number | undefined);
    if (known !== undefined) {
      this.st.srcIns.run(known, s.sourceId, s.rawId, s.locator, null, now);
      this.counts.duplicate++;
      this.tick();
      return { messageRowId: known, outcome: 'duplicate' };
    }
    if (!outcome) outcome = { ok: false, reason: 'internal: known bytes without a message' };
    if (!outcome.ok) return this.recordFailure(s.sourceId, s.rawId, s.sha, s.locator, bytes, outcome.reason);
    try {
      return this.recordParsed(s.sourceId, s.rawId, s.sha, s.locator, outcome.parsed, now);
    } catch (err) {
      return this.recordFailure(s.sourceId, s.rawId, s.sha, s.locator, bytes, reasonOf(err));
    }
  }

  /**
   * `want`, or when a row already holds it, `want~2`, `want~3` ...: idents derived from a hash or
   * a reuse (`sha256:<hex>`, `<id>#reused-<hex>`) are strings any mail can also state as its
   * Message-ID, so hostile mail could otherwise claim the ident of a later message and make
   * its insert fail.
   */
  private freeIdent(want: string): string {
    if (this.st.identTaken.get(want) === undefined) return want;
    for (let n = 2; ; n++) {
      const ident = `${want}~${n}`;
      if (this.st.identTaken.get(ident) === undefined) return ident;
    }
  }

  private recordFailure(sourceId: number, rawId: number, sha: string, locator: string, bytes: Buffer, reason: string): AddResult {
    this.begin();
    const now = nowIso();
    // Keep whatever Message-ID a plain header scan finds, so threads can still point at it.
    const head = bytes.subarray(0, 64 * 1024).toString('latin1');
    const mid = /^message-id:\s*<(?<id>[^<>\s]+)>/im.exec(head)?.groups?.id ?? null;
    const id = Number(this.st.failIns.run(this.freeIdent(`sha256:${sha}`), rawId, mid, mid ? 'stated' : 'missing', reason, now).lastInsertRowid);
    this.st.srcIns.run(id, sourceId, rawId, locator, null, now);
    this.counts.failed++;
    this.tick();
    return { messageRowId: id, outcome: 'failed', reason };
  }

  private recordParsed(sourceId: number, rawId: number, sha: string, locator: string, p: ParsedMessage, now: string): AddResult {
    const listId = p.listIds[0] ?? null;
    let ident: string;
    let state: 'stated' | 'missing' | 'reused';
    if (!p.messageId) {
      ident = `sha256:${sha}`;
      state = 'missing';
    } else {
      const prior = this.st.msgStated.get(p.messageId) as
        | { id: number; subject: string | null; date_unix: number | null; list_ids: string }
        | undefined;
      if (prior && sameMessage(prior, p)) {
        this.st.srcIns.run(prior.id, sourceId, rawId, locator, listId, now);
        const lists = new Set<string>(JSON.parse(prior.list_ids) as string[]);
        const before = lists.size;
        for (const l of p.listIds) lists.add(l);
        if (lists.size !== before) this.st.listIds.run(JSON.stringify([...lists]), prior.id);
        this.counts.newCopy++;
        this.tick();
        return { messageRowId: prior.id, outcome: 'new-copy' };
      }
      if (prior) {
        // A resend that reused the Message-ID for other content: a message of its own.
        ident = `${p.messageId}#reused-${sha.slice(0, 16)}`;
        state = 'reused';
      } else {
        ident = p.messageId;
        state = 'stated';
      }
    }
    ident = this.freeIdent(ident);
    const s = p.subjectInfo;
    const hasDiff = p.diff !== null;
    // A patch tag without a diff (and not a cover) is discussion, not a patch.
    const kind = (s.kind === 'patch' && !hasDiff) ? 'other' : s.kind;
    const json = JSON.stringify;
    const id = Number(
      this.st.msgIns.run(
        ident, rawId, p.messageId, state, p.subject, p.fromName, p.fromAddr, p.replyToAddr,
        p.date ? Math.floor(p.date.getTime() / 1000) : null, p.inReplyTo, json(p.references), json(p.listIds),
        kind, s.title, json(s.prefixes), s.version, s.versionStated ? 1 : 0, s.counter, s.total,
        s.counterStated ? 1 : 0, s.rfc ? 1 : 0, s.resend ? 1 : 0, hasDiff ? 1 : 0, p.diff, p.commitMessage,
        json(p.touchedPaths), p.baseCommit, p.changeId, json(p.prereqPatchIds), json(p.basedOn),
        p.noProcess ? 1 : 0, keepText(kind, p.text),
        p.bodyAuthor?.name ?? null, p.bodyAuthor?.addr ?? null, now,
      ).lastInsertRowid,
    );
    this.st.srcIns.run(id, sourceId, rawId, locator, listId, now);
    this.counts.new++;
    this.tick();
    return { messageRowId: id, outcome: 'new' };
  }

  /** Commits, then rebuilds the thread forest and the series model. */
  finish(): IngestSummary {
    this.flush();
    const threads = rebuildThreads(this.db);
    const series = rebuildSeries(this.db, this.relevance);
    return { ...this.counts, threads, ...series };
  }
}
