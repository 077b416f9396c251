import type { Db } from '../store/db.js';
import { nowIso } from '../store/db.js';
import { reasonOf } from '../errors.js';
import { applyEmailCommands, type CommandOutcome } from '../report/commands.js';
import type { ReportPolicy } from '../report/policy.js';
import type { JobStore } from './jobs.js';

const CURSOR = 'command-mail';

/** What reading one reply for commands came to. */
export interface CommandMailResult {
  messageRowId: number;
  messageId: string | null;
  outcome: CommandOutcome | null;
  /** The rerun job added, when the mail asked for one and its series was found. */
  jobId: number | null;
  seriesId: number | null;
  error: string | null;
}

interface MsgRow {
  id: number;
  message_id: string | null;
  in_reply_to: string | null;
  refs: string;
  bytes: Buffer;
}

/**
 * Where reading starts on a store the daemon has never run on: after the newest message already
 * there, so commands in an archive ingested earlier (by `ingest`) are not obeyed long after the fact.
 */
export function initCommandCursor(db: Db): void {
  db.prepare(`INSERT OR IGNORE INTO daemon_cursors (name, value, updated_at) VALUES (?, (SELECT coalesce(max(id), 0) FROM messages), ?)`).run(
    CURSOR,
    nowIso(),
  );
}

const domainOf = (id: string | null): string => (id ?? '').split('@').pop()?.toLowerCase() ?? '';

/**
 * The series a reply is about: the nearest message it answers that is either one of the bot's own
 * replies (the outbox knows its series) or a patch or cover of a series.
 */
export function seriesOfReply(db: Db, inReplyTo: string | null, refs: string[]): number | null {
  const chain = [...(inReplyTo ? [inReplyTo] : []), ...[...refs].reverse()];
  const viaOutbox = db.prepare('SELECT series_id FROM outbox WHERE message_id = ? ORDER BY id DESC LIMIT 1').pluck();
  const viaSeries = db
    .prepare(
      `SELECT sp.series_id FROM messages m JOIN series_patches sp ON sp.message_id = m.id
       WHERE m.message_id = ? ORDER BY sp.series_id DESC LIMIT 1`,
    )
    .pluck();
  for (const id of chain) {
    const s = (viaOutbox.get(`<${id}>`) as number | undefined) ?? (viaSeries.get(id) as number | undefined);
    if (s !== undefined) return s;
  }
  return null;
}

/**
 * Reads the replies stored since the last call for `vfio-review: rerun` / `dismiss` lines (the
 * bot's own mail excepted), applies them through applyEmailCommands, and queues a rerun job for
 * each rerun asked by an allowed sender. Each reply is read once: the record of it, the rerun job
 * and the cursor move in one transaction; a dismissal repeated after a crash is a no-op.
 */
export async function readCommandMail(db: Db, jobs: JobStore, policy: ReportPolicy): Promise<CommandMailResult[]> {
  const from = (db.prepare('SELECT value FROM daemon_cursors WHERE name = ?').pluck().get(CURSOR) as number | undefined) ?? 0;
  const rows = db
    .prepare(
      `SELECT m.id, m.message_id, m.in_reply_to, m.refs, r.bytes FROM messages m JOIN raw_messages r ON r.id = m.raw_id
       WHERE m.id > ? AND m.kind IN ('reply', 'other') AND m.id NOT IN (SELECT message_id FROM command_mail) ORDER BY m.id`,
    )
    .all(from) as MsgRow[];
  const out: CommandMailResult[] = [];
  const setCursor = db.prepare('UPDATE daemon_cursors SET value = max(value, ?), updated_at = ? WHERE name = ?');
  for (const m of rows) {
    // Cheap filter before a full MIME parse: the command word, or an encoding that could hide it.
    const head = m.bytes.toString('latin1').toLowerCase();
    if (domainOf(m.message_id) === policy.ownDomain || (!head.includes('vfio-review:') && !/base64|quoted-printable/.test(head))) {
      setCursor.run(m.id, nowIso(), CURSOR);
      continue;
    }
    const res: CommandMailResult = { messageRowId: m.id, messageId: m.message_id, outcome: null, jobId: null, seriesId: null, error: null };
    try {
      res.outcome = await applyEmailCommands(db, m.bytes, policy);
    } catch (err) {
      res.error = reasonOf(err);
    }
    if (res.outcome?.rerun) {
      res.seriesId = seriesOfReply(db, m.in_reply_to, JSON.parse(m.refs) as string[]);
      if (res.seriesId === null) res.error = 'rerun asked, but the mail does not answer a known series or reply';
    }
    const commands = res.outcome ? res.outcome.dismissed.length + (res.outcome.rerun ? 1 : 0) + res.outcome.errors.length : 0;
    db.transaction(() => {
      if (res.seriesId !== null) {
        res.jobId = jobs.enqueue({
          kind: 'rerun',
          seriesId: res.seriesId,
          dedupKey: `rerun:${m.id}`,
          reason: `rerun asked by ${res.outcome?.from ?? 'unknown'} in <${m.message_id ?? m.id}>`,
        });
      }
      if (commands > 0 || res.error) {
        db.prepare(
          `INSERT OR IGNORE INTO command_mail (message_id, from_addr, allowed, outcome_json, job_id, read_at) VALUES (?, ?, ?, ?, ?, ?)`,
        ).run(m.id, res.outcome?.from ?? null, res.outcome?.allowed ? 1 : 0, JSON.stringify({ ...res.outcome, error: res.error }), res.jobId, nowIso());
      }
      setCursor.run(m.id, nowIso(), CURSOR);
    })();
    if (commands > 0 || res.error) out.push(res);
  }
  return out;
}
