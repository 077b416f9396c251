/**
 * Maintainer commands from GitHub, the twin of the email commands in commands.ts: `/rerun` and
 * `/dismiss <concern-id> <reason>` in comments on a tracking issue, and a dismissal label (default
 * `false-positive` or `vfio-review:dismissed`) added to one, which dismisses every concern open on
 * the lineage at that moment. Only allowed logins count; the bot's own comments never do.
 *
 * Each command is done once and answered once (docs/design.md, "GitHub commands"): the comment or
 * label event is recorded, keyed by its GitHub id, before anything happens; dismissals are applied in
 * that same transaction; a rerun is handed to the caller's callback after it; the acknowledgement is
 * counted before it is posted and carries a hidden marker, so after a crash the restart looks for the
 * marker before posting again.
 */
import { RequestError } from 'octokit';
import type { Db } from '../store/db.js';
import { nowIso } from '../store/db.js';
import { reasonOf } from '../errors.js';
import { dismissConcern, lineageConcerns } from './concerns.js';
import {
  GithubSink, MANAGED_LABELS, escapeMarkdown, inlineCode, lineageMarker, parseCommand, type GithubCommand, type GithubSinkConfig,
} from './sinks/github.js';

/** Labels that dismiss a tracking issue's open concerns when an allowed user adds them. */
export const DEFAULT_DISMISS_LABELS: readonly string[] = ['false-positive', 'vfio-review:dismissed'];

/** Where a poll can be stopped by the crash tests (`VFIO_REVIEW_PAUSE_AT`, as in crashpoint.ts). */
export type GithubCommandPoint = 'github-recorded' | 'github-applied' | 'github-ack-posted';

export type CommandSource = 'comment' | 'label';
export type CommandState = 'recorded' | 'applied' | 'acked' | 'ack-failed';

/** What the daemon (enqueue) or the CLI (check + report now) is asked to do for `/rerun`. */
export interface RerunRequest {
  /** Unique per command (`github:{repo}:comment:{id}`): an enqueue keyed by it is idempotent. */
  key: string;
  seriesId: number;
  version: number;
  lineageId: number;
  by: string;
  via: 'github';
  url: string | null;
}

export interface PollGithubOptions {
  /** The `github` block of the configuration (repo, token, allowedUsers, botLogin, baseUrl ...). */
  config: GithubSinkConfig;
  dismissLabels?: readonly string[];
  /** Runs or enqueues a rerun. Absent: `/rerun` is answered as not available here. */
  rerun?: (req: RerunRequest) => void | Promise<void>;
  /** A sink built for the same config, to share its octokit (rate-limit gate); default: a new one. */
  sink?: GithubSink;
  /** Called at each named point; the default pauses there when VFIO_REVIEW_PAUSE_AT names it. */
  onPoint?: (p: GithubCommandPoint) => void | Promise<void>;
}

/** What one command (a comment or a label event) led to. */
export interface CommandResult {
  dismissed: { concern: string; changed: boolean }[];
  rerun: { seriesId: number; version: number } | null;
  /** Malformed command lines and commands that could not be carried out, each with the reason. */
  errors: string[];
  notes: string[];
}

export interface AppliedCommand extends CommandResult {
  source: CommandSource;
  sourceId: number;
  issueNumber: number;
  lineageId: number | null;
  author: string;
  state: CommandState;
  ackUrl: string | null;
}

export interface GithubPollSummary {
  repo: string;
  /** The first poll of this repository: the cursor was placed at the newest comment and event, nothing applied. */
  started: boolean;
  comments: number;
  events: number;
  /** Commands carried out or acknowledged by this poll (including ones resumed after a crash). */
  applied: AppliedCommand[];
  acked: number;
  /** Acknowledgements found already posted (a crash after posting), not posted again. */
  alreadyAcked: number;
  ackFailures: { source: CommandSource; sourceId: number; error: string; permanent: boolean }[];
  /** Commands that were not taken: not an allowed user, not a tracking issue. */
  ignored: { source: CommandSource; sourceId: number; author: string; why: string }[];
}

interface CmdRow {
  id: number; repo: string; source: CommandSource; source_id: number; issue_number: number; lineage_id: number | null;
  author: string; url: string | null; commands_json: string; outcome_json: string | null; state: CommandState;
  ack_body: string | null; ack_attempts: number; ack_url: string | null; received_at: string;
}
interface Cursor { since: string | null; last_comment_id: number | null; last_event_id: number | null }
type CommentData = { id: number; body?: string; html_url: string; user: { login: string } | null; issue_url: string; created_at: string };
type IssueData = { number: number; body?: string | null; labels: (string | { name?: string })[]; user: { login: string } | null; pull_request?: unknown };
type EventData = { id: number; event: string; actor: { login: string } | null; label?: { name: string }; issue?: IssueData | null };

