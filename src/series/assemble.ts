import type { Db } from '../store/db.js';
import { nowIso } from '../store/db.js';
import { normaliseTitle } from '../mail/subject.js';
import { relevanceOf, type Relevance } from './relevance.js';
import { linkLineages } from './lineage.js';
import { collectTrailers } from './trailers.js';

/** A patch or cover message as the assembler sees it. */
export interface Candidate {
  id: number;
  ident: string;
  messageId: string | null;
  kind: 'patch' | 'cover';
  subject: string;
  title: string;
  prefixes: string[];
  version: number;
  versionStated: boolean;
  counter: number;
  total: number;
  rfc: boolean;
  resend: boolean;
  sender: string;
  senderName: string | null;
  date: number;
  parent: string | null;
  paths: string[];
  baseCommit: string | null;
  changeId: string | null;
  prereqIds: string[];
  basedOn: string[];
}

export interface Assembled {
  key: string;
  members: Candidate[];
  cover: Candidate | null;
  /** Index = counter (1..total); null = missing. */
  patches: (Candidate | null)[];
  total: number;
  threading: 'threaded' | 'unthreaded' | 'single';
}

export interface SeriesRebuildSummary {
  series: number;
  complete: number;
  incomplete: number;
  relevant: number;
  lineages: number;
}

/** How far apart in time unthreaded parts of one posting may be (git send-email, list delays). */
const UNTHREADED_WINDOW_S = 3 * 3600;

interface Row {
  id: number; ident: string; message_id: string | null; kind: 'patch' | 'cover'; subject: string | null;
  title: string | null; prefixes: string; version: number | null; version_stated: number; counter: number | null;
  total: number | null; rfc: number; resend: number; from_addr: string | null; from_name: string | null;
  reply_to_addr: string | null; date_unix: number | null; touched_paths: string; base_commit: string | null;
  change_id: string | null; prereq_ids: string; based_on: string; parent: string | null;
}

/** The real sender: lists that rewrite From for DMARC ("Name via iommu <list@...>") keep it in Reply-To. */
function senderOf(r: Row): string {
  if (r.reply_to_addr && r.from_name && / via [\w.-]+$/i.test(r.from_name)) return r.reply_to_addr;
  return r.from_addr ?? `unknown:${r.ident}`;
}

export function loadCandidates(db: Db): Candidate[] {
  const rows = db
    .prepare(
      `SELECT m.id, m.ident, m.message_id, m.kind, m.subject, m.title, m.prefixes, m.version, m.version_stated,
              m.counter, m.total, m.rfc, m.resend, m.from_addr, m.from_name, m.reply_to_addr, m.date_unix,
              m.touched_paths, m.base_commit, m.change_id, m.prereq_ids, m.based_on, t.parent
       FROM messages m LEFT JOIN thread_nodes t ON t.msgid = m.message_id
       WHERE m.parse_state = 'parsed' AND m.kind IN ('patch', 'cover')
       ORDER BY m.date_unix, m.id`,
    )
    .all() as Row[];
  return rows.map((r) => ({
    id: r.id,
    ident: r.ident,
    messageId: r.message_id,
    kind: r.kind,
    subject: r.subject ?? '',
    title: r.title ?? '',
    prefixes: JSON.parse(r.prefixes) as string[],
    version: r.version ?? 1,
    versionStated: r.version_stated === 1,
    counter: r.counter ?? 1,
    total: Math.max(r.total ?? 1, r.counter ?? 1, 1),
    rfc: r.rfc === 1,
    resend: r.resend === 1,
    sender: senderOf(r),
    senderName: r.from_name,
    date: r.date_unix ?? 0,
    parent: r.parent,
    paths: JSON.parse(r.touched_paths) as string[],
    baseCommit: r.base_commit,
    changeId: r.change_id,
    prereqIds: JSON.parse(r.prereq_ids) as string[],
    basedOn: JSON.parse(r.based_on) as string[],
  }));
}

function sameSeries(a: Candidate, b: Candidate): boolean {
  return a.sender === b.sender && a.version === b.version && a.total === b.total;
}

