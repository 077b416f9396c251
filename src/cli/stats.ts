import { parseCli } from './args.js';
import { openDb, type Db } from '../store/db.js';

export function stats(db: Db): Record<string, number> {
  const one = (sql: string): number => db.prepare(sql).pluck().get() as number;
  return {
    rawMessages: one('SELECT count(*) FROM raw_messages'),
    messages: one('SELECT count(*) FROM messages'),
    messageCopies: one('SELECT count(*) FROM message_sources'),
    parseErrors: one("SELECT count(*) FROM messages WHERE parse_state = 'failed'"),
    missingMessageId: one("SELECT count(*) FROM messages WHERE msgid_state = 'missing'"),
    reusedMessageId: one("SELECT count(*) FROM messages WHERE msgid_state = 'reused'"),
    threads: one('SELECT count(DISTINCT root) FROM thread_nodes'),
    ghosts: one('SELECT count(*) FROM thread_nodes WHERE ghost = 1'),
    patches: one("SELECT count(*) FROM messages WHERE kind = 'patch'"),
    covers: one("SELECT count(*) FROM messages WHERE kind = 'cover'"),
    series: one('SELECT count(*) FROM series'),
    seriesComplete: one('SELECT count(*) FROM series WHERE complete = 1'),
    seriesRelevant: one('SELECT count(*) FROM series WHERE relevant = 1'),
    lineages: one('SELECT count(*) FROM lineages'),
    trailers: one('SELECT count(*) FROM trailers'),
  };
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCli(argv, {});
  const db = openDb(values.db);
  try {
    const s = stats(db);
    if (values.json) process.stdout.write(JSON.stringify(s) + '\n');
    else for (const [k, v] of Object.entries(s)) process.stdout.write(`${k.padEnd(18)} ${v}\n`);
    return 0;
  } finally {
    db.close();
  }
}
