import { parseCli } from './args.js';
import { openDb } from '../store/db.js';
import { VrError } from '../errors.js';
import { msgIdFromUserInput } from '../mail/msgid.js';
import { threadOf } from '../series/threads.js';
import { listSeries, seriesOfMessage } from '../series/query.js';

/** Terminal output of mail content: no control characters reach the terminal. */
function clean(s: string | null): string {
  return (s ?? '').replace(/[\x00-\x08\x0b-\x1f\x7f\x9b]/g, '?');
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli(argv, {}, true);
  const input = positionals[0];
  if (!input) throw new VrError('USAGE', 'usage: vfio-review show <message-id>');
  const msgid = msgIdFromUserInput(input);
  const db = openDb(values.db);
  try {
    const msgs = db
      .prepare(
        `SELECT id, ident, message_id, msgid_state, parse_state, parse_error, subject, from_name, from_addr,
                date_unix, kind, version, counter, total, has_diff, touched_paths
         FROM messages WHERE message_id = ? OR ident = ? ORDER BY id`,
      )
      .all(msgid, msgid) as Record<string, unknown>[];
    if (msgs.length === 0) throw new VrError('NOT_FOUND', `no message <${msgid}> in the store`);
    const sources = db.prepare(
      'SELECT s.kind, s.name, ms.locator, ms.list_id FROM message_sources ms JOIN sources s ON s.id = ms.source_id WHERE ms.message_id = ?',
    );
    const thread = threadOf(db, msgid);
    const series = msgs
      .map((m) => seriesOfMessage(db, m.id as number))
      .filter((x): x is { seriesId: number; counter: number } => x !== null);
    const seriesViews = listSeries(db, { all: true, ids: series.map((s) => s.seriesId) });
    if (values.json) {
      const out = { messages: msgs.map((m) => ({ ...m, sources: sources.all(m.id) })), thread, series: seriesViews };
      process.stdout.write(JSON.stringify(out, null, 1) + '\n');
      return 0;
    }
    for (const m of msgs) {
      process.stdout.write(`Message-ID: <${clean(m.message_id as string)}> (${m.msgid_state as string})\n`);
      process.stdout.write(`Subject:    ${clean(m.subject as string)}\n`);
      process.stdout.write(`From:       ${clean(m.from_name as string)} <${clean(m.from_addr as string)}>\n`);
      if (m.date_unix) process.stdout.write(`Date:       ${new Date((m.date_unix as number) * 1000).toISOString()}\n`);
      process.stdout.write(`Kind:       ${m.kind as string}${m.has_diff ? ' (has a diff)' : ''}; parse ${m.parse_state as string}${m.parse_error ? `: ${clean(m.parse_error as string)}` : ''}\n`);
      for (const s of sources.all(m.id) as { kind: string; name: string; locator: string; list_id: string | null }[]) {
        process.stdout.write(`Seen in:    ${s.kind} ${clean(s.name)} ${clean(s.locator)}${s.list_id ? ` (${clean(s.list_id)})` : ''}\n`);
      }
    }
    if (thread) {
      process.stdout.write(`\nThread (${thread.nodes.length} nodes):\n`);
      const subj = db.prepare('SELECT subject FROM messages WHERE message_id = ? LIMIT 1').pluck();
      for (const n of thread.nodes.slice(0, 500)) {
        const s = n.ghost ? '(not archived)' : clean(subj.get(n.msgid) as string);
        process.stdout.write(`${'  '.repeat(Math.min(n.depth, 20))}${n.msgid === msgid ? '*' : '-'} ${s} <${clean(n.msgid)}>\n`);
      }
    }
    for (const s of seriesViews) {
      process.stdout.write(`\nSeries ${s.id}: v${s.version} ${s.complete ? 'complete' : `incomplete (missing ${s.missing.join(', ')})`}, lineage ${s.lineage}\n  ${clean(s.subject)}\n`);
      if (s.cover) process.stdout.write(`  0: <${clean(s.cover)}>\n`);
      s.patches.forEach((p, i) => process.stdout.write(`  ${i + 1}: ${p ? `<${clean(p)}>` : '(missing)'}\n`));
    }
    return 0;
  } finally {
    db.close();
  }
}
