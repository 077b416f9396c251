import { availableParallelism } from 'node:os';
import { VrError } from '../errors.js';
import type { ImapSourceConfig } from '../ingest/imap-source.js';
import { SINK_NAMES, type SinkName } from '../report/types.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The files most vfio/iommu series touch or reach (their headers come along); missing ones are skipped. */
export const DEFAULT_WARM_PATHS: readonly string[] = ['drivers/vfio/vfio_main.c', 'drivers/vfio/pci/vfio_pci_core.c', 'drivers/iommu/iommu.c'];
/** Directories whose every .c file a worker models while idle, after {@link DEFAULT_WARM_PATHS}. */
export const DEFAULT_WARM_DIRS: readonly string[] = ['drivers/vfio', 'drivers/iommu'];

/** One IMAP login the daemon watches (one or more mailboxes). */
export interface DaemonSource {
  /** Shown in logs and `status` (default: the host and user). */
  readonly name: string;
  readonly imap: Readonly<ImapSourceConfig>;
  /** The environment variable the password came from. */
  readonly passwordEnv: string;
  /** True when that variable was unset: `run` refuses to start, other commands do not care. */
  readonly passwordMissing: boolean;
}

/** The `daemon` section: what `vfio-review run` watches, how it queues, and where it reports. */
export interface DaemonConfig {
  readonly sources: readonly DaemonSource[];
  /** An incomplete series is reviewed this long after its last message arrived. Default 600. */
  readonly waitSeconds: number;
  /** Check workers (threads). Default: the number of cores. */
  readonly workers: number;
  /** Sinks replies go through; null: report.defaultSink. */
  readonly sinks: readonly SinkName[] | null;
  /** A running job's lease; renewed every third of it. Default 60. */
  readonly leaseSeconds: number;
  /** Attempts before a job is 'failed' for good. Default 5. */
  readonly maxAttempts: number;
  /** Delay before a failed attempt is tried again (doubling). Default 60. */
  readonly retrySeconds: number;
  /** How often due outbox replies (retries) are delivered. Default 30. */
  readonly deliverSeconds: number;
  /** How often the daemon looks for series whose wait is over, stale leases, due jobs. Default 2000. */
  readonly tickMs: number;
  /** SIGTERM waits this long for checks in progress before abandoning them. Default 20. */
  readonly shutdownGraceSeconds: number;
  /** Series whose newest mail is older than this are not reviewed (first sync of an old mailbox). Default 14; null: no limit. */
  readonly maxAgeDays: number | null;
  /** Run the base tree's checkpatch.pl (when it has one). Default true. */
  readonly checkpatch: boolean;
  /** Files whose C model a new check worker builds before its first series (see src/daemon/warm.ts). */
  readonly warmPaths: readonly string[];
  /** Directories whose .c files (recursively) a worker models while idle, after warmPaths. */
  readonly warmDirs: readonly string[];
  readonly logLevel: LogLevel;
}

/** Command-line values `run` passes over everything else. */
export interface DaemonFlags {
  workers?: number;
  waitSeconds?: number;
  logLevel?: LogLevel;
}

type Obj = Record<string, unknown>;
const fail = (what: string): never => {
  throw new VrError('CONFIG_INVALID', `daemon.${what}`);
};
const obj = (v: unknown, what: string): Obj =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : fail(`${what} must be an object`);
const num = (v: unknown, dflt: number, what: string, min = 0): number =>
  v === undefined ? dflt : typeof v === 'number' && Number.isFinite(v) && v >= min ? v : fail(`${what} must be a number >= ${min}`);
const int = (v: unknown, dflt: number, what: string, min: number): number =>
  Number.isInteger(num(v, dflt, what, min)) ? num(v, dflt, what, min) : fail(`${what} must be a whole number`);
const str = (v: unknown, what: string): string => (typeof v === 'string' && v.trim() !== '' ? v.trim() : fail(`${what} must be a string`));

/** An environment number, or undefined when unset; invalid values are errors, not ignored. */
function envNum(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v.trim() === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new VrError('CONFIG_INVALID', `${name} must be a number >= 0, not '${v}'`);
  return n;
}

function source(v: unknown, i: number, env: NodeJS.ProcessEnv): DaemonSource {
  const o = obj(v, `sources[${i}]`);
  const at = `sources[${i}]`;
  // Passwords are read from the environment only; one found in the file is refused, not ignored.
  if (o.pass !== undefined || o.password !== undefined) fail(`${at}: the password does not belong in the file; set the variable passwordEnv names`);
  const secure = o.secure === undefined ? true : typeof o.secure === 'boolean' ? o.secure : fail(`${at}.secure must be true or false`);
  const host = str(o.host, `${at}.host`);
  const user = str(o.user, `${at}.user`);
  const passwordEnv = o.passwordEnv === undefined ? 'VFIO_REVIEW_IMAP_PASS' : str(o.passwordEnv, `${at}.passwordEnv`);
  if (!/^[A-Z_][A-Z0-9_]*$/.test(passwordEnv)) fail(`${at}.passwordEnv must name an environment variable`);
  const mailboxes = o.mailboxes === undefined ? ['INBOX'] : o.mailboxes;
  if (!Array.isArray(mailboxes) || mailboxes.length === 0 || !mailboxes.every((m) => typeof m === 'string' && m !== '')) {
    fail(`${at}.mailboxes must be a non-empty array of mailbox names`);
  }
  const pass = env[passwordEnv];
  const imap: ImapSourceConfig = {
    host,
    port: int(o.port, secure ? 993 : 143, `${at}.port`, 1),
    secure,
    auth: { user, pass: pass ?? '' },
    mailboxes: [...(mailboxes as string[])],
    ...(o.pollIntervalMs !== undefined ? { pollIntervalMs: num(o.pollIntervalMs, 0, `${at}.pollIntervalMs`, 100) } : {}),
    ...(o.idle !== undefined ? { idle: o.idle === true } : {}),
    ...(o.starttls !== undefined ? { starttls: o.starttls === true } : {}),
    ...(o.tlsRejectUnauthorized !== undefined ? { tlsRejectUnauthorized: o.tlsRejectUnauthorized !== false } : {}),
  };
  const name = o.name === undefined ? `${user}@${host}:${imap.port}` : str(o.name, `${at}.name`);
  return Object.freeze({ name, imap: Object.freeze(imap), passwordEnv, passwordMissing: !pass });
}

