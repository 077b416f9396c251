/** Concern queries behind /concerns and /concerns/:id (HTML and JSON alike). Plain data, never markup. */
import type { Db } from '../../store/db.js';
import type { ConcernState, ReportFinding } from '../../report/types.js';

export type StateFilter = 'open' | 'resolved' | 'dismissed' | 'all';
export const SORT_KEYS = ['date', 'severity', 'rule', 'category', 'file', 'author', 'series', 'state'] as const;
export type SortKey = (typeof SORT_KEYS)[number];

/** The /concerns query parameters, validated. Empty strings mean "no filter". */
export interface ConcernFilter {
  state: StateFilter;
  list: string;
  path: string;
  rule: string;
  category: string;
  severity: string;
  author: string;
  /** Days since the first version that had the concern was posted. */
  minAge: number | null;
  maxAge: number | null;
  sort: SortKey;
  dir: 'asc' | 'desc';
}

export interface ConcernListItem {
  id: string;
  state: ConcernState;
  rule: string;
  category: string;
  severity: string | null;
  file: string;
  function: string | null;
  line: number | null;
  message: string;
  lineageId: number;
  lineageTitle: string | null;
  /** The newest version the concern was seen on. */
  seriesId: number | null;
  version: number | null;
  subject: string | null;
  author: string | null;
  /** When the first version that had it was posted (ISO). */
  since: string | null;
  ageDays: number | null;
  versionsSeen: number;
  dismissedBy: string | null;
  dismissedWhy: string | null;
}

export const ROW_LIMIT = 1000;

function str(v: string | undefined, max = 200): string {
  return (v ?? '').trim().slice(0, max);
}

function days(v: string | undefined): number | null {
  if (v === undefined || v.trim() === '') return null;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : null;
}

/** Reads the filter from query parameters; unknown values fall back to the defaults instead of failing. */
export function parseConcernFilter(q: Record<string, string | undefined>): ConcernFilter {
  const state = (['open', 'resolved', 'dismissed', 'all'] as const).find((s) => s === q.state) ?? 'open';
  const sort = SORT_KEYS.find((s) => s === q.sort) ?? 'date';
  const dir = q.dir === 'asc' || q.dir === 'desc' ? q.dir : sort === 'date' ? 'desc' : 'asc';
  return {
    state, list: str(q.list), path: str(q.path, 1000), rule: str(q.rule), category: str(q.category), severity: str(q.severity),
    author: str(q.author), minAge: days(q.min_age), maxAge: days(q.max_age), sort, dir,
  };
}

/** The filter as query parameters again (for sort links and the JSON echo), defaults left out. */
export function filterQuery(f: ConcernFilter): Record<string, string> {
  const out: Record<string, string> = {};
  if (f.state !== 'open') out.state = f.state;
  for (const k of ['list', 'path', 'rule', 'category', 'severity', 'author'] as const) if (f[k]) out[k] = f[k];
  if (f.minAge !== null) out.min_age = String(f.minAge);
  if (f.maxAge !== null) out.max_age = String(f.maxAge);
  if (f.sort !== 'date') out.sort = f.sort;
  if (f.dir !== (f.sort === 'date' ? 'desc' : 'asc')) out.dir = f.dir;
  return out;
}

// Whitelisted ORDER BY expressions over the columns of SELECT: the sort key never reaches SQL as text.
const ORDER: Record<SortKey, string> = {
  date: 'since',
  severity: "CASE json_extract(finding, '$.severity') WHEN 'error' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END",
  rule: 'rule',
  category: 'category',
  file: 'file',
  author: "lower(coalesce(author_addr, ''))",
  series: "lower(coalesce(lineage_title, subject, ''))",
  state: "CASE state WHEN 'new' THEN 0 WHEN 'open' THEN 1 WHEN 'resolved' THEN 2 ELSE 3 END",
};

interface Row {
  cid: number; public_id: string; state: ConcernState; rule: string; category: string; file: string; function: string | null;
  lineage_id: number; lineage_title: string | null; series_id: number | null; version: number | null; subject: string | null;
  author_addr: string | null; author_name: string | null; since: number | null; finding: string | null; versions_seen: number;
  dismissed_by: string | null; dismissed_why: string | null;
}

