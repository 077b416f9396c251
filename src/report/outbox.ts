import type { Db } from '../store/db.js';
import { reasonOf } from '../errors.js';
import { crashPoint } from './crashpoint.js';
import type { OutboxRow, OutboxState, ReplyKind, ReplyMeta, Sink, SinkName } from './types.js';

/** A reply decided but not yet stored: everything but the delivery bookkeeping. */
export type NewReply = Omit<OutboxRow, 'id' | 'revision' | 'state' | 'attempts' | 'nextAt' | 'lastError' | 'remoteId' | 'sentAt'>;

interface DbRow {
  id: number; idem_key: string; series_id: number; lineage_id: number | null; check_id: number | null; version: number;
  sink: SinkName; kind: ReplyKind; target_msgid: string; list_id: string | null; message_id: string; subject: string;
  from_addr: string; to_json: string; cc_json: string; in_reply_to: string; references_json: string; headers_json: string;
  body: string; meta_json: string; findings_digest: string; revision: number; state: OutboxState; attempts: number;
  next_at: string; last_attempt_at: string | null; last_error: string | null; remote_id: string | null; decided_at: string;
  sent_at: string | null;
}

export function fromDb(r: DbRow): OutboxRow {
  return {
    id: r.id, key: r.idem_key, seriesId: r.series_id, lineageId: r.lineage_id, checkId: r.check_id, version: r.version,
    sink: r.sink, kind: r.kind, targetMsgid: r.target_msgid, listId: r.list_id, messageId: r.message_id, subject: r.subject,
    from: r.from_addr, to: JSON.parse(r.to_json) as string[], cc: JSON.parse(r.cc_json) as string[], inReplyTo: r.in_reply_to,
    references: JSON.parse(r.references_json) as string[], headers: JSON.parse(r.headers_json) as Record<string, string>,
    body: r.body, meta: JSON.parse(r.meta_json) as ReplyMeta, findingsDigest: r.findings_digest, revision: r.revision,
    state: r.state, attempts: r.attempts, nextAt: r.next_at, lastError: r.last_error, remoteId: r.remote_id,
    decidedAt: r.decided_at, sentAt: r.sent_at,
  };
}

export function outboxRows(db: Db, where: { seriesId?: number; sink?: SinkName } = {}): OutboxRow[] {
  const rows = db
    .prepare(
      `SELECT * FROM outbox WHERE (? IS NULL OR series_id = ?) AND (? IS NULL OR sink = ?) ORDER BY id`,
    )
    .all(where.seriesId ?? null, where.seriesId ?? null, where.sink ?? null, where.sink ?? null) as DbRow[];
  return rows.map(fromDb);
}

/** What one decision wrote. */
export interface DecideResult {
  inserted: number;
  updated: number;
  /** Set when nothing was written because of the list's daily limit. */
  rateLimited?: { listId: string; perDay: number; used: number };
}

/**
 * Writes the decision to send and the reply rows in one transaction (IMMEDIATE, so two reporters do
 * not both pass the rate limit). A reply whose key is already stored is left alone: deciding twice
 * sends once. `updates` re-render stored replies in place (sinks that edit), bumping the revision.
 */
export function decide(
  db: Db,
  d: { inserts: NewReply[]; updates: NewReply[]; listId: string | null; perDay: number | null; now?: Date },
): DecideResult {
  const now = (d.now ?? new Date()).toISOString();
  const dayAgo = new Date(Date.parse(now) - 24 * 3600_000).toISOString();
  return db.transaction((): DecideResult => {
    const fresh = d.inserts.filter((r) => !db.prepare('SELECT 1 FROM outbox WHERE idem_key = ?').get(r.key));
    if (d.listId !== null && d.perDay !== null && fresh.length > 0) {
      const used = db
        .prepare('SELECT count(*) FROM outbox WHERE list_id = ? AND sink = ? AND decided_at > ?')
        .pluck()
        .get(d.listId, fresh[0]!.sink, dayAgo) as number;
      // A series is answered whole or not at all: half a review is worse than a late one.
      if (used + fresh.length > d.perDay) return { inserted: 0, updated: 0, rateLimited: { listId: d.listId, perDay: d.perDay, used } };
    }
    const ins = db.prepare(
      `INSERT OR IGNORE INTO outbox (idem_key, series_id, lineage_id, check_id, version, sink, kind, target_msgid, list_id,
         message_id, subject, from_addr, to_json, cc_json, in_reply_to, references_json, headers_json, body, meta_json,
         findings_digest, state, attempts, next_at, decided_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)`,
    );
    let inserted = 0;
    for (const r of fresh) {
      inserted += ins.run(
        r.key, r.seriesId, r.lineageId, r.checkId, r.version, r.sink, r.kind, r.targetMsgid, r.listId, r.messageId, r.subject,
        r.from, JSON.stringify(r.to), JSON.stringify(r.cc), r.inReplyTo, JSON.stringify(r.references), JSON.stringify(r.headers),
        r.body, JSON.stringify(r.meta), r.findingsDigest, now, r.decidedAt, now,
      ).changes;
    }
    const upd = db.prepare(
      `UPDATE outbox SET body = ?, meta_json = ?, findings_digest = ?, check_id = ?, to_json = ?, cc_json = ?,
         revision = revision + 1, state = 'pending', attempts = 0, next_at = ?, last_error = NULL, updated_at = ?
       WHERE idem_key = ? AND findings_digest != ?`,
    );
    let updated = 0;
    for (const r of d.updates) {
      updated += upd.run(r.body, JSON.stringify(r.meta), r.findingsDigest, r.checkId, JSON.stringify(r.to), JSON.stringify(r.cc),
        now, now, r.key, r.findingsDigest).changes;
    }
    return { inserted, updated };
  }).immediate();
}

