import { resolve } from 'node:path';
import { parseCli } from './args.js';
import { Progress } from './progress.js';
import { openDb } from '../store/db.js';
import { Ingestor, type IngestSummary } from '../ingest/ingest.js';
import { readMbox } from '../ingest/mbox-source.js';
import { readMaildir } from '../ingest/maildir-source.js';
import { VrError } from '../errors.js';
import { loadConfig } from '../config/load.js';

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCli(argv, {
    mbox: { type: 'string', multiple: true },
    maildir: { type: 'string', multiple: true },
    imap: { type: 'boolean' },
    config: { type: 'string' },
  });
  const mboxes = values.mbox ?? [];
  const maildirs = values.maildir ?? [];
  if (!mboxes.length && !maildirs.length && !values.imap) {
    throw new VrError('USAGE', 'give --mbox FILE, --maildir DIR or --imap');
  }
  const config = loadConfig({ file: values.config });
  const db = openDb(values.db ?? config.db);
  try {
    const ing = new Ingestor(db, { batch: 1000, relevance: config.relevance });
    const started = Date.now();
    const progress = new Progress('ingest');
    for (const file of mboxes) {
      const id = ing.sourceId('mbox', resolve(file));
      await ing.addStream(id, readMbox(file), () => progress.tick(ing.counts.seen, undefined, file));
    }
    for (const dir of maildirs) {
      const id = ing.sourceId('maildir', resolve(dir));
      await ing.addStream(id, readMaildir(dir), () => progress.tick(ing.counts.seen, undefined, dir));
    }
    if (values.imap) {
      const { ImapSource } = await import('../ingest/imap-source.js');
      if (!config.imap) throw new VrError('CONFIG_INVALID', 'no imap section in the configuration');
      const src = new ImapSource(db, config.imap);
      try {
        await src.syncOnce(ing);
      } finally {
        await src.close();
      }
    }
    progress.done();
    const summary: IngestSummary & { seconds: number } = { ...ing.finish(), seconds: (Date.now() - started) / 1000 };
    if (values.json) process.stdout.write(JSON.stringify(summary) + '\n');
    else {
      process.stdout.write(
        `ingested ${summary.seen} messages in ${summary.seconds.toFixed(1)} s: ${summary.new} new, ` +
          `${summary.newCopy} copies of known messages, ${summary.duplicate} duplicates, ${summary.failed} failed to parse; ` +
          `${summary.threads} threads, ${summary.series} series (${summary.complete} complete, ${summary.relevant} relevant)\n`,
      );
    }
    return 0;
  } finally {
    db.close();
  }
}
