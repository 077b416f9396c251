import type { Db } from '../store/db.js';
import { nowIso } from '../store/db.js';
import { VrError } from '../errors.js';
import { fingerprint, publicConcernId } from './fingerprint.js';
import type { ConcernRef, ConcernState, ReportFinding } from './types.js';

/** Who can dismiss a concern, and through what. */
export type DismissVia = 'email' | 'dashboard' | 'github' | 'cli';

interface CheckRow {
  id: number; series_id: number; status: string; complete: number; error: string | null; findings_json: string;
  lineage_id: number | null; lineage_key: string | null; version: number;
}

interface ConcernRow {
  id: number; public_id: string; lineage_id: number; fingerprint: string; rule: string; category: string; file: string;
  function: string | null; state: ConcernState; last_seen_series_id: number | null; resolved_series_id: number | null;
}

/** A finding of one check next to the concern it belongs to. */
export interface TrackedFinding {
  finding: ReportFinding;
  fingerprint: string;
  concern: ConcernRef;
}

/** How one check looks against its lineage: what to raise, what it resolved. */
export interface CheckConcerns {
  checkId: number;
  seriesId: number;
  lineageId: number;
  /** Every patch present and the rules ran: absence of a finding means something. */
  reviewable: boolean;
  /** The check's findings that are raised: state 'new' (first seen on this version) or 'open' (seen before). */
  raised: TrackedFinding[];
  /** Findings of dismissed concerns: recorded, never raised again. */
  suppressed: TrackedFinding[];
  /** Concerns the previous checked version had and this one does not (only when reviewable). */
  resolved: ConcernRef[];
  /** The series id of the previous checked version of the lineage, if any. */
  previousSeriesId: number | null;
}

const REVIEWED_STATUSES = new Set(['applied', 'applied-with-fuzz', 'already-applied', 'partial', 'not-applied']);

function loadCheck(db: Db, checkId: number): CheckRow {
  const row = db
    .prepare(
      `SELECT c.id, c.series_id, c.status, c.complete, c.error, c.findings_json, s.lineage_id, s.version,
              l.key AS lineage_key
       FROM checks c JOIN series s ON s.id = c.series_id LEFT JOIN lineages l ON l.id = s.lineage_id WHERE c.id = ?`,
    )
    .get(checkId) as CheckRow | undefined;
  if (!row) throw new VrError('NOT_FOUND', `no check ${checkId}`);
  if (row.lineage_id === null || row.lineage_key === null) {
    throw new VrError('NOT_FOUND', `series ${row.series_id} has no lineage yet (rebuild the series first)`);
  }
  return row;
}

/** Rules ran over every patch: 'rejected' and 'error' ran none, an incomplete series lacks patches. */
function isReviewable(c: CheckRow): boolean {
  return REVIEWED_STATUSES.has(c.status) && c.error === null && c.complete === 1;
}

function toRef(c: ConcernRow, state: ConcernState, message: string): ConcernRef {
  return { id: c.public_id, state, rule: c.rule, category: c.category, file: c.file, function: c.function, message };
}

/** Series of a lineage that have a tracked check, newest version first, each with its latest tracked check. */
function trackedSeries(db: Db, lineageId: number): { seriesId: number; checkId: number; reviewable: boolean }[] {
  return (
    db
      .prepare(
        `SELECT cc.series_id, max(cc.check_id) AS check_id, s.version, s.first_date
         FROM concern_checks cc JOIN series s ON s.id = cc.series_id
         WHERE cc.lineage_id = ? GROUP BY cc.series_id
         ORDER BY s.version DESC, s.first_date DESC, s.id DESC`,
      )
      .all(lineageId) as { series_id: number; check_id: number }[]
  ).map((r) => ({
    seriesId: r.series_id,
    checkId: r.check_id,
    reviewable: (db.prepare('SELECT reviewable FROM concern_checks WHERE check_id = ?').pluck().get(r.check_id) as number) === 1,
  }));
}

