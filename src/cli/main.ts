import { VrError } from '../errors.js';

type Command = (argv: string[]) => Promise<number>;

/** Subcommand table; each lives in its own file and is loaded on demand. */
const COMMANDS: Record<string, { summary: string; load: () => Promise<Command> }> = {
  ingest: { summary: 'read mail from an mbox, a Maildir or IMAP into the store', load: async () => (await import('./ingest.js')).run },
  series: { summary: 'list series versions (--json)', load: async () => (await import('./series.js')).run },
  stats: { summary: 'counts of messages, threads, series, patches, parse errors', load: async () => (await import('./stats.js')).run },
  demo: { summary: 'run the pipeline on the bundled example (npm start)', load: async () => (await import('./demo.js')).run },
  bench: { summary: 'benchmarks side by side with peer tools (ingest)', load: async () => (await import('./bench.js')).run },
  check: { summary: 'apply and review every relevant series in an mbox (--json)', load: async () => (await import('./check.js')).run },
  rerun: { summary: 're-check the series a Message-ID belongs to', load: async () => (await import('./rerun.js')).run },
  tree: { summary: 'tree init --from-debian linux-source-6.1 DIR', load: async () => (await import('./tree.js')).run },
  eval: { summary: 'review quality on the real corpus (npm run eval)', load: async () => (await import('./eval.js')).run },
  report: { summary: 'render replies for checked series into the outbox and deliver them (--sink stdout|email|drafts, --dry-run)', load: async () => (await import('./report.js')).run },
  serve: { summary: 'the dashboard of open concerns on 127.0.0.1 (VFIO_REVIEW_WEB_TOKEN enables actions)', load: async () => (await import('./serve.js')).run },
  sim: { summary: 'run a curated concurrency scenario (--scenario ID [--tree DIR] [--json] | --list)', load: async () => (await import('./sim.js')).run },
  run: { summary: 'the daemon: IMAP IDLE -> ingest -> job queue -> check -> report (--config FILE)', load: async () => (await import('./run.js')).run },
  status: { summary: 'health of a running or stopped daemon: queue depth, last ingest, last errors (--json)', load: async () => (await import('./status.js')).run },
  fuzz: { summary: 'malformed-mail and malformed-patch campaign (npm run fuzz; --cases N --seed S)', load: async () => (await import('./fuzz.js')).run },
  show: { summary: 'a message, its thread and its series', load: async () => (await import('./show.js')).run },
};

function usage(): string {
  const lines = ['usage: vfio-review <command> [options]', '', 'commands:'];
  for (const [name, c] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(10)} ${c.summary}`);
  lines.push('', 'Every command takes --db PATH (default ./vfio-review.db).');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name ? 0 : 2;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`vfio-review: unknown command '${name}'\n${usage()}\n`);
    return 2;
  }
  try {
    return await (await cmd.load())(rest);
  } catch (err) {
    if (err instanceof VrError) {
      process.stderr.write(`vfio-review ${name}: ${err.code}: ${err.message}\n`);
      return err.code === 'USAGE' ? 2 : 1;
    }
    throw err;
  }
}
