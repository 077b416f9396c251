/**
 * The GitHub sink: one tracking issue per series lineage in a configured repository, a comment per
 * reply (a version's review, follow-up, apply failure; a rerun edits the comment it re-renders), labels
 * kept in sync, and the `/rerun` and `/dismiss` commands maintainers write in comments.
 *
 * Exactly once without trusting local state: every issue carries `<!-- vfio-review:lineage:{id} -->`
 * and every comment `<!-- vfio-review:{idempotency key} -->`. The local tables (migrations/0004_github.sql) are
 * only a cache of where those live; when they are lost, or a crash came between GitHub accepting a
 * creation and the cache being written, the markers are found again by listing the `vfio-review`
 * labelled issues and the issue's comments, so nothing is ever created twice. Creations (POST) are
 * never blindly retried either: after a 5xx or a dropped connection the marker is looked for first,
 * because GitHub may have done the work and lost only the answer.
 *
 * Rate limits: octokit's throttling plugin retries a bounded number of times on primary and secondary
 * limits; a gate in front of fetch additionally honours `x-ratelimit-remaining: 0` +
 * `x-ratelimit-reset` (also on secondary limits, which the plugin would otherwise treat as "retry after
 * 60 s"), and spaces mutating requests (GitHub asks for at least a second between them). Waits longer
 * than `maxRateLimitWaitMs` are not slept through: the delivery fails as transient and the outbox
 * tries again later.
 *
 * Markdown: everything that comes from mail (subjects, titles, finding messages, file and function
 * names, the plain-text reply) is fenced, put in code spans, or escaped, with GitHub's @mentions and
 * #references defused; no raw HTML from mail passes.
 */
import { Octokit, RequestError } from 'octokit';
import type { Db } from '../../store/db.js';
import { VrError } from '../../errors.js';
import type { ConcernRef, DeliverResult, OutboxRow, Sink } from '../types.js';

/* ------------------------------------------------------------------------------------------------ */
/* Configuration                                                                                    */
/* ------------------------------------------------------------------------------------------------ */

/** The environment variable that holds the token (a fine-grained PAT with Issues: read and write). */
export const GITHUB_TOKEN_ENV = 'VFIO_REVIEW_GITHUB_TOKEN';

export interface GithubSinkConfig {
  /** "owner/name" of the repository that holds the tracking issues. */
  repo: string;
  /** The token (from GITHUB_TOKEN_ENV; never in the config file). */
  token: string;
  /** REST API root. Default https://api.github.com (GitHub Enterprise: https://HOST/api/v3). */
  baseUrl?: string;
  /** GitHub logins whose `/rerun` and `/dismiss` comments count (case-insensitive). */
  allowedUsers?: string[];
  /** The bot's own login; asked from GET /user when absent. Only its comments count as its markers. */
  botLogin?: string;
  /** Shown in the tracking issue's footer. */
  dashboardUrl?: string;
  /** Retries of a failed request (5xx, network) before the delivery fails as transient. Default 3. */
  retries?: number;
  /** Retries after a primary or secondary rate limit before the delivery fails as transient. Default 2. */
  rateLimitRetries?: number;
  /** Longest wait a rate limit may impose inside one delivery; beyond it the delivery fails as transient. Default 120 000. */
  maxRateLimitWaitMs?: number;
  /** Milliseconds per second of GitHub's retry-after / reset arithmetic and the backoff unit. Default 1000 (tests make it tiny). */
  timeUnitMs?: number;
  /** Minimum spacing of mutating requests (GitHub: at least 1 s). Default 1000. */
  minWriteIntervalMs?: number;
  /** Minimum spacing of requests that notify people (creating issues and comments). Default 3000. */
  minNotifyIntervalMs?: number;
  /** Per-request timeout. Default 30 000. */
  requestTimeoutMs?: number;
  /** octokit's log (warnings about rate limits). Default: warn and error to the console. */
  log?: { debug(m: string): unknown; info(m: string): unknown; warn(m: string): unknown; error(m: string): unknown };
}

/**
 * The `github` block of the config file, with the token from the environment:
 * `{ "repo": "owner/name", "baseUrl"?: string, "allowedUsers"?: string[], "botLogin"?: string,
 *    "dashboardUrl"?: string }`. Null when the block is absent.
 */