/**
 * Groups candidates into series versions: first by threading (a patch joins
 * the cover or first patch it replies to, directly or through a chain of
 * earlier patches), then unthreaded groups join a posting by the same sender
 * with the same version, total and prefixes within a time window, when
 * their counters do not collide.
 */
export function assemble(cands: Candidate[]): Assembled[] {
  const byMsgId = new Map<string, Candidate>();
  for (const c of cands) if (c.messageId && !byMsgId.has(c.messageId)) byMsgId.set(c.messageId, c);

  const groups = new Map<string, Candidate[]>();
  for (const c of cands) {
    let cur = c;
    for (let guard = 0; guard < 10_000; guard++) {
      const p = cur.parent ? byMsgId.get(cur.parent) : undefined;
      if (!p || p === c || !sameSeries(p, c) || !(p.counter < cur.counter)) break;
      cur = p;
    }
    const g = groups.get(cur.ident) ?? [];
    g.push(c);
    groups.set(cur.ident, g);
  }

  // Unthreaded joining, within buckets of one sender / version / total / prefixes / RFC-ness.
  interface G { members: Candidate[]; counters: Set<number>; start: number; hasCover: boolean; merged: boolean }
  const buckets = new Map<string, G[]>();
  for (const members of groups.values()) {
    const a = members[0]!;
    const key = [a.sender, a.version, a.total, a.rfc, a.resend, a.prefixes.map((p) => p.toLowerCase()).join(',')].join('|');
    const g: G = {
      members,
      counters: new Set(members.map((m) => m.counter)),
      start: Math.min(...members.map((m) => m.date)),
      hasCover: members.some((m) => m.counter === 0),
      merged: false,
    };
    const b = buckets.get(key) ?? [];
    b.push(g);
    buckets.set(key, b);
  }
  const out: Assembled[] = [];
  for (const b of buckets.values()) {
    b.sort((x, y) => x.start - y.start);
    const final: G[] = [];
    for (const g of b) {
      const host = final.find(
        (h) =>
          !(h.hasCover && g.hasCover) &&
          Math.abs(g.start - h.start) <= UNTHREADED_WINDOW_S &&
          ![...g.counters].some((k) => h.counters.has(k)),
      );
      if (host && host.members[0]!.total > 1) {
        host.members.push(...g.members);
        for (const k of g.counters) host.counters.add(k);
        host.hasCover ||= g.hasCover;
        host.merged = true;
      } else final.push(g);
    }
    for (const g of final) out.push(shape(g.members, g.merged));
  }
  out.sort((x, y) => (x.members[0]!.date - y.members[0]!.date) || x.members[0]!.id - y.members[0]!.id);
  return out;
}

function shape(members: Candidate[], merged: boolean): Assembled {
  members.sort((x, y) => x.counter - y.counter || x.date - y.date || x.id - y.id);
  const total = Math.max(...members.map((m) => m.total));
  const patches: (Candidate | null)[] = new Array<Candidate | null>(total + 1).fill(null);
  let cover: Candidate | null = null;
  for (const m of members) {
    if (m.counter === 0) cover ??= m;
    else if (m.counter <= total && patches[m.counter] === null) patches[m.counter] = m;
  }
  const first = cover ?? members.find((m) => m.counter > 0) ?? members[0]!;
  const threading = merged ? 'unthreaded' : total === 1 && !cover ? 'single' : 'threaded';
  return { key: first.ident, members, cover, patches, total, threading };
}