/** since= is compared with GitHub's clock and has one-second resolution: list from a little earlier. */
const SINCE_MARGIN_MS = 10 * 60_000;
const ackMarker = (source: CommandSource, id: number) => `<!-- vfio-review:ack:${source}:${id} -->`;

async function pauseAt(point: GithubCommandPoint, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (!env.VFIO_REVIEW_PAUSE_AT?.split(',').includes(point)) return;
  process.stderr.write(`vfio-review: paused at ${point}\n`);
  await new Promise<never>(() => void setInterval(() => undefined, 1 << 30));
}

/** Transient: GitHub or the network failed, or a rate limit; the acknowledgement is tried again next poll. */
function isTransient(err: unknown): boolean {
  if (!(err instanceof RequestError)) return true;
  return err.status >= 500 || err.status === 429 || (err.status === 403 && /rate limit/i.test(err.message));
}

/**
 * One poll of a repository's maintainer commands: finishes what an earlier poll left half done, then
 * takes the comments and label events that are new since the stored cursor, oldest first.
 */
export async function pollGithubCommands(db: Db, opts: PollGithubOptions): Promise<GithubPollSummary> {
  const cfg = opts.config;
  const repo = cfg.repo.toLowerCase();
  const sink = opts.sink ?? new GithubSink(cfg, db);
  const { octokit, owner, repoName } = sink;
  const point = opts.onPoint ?? ((p: GithubCommandPoint) => pauseAt(p));
  const allowed = cfg.allowedUsers ?? [];
  const dismissLabels = (opts.dismissLabels ?? DEFAULT_DISMISS_LABELS).map((l) => l.toLowerCase());
  const out: GithubPollSummary = { repo, started: false, comments: 0, events: 0, applied: [], acked: 0, alreadyAcked: 0, ackFailures: [], ignored: [] };
  let botLogin = cfg.botLogin ?? null;
  const bot = async () => (botLogin ??= (await octokit.rest.users.getAuthenticated()).data.login).toLowerCase();

  const rowById = (id: number) => db.prepare('SELECT * FROM github_commands WHERE id = ?').get(id) as CmdRow;
  const summary = (r: CmdRow): AppliedCommand => ({
    source: r.source, sourceId: r.source_id, issueNumber: r.issue_number, lineageId: r.lineage_id, author: r.author, state: r.state,
    ackUrl: r.ack_url, ...(JSON.parse(r.outcome_json ?? 'null') ?? { dismissed: [], rerun: null, errors: [], notes: [] }),
  });
  const setCursor = (c: Partial<Cursor>) => {
    const keys = Object.keys(c) as (keyof Cursor)[];
    db.prepare(`UPDATE github_command_cursors SET ${keys.map((k) => `${k} = ?`).join(', ')}, updated_at = ? WHERE repo = ?`)
      .run(...keys.map((k) => c[k] ?? null), nowIso(), repo);
  };

  /** The lineage a tracking issue belongs to: the sink's cache, else the marker of an issue it owns. */
  const lineageOf = async (issueNumber: number, given?: IssueData | null): Promise<number | null> => {
    const cached = db.prepare('SELECT lineage_id FROM github_issues WHERE repo = ? AND issue_number = ?').pluck().get(repo, issueNumber) as number | undefined;
    if (cached !== undefined) return cached;
    let issue = given ?? null;
    if (!issue) {
      try {
        issue = (await octokit.rest.issues.get({ owner, repo: repoName, issue_number: issueNumber })).data as IssueData;
      } catch (err) {
        if (err instanceof RequestError && (err.status === 404 || err.status === 410)) return null;
        throw err;
      }
    }
    if (issue.pull_request) return null;
    const labels = issue.labels.map((l) => (typeof l === 'string' ? l : (l.name ?? '')).toLowerCase());
    // As the sink decides: only people with triage access can label, so a copied marker does not count.
    if (!labels.includes(MANAGED_LABELS.tracking.name) && issue.user?.login.toLowerCase() !== (await bot())) return null;
    const m = /<!-- vfio-review:lineage:(\d+) -->/.exec(issue.body ?? '');
    return m && (issue.body ?? '').includes(lineageMarker(Number(m[1]))) ? Number(m[1]) : null;
  };

  /** Records a command and applies its dismissals, in one transaction with the cursor's advance. */
  const record = (
    src: { source: CommandSource; sourceId: number; issueNumber: number; lineageId: number; author: string; url: string | null },
    commands: GithubCommand[], errors: string[], cursor: Partial<Cursor>,
    dismissAll?: { label: string },
  ): CmdRow | null =>
    db.transaction((): CmdRow | null => {
      setCursor(cursor);
      const now = nowIso();
      const ins = db.prepare(
        `INSERT OR IGNORE INTO github_commands (repo, source, source_id, issue_number, lineage_id, author, url, commands_json,
           errors_json, state, received_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'recorded', ?, ?)`,
      ).run(repo, src.source, src.sourceId, src.issueNumber, src.lineageId, src.author, src.url, JSON.stringify(commands), JSON.stringify(errors), now, now);
      if (ins.changes === 0) return null; // seen before (a listing overlaps the previous one)
      const result: CommandResult = { dismissed: [], rerun: null, errors: [...errors], notes: [] };
      const dismiss = (concern: string, why: string) => {
        const home = db.prepare('SELECT lineage_id FROM concerns WHERE public_id = ?').pluck().get(concern) as number | undefined;
        if (home === undefined) return void result.errors.push(`/dismiss ${concern}: no such concern`);
        if (home !== src.lineageId) return void result.errors.push(`/dismiss ${concern}: not a concern of this series (see its own tracking issue)`);
        try {
          result.dismissed.push({ concern, changed: dismissConcern(db, { id: concern, by: src.author, why, via: 'github' }).changed });
        } catch (err) {
          result.errors.push(`/dismiss ${concern}: ${reasonOf(err)}`);
        }
      };
      for (const c of commands) if (c.kind === 'dismiss') dismiss(c.concern, c.reason);
      if (dismissAll) {
        const open = lineageConcerns(db, src.lineageId).filter((c) => c.state === 'new' || c.state === 'open');
        for (const c of open) dismiss(c.id, `label "${dismissAll.label}" added to the tracking issue`);
        result.notes.push(open.length === 0
          ? `label "${dismissAll.label}": no open concern to dismiss`
          : `label "${dismissAll.label}": the concerns open now are dismissed; ones found in later versions are not (add the label again, or /dismiss them)`);
      }
      const rowId = Number(ins.lastInsertRowid);
      db.prepare('UPDATE github_commands SET outcome_json = ? WHERE id = ?').run(JSON.stringify(result), rowId);
      if (!commands.some((c) => c.kind === 'rerun')) finish(rowId, result);
      return rowById(rowId);
    }).immediate();

  /** The command is done: the outcome and the acknowledgement to post are stored together. */
  const finish = (rowId: number, result: CommandResult) => {
    const r = rowById(rowId);
    db.prepare(`UPDATE github_commands SET state = 'applied', outcome_json = ?, ack_body = ?, applied_at = ?, updated_at = ? WHERE id = ?`)
      .run(JSON.stringify(result), renderAck(r, JSON.parse(r.commands_json) as GithubCommand[], result), nowIso(), nowIso(), rowId);
  };

  /** A recorded `/rerun`: the latest version of the lineage goes to the caller. At least once; keyed for dedup. */
  const runRerun = async (r: CmdRow) => {
    const result = JSON.parse(r.outcome_json!) as CommandResult;
    const latest = db
      .prepare('SELECT id, version FROM series WHERE lineage_id = ? ORDER BY version DESC, first_date DESC, id DESC LIMIT 1')
      .get(r.lineage_id) as { id: number; version: number } | undefined;
    if (!latest) result.errors.push('/rerun: no version of this series is stored');
    else if (!opts.rerun) result.errors.push('/rerun: reruns are not available from this poller (run the daemon)');
    else {
      try {
        await opts.rerun({ key: `github:${repo}:${r.source}:${r.source_id}`, seriesId: latest.id, version: latest.version,
          lineageId: r.lineage_id!, by: r.author, via: 'github', url: r.url });
        result.rerun = { seriesId: latest.id, version: latest.version };
      } catch (err) {
        result.errors.push(`/rerun: ${reasonOf(err)}`);
      }
    }
    db.transaction(() => finish(r.id, result)).immediate();
  };

  /** Posts the acknowledgement once: counted before the POST, the marker looked for after an unfinished attempt. */
  const acknowledge = async (r: CmdRow) => {
    const marker = ackMarker(r.source, r.source_id);
    const done = (id: number, url: string) =>
      db.prepare(
        `UPDATE github_commands SET state = 'acked', ack_comment_id = ?, ack_url = ?, acked_at = ?, last_error = NULL, updated_at = ?
         WHERE id = ?`,
      ).run(id, url, nowIso(), nowIso(), r.id);
    let posted: { id: number; html_url: string };
    try {
      if (r.ack_attempts > 0) {
        const since = new Date(Date.parse(r.received_at) - SINCE_MARGIN_MS).toISOString();
        const me = await bot();
        const all = (await octokit.paginate(octokit.rest.issues.listComments, {
          owner, repo: repoName, issue_number: r.issue_number, since, per_page: 100,
        })) as CommentData[];
        const found = all.find((c) => c.user?.login.toLowerCase() === me && (c.body ?? '').includes(marker));
        if (found) {
          done(found.id, found.html_url);
          out.alreadyAcked++;
          return;
        }
      }
      db.prepare('UPDATE github_commands SET ack_attempts = ack_attempts + 1, updated_at = ? WHERE id = ?').run(nowIso(), r.id);
      // POST is not idempotent: no blind retry; the next poll looks for the marker first.
      posted = (await octokit.rest.issues.createComment({
        owner, repo: repoName, issue_number: r.issue_number, body: r.ack_body!, request: { retries: 0 },
      })).data;
    } catch (err) {
      const permanent = !isTransient(err);
      db.prepare(`UPDATE github_commands SET last_error = ?, state = ?, updated_at = ? WHERE id = ?`)
        .run(reasonOf(err).slice(0, 2000), permanent ? 'ack-failed' : 'applied', nowIso(), r.id);
      out.ackFailures.push({ source: r.source, sourceId: r.source_id, error: reasonOf(err), permanent });
      return;
    }
    await point('github-ack-posted');
    done(posted.id, posted.html_url);
    out.acked++;
  };

  /** Takes a freshly recorded (or resumed) command to the end. */
  const carryOut = async (r: CmdRow) => {
    if (r.state === 'recorded') {
      await point('github-recorded');
      await runRerun(r);
      r = rowById(r.id);
    }
    if (r.state === 'applied') {
      await point('github-applied');
      await acknowledge(r);
    }
    out.applied.push(summary(rowById(r.id)));
  };

  // 1. What an earlier poll left half done.
  const unfinished = db.prepare(`SELECT * FROM github_commands WHERE repo = ? AND state IN ('recorded', 'applied') ORDER BY id`).all(repo) as CmdRow[];
  for (const r of unfinished) await carryOut(r);

  // 2. The cursor; the first poll only places it.
  const cursor = db.prepare('SELECT since, last_comment_id, last_event_id FROM github_command_cursors WHERE repo = ?').get(repo) as Cursor | undefined;
  if (!cursor || cursor.last_comment_id === null || cursor.last_event_id === null) {
    const newest = (await octokit.rest.issues.listCommentsForRepo({ owner, repo: repoName, sort: 'created', direction: 'desc', per_page: 1 })).data[0];
    const event = (await octokit.rest.issues.listEventsForRepo({ owner, repo: repoName, per_page: 1 })).data[0];
    db.prepare(
      `INSERT INTO github_command_cursors (repo, since, last_comment_id, last_event_id, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (repo) DO UPDATE SET since = excluded.since, last_comment_id = excluded.last_comment_id,
         last_event_id = excluded.last_event_id, updated_at = excluded.updated_at`,
    ).run(repo, newest?.created_at ?? null, newest?.id ?? 0, event?.id ?? 0, nowIso());
    out.started = true;
    return out;
  }

  // 3. New comments, oldest first.
  const since = cursor.since ? new Date(Date.parse(cursor.since) - SINCE_MARGIN_MS).toISOString() : undefined;
  const comments = ((await octokit.paginate(octokit.rest.issues.listCommentsForRepo, {
    owner, repo: repoName, sort: 'created', direction: 'asc', per_page: 100, ...(since ? { since } : {}),
  })) as CommentData[]).filter((c) => c.id > cursor.last_comment_id!).sort((a, b) => a.id - b.id);
  const me = comments.length > 0 ? await bot() : '';
  for (const c of comments) {
    out.comments++;
    const advance: Partial<Cursor> = { since: c.created_at, last_comment_id: c.id };
    const author = c.user?.login ?? '';
    const body = c.body ?? '';
    const parsed = parseCommand(body, author, allowed);
    const looksLike = parseCommand(body, author, [author]);
    const issueNumber = Number(/\/issues\/(\d+)$/.exec(c.issue_url)?.[1]);
    const skip = (why: string | null) => {
      setCursor(advance);
      if (why) out.ignored.push({ source: 'comment', sourceId: c.id, author, why });
    };
    if (!author || author.toLowerCase() === me || body.includes('<!-- vfio-review:')) { skip(null); continue; }
    if (looksLike.commands.length === 0 && looksLike.errors.length === 0) { skip(null); continue; }
    if (!parsed.allowed) { skip('not an allowed user'); continue; }
    const lineageId = Number.isInteger(issueNumber) ? await lineageOf(issueNumber) : null;
    if (lineageId === null) { skip('not a tracking issue'); continue; }
    const r = record({ source: 'comment', sourceId: c.id, issueNumber, lineageId, author, url: c.html_url }, parsed.commands, parsed.errors, advance);
    if (r) await carryOut(r);
  }

  // 4. New label events (GitHub lists them newest first, without since=).
  const fresh: EventData[] = [];
  await octokit.paginate(octokit.rest.issues.listEventsForRepo, { owner, repo: repoName, per_page: 100 }, (res, stop) => {
    for (const e of res.data as EventData[]) {
      if (e.id > cursor.last_event_id!) fresh.push(e);
      else stop();
    }
    return [];
  });
  for (const e of fresh.sort((a, b) => a.id - b.id)) {
    out.events++;
    const advance: Partial<Cursor> = { last_event_id: e.id };
    const author = e.actor?.login ?? '';
    const label = e.label?.name ?? '';
    const issue = e.issue ?? null;
    if (e.event !== 'labeled' || !dismissLabels.includes(label.toLowerCase()) || !issue || author.toLowerCase() === (await bot())) {
      setCursor(advance);
      continue;
    }
    const ok = allowed.some((u) => u.toLowerCase() === author.toLowerCase());
    const lineageId = ok ? await lineageOf(issue.number, issue) : null;
    if (lineageId === null) {
      setCursor(advance);
      out.ignored.push({ source: 'label', sourceId: e.id, author, why: ok ? 'not a tracking issue' : 'not an allowed user' });
      continue;
    }
    const r = record({ source: 'label', sourceId: e.id, issueNumber: issue.number, lineageId, author, url: null }, [], [], advance, { label });
    if (r) await carryOut(r);
  }
  return out;
}

