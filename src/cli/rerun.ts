import { resolve } from 'node:path';
import { parseCli } from './args.js';
import { openDb } from '../store/db.js';
import { loadConfig } from '../config/load.js';
import { checkSeries } from '../check/check.js';
import { msgIdFromUserInput } from '../mail/msgid.js';
import { VrError } from '../errors.js';
import { describe } from './check.js';
import { fetchByMessageId } from '../ingest/imap-fetch.js';
import { imapSourceName } from '../ingest/imap-source.js';
import { Ingestor } from '../ingest/ingest.js';

/** `vfio-review rerun <message-id>`: re-checks the series version that message belongs to (recorded, not posted). */
export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli(argv, { tree: { type: 'string' }, config: { type: 'string' } }, true);
  if (!positionals[0]) throw new VrError('USAGE', 'usage: vfio-review rerun <message-id> --tree DIR');
  const msgid = msgIdFromUserInput(positionals[0]);
  const config = loadConfig({ file: values.config });
  const tree = values.tree ?? config.apply.tree;
  if (!tree) throw new VrError('USAGE', 'give --tree DIR or apply.tree in the configuration');
  const db = openDb(values.db ?? config.db);
  try {
    // The message itself, or a reply to one of the series' messages.
    const lookup = (): number | undefined =>
      db
        .prepare(
          `SELECT sp.series_id FROM messages m JOIN series_patches sp ON sp.message_id = m.id
           WHERE m.message_id = ? OR m.ident = ? ORDER BY sp.series_id DESC LIMIT 1`,
        )
        .pluck()
        .get(msgid, msgid) as number | undefined;
    let row = lookup();
    const stored = db.prepare('SELECT 1 FROM messages WHERE message_id = ?').get(msgid) !== undefined;
    if (row === undefined && !stored) {
      // Not stored yet: fetch it from the configured mailboxes, ingest it (raw first, as always), then look again.
      const sources = [...(config.imap ? [config.imap] : []), ...config.daemon.sources.map((s) => s.imap)];
      for (const src of sources) {
        const got = await fetchByMessageId(src, msgid);
        if (!got) continue;
        const ing = new Ingestor(db, { batch: 1 });
        await ing.add(ing.sourceId('imap', `${imapSourceName(src, got.mailbox)}`), got.bytes, `${got.uidValidity}:${got.uid}`);
        ing.finish();
        process.stderr.write(`vfio-review rerun: fetched <${msgid}> from ${src.host} ${got.mailbox} (UID ${got.uid}) and stored it\n`);
        row = lookup();
        break;
      }
    }
    if (row === undefined) {
      throw new VrError(
        'NOT_FOUND',
        `<${msgid}> is not a patch or cover letter of any stored series${stored ? '' : ', and no configured mailbox holds it'} (ingest it first)`,
      );
    }
    const report = await checkSeries(db, row, { tree: resolve(tree), baseMap: config.apply.baseMap, trigger: 'rerun' });
    process.stdout.write(values.json ? JSON.stringify(report, null, 1) + '\n' : describe(report) + '\n');
    return 0;
  } finally {
    db.close();
  }
}
