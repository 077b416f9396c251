/** Queries behind / and /series/:id. Plain data: the JSON twins return exactly this. */
import type { Db } from '../../store/db.js';
import { listSeries, type SeriesView } from '../../series/query.js';
import type { Finding } from '../../check/check.js';
import type { ApplyResult, BaseAttempt } from '../../apply/types.js';
import type { ConcernState } from '../../report/types.js';
import { fingerprint } from '../../report/fingerprint.js';
import { lineageConcerns } from '../../report/concerns.js';
import { quoteFromDiff, type Quote } from './quote.js';

export interface SeriesIndexItem {
  id: number; subject: string; version: number; author: string | null; date: string | null; complete: boolean;
  lineageId: number | null; lastCheck: { id: number; status: string; finishedAt: string } | null; openConcerns: number;
}

const iso = (unix: number | null): string | null => (unix === null ? null : new Date(unix * 1000).toISOString());
const who = (name: string | null, addr: string | null): string | null => (name && addr ? `${name} <${addr}>` : (addr ?? name));

/** Series versions, newest first; relevant ones unless `all`. */
export function seriesIndex(db: Db, opts: { all?: boolean; limit?: number } = {}): SeriesIndexItem[] {
  const rows = db
    .prepare(
      `SELECT s.id, s.subject, s.version, s.author_name, s.author_addr, s.first_date, s.complete, s.lineage_id,
         ch.id AS check_id, ch.status, ch.finished_at,
         (SELECT count(*) FROM concerns c WHERE c.lineage_id = s.lineage_id AND c.state IN ('new', 'open')) AS open_concerns
       FROM series s LEFT JOIN checks ch ON ch.id = (SELECT max(id) FROM checks WHERE series_id = s.id)
       ${opts.all ? '' : 'WHERE s.relevant = 1'} ORDER BY s.first_date DESC, s.id DESC LIMIT ?`,
    )
    .all(opts.limit ?? 200) as {
      id: number; subject: string; version: number; author_name: string | null; author_addr: string | null; first_date: number | null;
      complete: number; lineage_id: number | null; check_id: number | null; status: string | null; finished_at: string | null; open_concerns: number;
    }[];
  return rows.map((r) => ({
    id: r.id, subject: r.subject, version: r.version, author: who(r.author_name, r.author_addr), date: iso(r.first_date),
    complete: r.complete === 1, lineageId: r.lineage_id,
    lastCheck: r.check_id === null ? null : { id: r.check_id, status: r.status!, finishedAt: r.finished_at! },
    openConcerns: r.open_concerns,
  }));
}

export interface VersionItem { id: number; version: number; subject: string; date: string | null; complete: boolean; lastStatus: string | null; checks: number }

export interface FindingView extends Finding {
  concern: { id: string; state: ConcernState } | null;
  quote: Quote | null;
}

export interface CheckView {
  id: number; trigger: string; tree: string; status: string; label: string; baseRef: string | null; baseCommit: string | null;
  headCommit: string | null; complete: boolean; error: string | null; startedAt: string; finishedAt: string;
  attempts: BaseAttempt[];
  patches: { index: number; msgid: string | null; subject: string | null; status: string; method?: string; detail?: string }[];
  findings: FindingView[];
}

export interface ConcernRow {
  id: string; state: ConcernState; rule: string; category: string; file: string; function: string | null; message: string;
  dismissedBy: string | null; dismissedWhy: string | null;
  /** Per version of the lineage (series id -> verdict): found, absent (full review without it), not-reviewed, not-checked. */
  byVersion: Record<number, 'found' | 'absent' | 'not-reviewed' | 'not-checked'>;
}

export interface ReplyView {
  id: number; seriesId: number; version: number; sink: string; kind: string; state: string; subject: string; messageId: string;
  targetMsgid: string; revision: number; attempts: number; lastError: string | null; remoteId: string | null;
  decidedAt: string; sentAt: string | null; githubUrl: string | null;
}

export interface SeriesDetail {
  series: SeriesView & { authorName: string | null };
  lineage: { id: number; key: string; title: string } | null;
  versions: VersionItem[];
  checks: CheckView[];
  concerns: ConcernRow[];
  replies: ReplyView[];
  githubIssues: { repo: string; number: number; url: string }[];
}

function checkViews(db: Db, seriesId: number, lineageId: number | null): CheckView[] {
  const rows = db.prepare('SELECT * FROM checks WHERE series_id = ? ORDER BY id DESC').all(seriesId) as {
    id: number; trigger: string; tree: string; status: string; label: string; base_ref: string | null; base_commit: string | null;
    head_commit: string | null; complete: number; error: string | null; started_at: string; finished_at: string; apply_json: string; findings_json: string;
  }[];
  const concernOf = db.prepare('SELECT public_id, state FROM concerns WHERE lineage_id = ? AND fingerprint = ?');
  const diffOf = db.prepare('SELECT diff FROM messages WHERE message_id = ? OR ident = ? ORDER BY id DESC LIMIT 1').pluck();
  const diffs = new Map<string, string | null>();
  return rows.map((r) => {
    const apply = JSON.parse(r.apply_json) as ApplyResult | null;
    const findings = (JSON.parse(r.findings_json) as Finding[]).map((f): FindingView => {
      const c = lineageId === null ? undefined : (concernOf.get(lineageId, fingerprint(f)) as { public_id: string; state: ConcernState } | undefined);
      if (f.patch && !diffs.has(f.patch)) diffs.set(f.patch, (diffOf.get(f.patch, f.patch) as string | null | undefined) ?? null);
      const diff = f.patch ? diffs.get(f.patch) : null;
      return { ...f, concern: c ? { id: c.public_id, state: c.state } : null, quote: diff && f.line ? quoteFromDiff(diff, f.file, f.line) : null };
    });
    return {
      id: r.id, trigger: r.trigger, tree: r.tree, status: r.status, label: r.label, baseRef: r.base_ref, baseCommit: r.base_commit,
      headCommit: r.head_commit, complete: r.complete === 1, error: r.error, startedAt: r.started_at, finishedAt: r.finished_at,
      attempts: apply?.attempts ?? [],
      patches: (apply?.patches ?? []).map((p) => ({
        index: p.index, msgid: p.msgid, subject: p.subject, status: p.status,
        ...(p.method ? { method: p.method } : {}), ...(p.detail ? { detail: p.detail } : {}),
      })),
      findings,
    };
  });
}

