import type { Db } from '../store/db.js';
import type { Assembled } from './assemble.js';
import { extractMsgIds } from '../mail/msgid.js';

/** Union-find over series row ids. */
class Dsu {
  private readonly p = new Map<number, number>();
  find(x: number): number {
    let r = x;
    while (this.p.has(r) && this.p.get(r) !== r) r = this.p.get(r)!;
    let c = x;
    while (c !== r) {
      const n = this.p.get(c) ?? r;
      this.p.set(c, r);
      c = n;
    }
    return r;
  }
  union(a: number, b: number): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra !== rb) this.p.set(Math.max(ra, rb), Math.min(ra, rb));
  }
}

const LORE_LINK = /https?:\/\/(?:lore\.kernel\.org|lkml\.kernel\.org|patch\.msgid\.link)\/(?:[\w.-]+\/)?(?<id>[^/\s>]+@[^/\s>]+)/g;

/**
 * Links versions of one series into lineages: the same change-id, the same
 * normalised title from the same sender, a new version posted in reply to
 * an old one, or a cover letter linking the previous version (b4's
 * "Link to v1:" lines, lore links). Lineage ids stay stable across rebuilds.
 */
export function linkLineages(db: Db, series: { id: number; s: Assembled }[], normaliseTitle: (t: string) => string): number {
  const dsu = new Dsu();
  const byChange = new Map<string, number>();
  const byTitle = new Map<string, number>();
  const byMember = new Map<string, number>();
  for (const { id, s } of series) {
    for (const m of s.members) if (m.messageId) byMember.set(m.messageId, id);
  }
  const coverText = db.prepare('SELECT body_text FROM messages WHERE id = ?').pluck();
  for (const { id, s } of series) {
    const head = s.cover ?? s.patches.find((p) => p) ?? s.members[0]!;
    const change = s.members.find((m) => m.changeId)?.changeId;
    if (change) {
      const o = byChange.get(change);
      if (o !== undefined) dsu.union(o, id);
      else byChange.set(change, id);
    }
    const t = `${head.sender}\n${normaliseTitle(head.title)}`;
    if (head.title) {
      const o = byTitle.get(t);
      if (o !== undefined) dsu.union(o, id);
      else byTitle.set(t, id);
    }
    // Posted in reply to an earlier version.
    const parentSeries = head.parent ? byMember.get(head.parent) : undefined;
    if (parentSeries !== undefined && parentSeries !== id) dsu.union(parentSeries, id);
    if (s.cover) {
      const text = (coverText.get(s.cover.id) as string | null) ?? '';
      for (const m of text.matchAll(LORE_LINK)) {
        for (const mid of extractMsgIds(`<${decodeURIComponent(m.groups!.id!)}>`)) {
          const o = byMember.get(mid);
          if (o !== undefined && o !== id) dsu.union(o, id);
        }
      }
    }
  }

  const prior = new Map<number, number | null>(
    (db.prepare('SELECT id, lineage_id FROM series').all() as { id: number; lineage_id: number | null }[]).map((r) => [r.id, r.lineage_id]),
  );
  const groups = new Map<number, { id: number; s: Assembled }[]>();
  for (const x of series) {
    const r = dsu.find(x.id);
    const g = groups.get(r) ?? [];
    g.push(x);
    groups.set(r, g);
  }
  const setLineage = db.prepare('UPDATE series SET lineage_id = ? WHERE id = ?');
  const used = new Set<number>();
  for (const members of groups.values()) {
    members.sort((a, b) => a.s.members[0]!.date - b.s.members[0]!.date || a.id - b.id);
    const key = members[0]!.s.key;
    const latest = members[members.length - 1]!.s;
    const title = (latest.cover ?? latest.patches.find((p) => p) ?? latest.members[0]!).title;
    let lid = members.map((m) => prior.get(m.id)).find((x): x is number => x != null && !used.has(x));
    if (lid === undefined) lid = db.prepare('SELECT id FROM lineages WHERE key = ?').pluck().get(key) as number | undefined;
    if (lid !== undefined && used.has(lid)) lid = undefined;
    if (lid === undefined) {
      db.prepare('UPDATE lineages SET key = key || ? WHERE key = ?').run('#stale', key);
      lid = Number(db.prepare('INSERT INTO lineages (key, title) VALUES (?, ?)').run(key, title).lastInsertRowid);
    } else {
      db.prepare('UPDATE lineages SET key = key || ? WHERE key = ? AND id != ?').run(`#stale-${lid}`, key, lid);
      db.prepare('UPDATE lineages SET key = ?, title = ? WHERE id = ?').run(key, title, lid);
    }
    used.add(lid);
    for (const m of members) setLineage.run(lid, m.id);
  }
  db.exec('DELETE FROM lineages WHERE id NOT IN (SELECT lineage_id FROM series WHERE lineage_id IS NOT NULL)');
  return groups.size;
}
