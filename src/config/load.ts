import { readFileSync } from 'node:fs';
import { VrError } from '../errors.js';
import { DEFAULT_DB_PATH } from '../store/db.js';
import { defaultRelevance, type Relevance } from '../series/relevance.js';
import type { ImapSourceConfig } from '../ingest/imap-source.js';
import type { BaseMap, BaseMapRule } from '../apply/base.js';
import { loadReportPolicy, type ReportPolicy } from '../report/policy.js';
import { parseGithubConfig, type GithubSinkConfig } from '../report/sinks/github.js';
import { SINK_NAMES, type SinkName } from '../report/types.js';
import { DEFAULT_DISMISS_LABELS } from '../report/github-commands.js';
import { parseDaemonConfig, type DaemonConfig, type DaemonFlags } from './daemon.js';

/** Where series are applied: a kernel git tree and the map from series traits to base refs. */
export interface ApplyConfig {
  readonly tree: string | null;
  readonly baseMap: BaseMap;
}

/** vfio and iommu series go to their maintainers' next branches first, when the tree has them. */
export function defaultBaseMap(): BaseMap {
  return {
    rules: [
      { prefix: 'vfio', refs: ['vfio/next'] },
      { path: 'drivers/vfio/**', refs: ['vfio/next'] },
      { prefix: 'iommu', refs: ['iommu/next'] },
      { prefix: 'iommufd', refs: ['iommufd/for-next'] },
      { path: 'drivers/iommu/**', refs: ['iommu/next'] },
    ],
    default: 'HEAD',
  };
}

/** The whole configuration, parsed once and frozen. Secrets come from the environment. */
export interface Config {
  readonly db: string;
  readonly relevance: Relevance;
  readonly imap: ImapSourceConfig | null;
  readonly apply: ApplyConfig;
  /** Who is answered, through which sinks, and how (src/report/policy.ts). Everything muted by default. */
  readonly report: ReportPolicy;
  /** The GitHub sink and the commands read from it; null without a `github` section. */
  readonly github: GithubConfig | null;
  /** What `vfio-review run` watches, queues and reports through (src/config/daemon.ts). */
  readonly daemon: DaemonConfig;
}

interface FileShape {
  db?: unknown;
  relevance?: { paths?: unknown; subjectWords?: unknown };
  imap?: {
    host?: unknown; port?: unknown; secure?: unknown; user?: unknown; mailboxes?: unknown;
    pollIntervalMs?: unknown; tlsRejectUnauthorized?: unknown;
  };
  apply?: { tree?: unknown; default?: unknown; rules?: unknown };
  report?: unknown;
  github?: unknown;
  daemon?: unknown;
}

function strings(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
    throw new VrError('CONFIG_INVALID', `${what} must be an array of strings`);
  }
  return v as string[];
}

/**
 * defaults -> file (JSON) -> environment. Environment variables:
 * VFIO_REVIEW_DB, VFIO_REVIEW_TREE, VFIO_REVIEW_IMAP_PASS (the IMAP password; never in the file).
 */
export function loadConfig(opts: { file?: string | undefined; env?: NodeJS.ProcessEnv; flags?: ConfigFlags } = {}): Config {
  const env = opts.env ?? process.env;
  let file: FileShape = {};
  if (opts.file) {
    try {
      file = JSON.parse(readFileSync(opts.file, 'utf8')) as FileShape;
    } catch (err) {
      throw new VrError('CONFIG_INVALID', `${opts.file}: ${(err as Error).message}`);
    }
  }
  const rel = defaultRelevance();
  if (file.relevance?.paths !== undefined) rel.paths = strings(file.relevance.paths, 'relevance.paths');
  if (file.relevance?.subjectWords !== undefined) rel.subjectWords = strings(file.relevance.subjectWords, 'relevance.subjectWords');

  let imap: ImapSourceConfig | null = null;
  if (file.imap) {
    const i = file.imap;
    if (typeof i.host !== 'string' || typeof i.user !== 'string') {
      throw new VrError('CONFIG_INVALID', 'imap.host and imap.user are required strings');
    }
    const pass = env.VFIO_REVIEW_IMAP_PASS;
    if (!pass) throw new VrError('CONFIG_INVALID', 'set VFIO_REVIEW_IMAP_PASS for the IMAP login');
    imap = {
      host: i.host,
      port: typeof i.port === 'number' ? i.port : i.secure === false ? 143 : 993,
      secure: i.secure !== false,
      auth: { user: i.user, pass },
      mailboxes: i.mailboxes === undefined ? ['INBOX'] : strings(i.mailboxes, 'imap.mailboxes'),
      ...(typeof i.pollIntervalMs === 'number' ? { pollIntervalMs: i.pollIntervalMs } : {}),
      ...(typeof i.tlsRejectUnauthorized === 'boolean' ? { tlsRejectUnauthorized: i.tlsRejectUnauthorized } : {}),
    };
  }
  const baseMap = defaultBaseMap();
  const a = file.apply ?? {};
  if (a.default !== undefined) {
    if (typeof a.default !== 'string') throw new VrError('CONFIG_INVALID', 'apply.default must be a ref name');
    baseMap.default = a.default;
  }
  if (a.rules !== undefined) {
    if (!Array.isArray(a.rules)) throw new VrError('CONFIG_INVALID', 'apply.rules must be an array');
    baseMap.rules = a.rules.map((r: unknown, i: number): BaseMapRule => {
      const o = r as Record<string, unknown>;
      const refs = strings(o.refs, `apply.rules[${i}].refs`);
      const out: BaseMapRule = { refs };
      for (const k of ['list', 'prefix', 'path'] as const) {
        if (o[k] === undefined) continue;
        if (typeof o[k] !== 'string') throw new VrError('CONFIG_INVALID', `apply.rules[${i}].${k} must be a string`);
        out[k] = o[k] as string;
      }
      return out;
    });
  }
  const tree = env.VFIO_REVIEW_TREE ?? (typeof a.tree === 'string' ? a.tree : null);
  const db = env.VFIO_REVIEW_DB ?? (typeof file.db === 'string' ? file.db : DEFAULT_DB_PATH);
  refuseSecretsInFile(file);
  const report = loadReportSection(file.report, env, opts.flags);
  const github = loadGithubSection(file.github, env, opts.flags, report);
  const daemon = parseDaemonConfig(file.daemon, { env, imap, ...(opts.flags?.daemon ? { flags: opts.flags.daemon } : {}) });
  return Object.freeze({ db, relevance: Object.freeze(rel), imap, apply: Object.freeze({ tree, baseMap }), report, github, daemon });
}

