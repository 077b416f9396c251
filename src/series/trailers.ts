import type { Db } from '../store/db.js';
import { isStableCc, parseReplyTrailers, parseTrailers, type Trailer } from '../mail/trailers.js';

/** The trailers this project tracks (Cc only when it is a stable tag). */
function tracked(t: Trailer): boolean {
  if (t.name === 'Cc') return isStableCc(t);
  return ['Acked-by', 'Reviewed-by', 'Tested-by', 'Reported-by', 'Suggested-by', 'Fixes'].includes(t.name);
}

/**
 * Rebuilds the trailers table: those written in each patch, and those given
 * in replies, attributed to the exact series version and patch the reply
 * (directly or through a sub-thread) answers. Counter 0 means the cover,
 * i.e. the whole series.
 */
export function collectTrailers(db: Db): void {
  db.exec('DELETE FROM trailers');
  const ins = db.prepare(
    'INSERT OR IGNORE INTO trailers (series_id, counter, source_msg, name, value, origin) VALUES (?, ?, ?, ?, ?, ?)',
  );
  const member = new Map<string, { series: number; counter: number }>();
  const rows = db
    .prepare(
      `SELECT sp.series_id, sp.counter, m.id, m.message_id, m.commit_msg FROM series_patches sp
       JOIN messages m ON m.id = sp.message_id`,
    )
    .all() as { series_id: number; counter: number; id: number; message_id: string | null; commit_msg: string | null }[];
  for (const r of rows) {
    if (r.message_id && !member.has(r.message_id)) member.set(r.message_id, { series: r.series_id, counter: r.counter });
    if (r.commit_msg) {
      for (const t of parseTrailers(r.commit_msg)) if (tracked(t)) ins.run(r.series_id, r.counter, r.id, t.name, t.value, 'patch');
    }
  }
  const parentOf = db.prepare('SELECT parent FROM thread_nodes WHERE msgid = ?').pluck();
  const replies = db
    .prepare(
      `SELECT id, message_id, in_reply_to, body_text FROM messages
       WHERE parse_state = 'parsed' AND kind IN ('reply', 'other') AND body_text IS NOT NULL AND in_reply_to IS NOT NULL`,
    )
    .all() as { id: number; message_id: string | null; in_reply_to: string; body_text: string }[];
  for (const r of replies) {
    const found = parseReplyTrailers(r.body_text).filter(tracked);
    if (found.length === 0) continue;
    let cur: string | null = r.in_reply_to;
    for (let depth = 0; cur && depth < 200; depth++) {
      const hit = member.get(cur);
      if (hit) {
        for (const t of found) ins.run(hit.series, hit.counter, r.id, t.name, t.value, 'reply');
        break;
      }
      cur = (parentOf.get(cur) as string | null | undefined) ?? null;
    }
  }
}