export function parseGithubConfig(raw: unknown, env: NodeJS.ProcessEnv = process.env): GithubSinkConfig | null {
  if (raw === undefined || raw === null) return null;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new VrError('CONFIG_INVALID', 'github must be an object');
  const g = raw as Record<string, unknown>;
  if (typeof g.repo !== 'string' || !/^[\w.-]+\/[\w.-]+$/.test(g.repo)) {
    throw new VrError('CONFIG_INVALID', 'github.repo must be "owner/name"');
  }
  const token = env[GITHUB_TOKEN_ENV];
  if (!token) throw new VrError('CONFIG_INVALID', `set ${GITHUB_TOKEN_ENV} for the GitHub sink`);
  const str = (k: string): string | undefined => {
    if (g[k] === undefined) return undefined;
    if (typeof g[k] !== 'string') throw new VrError('CONFIG_INVALID', `github.${k} must be a string`);
    return g[k] as string;
  };
  const users = g.allowedUsers ?? [];
  if (!Array.isArray(users) || !users.every((u) => typeof u === 'string' && /^[A-Za-z0-9-]+$/.test(u))) {
    throw new VrError('CONFIG_INVALID', 'github.allowedUsers must be an array of GitHub logins');
  }
  const baseUrl = str('baseUrl');
  if (baseUrl !== undefined && !/^https?:\/\//.test(baseUrl)) throw new VrError('CONFIG_INVALID', 'github.baseUrl must be an http(s) URL');
  const cfg: GithubSinkConfig = { repo: g.repo, token, allowedUsers: users as string[] };
  if (baseUrl !== undefined) cfg.baseUrl = baseUrl.replace(/\/+$/, '');
  const botLogin = str('botLogin');
  if (botLogin !== undefined) cfg.botLogin = botLogin;
  const dashboardUrl = str('dashboardUrl');
  if (dashboardUrl !== undefined) cfg.dashboardUrl = dashboardUrl;
  return cfg;
}

/* The sink's own cache of where things are on GitHub lives in migrations/0004_github.sql. */

/* ------------------------------------------------------------------------------------------------ */
/* Markers                                                                                          */
/* ------------------------------------------------------------------------------------------------ */

/** Marker text may not end an HTML comment early or break a line. */
function markerSafe(s: string): string {
  return s.replace(/[^A-Za-z0-9._:@+=/-]/g, (c) => '%' + c.charCodeAt(0).toString(16).padStart(2, '0')).replace(/--/g, '-%2d');
}

/** In the tracking issue's body: the lineage it tracks. */
export const lineageMarker = (lineageId: number) => `<!-- vfio-review:lineage:${lineageId} -->`;
/** In a comment: one delivered reply (its idempotency key). */
export const deliveryMarker = (key: string) => `<!-- vfio-review:${markerSafe(key)} -->`;
const revisionMarker = (key: string, revision: number) => `<!-- vfio-review:revision:${markerSafe(key)}:${revision} -->`;
const slotMarker = (slot: string) => `<!-- vfio-review:slot:${markerSafe(slot)} -->`;
const versionMarker = (version: number) => `<!-- vfio-review:version:${version} -->`;

/**
 * Which reply a comment holds: series version, the message it answers, the kind. The planner keeps
 * one outbox row per (kind, target) and re-renders it in place, so the key marker finds it; the slot
 * is what lets a `rerun` row delivered under a new key find the comment of the reply it reruns.
 */
function slotPrefix(row: OutboxRow): string {
  // FNV-1a of the target Message-ID: short, stable, no mail text in the marker.
  let h = 0x811c9dc5;
  for (const ch of row.targetMsgid) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return `${row.seriesId}:${h.toString(16).padStart(8, '0')}:`;
}
const slotOf = (row: OutboxRow) => slotPrefix(row) + row.kind;
/** A rerun edits the version's comment for that message, preferring the review / follow-up one. */
const RERUN_PREFERENCE = ['review', 'follow-up', 'clean', 'apply-failed', 'rerun'];

function revisionIn(body: string, key: string): number | null {
  if (!body.includes(deliveryMarker(key))) return null;
  const m = new RegExp(`<!-- vfio-review:revision:${escapeRe(markerSafe(key))}:(\\d+) -->`).exec(body);
  return m ? Number(m[1]) : 1;
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/* ------------------------------------------------------------------------------------------------ */
/* Markdown from untrusted text                                                                     */
/* ------------------------------------------------------------------------------------------------ */

const UNSAFE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;
const ZWSP = '\u200b';

/**
 * One line of untrusted text as inline Markdown that renders as the same characters: whitespace
 * collapsed, every Markdown metacharacter backslash-escaped, `&`, `<` and `>` as entities (so no HTML,
 * no autolink in angle brackets), and `@login` / `#123` defused with a zero-width space so a patch
 * subject can neither ping people nor cross-reference issues.
 */
export function escapeMarkdown(text: string): string {
  return text
    .replace(UNSAFE, '')
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/[\\`*_{}[\]()#+\-.!|~^$=:"']/g, '\\$&')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/(^|[^A-Za-z0-9_])@(?=[A-Za-z0-9])/g, `$1@${ZWSP}`)
    .replace(/\\#(?=\d)/g, `\\#${ZWSP}`);
}

/** Untrusted text as an inline code span: the fence is longer than any backtick run inside. */
export function inlineCode(text: string): string {
  const t = text.replace(UNSAFE, '').replace(/\s+/g, ' ').trim();
  if (t === '') return '';
  const longest = Math.max(0, ...[...t.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(longest + 1);
  const pad = t.startsWith('`') || t.endsWith('`') || (t.startsWith(' ') && t.endsWith(' ')) ? ' ' : '';
  return `${fence}${pad}${t}${pad}${fence}`;
}

/** Untrusted text as a fenced code block whose fence is longer than any backtick run inside (and at least 3). */
export function fenceCode(code: string, info = 'text'): string {
  const body = code.replace(/\r\n?/g, '\n').replace(UNSAFE, '').replace(/\n+$/, '');
  const longest = Math.max(0, ...[...body.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return `${fence}${info.replace(/[^A-Za-z0-9_+-]/g, '')}\n${body}\n${fence}`;
}

/** An issue title from untrusted text: one line, no controls, GitHub's 256-character limit. */
function issueTitle(title: string, lineageId: number): string {
  const suffix = ` [lineage ${lineageId}]`;
  const t = title.replace(UNSAFE, '').replace(/\s+/g, ' ').trim() || '(no subject)';
  return (t.length + suffix.length > 256 ? t.slice(0, 255 - suffix.length) + '…' : t) + suffix;
}

/* ------------------------------------------------------------------------------------------------ */
/* Commands in comments                                                                             */
/* ------------------------------------------------------------------------------------------------ */

export type GithubCommand = { kind: 'rerun' } | { kind: 'dismiss'; concern: string; reason: string };

export interface ParsedComment {
  /** The author is in allowedUsers; when false nothing else is looked at. */
  allowed: boolean;
  commands: GithubCommand[];
  /** Command lines that could not be understood (to answer the maintainer). */
  errors: string[];
}

const DISMISS = /^\/dismiss(?:[ \t]+(?<id>\S+))?(?:[ \t]+(?<reason>\S.*))?$/i;

/**
 * The commands in one comment: `/rerun` and `/dismiss <concern-id> <reason>`, each alone on a line,
 * from an allowed login only. Lines inside fenced code, quoted lines ("> ...") and HTML comments never
 * count, so quoting the bot's footer (which shows the syntax) does nothing.
 */
export function parseCommand(commentBody: string, author: string, allowedUsers: readonly string[]): ParsedComment {
  const out: ParsedComment = { allowed: false, commands: [], errors: [] };
  const who = author.toLowerCase();
  if (!allowedUsers.some((u) => u.toLowerCase() === who)) return out;
  out.allowed = true;
  let fence: string | null = null;
  const text = commentBody.replace(/\r\n?/g, '\n').replace(/<!--[\s\S]*?(?:-->|$)/g, '');
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const f = /^(`{3,}|~{3,})/.exec(line);
    if (fence !== null) {
      if (f && f[1]![0] === fence[0] && f[1]!.length >= fence.length && line.slice(f[1]!.length).trim() === '') fence = null;
      continue;
    }
    if (f) {
      fence = f[1]!;
      continue;
    }
    if (line.startsWith('>')) continue;
    if (/^\/rerun$/i.test(line)) {
      out.commands.push({ kind: 'rerun' });
      continue;
    }
    if (!/^\/dismiss\b/i.test(line)) continue;
    const m = DISMISS.exec(line);
    const id = m?.groups?.id;
    const reason = m?.groups?.reason?.trim();
    if (!id || !/^[0-9a-f]{12}$/i.test(id) || !reason) {
      out.errors.push(`malformed command (want "/dismiss <12-hex concern id> <reason>"): ${line.slice(0, 200)}`);
      continue;
    }
    out.commands.push({ kind: 'dismiss', concern: id.toLowerCase(), reason });
  }
  return out;
}

/** A command found by pollCommands. */
export interface PolledCommand {
  command: GithubCommand;
  commentId: number;
  issueNumber: number;
  /** The lineage the tracking issue belongs to. */
  lineageId: number;
  author: string;
  url: string;
}

/* ------------------------------------------------------------------------------------------------ */
/* Rate-limit gate and write spacing                                                                */
/* ------------------------------------------------------------------------------------------------ */

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

/** The part of a Bottleneck.Group the throttling plugin uses for its write/notification spacing. */
function spacer(minMs: number) {
  let next = 0;
  const limiter = {
    async schedule<A extends unknown[], R>(_opts: unknown, fn: (...a: A) => R | Promise<R>, ...args: A): Promise<R> {
      const now = Date.now();
      const at = Math.max(now, next);
      next = at + minMs;
      if (at > now) await sleep(at - now);
      return fn(...args);
    },
  };
  return { key: () => limiter };
}

/**
 * fetch with a per-request timeout, and a gate that keeps every request back until a rate limit GitHub
 * announced is over: `retry-after` (seconds), `x-ratelimit-remaining: 0` until `x-ratelimit-reset`, or
 * a minute after a secondary limit without either header. A wait longer than `maxWaitMs` is not slept
 * through: a local 429 answers instead, which the sink reports as transient.
 */
function gatedFetch(opts: { unitMs: number; maxWaitMs: number; timeoutMs: number }): typeof fetch {
  let blockedUntil = 0;
  const scale = opts.unitMs / 1000;
  const block = (ms: number) => void (blockedUntil = Math.max(blockedUntil, Date.now() + ms));
  return async (input, init) => {
    const wait = blockedUntil - Date.now();
    if (wait > opts.maxWaitMs) {
      const reset = Math.ceil((Date.now() + wait / scale) / 1000);
      return new Response(
        JSON.stringify({ message: `vfio-review: GitHub rate limit in force for ${Math.round(wait)} ms more; not waiting` }),
        { status: 429, headers: { 'content-type': 'application/json', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(reset) } },
      );
    }
    if (wait > 0) await sleep(wait);
    const timeout = AbortSignal.timeout(opts.timeoutMs);
    const signal = init?.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    const res = await fetch(input, { ...init, signal });
    const h = res.headers;
    const retryAfter = h.get('retry-after');
    const remaining = h.get('x-ratelimit-remaining');
    const reset = Number(h.get('x-ratelimit-reset'));
    if (retryAfter !== null && /^\d+$/.test(retryAfter.trim())) {
      block(Number(retryAfter) * opts.unitMs);
    } else if (remaining === '0' && reset > 0) {
      // Until the reset, plus a second as GitHub asks, on the (scaled) clock.
      block(Math.max(reset * 1000 - Date.now(), 0) * scale + opts.unitMs);
    } else if (res.status === 403 || res.status === 429) {
      const text = await res.clone().text().catch(() => '');
      if (/secondary rate limit/i.test(text)) block(60 * opts.unitMs);
    }
    return res;
  };
}

/* ------------------------------------------------------------------------------------------------ */
/* The sink                                                                                         */
/* ------------------------------------------------------------------------------------------------ */

/** Labels the sink owns on tracking issues; others (a maintainer's own) are left alone. */
export const MANAGED_LABELS = {
  tracking: { name: 'vfio-review', color: '1d76db', description: 'Tracking issue of a series lineage (vfio-review)' },
  applyFailed: { name: 'apply-failed', color: 'd93f0b', description: 'The latest version did not apply' },
  concernsOpen: { name: 'concerns-open', color: 'fbca04', description: 'The lineage has open review concerns' },
  clean: { name: 'clean', color: '0e8a16', description: 'The latest version applied with no open concerns' },
} as const;
const VERSION_LABEL = /^v\d+$/i;
const APPLY_FAILED_STATUSES = new Set(['not-applied', 'rejected', 'error']);
const MAX_BODY = 65_000; // GitHub's limit is 65 536 characters

interface Issue {
  number: number;
  body: string;
  html_url: string;
  labels: string[];
  title: string;
  login: string | null;
}
interface Comment {
  id: number;
  body: string;
  html_url: string;
  login: string | null;
}

type IssueData = {
  number: number;
  body?: string | null;
  html_url: string;
  title: string;
  labels: (string | { name?: string })[];
  user: { login: string } | null;
  pull_request?: unknown;
};
type CommentData = { id: number; body?: string; html_url: string; user: { login: string } | null; issue_url: string };

const toIssue = (d: IssueData): Issue => ({
  number: d.number,
  body: d.body ?? '',
  html_url: d.html_url,
  title: d.title,
  labels: d.labels.map((l) => (typeof l === 'string' ? l : (l.name ?? ''))).filter(Boolean),
  login: d.user?.login ?? null,
});
/**
 * The issue carries the lineage marker and either the tracking label or the bot as its author. Only
 * people with triage access can label, so a copy of the marker in someone else's issue is not mistaken
 * for the tracking issue; a maintainer taking the label off the bot's own issue does not orphan it.
 */
const isTrackingIssue = (i: Issue, lineageId: number, bot: string) =>
  i.body.includes(lineageMarker(lineageId)) &&
  (i.labels.some((l) => l.toLowerCase() === MANAGED_LABELS.tracking.name) || i.login?.toLowerCase() === bot.toLowerCase());
const toComment = (d: CommentData): Comment => ({ id: d.id, body: d.body ?? '', html_url: d.html_url, login: d.user?.login ?? null });

/** Transient: GitHub or the network failed (5xx, no answer, timeout) or a rate limit outlasted our patience. */
function isTransient(err: unknown): boolean {
  if (err instanceof RequestError) return err.status >= 500 || err.status === 429 || isRateLimited(err);
  return true; // not an HTTP answer at all (network, abort)
}
function isRateLimited(err: RequestError): boolean {
  const h = err.response?.headers ?? {};
  return (err.status === 403 || err.status === 429) && (h['x-ratelimit-remaining'] === '0' || h['retry-after'] !== undefined || /rate limit/i.test(err.message));
}
function answerOf(err: unknown): string {
  if (err instanceof RequestError) {
    const data = err.response?.data as { message?: string; errors?: unknown } | undefined;
    const id = err.response?.headers?.['x-github-request-id'];
    const detail = data?.errors ? ` ${JSON.stringify(data.errors)}` : '';
    return `${err.status} ${data?.message ?? err.message}${detail}${id ? ` (request ${id})` : ''}`.slice(0, 2000);
  }
  return (err instanceof Error ? `${err.name}: ${err.message}` : String(err)).slice(0, 2000);
}

export class GithubSink implements Sink {
  readonly name = 'github' as const;
  readonly editsInPlace = true;
  readonly inDoubtGraceMs = 0;
  readonly octokit: InstanceType<typeof Octokit>;
  readonly owner: string;
  readonly repoName: string;
  readonly #cfg: GithubSinkConfig;
  readonly #db: Db | null;
  readonly #repoKey: string;
  readonly #unitMs: number;
  readonly #retries: number;
  #botLogin: string | null;
  #labels: Set<string> | null = null;
  /** lineage id -> issue number, from one listing of the labelled issues per process. */
  #scanned: Map<number, number> | null = null;

  constructor(cfg: GithubSinkConfig, db: Db | null = null) {
    const [owner, name] = cfg.repo.split('/');
    if (!owner || !name) throw new VrError('CONFIG_INVALID', 'github.repo must be "owner/name"');
    this.#cfg = cfg;
    this.#db = db;
    this.owner = owner;
    this.repoName = name;
    this.#repoKey = cfg.repo.toLowerCase();
    this.#botLogin = cfg.botLogin ?? null;
    this.#unitMs = cfg.timeUnitMs ?? 1000;
    this.#retries = cfg.retries ?? 3;
    const rateLimitRetries = cfg.rateLimitRetries ?? 2;
    const maxWaitMs = cfg.maxRateLimitWaitMs ?? 120_000;
    const unitMs = this.#unitMs;
    const onLimit = (retryAfter: number, _options: unknown, _octokit: unknown, retryCount: number) =>
      retryCount < rateLimitRetries && retryAfter * unitMs <= maxWaitMs;
    this.octokit = new Octokit({
      auth: cfg.token,
      baseUrl: cfg.baseUrl ?? 'https://api.github.com',
      userAgent: 'vfio-review',
      log: cfg.log ?? { debug: () => {}, info: () => {}, warn: console.warn, error: console.error },
      request: {
        fetch: gatedFetch({ unitMs, maxWaitMs, timeoutMs: cfg.requestTimeoutMs ?? 30_000 }),
      },
      retry: {
        retries: this.#retries,
        retryAfterBaseValue: unitMs,
        // 403 and 429 are the throttling plugin's; creations turn retries off and look before retrying.
        doNotRetry: [400, 401, 403, 404, 410, 422, 429, 451],
      },
      throttle: {
        id: `vfio-review:${this.#repoKey}`,
        retryAfterBaseValue: unitMs,
        // The gate in front of fetch waits for secondary limits (retry-after, the reset, or a minute).
        fallbackSecondaryRateRetryAfter: 0,
        write: spacer(cfg.minWriteIntervalMs ?? 1000),
        notifications: spacer(cfg.minNotifyIntervalMs ?? 3000),
        onRateLimit: onLimit,
        onSecondaryRateLimit: onLimit,
      },
    });
  }

  /* ---- Sink ---- */

  async deliver(row: OutboxRow): Promise<DeliverResult> {
    if (row.lineageId === null) {
      return { ok: false, permanent: true, answer: 'the GitHub sink needs the series lineage (rebuild the series first)' };
    }
    try {
      const issue = await this.#upsertIssue(row, row.lineageId);
      const comment = await this.#upsertComment(row, issue);
      return { ok: true, remoteId: comment.html_url };
    } catch (err) {
      return { ok: false, permanent: !isTransient(err), answer: answerOf(err) };
    }
  }

  async alreadyDelivered(row: OutboxRow): Promise<boolean> {
    if (row.lineageId === null) return false;
    const issue = await this.#findIssue(row.lineageId);
    if (!issue) return false;
    const c = await this.#findComment(issue.number, row);
    if (!c) return false;
    const rev = revisionIn(c.body, row.key);
    return rev !== null && rev >= row.revision;
  }

  /**
   * New `/rerun` and `/dismiss` commands in comments on tracking issues, oldest first, from comments
   * after `sinceCommentId` (GitHub's comment ids grow). Pass the returned `lastCommentId` next time;
   * null starts from now (no commands, just the cursor). Comments by the bot itself never count.
   */
  async pollCommands(sinceCommentId: number | null): Promise<{ commands: PolledCommand[]; errors: { commentId: number; author: string; error: string }[]; lastCommentId: number }> {
    const fresh: CommentData[] = [];
    let last = sinceCommentId ?? 0;
    await this.octokit.paginate(
      this.octokit.rest.issues.listCommentsForRepo,
      { owner: this.owner, repo: this.repoName, sort: 'created', direction: 'desc', per_page: 100 },
      (res, done) => {
        for (const c of res.data as CommentData[]) {
          last = Math.max(last, c.id);
          if (sinceCommentId === null || c.id <= sinceCommentId) {
            done();
            continue;
          }
          fresh.push(c);
        }
        if (sinceCommentId === null) done();
        return [];
      },
    );
    const out = { commands: [] as PolledCommand[], errors: [] as { commentId: number; author: string; error: string }[], lastCommentId: last };
    if (sinceCommentId === null) return out;
    const bot = (await this.#login()).toLowerCase();
    const lineageOfIssue = new Map<number, number | null>();
    for (const c of fresh.sort((a, b) => a.id - b.id)) {
      const author = c.user?.login ?? '';
      const body = c.body ?? '';
      if (!author || author.toLowerCase() === bot || body.includes('<!-- vfio-review:')) continue;
      const parsed = parseCommand(body, author, this.#cfg.allowedUsers ?? []);
      if (!parsed.allowed || (parsed.commands.length === 0 && parsed.errors.length === 0)) continue;
      const issueNumber = Number(/\/issues\/(\d+)$/.exec(c.issue_url)?.[1]);
      if (!Number.isInteger(issueNumber)) continue;
      if (!lineageOfIssue.has(issueNumber)) lineageOfIssue.set(issueNumber, await this.#lineageOfIssue(issueNumber));
      const lineageId = lineageOfIssue.get(issueNumber);
      if (lineageId === null || lineageId === undefined) continue; // not a tracking issue
      for (const command of parsed.commands) {
        out.commands.push({ command, commentId: c.id, issueNumber, lineageId, author, url: c.html_url });
      }
      for (const error of parsed.errors) out.errors.push({ commentId: c.id, author, error });
    }
    return out;
  }

  async close(): Promise<void> {}

  /* ---- rendering ---- */

  /** The tracking issue's body: the lineage marker, then the lineage's open concerns now. */
  renderIssueBody(row: OutboxRow): string {
    const m = row.meta;
    const concerns = m.openConcerns;
    const failed = this.#applyFailed(row);
    const title = m.lineageTitle ?? m.seriesTitle;
    const lines: string[] = [
      lineageMarker(row.lineageId ?? 0),
      versionMarker(row.version),
      `### ${escapeMarkdown(title)}`,
      '',
      `Tracking issue of a series lineage reviewed by vfio-review. Latest version: **v${row.version}**` +
        ` (apply: ${inlineCode(m.applyStatus)}${failed ? ', **did not apply**' : ''}).`,
      '',
      `#### Open concerns (${concerns.length})`,
      '',
    ];
    if (concerns.length === 0) lines.push('None.');
    for (const c of concerns) lines.push(concernLine(c));
    lines.push(
      '',
      '---',
      'Commands for maintainers, each alone on a line of a comment here: `/rerun` reviews the latest version ' +
        'again; `/dismiss <concern-id> <reason>` dismisses a concern for the whole lineage.' +
        (this.#cfg.dashboardUrl ? ` Dashboard: <${encodeURI(this.#cfg.dashboardUrl)}>` : ''),
    );
    let body = lines.join('\n');
    if (body.length > MAX_BODY) body = body.slice(0, MAX_BODY - 200).replace(/\n[^\n]*$/, '') + '\n\n[ ... more concerns on the dashboard ]';
    return body;
  }

  /** A reply's comment: a header, the plain-text reply fenced, and the markers of every delivery folded in. */
  renderComment(row: OutboxRow, previous: string | null): string {
    const keep: string[] = [];
    // The comment keeps the slot it was created for (a rerun edits the review's comment).
    const slot = previous?.match(/<!-- vfio-review:slot:[^\n]*? -->/)?.[0] ?? slotMarker(slotOf(row));
    if (previous) {
      for (const mk of previous.match(/<!-- vfio-review:[^\n]*? -->/g) ?? []) {
        if (mk.startsWith('<!-- vfio-review:slot:')) continue;
        if (mk === deliveryMarker(row.key) || mk.startsWith(`<!-- vfio-review:revision:${markerSafe(row.key)}:`)) continue;
        if (!keep.includes(mk)) keep.push(mk);
      }
    }
    const markers = [slot, ...keep, deliveryMarker(row.key), revisionMarker(row.key, row.revision)].join('\n');
    const kind = { review: 'review', 'apply-failed': 'apply failed', 'follow-up': 'follow-up', rerun: 'rerun', clean: 'clean' }[row.kind];
    const head = `**vfio-review** · v${row.version} · ${kind}${row.revision > 1 ? ` · revision ${row.revision}` : ''}\n\n` +
      `${escapeMarkdown(row.subject)}\n\n`;
    let text = row.body;
    const budget = MAX_BODY - head.length - markers.length - 200;
    if (text.length > budget) text = text.slice(0, budget).replace(/\n[^\n]*$/, '') + '\n[ ... truncated; the whole reply is on the dashboard ]';
    return `${head}${fenceCode(text)}\n\n${markers}\n`;
  }

  /* ---- issue ---- */

  #applyFailed(row: OutboxRow): boolean {
    return row.kind === 'apply-failed' || APPLY_FAILED_STATUSES.has(row.meta.applyStatus);
  }

  #labelsFor(row: OutboxRow, current: string[]): string[] {
    const failed = this.#applyFailed(row);
    const open = row.meta.openConcerns.length > 0;
    const managed = new Set<string>(
      [MANAGED_LABELS.tracking.name, MANAGED_LABELS.applyFailed.name, MANAGED_LABELS.concernsOpen.name, MANAGED_LABELS.clean.name],
    );
    const keep = current.filter((l) => !managed.has(l.toLowerCase()) && !VERSION_LABEL.test(l));
    const want = [MANAGED_LABELS.tracking.name, `v${row.version}`];
    if (failed) want.push(MANAGED_LABELS.applyFailed.name);
    if (open) want.push(MANAGED_LABELS.concernsOpen.name);
    if (!failed && !open) want.push(MANAGED_LABELS.clean.name);
    return [...keep, ...want];
  }

  async #ensureLabels(names: string[]): Promise<void> {
    if (!this.#labels) {
      const all = await this.octokit.paginate(this.octokit.rest.issues.listLabelsForRepo, { owner: this.owner, repo: this.repoName, per_page: 100 });
      this.#labels = new Set(all.map((l) => l.name.toLowerCase()));
    }
    const spec = Object.values(MANAGED_LABELS);
    for (const name of names) {
      if (this.#labels.has(name.toLowerCase())) continue;
      const s = spec.find((x) => x.name === name) ?? { name, color: 'c5def5', description: `Series version ${name}` };
      try {
        await this.octokit.rest.issues.createLabel({ owner: this.owner, repo: this.repoName, ...s });
      } catch (err) {
        // Someone made it meanwhile: fine.
        const already = err instanceof RequestError && err.status === 422 && JSON.stringify(err.response?.data ?? '').includes('already_exists');
        if (!already) throw err;
      }
      this.#labels.add(name.toLowerCase());
    }
  }

  async #upsertIssue(row: OutboxRow, lineageId: number): Promise<Issue> {
    const existing = await this.#findIssue(lineageId);
    const body = this.renderIssueBody(row);
    if (!existing) {
      const labels = this.#labelsFor(row, []);
      await this.#ensureLabels(labels);
      const created = await this.#createIssue(lineageId, issueTitle(row.meta.lineageTitle ?? row.meta.seriesTitle, lineageId), body, labels);
      this.#remember(lineageId, created);
      return created;
    }
    // A late reply for an older version must not roll the body and labels back.
    const shown = Number(/<!-- vfio-review:version:(\d+) -->/.exec(existing.body)?.[1] ?? 0);
    if (row.version < shown) return existing;
    const labels = this.#labelsFor(row, existing.labels);
    const sameLabels = labels.length === existing.labels.length && labels.every((l) => existing.labels.includes(l));
    if (existing.body === body && sameLabels) return existing;
    await this.#ensureLabels(labels);
    const { data } = await this.octokit.rest.issues.update({
      owner: this.owner,
      repo: this.repoName,
      issue_number: existing.number,
      body,
      labels,
    });
    return toIssue(data as IssueData);
  }

  /** POST without blind retries: after a failure without an answer, look for the lineage marker first. */
  async #createIssue(lineageId: number, title: string, body: string, labels: string[]): Promise<Issue> {
    for (let attempt = 0; ; attempt++) {
      try {
        const { data } = await this.octokit.rest.issues.create({
          owner: this.owner,
          repo: this.repoName,
          title,
          body,
          labels,
          request: { retries: 0 },
        });
        return toIssue(data as IssueData);
      } catch (err) {
        if (!isTransient(err) || attempt >= this.#retries) throw err;
        await sleep((attempt + 1) ** 2 * this.#unitMs);
        this.#scanned = null;
        const found = await this.#scanForIssue(lineageId);
        if (found) return found;
      }
    }
  }

  /** The tracking issue of a lineage: the cached number (checked), else the marker among the labelled issues. */
  async #findIssue(lineageId: number): Promise<Issue | null> {
    const cached = this.#db
      ?.prepare('SELECT issue_number FROM github_issues WHERE repo = ? AND lineage_id = ?')
      .pluck()
      .get(this.#repoKey, lineageId) as number | undefined;
    if (cached !== undefined) {
      const issue = await this.#getIssue(cached);
      if (issue && isTrackingIssue(issue, lineageId, await this.#login())) return issue;
      this.#db?.prepare('DELETE FROM github_issues WHERE repo = ? AND lineage_id = ?').run(this.#repoKey, lineageId);
    }
    const found = await this.#scanForIssue(lineageId);
    if (found) this.#remember(lineageId, found);
    return found;
  }

  async #getIssue(n: number): Promise<Issue | null> {
    try {
      const { data } = await this.octokit.rest.issues.get({ owner: this.owner, repo: this.repoName, issue_number: n });
      return toIssue(data as IssueData);
    } catch (err) {
      if (err instanceof RequestError && (err.status === 404 || err.status === 410)) return null;
      throw err;
    }
  }

  /**
   * Lists the `vfio-review` issues (open and closed) once per process and indexes them by their lineage
   * marker.
   */
  async #scanForIssue(lineageId: number): Promise<Issue | null> {
    const index = async () => {
      const all = await this.octokit.paginate(this.octokit.rest.issues.listForRepo, {
        owner: this.owner,
        repo: this.repoName,
        labels: MANAGED_LABELS.tracking.name,
        state: 'all',
        sort: 'created',
        direction: 'asc',
        per_page: 100,
      });
      const map = new Map<number, number>();
      const issues = new Map<number, Issue>();
      for (const d of all as IssueData[]) {
        if (d.pull_request) continue;
        const issue = toIssue(d);
        for (const m of issue.body.matchAll(/<!-- vfio-review:lineage:(\d+) -->/g)) {
          const id = Number(m[1]);
          if (!map.has(id)) map.set(id, issue.number); // the oldest wins should a duplicate ever exist
        }
        issues.set(issue.number, issue);
      }
      this.#scanned = map;
      return issues;
    };
    // The index is trusted for a miss: issues this process creates are added to it, and a creation
    // whose answer was lost clears it. A new process lists afresh, which is what finds an issue
    // created just before a crash.
    if (!this.#scanned) {
      const issues = await index();
      const n = this.#scanned!.get(lineageId);
      return n === undefined ? null : (issues.get(n) ?? null);
    }
    const n = this.#scanned.get(lineageId);
    if (n === undefined) return null;
    const issue = await this.#getIssue(n);
    if (issue && isTrackingIssue(issue, lineageId, await this.#login())) return issue;
    this.#scanned = null;
    return this.#scanForIssue(lineageId);
  }

  #remember(lineageId: number, issue: Issue): void {
    this.#scanned?.set(lineageId, issue.number);
    this.#db
      ?.prepare(
        `INSERT INTO github_issues (repo, lineage_id, issue_number, html_url, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (repo, lineage_id) DO UPDATE SET issue_number = excluded.issue_number, html_url = excluded.html_url,
           updated_at = excluded.updated_at`,
      )
      .run(this.#repoKey, lineageId, issue.number, issue.html_url, new Date().toISOString());
  }

  async #lineageOfIssue(issueNumber: number): Promise<number | null> {
    const cached = this.#db
      ?.prepare('SELECT lineage_id FROM github_issues WHERE repo = ? AND issue_number = ?')
      .pluck()
      .get(this.#repoKey, issueNumber) as number | undefined;
    if (cached !== undefined) return cached;
    const issue = await this.#getIssue(issueNumber);
    if (!issue || !issue.labels.some((l) => l.toLowerCase() === MANAGED_LABELS.tracking.name)) return null;
    const m = /<!-- vfio-review:lineage:(\d+) -->/.exec(issue.body);
    return m ? Number(m[1]) : null;
  }

  /* ---- comment ---- */

  async #login(): Promise<string> {
    if (this.#botLogin === null) {
      const { data } = await this.octokit.rest.users.getAuthenticated();
      this.#botLogin = data.login;
    }
    return this.#botLogin;
  }

  /**
   * The bot's comment holding this reply: by its idempotency key (the cached comment, checked, else the
   * issue's comments), else, for a rerun under a new key, the comment of the reply it reruns.
   */
  async #findComment(issueNumber: number, row: OutboxRow): Promise<Comment | null> {
    const bot = (await this.#login()).toLowerCase();
    const mine = (c: Comment) => c.login !== null && c.login.toLowerCase() === bot;
    const marker = deliveryMarker(row.key);
    const cached = this.#db
      ?.prepare('SELECT comment_id FROM github_comments WHERE repo = ? AND idem_key = ? AND issue_number = ?')
      .pluck()
      .get(this.#repoKey, row.key, issueNumber) as number | undefined;
    if (cached !== undefined) {
      try {
        const { data } = await this.octokit.rest.issues.getComment({ owner: this.owner, repo: this.repoName, comment_id: cached });
        const c = toComment(data as CommentData);
        if (mine(c) && c.body.includes(marker)) return c;
      } catch (err) {
        if (!(err instanceof RequestError && err.status === 404)) throw err;
      }
    }
    const all = (await this.octokit.paginate(this.octokit.rest.issues.listComments, {
      owner: this.owner,
      repo: this.repoName,
      issue_number: issueNumber,
      per_page: 100,
    })) as CommentData[];
    const comments = all.map(toComment).filter(mine);
    let found = comments.find((c) => c.body.includes(marker)) ?? null;
    if (!found && row.kind === 'rerun') {
      const prefix = `<!-- vfio-review:slot:${markerSafe(slotPrefix(row))}`;
      const rank = (c: Comment) => {
        const kind = /<!-- vfio-review:slot:[^\n]*?:([a-z-]+) -->/.exec(c.body)?.[1] ?? '';
        const i = RERUN_PREFERENCE.indexOf(kind);
        return i < 0 ? RERUN_PREFERENCE.length : i;
      };
      found = comments.filter((c) => c.body.includes(prefix)).sort((a, b) => rank(a) - rank(b) || b.id - a.id)[0] ?? null;
    }
    if (found && found.body.includes(marker)) this.#rememberComment(row.key, issueNumber, found);
    return found;
  }

  async #upsertComment(row: OutboxRow, issue: Issue): Promise<Comment> {
    for (let attempt = 0; ; attempt++) {
      const existing = await this.#findComment(issue.number, row);
      if (existing) {
        const rev = revisionIn(existing.body, row.key);
        if (rev !== null && rev >= row.revision) return existing; // delivered before (a retry after a crash)
        // A rerun (or a re-rendered revision) of this reply: edit in place. PATCH is idempotent, so
        // octokit's retry plugin may repeat it.
        const { data } = await this.octokit.rest.issues.updateComment({
          owner: this.owner,
          repo: this.repoName,
          comment_id: existing.id,
          body: this.renderComment(row, existing.body),
        });
        const c = toComment(data as CommentData);
        this.#rememberComment(row.key, issue.number, c);
        return c;
      }
      try {
        // POST is not: no blind retry. After a failure without an answer, look for the marker first.
        const { data } = await this.octokit.rest.issues.createComment({
          owner: this.owner,
          repo: this.repoName,
          issue_number: issue.number,
          body: this.renderComment(row, null),
          request: { retries: 0 },
        });
        const c = toComment(data as CommentData);
        this.#rememberComment(row.key, issue.number, c);
        return c;
      } catch (err) {
        if (!isTransient(err) || attempt >= this.#retries) throw err;
        await sleep((attempt + 1) ** 2 * this.#unitMs);
      }
    }
  }

  #rememberComment(key: string, issueNumber: number, c: Comment): void {
    this.#db
      ?.prepare(
        `INSERT INTO github_comments (repo, idem_key, issue_number, comment_id, html_url, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (repo, idem_key) DO UPDATE SET issue_number = excluded.issue_number, comment_id = excluded.comment_id,
           html_url = excluded.html_url, updated_at = excluded.updated_at`,
      )
      .run(this.#repoKey, key, issueNumber, c.id, c.html_url, new Date().toISOString());
  }
}

function concernLine(c: ConcernRef): string {
  const where = [inlineCode(c.file), c.function ? inlineCode(`${c.function}()`) : ''].filter(Boolean).join(' ');
  const state = c.state === 'new' ? 'new' : 'still open';
  return `- ${inlineCode(c.id)} ${escapeMarkdown(c.rule)} (${escapeMarkdown(c.category)}, ${state}) in ${where}: ${escapeMarkdown(c.message)}`;
}
