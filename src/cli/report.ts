import { resolve } from 'node:path';
import { parseCli } from './args.js';
import { openDb, type Db } from '../store/db.js';
import { loadConfig, type Config, type GithubConfig } from '../config/load.js';
import { VrError } from '../errors.js';
import { checkSeries } from '../check/check.js';
import { checkedSeries, makeSink, runReport } from '../report/report.js';
import { GithubSink } from '../report/sinks/github.js';
import { pollGithubCommands, type GithubPollSummary, type RerunRequest } from '../report/github-commands.js';
import { SINK_NAMES, type SinkName } from '../report/types.js';

const USAGE =
  'usage: vfio-review report [--series ID ... | --all] [--sink stdout|email|drafts|github] [--dry-run] [--db PATH] [--config FILE] [--json]\n' +
  '       vfio-review report --poll-github [--db PATH] [--config FILE] [--json]';

/**
 * `vfio-review report`: renders replies for checked series into the outbox and delivers what is due
 * (earlier retries included). Without --series: every relevant checked series; --all adds the rest.
 * Replies already decided are not decided again, so running it twice sends once.
 */
export async function run(argv: string[]): Promise<number> {
  const { values } = parseCli(argv, {
    series: { type: 'string', multiple: true },
    all: { type: 'boolean' },
    sink: { type: 'string' },
    'dry-run': { type: 'boolean' },
    config: { type: 'string' },
    'poll-github': { type: 'boolean' },
  });
  if (values.series && values.all) throw new VrError('USAGE', `give --series or --all, not both\n${USAGE}`);
  const config = loadConfig({ file: values.config });
  if (values['poll-github']) {
    if (values.series || values.all || values.sink || values['dry-run']) throw new VrError('USAGE', `--poll-github takes no other report options\n${USAGE}`);
    return pollGithub(config, values.db ?? config.db, values.json ?? false);
  }
  const policy = config.report;
  const sinkName = (values.sink ?? policy.defaultSink) as SinkName;
  if (!SINK_NAMES.includes(sinkName)) throw new VrError('USAGE', `unknown sink '${sinkName}'\n${USAGE}`);
  const ids = values.series?.map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n <= 0) throw new VrError('USAGE', `--series takes a series id, not '${s}'`);
    return n;
  });
  const db = openDb(values.db ?? config.db);
  const sink = makeSink(sinkName, policy, { github: { config: config.github, db } });
  try {
    const r = await runReport(db, { seriesIds: ids ?? checkedSeries(db, { all: values.all ?? false }), sink, policy, dryRun: values['dry-run'] ?? false });
    if (values.json) {
      process.stdout.write(JSON.stringify(r, null, 1) + '\n');
    } else {
      const err = process.stderr;
      for (const s of r.series) {
        const what = s.skipped ? `skipped: ${s.skipped}` : `${s.decided} repl${s.decided === 1 ? 'y' : 'ies'} decided, ${s.updated} updated`;
        err.write(`series ${s.seriesId}: ${what}\n`);
        for (const n of s.notes) err.write(`    ${n}\n`);
      }
      const d = r.delivery;
      if (d) err.write(`${sinkName}: sent ${d.sent}, already there ${d.alreadyThere}, retrying ${d.retrying}, waiting ${d.waiting}, failed ${d.failed}\n`);
    }
    return r.delivery && r.delivery.failed > 0 ? 1 : 0;
  } finally {
    await sink.close?.();
    db.close();
  }
}

/**
 * `report --poll-github`: one poll of the tracking issues' commands by hand (the daemon polls on its
 * own). A `/rerun` is done right here when a tree is configured: check the latest version, then report
 * it through the GitHub sink, which edits the version's comment; without a tree it is answered as not
 * possible.
 */
async function pollGithub(config: Config, dbPath: string, json: boolean): Promise<number> {
  const gh: GithubConfig | null = config.github;
  if (!gh) throw new VrError('CONFIG_INVALID', 'polling GitHub needs a github section in the configuration and VFIO_REVIEW_GITHUB_TOKEN');
  const db = openDb(dbPath);
  const sink = new GithubSink(gh, db);
  try {
    const rerun = config.apply.tree ? directRerun(db, config, sink, config.apply.tree) : undefined;
    const s = await pollGithubCommands(db, { config: gh, dismissLabels: gh.dismissLabels, sink, ...(rerun ? { rerun } : {}) });
    if (json) process.stdout.write(JSON.stringify(s, null, 1) + '\n');
    else process.stderr.write(describePoll(s));
    return s.ackFailures.length > 0 ? 1 : 0;
  } finally {
    await sink.close();
    db.close();
  }
}

function directRerun(db: Db, config: Config, sink: GithubSink, tree: string) {
  return async (req: RerunRequest): Promise<void> => {
    await checkSeries(db, req.seriesId, { tree: resolve(tree), baseMap: config.apply.baseMap, trigger: 'rerun' });
    await runReport(db, { seriesIds: [req.seriesId], sink, policy: config.report });
  };
}

function describePoll(s: GithubPollSummary): string {
  const lines: string[] = [];
  if (s.started) lines.push(`${s.repo}: first poll; commands are read from now on`);
  for (const a of s.applied) {
    const what = [
      ...a.dismissed.map((d) => `dismissed ${d.concern}${d.changed ? '' : ' (already)'}`),
      ...(a.rerun ? [`rerun of v${a.rerun.version} (series ${a.rerun.seriesId})`] : []),
      ...a.notes,
      ...a.errors.map((e) => `not done: ${e}`),
    ];
    lines.push(`${a.source} ${a.sourceId} on #${a.issueNumber} by ${a.author}: ${what.join('; ') || 'nothing'} [${a.state}${a.ackUrl ? ` ${a.ackUrl}` : ''}]`);
  }
  for (const i of s.ignored) lines.push(`${i.source} ${i.sourceId} by ${i.author}: ignored (${i.why})`);
  for (const f of s.ackFailures) lines.push(`${f.source} ${f.sourceId}: acknowledgement ${f.permanent ? 'failed' : 'will be retried'}: ${f.error}`);
  lines.push(`${s.repo}: ${s.comments} new comments, ${s.events} new issue events, ${s.applied.length} commands, ${s.acked} acknowledged` +
    (s.alreadyAcked ? `, ${s.alreadyAcked} found already acknowledged` : ''));
  return lines.join('\n') + '\n';
}