/**
 * Re-derives every concern's state on a lineage from the sightings, so the order in which checks are
 * tracked (a rerun of v1 after v2) does not matter: walking from the newest checked version down, the
 * first version whose latest check found the concern makes it open (new when no older version had it);
 * a reviewable check without it before that makes it resolved, at the oldest such version.
 */
function recompute(db: Db, lineageId: number): void {
  const series = trackedSeries(db, lineageId);
  const rank = new Map(series.map((s, i) => [s.seriesId, i]));
  const sightings = db.prepare('SELECT check_id, series_id FROM concern_sightings WHERE concern_id = ?');
  const update = db.prepare(
    `UPDATE concerns SET state = ?, last_seen_series_id = ?, resolved_series_id = ?, updated_at = ?
     WHERE id = ? AND (state != ? OR last_seen_series_id IS NOT ? OR resolved_series_id IS NOT ?)`,
  );
  const now = nowIso();
  const rows = db.prepare("SELECT * FROM concerns WHERE lineage_id = ? AND state != 'dismissed'").all(lineageId) as ConcernRow[];
  for (const c of rows) {
    const seen = sightings.all(c.id) as { check_id: number; series_id: number }[];
    const checks = new Set(seen.map((s) => s.check_id));
    let state: ConcernState | null = null;
    let lastSeen: number | null = null;
    let resolvedAt: number | null = null;
    for (const s of series) {
      if (checks.has(s.checkId)) {
        lastSeen = s.seriesId;
        if (resolvedAt === null) {
          const older = seen.some((x) => (rank.get(x.series_id) ?? -1) > (rank.get(s.seriesId) ?? -1));
          state = older ? 'open' : 'new';
        }
        break;
      }
      // Absent from a full review newer than the last sighting: resolved, at the oldest such version.
      if (s.reviewable) resolvedAt = s.seriesId;
    }
    if (state === null) {
      if (resolvedAt === null) continue; // only unreviewable checks since: nothing learned
      state = 'resolved';
    }
    lastSeen ??= c.last_seen_series_id;
    update.run(state, lastSeen, resolvedAt, now, c.id, state, lastSeen, resolvedAt);
  }
}

/**
 * A series rebuild can merge two lineages and delete one of them. Concerns (and dismissals) recorded
 * on the vanished lineage move to the lineage their series now belong to; when that lineage already
 * has the same fingerprint, the two rows become one and a dismissal on either side is kept.
 */
function rehomeOrphans(db: Db, lineageId: number): void {
  db.prepare(
    `UPDATE concern_checks SET lineage_id = ? WHERE lineage_id != ? AND series_id IN (SELECT id FROM series WHERE lineage_id = ?)`,
  ).run(lineageId, lineageId, lineageId);
  const orphans = db
    .prepare(
      `SELECT DISTINCT c.* FROM concerns c JOIN concern_sightings cs ON cs.concern_id = c.id JOIN series s ON s.id = cs.series_id
       WHERE s.lineage_id = ? AND c.lineage_id != ? AND c.lineage_id NOT IN (SELECT id FROM lineages)`,
    )
    .all(lineageId, lineageId) as (ConcernRow & { dismissed_by: string | null })[];
  for (const o of orphans) {
    const into = db.prepare('SELECT * FROM concerns WHERE lineage_id = ? AND fingerprint = ?').get(lineageId, o.fingerprint) as
      | (ConcernRow & { dismissed_by: string | null })
      | undefined;
    if (!into) {
      db.prepare('UPDATE concerns SET lineage_id = ?, updated_at = ? WHERE id = ?').run(lineageId, nowIso(), o.id);
      continue;
    }
    db.prepare('INSERT OR IGNORE INTO concern_sightings (concern_id, series_id, check_id, finding) SELECT ?, series_id, check_id, finding FROM concern_sightings WHERE concern_id = ?').run(into.id, o.id);
    if (o.state === 'dismissed' && into.state !== 'dismissed') {
      db.prepare(
        `UPDATE concerns SET state = 'dismissed', dismissed_by = (SELECT dismissed_by FROM concerns WHERE id = ?),
           dismissed_why = (SELECT dismissed_why FROM concerns WHERE id = ?), dismissed_via = (SELECT dismissed_via FROM concerns WHERE id = ?),
           dismissed_at = (SELECT dismissed_at FROM concerns WHERE id = ?), updated_at = ? WHERE id = ?`,
      ).run(o.id, o.id, o.id, o.id, nowIso(), into.id);
    }
    db.prepare('DELETE FROM concerns WHERE id = ?').run(o.id);
  }
}