/* ---- report and github sections ---- */

/** The GitHub sink's settings (token from VFIO_REVIEW_GITHUB_TOKEN) and how its commands are read. */
export type GithubConfig = Readonly<GithubSinkConfig> & {
  /** Labels that dismiss every open concern of a tracking issue when an allowed user adds them. */
  readonly dismissLabels: readonly string[];
  /** How often the daemon polls for `/rerun`, `/dismiss` and dismissal labels. */
  readonly pollIntervalMs: number;
};

/** Command-line flags that override the file and the environment (the last layer). */
export interface ConfigFlags {
  readonly report?: { readonly defaultSink?: string };
  readonly github?: { readonly repo?: string };
  readonly daemon?: DaemonFlags;
}

type Raw = Record<string, unknown>;
const isObj = (v: unknown): v is Raw => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Passwords and tokens are read from the environment only; one found in the file is refused, not ignored. */
function refuseSecretsInFile(file: FileShape): void {
  const at = (o: unknown, ...path: string[]): unknown => path.reduce<unknown>((x, k) => (isObj(x) ? x[k] : undefined), o);
  const places: [string[], string][] = [
    [['github', 'token'], 'VFIO_REVIEW_GITHUB_TOKEN'],
    [['report', 'email', 'pass'], 'VFIO_REVIEW_SMTP_PASS'],
    [['report', 'email', 'password'], 'VFIO_REVIEW_SMTP_PASS'],
    [['report', 'email', 'check', 'pass'], 'VFIO_REVIEW_SENT_PASS'],
    [['report', 'drafts', 'imap', 'pass'], 'VFIO_REVIEW_DRAFTS_PASS'],
    [['imap', 'pass'], 'VFIO_REVIEW_IMAP_PASS'],
  ];
  for (const [path, env] of places) {
    if (at(file, ...path) !== undefined) throw new VrError('CONFIG_INVALID', `${path.join('.')} does not belong in the file: set ${env}`);
  }
}

/** defaults (policy.ts) -> file -> flags; the secrets come from the environment inside loadReportPolicy. */
function loadReportSection(raw: unknown, env: NodeJS.ProcessEnv, flags: ConfigFlags | undefined): ReportPolicy {
  if (raw !== undefined && !isObj(raw)) throw new VrError('CONFIG_INVALID', 'report must be an object');
  const sink = flags?.report?.defaultSink;
  if (sink !== undefined && !SINK_NAMES.includes(sink as SinkName)) {
    throw new VrError('CONFIG_INVALID', `unknown sink '${sink}' (one of ${SINK_NAMES.join(', ')})`);
  }
  return loadReportPolicy(sink === undefined ? raw : { ...(raw ?? {}), defaultSink: sink }, env);
}

/**
 * file -> environment (VFIO_REVIEW_GITHUB_REPO, VFIO_REVIEW_GITHUB_URL; the token VFIO_REVIEW_GITHUB_TOKEN) ->
 * flags. The sink's own keys are parsed by parseGithubConfig; the dashboard link defaults to report.dashboardUrl.
 */
function loadGithubSection(raw: unknown, env: NodeJS.ProcessEnv, flags: ConfigFlags | undefined, report: ReportPolicy): GithubConfig | null {
  if (raw !== undefined && raw !== null && !isObj(raw)) throw new VrError('CONFIG_INVALID', 'github must be an object');
  const merged: Raw = { ...(raw ?? {}) };
  if (env.VFIO_REVIEW_GITHUB_REPO) merged.repo = env.VFIO_REVIEW_GITHUB_REPO;
  if (env.VFIO_REVIEW_GITHUB_URL) merged.baseUrl = env.VFIO_REVIEW_GITHUB_URL;
  if (flags?.github?.repo !== undefined) merged.repo = flags.github.repo;
  if (Object.keys(merged).length === 0) return null;
  const sink = parseGithubConfig(merged, env)!;
  const labels = merged.dismissLabels ?? [...DEFAULT_DISMISS_LABELS];
  if (!Array.isArray(labels) || !labels.every((l) => typeof l === 'string' && l.trim() !== '' && l.length <= 50)) {
    throw new VrError('CONFIG_INVALID', 'github.dismissLabels must be an array of label names (at most 50 characters)');
  }
  const poll = merged.pollIntervalMs ?? 60_000;
  if (typeof poll !== 'number' || !Number.isFinite(poll) || poll < 1000) {
    throw new VrError('CONFIG_INVALID', 'github.pollIntervalMs must be a number of milliseconds >= 1000');
  }
  if (sink.dashboardUrl === undefined && report.dashboardUrl !== null) sink.dashboardUrl = report.dashboardUrl;
  return Object.freeze({
    ...sink,
    allowedUsers: Object.freeze([...(sink.allowedUsers ?? [])]) as string[],
    dismissLabels: Object.freeze(labels.map((l: string) => l.trim())),
    pollIntervalMs: poll,
  });
}
