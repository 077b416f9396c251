/** The query behind /health: is the bot taking mail in, checking, and getting replies out? */
import type { Db } from '../../store/db.js';

export interface Health {
  counts: {
    messages: number; parseFailed: number; series: number; relevantSeries: number; lineages: number; checks: number;
    concerns: Record<'new' | 'open' | 'resolved' | 'dismissed', number>;
  };
  lastIngest: string | null;
  lastCheck: { id: number; seriesId: number; status: string; trigger: string; finishedAt: string; error: string | null } | null;
  lastCheckError: { id: number; seriesId: number; finishedAt: string; error: string } | null;
  outbox: Record<'pending' | 'sending' | 'sent' | 'failed', number>;
  outboxBySink: { sink: string; state: string; count: number }[];
  lastSent: string | null;
  /** Whether this server takes actions (a token is configured) and can rerun checks. */
  actions: boolean;
  rerun: boolean;
}

export function health(db: Db, mode: { actions: boolean; rerun: boolean }): Health {
  const n = (sql: string): number => (db.prepare(sql).pluck().get() as number | null) ?? 0;
  const s = (sql: string): string | null => (db.prepare(sql).pluck().get() as string | null | undefined) ?? null;
  const concerns = { new: 0, open: 0, resolved: 0, dismissed: 0 };
  for (const r of db.prepare('SELECT state, count(*) AS n FROM concerns GROUP BY state').all() as { state: keyof typeof concerns; n: number }[]) {
    concerns[r.state] = r.n;
  }
  const outbox = { pending: 0, sending: 0, sent: 0, failed: 0 };
  const outboxBySink = db.prepare('SELECT sink, state, count(*) AS count FROM outbox GROUP BY sink, state ORDER BY sink, state').all() as Health['outboxBySink'];
  for (const r of outboxBySink) outbox[r.state as keyof typeof outbox] += r.count;
  const last = db
    .prepare('SELECT id, series_id AS seriesId, status, trigger, finished_at AS finishedAt, error FROM checks ORDER BY finished_at DESC, id DESC LIMIT 1')
    .get() as Health['lastCheck'] | undefined;
  const lastErr = db
    .prepare('SELECT id, series_id AS seriesId, finished_at AS finishedAt, error FROM checks WHERE error IS NOT NULL ORDER BY finished_at DESC, id DESC LIMIT 1')
    .get() as Health['lastCheckError'] | undefined;
  return {
    counts: {
      messages: n('SELECT count(*) FROM messages'),
      parseFailed: n("SELECT count(*) FROM messages WHERE parse_state = 'failed'"),
      series: n('SELECT count(*) FROM series'),
      relevantSeries: n('SELECT count(*) FROM series WHERE relevant = 1'),
      lineages: n('SELECT count(*) FROM lineages'),
      checks: n('SELECT count(*) FROM checks'),
      concerns,
    },
    // seen_at moves for a second copy of a known message too: that is still mail coming in.
    lastIngest: s('SELECT max(seen_at) FROM message_sources') ?? s('SELECT max(ingested_at) FROM messages'),
    lastCheck: last ?? null,
    lastCheckError: lastErr ?? null,
    outbox,
    outboxBySink,
    lastSent: s('SELECT max(sent_at) FROM outbox'),
    actions: mode.actions,
    rerun: mode.rerun,
  };
}
