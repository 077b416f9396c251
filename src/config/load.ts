import { readFileSync } from 'node:fs';
import { VrError } from '../errors.js';
import { DEFAULT_DB_PATH } from '../store/db.js';
import { defaultRelevance, type Relevance } from '../series/relevance.js';
import type { ImapSourceConfig } from '../ingest/imap-source.js';
import type { BaseMap, BaseMapRule } from '../apply/base.js';

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
}

interface FileShape {
  db?: unknown;
  relevance?: { paths?: unknown; subjectWords?: unknown };
  imap?: {
    host?: unknown; port?: unknown; secure?: unknown; user?: unknown; mailboxes?: unknown;
    pollIntervalMs?: unknown; tlsRejectUnauthorized?: unknown;
  };
  apply?: { tree?: unknown; default?: unknown; rules?: unknown };
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
export function loadConfig(opts: { file?: string | undefined; env?: NodeJS.ProcessEnv } = {}): Config {
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
  return Object.freeze({ db, relevance: Object.freeze(rel), imap, apply: Object.freeze({ tree, baseMap }) });
}