/**
 * Takes one recorded check into the concern tracker: a concern per new fingerprint on the lineage, a
 * sighting per concern found, and every state on the lineage re-derived. Idempotent.
 */
export function trackConcerns(db: Db, checkId: number): CheckConcerns {
  const check = loadCheck(db, checkId);
  const lineageId = check.lineage_id!;
  const findings = JSON.parse(check.findings_json) as ReportFinding[];
  const now = nowIso();
  db.transaction(() => {
    rehomeOrphans(db, lineageId);
    db.prepare(
      'INSERT OR IGNORE INTO concern_checks (check_id, series_id, lineage_id, reviewable, tracked_at) VALUES (?, ?, ?, ?, ?)',
    ).run(check.id, check.series_id, lineageId, isReviewable(check) ? 1 : 0, now);
    const insConcern = db.prepare(
      `INSERT OR IGNORE INTO concerns (public_id, lineage_id, fingerprint, rule, category, file, function,
         first_series_id, last_seen_series_id, state, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'new', ?, ?)`,
    );
    const idOf = db.prepare('SELECT id FROM concerns WHERE lineage_id = ? AND fingerprint = ?').pluck();
    const insSighting = db.prepare(
      'INSERT OR IGNORE INTO concern_sightings (concern_id, series_id, check_id, finding) VALUES (?, ?, ?, ?)',
    );
    for (const f of findings) {
      const fp = fingerprint(f);
      insConcern.run(publicConcernId(check.lineage_key!, fp), lineageId, fp, f.rule, f.category, f.file, f.function ?? null,
        check.series_id, check.series_id, now, now);
      insSighting.run(idOf.get(lineageId, fp), check.series_id, check.id, JSON.stringify(f));
    }
    recompute(db, lineageId);
  }).immediate();
  return concernsOfCheck(db, checkId);
}

/**
 * The view of one tracked check that replies are rendered from: its findings as new / still open /
 * dismissed against the older versions of the lineage, and what the previous checked version had that
 * this one no longer has. Independent of later versions, so re-rendering an old reply gives the same text.
 */