/** One row per concern, with its newest version and latest finding; the filters run over these names. */
export const CONCERN_SELECT = `
  SELECT c.id AS cid, c.public_id, c.state, c.rule, c.category, c.file, c.function, c.lineage_id, c.dismissed_by, c.dismissed_why,
    l.title AS lineage_title, s.id AS series_id, s.version, s.subject, s.author_addr, s.author_name,
    coalesce(fs.first_date, CAST(strftime('%s', c.created_at) AS INTEGER)) AS since,
    (SELECT cs.finding FROM concern_sightings cs WHERE cs.concern_id = c.id ORDER BY cs.check_id DESC LIMIT 1) AS finding,
    (SELECT count(DISTINCT cs.series_id) FROM concern_sightings cs WHERE cs.concern_id = c.id) AS versions_seen
  FROM concerns c
  LEFT JOIN series s ON s.id = coalesce(c.last_seen_series_id, c.first_series_id)
  LEFT JOIN series fs ON fs.id = c.first_series_id
  LEFT JOIN lineages l ON l.id = c.lineage_id`;

/** A concern row of CONCERN_SELECT as the pages and the JSON show it. */
export function toItem(r: Row, now = Date.now()): ConcernListItem {
  const f = r.finding ? (JSON.parse(r.finding) as ReportFinding) : null;
  return {
    id: r.public_id, state: r.state, rule: r.rule, category: r.category, severity: f?.severity ?? null, file: r.file,
    function: r.function, line: f?.line ?? null, message: f?.message ?? '', lineageId: r.lineage_id, lineageTitle: r.lineage_title,
    seriesId: r.series_id, version: r.version, subject: r.subject,
    author: r.author_name && r.author_addr ? `${r.author_name} <${r.author_addr}>` : (r.author_addr ?? r.author_name),
    since: r.since === null ? null : new Date(r.since * 1000).toISOString(),
    ageDays: r.since === null ? null : Math.max(0, Math.floor((now - r.since * 1000) / 86_400_000)),
    versionsSeen: r.versions_seen, dismissedBy: r.dismissed_by, dismissedWhy: r.dismissed_why,
  };
}

/** Concerns matching the filter, sorted, at most ROW_LIMIT (`truncated` says when more matched). */
export function listConcerns(db: Db, f: ConcernFilter, now = Date.now()): { items: ConcernListItem[]; truncated: boolean } {
  const where: string[] = [];
  const args: (string | number)[] = [];
  const add = (clause: string, ...values: (string | number)[]): void => void (where.push(clause), args.push(...values));
  if (f.state === 'open') add("state IN ('new', 'open')");
  else if (f.state !== 'all') add('state = ?', f.state);
  if (f.rule) add('rule = ?', f.rule);
  if (f.category) add('category = ?', f.category);
  if (f.severity) add("json_extract(finding, '$.severity') = ?", f.severity);
  // A glob when the user wrote one (drivers/vfio/*), a substring otherwise; instr() has no wildcards to escape.
  if (f.path) add(/[*?[]/.test(f.path) ? 'file GLOB ?' : 'instr(file, ?) > 0', f.path);
  if (f.author) add("instr(lower(coalesce(author_name, '') || ' <' || coalesce(author_addr, '') || '>'), lower(?)) > 0", f.author);
  if (f.list) {
    // Any version of the lineage posted to the list counts: a series may move lists between versions.
    add(`EXISTS (SELECT 1 FROM series ls JOIN series_patches sp ON sp.series_id = ls.id JOIN messages m ON m.id = sp.message_id,
      json_each(m.list_ids) j WHERE ls.lineage_id = q.lineage_id AND instr(lower(j.value), lower(?)) > 0)`, f.list);
  }
  const nowS = Math.floor(now / 1000);
  if (f.minAge !== null) add('since <= ?', nowS - Math.round(f.minAge * 86400));
  if (f.maxAge !== null) add('since >= ?', nowS - Math.round(f.maxAge * 86400));
  const rows = db
    .prepare(
      `SELECT * FROM (${CONCERN_SELECT}) q ${where.length ? 'WHERE ' + where.join(' AND ') : ''}
       ORDER BY ${ORDER[f.sort]} ${f.dir === 'asc' ? 'ASC' : 'DESC'}, cid DESC LIMIT ${ROW_LIMIT + 1}`,
    )
    .all(...args) as Row[];
  return { items: rows.slice(0, ROW_LIMIT).map((r) => toItem(r, now)), truncated: rows.length > ROW_LIMIT };
}

/** Values the filter form offers: rules, categories and lists that occur. */
export function concernFacets(db: Db): { rules: string[]; categories: string[]; lists: string[] } {
  const col = (sql: string): string[] => db.prepare(sql).pluck().all() as string[];
  return {
    rules: col('SELECT DISTINCT rule FROM concerns ORDER BY rule'),
    categories: col('SELECT DISTINCT category FROM concerns ORDER BY category'),
    lists: col(`SELECT DISTINCT j.value FROM series s JOIN series_patches sp ON sp.series_id = s.id
      JOIN messages m ON m.id = sp.message_id, json_each(m.list_ids) j
      WHERE s.lineage_id IN (SELECT DISTINCT lineage_id FROM concerns) ORDER BY j.value LIMIT 100`),
  };
}