/** Rebuilds every series row from the messages; series and lineage ids stay stable across rebuilds. */
export function rebuildSeries(db: Db, rel: Relevance): SeriesRebuildSummary {
  const series = assemble(loadCandidates(db));
  const now = nowIso();
  const summary: SeriesRebuildSummary = { series: series.length, complete: 0, incomplete: 0, relevant: 0, lineages: 0 };

  db.transaction(() => {
    const existingByMsg = new Map<number, number>();
    for (const r of db.prepare('SELECT series_id, message_id FROM series_patches').iterate() as Iterable<{ series_id: number; message_id: number }>) {
      existingByMsg.set(r.message_id, r.series_id);
    }
    const keep = new Set<number>();
    const ids: number[] = [];
    const upd = db.prepare(`UPDATE series SET key = ?, title = ?, subject = ?, author_addr = ?, author_name = ?,
        version = ?, version_stated = ?, total = ?, rfc = ?, resend = ?, cover_msg = ?, complete = ?, missing = ?,
        threading = ?, base_commit = ?, change_id = ?, prereq_ids = ?, based_on = ?, relevant = ?, relevant_why = ?,
        first_date = ?, last_date = ?, updated_at = ? WHERE id = ?`);
    const ins = db.prepare(`INSERT INTO series (key, title, subject, author_addr, author_name, version,
        version_stated, total, rfc, resend, cover_msg, complete, missing, threading, base_commit, change_id,
        prereq_ids, based_on, relevant, relevant_why, first_date, last_date, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    const byKey = db.prepare('SELECT id FROM series WHERE key = ?').pluck();
    const clearPatches = db.prepare('DELETE FROM series_patches WHERE series_id = ?');
    const addPatch = db.prepare('INSERT INTO series_patches (series_id, counter, message_id) VALUES (?, ?, ?)');

    for (const s of series) {
      const head = s.cover ?? s.patches.find((p) => p) ?? s.members[0]!;
      const present = s.patches.slice(1);
      const missing = present.flatMap((p, i) => (p ? [] : [i + 1]));
      const inOrder = [s.cover, ...present].filter((m): m is Candidate => m !== null);
      const pick = <T>(f: (c: Candidate) => T | null): T | null => {
        for (const m of inOrder) {
          const v = f(m);
          if (v !== null) return v;
        }
        return null;
      };
      const union = (f: (c: Candidate) => string[]): string[] => [...new Set(inOrder.flatMap(f))];
      const verdict = relevanceOf(rel, {
        paths: union((c) => c.paths),
        prefixes: union((c) => c.prefixes),
        titles: inOrder.map((c) => c.title),
      });
      const values = [
        s.key, head.title || head.subject, head.subject, head.sender, head.senderName, head.version,
        s.members.some((m) => m.versionStated) ? 1 : 0, s.total, head.rfc ? 1 : 0, head.resend ? 1 : 0,
        s.cover?.id ?? null, missing.length === 0 ? 1 : 0, JSON.stringify(missing), s.threading,
        pick((c) => c.baseCommit), pick((c) => c.changeId), JSON.stringify(union((c) => c.prereqIds)),
        JSON.stringify(union((c) => c.basedOn)), verdict.relevant ? 1 : 0, verdict.why,
        Math.min(...s.members.map((m) => m.date)), Math.max(...s.members.map((m) => m.date)), now,
      ];
      let id = (byKey.get(s.key) as number | undefined) ?? s.members.map((m) => existingByMsg.get(m.id)).find((x) => x !== undefined && !keep.has(x));
      if (id !== undefined && keep.has(id)) id = undefined;
      if (id !== undefined) {
        // Another row may hold this key (ids reused by overlap): free it first.
        db.prepare('UPDATE series SET key = key || ? WHERE key = ? AND id != ?').run(`#stale-${id}`, s.key, id);
        upd.run(...values, id);
      } else {
        db.prepare('UPDATE series SET key = key || ? WHERE key = ?').run('#stale', s.key);
        id = Number(ins.run(...values).lastInsertRowid);
      }
      keep.add(id);
      ids.push(id);
      clearPatches.run(id);
      for (const m of s.members) {
        if (m === s.cover) addPatch.run(id, 0, m.id);
        else if (s.patches[m.counter] === m) addPatch.run(id, m.counter, m.id);
      }
      if (missing.length === 0) summary.complete++;
      else summary.incomplete++;
      if (verdict.relevant) summary.relevant++;
    }
    const stale = (db.prepare('SELECT id FROM series').pluck().all() as number[]).filter((id) => !keep.has(id));
    const del = db.prepare('DELETE FROM series WHERE id = ?');
    for (const id of stale) del.run(id);

    summary.lineages = linkLineages(db, series.map((s, i) => ({ id: ids[i]!, s })), normaliseTitle);
    collectTrailers(db);
  })();
  return summary;
}