/**
 * Parses the `daemon` section: defaults -> file -> environment -> flags. Environment:
 * VFIO_REVIEW_WORKERS, VFIO_REVIEW_WAIT_SECONDS, VFIO_REVIEW_LOG_LEVEL, and each source's password
 * variable (`passwordEnv`, default VFIO_REVIEW_IMAP_PASS). Without `daemon.sources` the top-level
 * `imap` section, when there is one, is the one source.
 */
export function parseDaemonConfig(
  raw: unknown,
  opts: { env?: NodeJS.ProcessEnv; flags?: DaemonFlags; imap?: ImapSourceConfig | null } = {},
): DaemonConfig {
  const env = opts.env ?? process.env;
  const flags = opts.flags ?? {};
  const o = raw === undefined ? {} : obj(raw, '(section) must be an object');
  let sources: DaemonSource[];
  if (o.sources !== undefined) {
    if (!Array.isArray(o.sources)) fail('sources must be an array');
    sources = (o.sources as unknown[]).map((s, i) => source(s, i, env));
    const names = sources.map((s) => s.name);
    if (new Set(names).size !== names.length) fail('sources: two sources have the same name');
  } else if (opts.imap) {
    const i = opts.imap;
    sources = [Object.freeze({ name: `${i.auth.user}@${i.host}:${i.port}`, imap: i, passwordEnv: 'VFIO_REVIEW_IMAP_PASS', passwordMissing: !i.auth.pass })];
  } else {
    sources = [];
  }
  let sinks: SinkName[] | null = null;
  if (o.sinks !== undefined) {
    if (!Array.isArray(o.sinks) || o.sinks.length === 0) fail('sinks must be a non-empty array');
    for (const s of o.sinks as unknown[]) if (!SINK_NAMES.includes(s as SinkName)) fail(`sinks: '${String(s)}' is not one of ${SINK_NAMES.join(', ')}`);
    sinks = [...new Set(o.sinks as SinkName[])];
  }
  let logLevel = (o.logLevel ?? 'info') as LogLevel;
  const envLevel = env.VFIO_REVIEW_LOG_LEVEL?.trim();
  if (envLevel) logLevel = envLevel as LogLevel;
  if (flags.logLevel !== undefined) logLevel = flags.logLevel;
  if (!LOG_LEVELS.includes(logLevel)) fail(`logLevel must be one of ${LOG_LEVELS.join(', ')}`);

  let workers = int(o.workers, availableParallelism(), 'workers', 1);
  workers = envNum(env, 'VFIO_REVIEW_WORKERS') ?? workers;
  workers = flags.workers ?? workers;
  if (!Number.isInteger(workers) || workers < 1) fail('workers must be a whole number >= 1');
  let waitSeconds = num(o.waitSeconds, 600, 'waitSeconds');
  waitSeconds = envNum(env, 'VFIO_REVIEW_WAIT_SECONDS') ?? waitSeconds;
  waitSeconds = flags.waitSeconds ?? waitSeconds;
  if (!(waitSeconds >= 0)) fail('waitSeconds must be a number >= 0');

  const maxAge = o.maxAgeDays === null ? null : num(o.maxAgeDays, 14, 'maxAgeDays');
  if (o.checkpatch !== undefined && typeof o.checkpatch !== 'boolean') fail('checkpatch must be true or false');
  const treePaths = (v: unknown): v is string[] =>
    Array.isArray(v) && v.every((p) => typeof p === 'string' && /^[\w.+-]+(?:\/[\w.+-]+)*$/.test(p) && !p.split('/').includes('..'));
  const warm = o.warmPaths === undefined ? DEFAULT_WARM_PATHS : o.warmPaths;
  if (!treePaths(warm)) fail('warmPaths must be an array of tree paths');
  const warmDirs = o.warmDirs === undefined ? DEFAULT_WARM_DIRS : o.warmDirs;
  if (!treePaths(warmDirs)) fail('warmDirs must be an array of tree directories');
  return Object.freeze({
    sources: Object.freeze(sources),
    waitSeconds,
    workers,
    sinks: sinks ? Object.freeze(sinks) : null,
    leaseSeconds: num(o.leaseSeconds, 60, 'leaseSeconds', 1),
    maxAttempts: int(o.maxAttempts, 5, 'maxAttempts', 1),
    retrySeconds: num(o.retrySeconds, 60, 'retrySeconds'),
    deliverSeconds: num(o.deliverSeconds, 30, 'deliverSeconds', 0.1),
    tickMs: num(o.tickMs, 2000, 'tickMs', 50),
    shutdownGraceSeconds: num(o.shutdownGraceSeconds, 20, 'shutdownGraceSeconds'),
    maxAgeDays: maxAge,
    checkpatch: o.checkpatch !== false,
    warmPaths: Object.freeze([...(warm as string[])]),
    warmDirs: Object.freeze([...(warmDirs as string[])]),
    logLevel,
  });
}
