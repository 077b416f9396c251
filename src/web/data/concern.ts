/** The query behind /concerns/:id: one concern, every version of its lineage, every sighting. */
import type { Db } from '../../store/db.js';
import type { ReportFinding } from '../../report/types.js';
import { CONCERN_SELECT, toItem, type ConcernListItem } from './concerns.js';

/** How one version of the lineage stands towards the concern. */
export type VersionVerdict = 'found' | 'absent' | 'not-reviewed' | 'not-checked';

export interface ConcernVersion {
  seriesId: number;
  version: number;
  subject: string;
  date: string | null;
  /** The latest tracked check of that version. */
  checkId: number | null;
  verdict: VersionVerdict;
}

export interface ConcernSighting {
  checkId: number;
  seriesId: number;
  version: number | null;
  trigger: string | null;
  checkedAt: string | null;
  finding: ReportFinding;
}

export interface ConcernDetail {
  concern: ConcernListItem;
  fingerprint: string;
  dismissedVia: string | null;
  dismissedAt: string | null;
  createdAt: string;
  updatedAt: string;
  versions: ConcernVersion[];
  sightings: ConcernSighting[];
}

const iso = (unix: number | null): string | null => (unix === null ? null : new Date(unix * 1000).toISOString());

export function concernDetail(db: Db, publicId: string): ConcernDetail | null {
  const row = db.prepare(`SELECT * FROM (${CONCERN_SELECT}) q WHERE public_id = ?`).get(publicId.toLowerCase()) as
    | Parameters<typeof toItem>[0]
    | undefined;
  if (!row) return null;
  const extra = db
    .prepare('SELECT fingerprint, dismissed_via, dismissed_at, created_at, updated_at FROM concerns WHERE id = ?')
    .get(row.cid) as { fingerprint: string; dismissed_via: string | null; dismissed_at: string | null; created_at: string; updated_at: string };
  const sightings = (
    db
      .prepare(
        `SELECT cs.check_id, cs.series_id, cs.finding, s.version, ch.trigger, ch.finished_at FROM concern_sightings cs
         LEFT JOIN series s ON s.id = cs.series_id LEFT JOIN checks ch ON ch.id = cs.check_id
         WHERE cs.concern_id = ? ORDER BY cs.check_id`,
      )
      .all(row.cid) as { check_id: number; series_id: number; finding: string; version: number | null; trigger: string | null; finished_at: string | null }[]
  ).map((s) => ({
    checkId: s.check_id, seriesId: s.series_id, version: s.version, trigger: s.trigger, checkedAt: s.finished_at,
    finding: JSON.parse(s.finding) as ReportFinding,
  }));
  const seen = new Set(sightings.map((s) => s.checkId));
  const versions = (
    db
      .prepare(
        `SELECT s.id, s.version, s.subject, s.first_date,
           (SELECT max(cc.check_id) FROM concern_checks cc WHERE cc.series_id = s.id) AS check_id
         FROM series s WHERE s.lineage_id = ? ORDER BY s.version, s.first_date, s.id`,
      )
      .all(row.lineage_id) as { id: number; version: number; subject: string; first_date: number | null; check_id: number | null }[]
  ).map((v): ConcernVersion => {
    let verdict: VersionVerdict = 'not-checked';
    if (v.check_id !== null) {
      const reviewable = db.prepare('SELECT reviewable FROM concern_checks WHERE check_id = ?').pluck().get(v.check_id) === 1;
      verdict = seen.has(v.check_id) ? 'found' : reviewable ? 'absent' : 'not-reviewed';
    }
    return { seriesId: v.id, version: v.version, subject: v.subject, date: iso(v.first_date), checkId: v.check_id, verdict };
  });
  return {
    concern: toItem(row), fingerprint: extra.fingerprint, dismissedVia: extra.dismissed_via, dismissedAt: extra.dismissed_at,
    createdAt: extra.created_at, updatedAt: extra.updated_at, versions, sightings,
  };
}