function concernMatrix(db: Db, lineageId: number, versions: VersionItem[]): ConcernRow[] {
  const latest = new Map<number, { checkId: number; reviewable: boolean }>();
  for (const v of versions) {
    const r = db
      .prepare('SELECT check_id, reviewable FROM concern_checks WHERE series_id = ? ORDER BY check_id DESC LIMIT 1')
      .get(v.id) as { check_id: number; reviewable: number } | undefined;
    if (r) latest.set(v.id, { checkId: r.check_id, reviewable: r.reviewable === 1 });
  }
  const sighted = db.prepare('SELECT check_id FROM concern_sightings cs JOIN concerns c ON c.id = cs.concern_id WHERE c.public_id = ?').pluck();
  return lineageConcerns(db, lineageId).map((c) => {
    const checks = new Set(sighted.all(c.id) as number[]);
    const byVersion: ConcernRow['byVersion'] = {};
    for (const v of versions) {
      const l = latest.get(v.id);
      byVersion[v.id] = !l ? 'not-checked' : checks.has(l.checkId) ? 'found' : l.reviewable ? 'absent' : 'not-reviewed';
    }
    return {
      id: c.id, state: c.state, rule: c.rule, category: c.category, file: c.file, function: c.function, message: c.message,
      dismissedBy: c.dismissedBy, dismissedWhy: c.dismissedWhy, byVersion,
    };
  });
}

function replies(db: Db, seriesIds: number[], lineageId: number | null): ReplyView[] {
  const ids = seriesIds.map(Number).join(',') || 'NULL';
  const rows = db
    .prepare(
      `SELECT o.*, gc.html_url AS github_url FROM outbox o LEFT JOIN github_comments gc ON gc.idem_key = o.idem_key
       WHERE o.series_id IN (${ids}) ${lineageId === null ? '' : 'OR o.lineage_id = ?'} ORDER BY o.decided_at, o.id`,
    )
    .all(...(lineageId === null ? [] : [lineageId])) as {
      id: number; series_id: number; version: number; sink: string; kind: string; state: string; subject: string; message_id: string;
      target_msgid: string; revision: number; attempts: number; last_error: string | null; remote_id: string | null;
      decided_at: string; sent_at: string | null; github_url: string | null;
    }[];
  return rows.map((r) => ({
    id: r.id, seriesId: r.series_id, version: r.version, sink: r.sink, kind: r.kind, state: r.state, subject: r.subject,
    messageId: r.message_id, targetMsgid: r.target_msgid, revision: r.revision, attempts: r.attempts, lastError: r.last_error,
    remoteId: r.remote_id, decidedAt: r.decided_at, sentAt: r.sent_at, githubUrl: r.github_url,
  }));
}

export function seriesDetail(db: Db, id: number): SeriesDetail | null {
  const view = listSeries(db, { all: true, ids: [id] })[0];
  if (!view) return null;
  const authorName = db.prepare('SELECT author_name FROM series WHERE id = ?').pluck().get(id) as string | null;
  const lineage = view.lineage === null
    ? null
    : ((db.prepare('SELECT id, key, title FROM lineages WHERE id = ?').get(view.lineage) as SeriesDetail['lineage'] | undefined) ?? null);
  const versionRows = lineage
    ? (db
        .prepare(
          `SELECT s.id, s.version, s.subject, s.first_date, s.complete,
             (SELECT status FROM checks WHERE series_id = s.id ORDER BY id DESC LIMIT 1) AS last_status,
             (SELECT count(*) FROM checks WHERE series_id = s.id) AS checks
           FROM series s WHERE s.lineage_id = ? ORDER BY s.version, s.first_date, s.id`,
        )
        .all(lineage.id) as { id: number; version: number; subject: string; first_date: number | null; complete: number; last_status: string | null; checks: number }[])
    : [];
  const versions: VersionItem[] = versionRows.map((v) => ({
    id: v.id, version: v.version, subject: v.subject, date: iso(v.first_date), complete: v.complete === 1, lastStatus: v.last_status, checks: v.checks,
  }));
  if (versions.length === 0) {
    versions.push({ id, version: view.version, subject: view.subject, date: view.date, complete: view.complete, lastStatus: null, checks: 0 });
  }
  const githubIssues = lineage
    ? (db.prepare('SELECT repo, issue_number AS number, html_url AS url FROM github_issues WHERE lineage_id = ? ORDER BY repo').all(lineage.id) as SeriesDetail['githubIssues'])
    : [];
  return {
    series: { ...view, authorName },
    lineage,
    versions,
    checks: checkViews(db, id, lineage?.id ?? null),
    concerns: lineage ? concernMatrix(db, lineage.id, versions) : [],
    replies: replies(db, versions.map((v) => v.id), lineage?.id ?? null),
    githubIssues,
  };
}