export interface RetryPolicy {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/** Exponential backoff: base, 2x base, 4x base ... capped. No jitter: one bot, one queue, and tests can predict it. */
export function backoffMs(attempts: number, r: RetryPolicy): number {
  return Math.min(r.maxDelayMs, r.baseDelayMs * 2 ** Math.max(0, attempts - 1));
}

export interface DeliverSummary {
  sent: number;
  alreadyThere: number;
  retrying: number;
  failed: number;
  waiting: number;
}

/**
 * Delivers every due reply of one sink, oldest first. Each attempt is counted and committed (state
 * 'sending') before the sink is called, so after a crash the row says an attempt may have reached the
 * server; such a row (and any retry) first asks the sink whether the reply is already there. A reply
 * is marked sent only after the server accepted it.
 */
export async function deliverDue(db: Db, sink: Sink, retry: RetryPolicy, opts: { now?: () => Date } = {}): Promise<DeliverSummary> {
  const now = opts.now ?? (() => new Date());
  const out: DeliverSummary = { sent: 0, alreadyThere: 0, retrying: 0, failed: 0, waiting: 0 };
  const due = db
    .prepare(`SELECT * FROM outbox WHERE sink = ? AND state IN ('pending', 'sending') AND next_at <= ? ORDER BY id`)
    .all(sink.name, now().toISOString()) as DbRow[];
  const set = (id: number, fields: Record<string, string | number | null>): void => {
    const keys = Object.keys(fields);
    db.prepare(`UPDATE outbox SET ${keys.map((k) => `${k} = ?`).join(', ')}, updated_at = ? WHERE id = ?`).run(
      ...keys.map((k) => fields[k]!), now().toISOString(), id,
    );
  };
  for (const r of due) {
    const row = fromDb(r);
    if (row.attempts > 0 || row.state === 'sending') {
      let there: boolean;
      try {
        there = await sink.alreadyDelivered(row);
      } catch (err) {
        // Cannot tell: sending again could double-post, so wait and ask again later.
        set(row.id, { next_at: new Date(now().getTime() + backoffMs(row.attempts, retry)).toISOString(), last_error: `check failed: ${reasonOf(err)}` });
        out.waiting++;
        continue;
      }
      if (there) {
        set(row.id, { state: 'sent', sent_at: now().toISOString(), last_error: null });
        out.alreadyThere++;
        continue;
      }
      const grace = sink.inDoubtGraceMs ?? 0;
      const last = r.last_attempt_at ? Date.parse(r.last_attempt_at) : 0;
      if (row.state === 'sending' && grace > 0 && now().getTime() < last + grace) {
        // The copy that proves delivery (list echo, Sent folder) may still be on its way.
        set(row.id, { next_at: new Date(last + grace).toISOString() });
        out.waiting++;
        continue;
      }
    }
    const attempts = row.attempts + 1;
    set(row.id, { state: 'sending', attempts, last_attempt_at: now().toISOString() });
    await crashPoint('before-deliver');
    let res: Awaited<ReturnType<Sink['deliver']>>;
    try {
      res = await sink.deliver({ ...row, attempts, state: 'sending' });
    } catch (err) {
      res = { ok: false, permanent: false, answer: reasonOf(err) };
    }
    await crashPoint('after-deliver');
    if (res.ok) {
      set(row.id, { state: 'sent', sent_at: now().toISOString(), remote_id: res.remoteId ?? null, last_error: null });
      out.sent++;
    } else if (res.permanent || attempts >= retry.maxAttempts) {
      const answer = res.permanent ? res.answer : `gave up after ${attempts} attempts: ${res.answer}`;
      set(row.id, { state: 'failed', last_error: answer.slice(0, 4000) });
      out.failed++;
    } else {
      set(row.id, {
        state: 'pending',
        next_at: new Date(now().getTime() + backoffMs(attempts, retry)).toISOString(),
        last_error: res.answer.slice(0, 4000),
      });
      out.retrying++;
    }
  }
  return out;
}
