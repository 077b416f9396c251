import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { measure, table } from './measure.js';
import { ensureSystemPackages } from '../util/system-packages.js';

const BIN = fileURLToPath(new URL('../cli/bin.js', import.meta.url));

/**
 * `bench ingest`: our ingest (store, parse, thread, series) against
 * public-inbox (import into a v2 inbox, then public-inbox-index) on one mbox.
 */
export async function benchIngest(mbox: string, opts: { messages?: number } = {}): Promise<string> {
  if (!existsSync(mbox)) throw new Error(`no such mbox: ${mbox}`);
  await ensureSystemPackages(['public-inbox']);
  const dir = mkdtempSync(join(tmpdir(), 'vr-bench-ingest-'));
  try {
    const ours = await measure(process.execPath, [BIN, 'ingest', '--mbox', mbox, '--db', join(dir, 'vr.db'), '--json']);
    if (ours.status !== 0) throw new Error(`vfio-review ingest failed: ${ours.stderr}`);
    const summary = JSON.parse(ours.stdout.trim().split('\n').pop()!) as { seen: number };
    const n = opts.messages ?? summary.seen;

    // public-inbox, in a private HOME/PI_CONFIG so nothing outside the temp dir is touched.
    const env = { PATH: process.env.PATH, HOME: dir, PI_CONFIG: join(dir, 'pi-config'), PI_EMERGENCY: join(dir, 'emergency'), LANG: 'C' };
    const inbox = join(dir, 'inbox');
    const init = await measure('public-inbox-init', ['-V2', '-L', 'basic', 'bench', inbox, 'http://127.0.0.1/bench', 'bench@example.org'], { env });
    if (init.status !== 0) throw new Error(`public-inbox-init failed: ${init.stderr}`);
    writeFileSync(join(dir, 'gitconfig'), '');
    await measure('git', ['config', '-f', env.PI_CONFIG, 'publicinboxmda.spamcheck', 'none'], { env });
    // import_mbox is the API public-inbox's own import scripts use; it reads gzip through a pipe here.
    const imp = await measure(
      'sh',
      ['-c', `zcat -f "$1" | perl -MPublicInbox::Config -MPublicInbox::InboxWritable -e 'my $i = PublicInbox::Config->new->lookup_name("bench") or die; PublicInbox::InboxWritable->new($i)->import_mbox(\\*STDIN, "mboxrd");'`, 'sh', mbox],
      { env },
    );
    if (imp.status !== 0) throw new Error(`public-inbox import failed: ${imp.stderr.slice(0, 2000)}`);
    // A v2 import indexes as it goes; --reindex makes public-inbox-index redo the whole index from its git.
    const idx = await measure('public-inbox-index', ['--reindex', inbox], { env });
    if (idx.status !== 0) throw new Error(`public-inbox-index failed: ${idx.stderr.slice(0, 2000)}`);

    const rate = (s: number): number => n / s;
    const ratio = (peer: number, us: number): string => (peer >= us ? `${(peer / us).toFixed(2)}x slower` : `${(us / peer).toFixed(2)}x faster`);

    return [
      `ingest: ${mbox} (${n} messages)`,
      table(
        ['tool', 'seconds', 'messages/s', 'peak RSS MB', 'vs vfio-review'],
        [
          ['vfio-review ingest (store+parse+thread+series)', ours.seconds, rate(ours.seconds), ours.maxRssMb, '1.00'],
          ['public-inbox import_mbox (v2: git + index)', imp.seconds, rate(imp.seconds), imp.maxRssMb, ratio(imp.seconds, ours.seconds)],
          ['public-inbox-index --reindex', idx.seconds, rate(idx.seconds), idx.maxRssMb, ratio(idx.seconds, ours.seconds)],
        ],
      ),
    ].join('\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