export function concernsOfCheck(db: Db, checkId: number): CheckConcerns {
  const check = loadCheck(db, checkId);
  const lineageId = check.lineage_id!;
  const tracked = db.prepare('SELECT reviewable FROM concern_checks WHERE check_id = ?').pluck().get(checkId) as number | undefined;
  if (tracked === undefined) throw new VrError('NOT_FOUND', `check ${checkId} is not tracked yet (trackConcerns first)`);
  const series = trackedSeries(db, lineageId);
  const myRank = series.findIndex((s) => s.seriesId === check.series_id);
  const olderSeries = new Set(series.slice(myRank + 1).map((s) => s.seriesId));
  const previous = series[myRank + 1] ?? null;
  const byFp = new Map(
    (db.prepare('SELECT * FROM concerns WHERE lineage_id = ?').all(lineageId) as ConcernRow[]).map((c) => [c.fingerprint, c]),
  );
  const seriesOf = db.prepare('SELECT DISTINCT series_id FROM concern_sightings WHERE concern_id = ?').pluck();
  const raised: TrackedFinding[] = [];
  const suppressed: TrackedFinding[] = [];
  const mine = new Set<string>();
  for (const f of JSON.parse(check.findings_json) as ReportFinding[]) {
    const fp = fingerprint(f);
    const c = byFp.get(fp);
    if (!c) continue; // cannot happen after trackConcerns; a finding is never invented here
    mine.add(fp);
    if (c.state === 'dismissed') {
      suppressed.push({ finding: f, fingerprint: fp, concern: toRef(c, 'dismissed', f.message) });
      continue;
    }
    const older = (seriesOf.all(c.id) as number[]).some((s) => olderSeries.has(s));
    raised.push({ finding: f, fingerprint: fp, concern: toRef(c, older ? 'open' : 'new', f.message) });
  }
  const resolved: ConcernRef[] = [];
  if (previous && tracked === 1) {
    const prevFindings = db
      .prepare('SELECT c.*, cs.finding FROM concern_sightings cs JOIN concerns c ON c.id = cs.concern_id WHERE cs.check_id = ?')
      .all(previous.checkId) as (ConcernRow & { finding: string })[];
    for (const c of prevFindings) {
      if (mine.has(c.fingerprint) || c.state === 'dismissed') continue;
      resolved.push(toRef(c, 'resolved', (JSON.parse(c.finding) as ReportFinding).message));
    }
  }
  return {
    checkId, seriesId: check.series_id, lineageId, reviewable: tracked === 1, raised, suppressed, resolved,
    previousSeriesId: previous?.seriesId ?? null,
  };
}

/** Every concern of a lineage as it stands now (dashboard, GitHub tracking issue). */
export function lineageConcerns(db: Db, lineageId: number): (ConcernRef & { dismissedBy: string | null; dismissedWhy: string | null })[] {
  const rows = db
    .prepare(
      `SELECT c.*, (SELECT cs.finding FROM concern_sightings cs WHERE cs.concern_id = c.id ORDER BY cs.check_id DESC LIMIT 1)
         AS finding, c.dismissed_by, c.dismissed_why
       FROM concerns c WHERE c.lineage_id = ? ORDER BY c.id`,
    )
    .all(lineageId) as (ConcernRow & { finding: string; dismissed_by: string | null; dismissed_why: string | null })[];
  return rows.map((c) => ({
    ...toRef(c, c.state, (JSON.parse(c.finding) as ReportFinding).message),
    dismissedBy: c.dismissed_by,
    dismissedWhy: c.dismissed_why,
  }));
}

/**
 * Dismisses a concern on its lineage for good: it is still recorded when found again, never raised.
 * The first dismissal is kept; a second one for the same concern changes nothing and says so.
 */
export function dismissConcern(
  db: Db,
  d: { id: string; by: string; why: string; via: DismissVia },
): { concern: ConcernRef; changed: boolean } {
  const by = d.by.trim();
  const why = d.why.trim();
  if (!by || !why) throw new VrError('USAGE', 'a dismissal needs who and why');
  return db.transaction(() => {
    const c = db.prepare('SELECT * FROM concerns WHERE public_id = ?').get(d.id.toLowerCase()) as ConcernRow | undefined;
    if (!c) throw new VrError('NOT_FOUND', `no concern ${d.id}`);
    const last = db
      .prepare('SELECT finding FROM concern_sightings WHERE concern_id = ? ORDER BY check_id DESC LIMIT 1')
      .pluck()
      .get(c.id) as string;
    const message = (JSON.parse(last) as ReportFinding).message;
    if (c.state === 'dismissed') return { concern: toRef(c, 'dismissed', message), changed: false };
    db.prepare(
      `UPDATE concerns SET state = 'dismissed', dismissed_by = ?, dismissed_why = ?, dismissed_via = ?, dismissed_at = ?,
         updated_at = ? WHERE id = ?`,
    ).run(by.slice(0, 300), why.slice(0, 2000), d.via, nowIso(), nowIso(), c.id);
    return { concern: toRef(c, 'dismissed', message), changed: true };
  }).immediate();
}