/** The acknowledgement comment: what each command did, in the order written. Mail-derived text is escaped. */
function renderAck(r: CmdRow, commands: GithubCommand[], result: CommandResult): string {
  const lines: string[] = [ackMarker(r.source, r.source_id)];
  const who = inlineCode(r.author);
  lines.push(r.source === 'comment' && r.url
    ? `**vfio-review** · commands in [this comment](${encodeURI(r.url)}) by ${who}:`
    : `**vfio-review** · dismissal label added by ${who}:`, '');
  for (const d of result.dismissed) {
    const cmd = commands.find((c): c is Extract<GithubCommand, { kind: 'dismiss' }> => c.kind === 'dismiss' && c.concern === d.concern);
    const what = d.changed ? 'dismissed for the whole series lineage; it will not be raised again' : 'already dismissed; nothing changed';
    const why = cmd && d.changed ? ` (reason: ${escapeMarkdown(cmd.reason)})` : '';
    lines.push(`- ${inlineCode(cmd ? `/dismiss ${d.concern}` : d.concern)}: ${what}${why}.`);
  }
  if (result.rerun) {
    lines.push(`- ${inlineCode('/rerun')}: v${result.rerun.version} is being reviewed again; its comment here is edited when the review changes.`);
  }
  for (const n of result.notes) lines.push(`- ${escapeMarkdown(n)}.`);
  for (const e of result.errors) lines.push(`- not done: ${escapeMarkdown(e)}`);
  if (result.errors.length > 0) {
    lines.push('', 'Commands, each alone on a line of a new comment: `/rerun`, `/dismiss <12-hex concern id> <reason>`. ' +
      'Edited comments are not read again.');
  }
  if (result.dismissed.some((d) => d.changed)) lines.push('', "The issue's list of open concerns is updated with the next review.");
  return lines.join('\n') + '\n';
}
