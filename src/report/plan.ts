/**
 * Decides what to send for one series version through one sink: loads the latest check, tracks its
 * concerns, applies the policy (muted lists, never-reply rules, recipients), and returns the replies
 * to insert or re-render. Writes nothing but the concern tracking; `decide` in outbox.ts writes.
 */
import { createHash } from 'node:crypto';
import type { Db } from '../store/db.js';
import type { BaseAttempt } from '../apply/types.js';
import { trackConcerns, lineageConcerns, type CheckConcerns, type TrackedFinding } from './concerns.js';
import { composeReplies, renderRerun, renderUnit, type ComposeInput, type ReplyUnit, type TargetMessage } from './compose.js';
import { digestOf } from './fingerprint.js';
import type { NewReply } from './outbox.js';
import { outboxRows } from './outbox.js';
import { listsFor, type ListPolicy, type ListSinkPolicy, type ReportPolicy } from './policy.js';
import { audience, originalRecipients } from './recipients.js';
import { msgIdHeader, replySubject } from './text.js';
import type { ConcernRef, ReplyKind, ReplyMeta, SinkName } from './types.js';

export type PlanResult =
  | { seriesId: number; skip: string }
  | { seriesId: number; inserts: NewReply[]; updates: NewReply[]; listId: string | null; perDay: number | null; notes: string[] };

interface Member {
  id: number; counter: number; message_id: string | null; ident: string; subject: string | null; title: string | null; diff: string | null;
  kind: string; no_process: number; in_reply_to: string | null; refs: string; list_ids: string; raw_id: number;
}

/** hash(series id, version, sink, kind, patch Message-ID [, findings digest for a rerun]). */
export function idemKey(parts: { seriesId: number; version: number; sink: SinkName; kind: ReplyKind; msgid: string; digest?: string }): string {
  const fields = [parts.seriesId, parts.version, parts.sink, parts.kind, parts.msgid, ...(parts.digest ? [parts.digest] : [])];
  return createHash('sha256').update(fields.join('\0')).digest('hex').slice(0, 24);
}

const domainOf = (msgid: string | null): string => (msgid ?? '').replace(/>$/, '').split('@').pop()?.toLowerCase() ?? '';

const DEFAULT_SINK_POLICY: ListSinkPolicy = { mode: 'author+list', cc: [], ccOriginal: true };

/** Why the bot must not answer this series at all, or null. */
function neverReply(members: Member[], policy: ReportPolicy): string | null {
  for (const m of members) {
    const id = m.message_id ?? m.ident;
    if (domainOf(id) === policy.ownDomain) return `message <${id}> is the bot's own mail`;
    if (m.no_process) return `message <${id}> asks not to be processed (or carries X-vfio-review)`;
    if (m.kind !== 'patch' && m.kind !== 'cover') return `message <${id}> is a ${m.kind}, not a patch`;
    const refs = [m.in_reply_to, ...(JSON.parse(m.refs) as string[])];
    if (refs.some((r) => r && domainOf(r) === policy.ownDomain)) return `message <${id}> replies to the bot's own mail`;
  }
  return null;
}

function latestCheckId(db: Db, seriesId: number): number | null {
  return (db.prepare('SELECT max(id) FROM checks WHERE series_id = ?').pluck().get(seriesId) as number | null) ?? null;
}

/** What one check found and how it applied, in the shapes compose.ts takes. */
function loadInput(db: Db, seriesId: number, checkId: number, concerns: CheckConcerns, members: Member[], policy: ReportPolicy): ComposeInput {
  const s = db.prepare('SELECT * FROM series WHERE id = ?').get(seriesId) as { title: string; version: number; total: number };
  const c = db.prepare('SELECT * FROM checks WHERE id = ?').get(checkId) as {
    status: string; label: string; tree: string; base_ref: string | null; base_commit: string | null; apply_json: string; error: string | null;
  };
  const apply = JSON.parse(c.apply_json) as { attempts?: BaseAttempt[]; patches?: { status: string; index: number; detail?: string }[] } | null;
  const failed = apply?.patches?.find((p) => p.status === 'failed' || p.status === 'rejected');
  const target = (m: Member): TargetMessage => ({
    counter: m.counter, msgid: m.message_id ?? m.ident, subject: m.subject ?? s.title, title: m.title ?? s.title, diff: m.diff,
  });
  const patches: (TargetMessage | null)[] = new Array<TargetMessage | null>(s.total).fill(null);
  for (const m of members) if (m.counter > 0 && m.counter <= s.total) patches[m.counter - 1] = target(m);
  const cover = members.find((m) => m.counter === 0);
  const prev = concerns.previousSeriesId === null ? null
    : (db.prepare('SELECT version FROM series WHERE id = ?').pluck().get(concerns.previousSeriesId) as number);
  return {
    series: { id: seriesId, title: s.title, version: s.version, total: s.total, cover: cover ? target(cover) : null, patches },
    check: {
      status: c.status, label: c.label, tree: c.tree, baseRef: c.base_ref, baseCommit: c.base_commit, attempts: apply?.attempts ?? [],
      failedPatch: failed?.index ?? null, detail: failed?.detail ?? null, error: c.error,
    },
    concerns,
    previousVersion: prev,
    dashboardUrl: policy.dashboardUrl,
    clean: policy.clean,
  };
}

/** The lists answered and how, for a sink; stdout (a dry run) is never muted and borrows email's rules. */
function listChoice(policy: ReportPolicy, sink: SinkName, listIds: string[]): { lists: ListPolicy[]; how: ListSinkPolicy } | null {
  if (sink === 'stdout') {
    for (const s of ['email', 'drafts'] as const) {
      const lists = listsFor(policy, s, listIds);
      if (lists.length) return { lists, how: lists[0]!.sinks[s]! };
    }
    return { lists: [], how: DEFAULT_SINK_POLICY };
  }
  const lists = listsFor(policy, sink, listIds);
  return lists.length ? { lists, how: lists[0]!.sinks[sink]! } : null;
}

function appliedClass(status: string): string {
  return ['applied', 'applied-with-fuzz', 'already-applied', 'partial'].includes(status) ? 'applied' : status;
}

/** Plans the replies for the latest check of one series version through one sink. */
export function planSeries(db: Db, seriesId: number, sink: { name: SinkName; editsInPlace?: boolean }, policy: ReportPolicy, now = new Date()): PlanResult {
  const checkId = latestCheckId(db, seriesId);
  if (checkId === null) return { seriesId, skip: 'not checked yet' };
  const members = db
    .prepare(
      `SELECT m.id, sp.counter, m.message_id, m.ident, m.subject, m.title, m.diff, m.kind, m.no_process, m.in_reply_to, m.refs,
              m.list_ids, m.raw_id
       FROM series_patches sp JOIN messages m ON m.id = sp.message_id WHERE sp.series_id = ? ORDER BY sp.counter`,
    )
    .all(seriesId) as Member[];
  // Concerns are the record of what was found, whether or not anyone is told: tracked before the policy.
  const concerns = trackConcerns(db, checkId);
  const never = neverReply(members, policy);
  if (never) return { seriesId, skip: never };
  const listIds = [...new Set(members.flatMap((m) => JSON.parse(m.list_ids) as string[]))];
  const choice = listChoice(policy, sink.name, listIds);
  if (!choice) return { seriesId, skip: `muted: no list of [${listIds.join(', ')}] opts in to ${sink.name}` };

  const input = loadInput(db, seriesId, checkId, concerns, members, policy);
  const series = db.prepare('SELECT version, lineage_id, author_addr, author_name FROM series WHERE id = ?').get(seriesId) as {
    version: number; lineage_id: number | null; author_addr: string | null; author_name: string | null;
  };
  const lineageTitle = series.lineage_id === null ? null
    : ((db.prepare('SELECT title FROM lineages WHERE id = ?').pluck().get(series.lineage_id) as string | undefined) ?? null);
  const raisedIds = [...new Set(concerns.raised.map((t) => t.concern.id))];
  const digest = digestOf([...concerns.raised.map((t) => t.fingerprint), `status:${appliedClass(input.check.status)}`]);
  const open = lineageConcerns(db, concerns.lineageId).filter((c) => c.state === 'new' || c.state === 'open');
  const rawOf = db.prepare('SELECT bytes FROM raw_messages WHERE id = ?').pluck();
  const notes: string[] = [];

  const toReply = (kind: ReplyKind, target: TargetMessage, summary: boolean, body: string, raised: TrackedFinding[], keyDigest?: string): NewReply | null => {
    const inReplyTo = msgIdHeader(target.msgid);
    if (!inReplyTo) {
      notes.push(`no reply to <${target.msgid}>: its Message-ID cannot be put in a header as it is`);
      return null;
    }
    const m = members.find((x) => (x.message_id ?? x.ident) === target.msgid)!;
    const refs = [m.in_reply_to, ...(JSON.parse(m.refs) as string[])]
      .map((r) => (r ? msgIdHeader(r) : null))
      .filter((r): r is string => r !== null && r !== inReplyTo);
    const references = [...new Set(refs)].slice(-20).concat(inReplyTo);
    const who = audience(policy, choice.how, choice.lists, { name: series.author_name, addr: series.author_addr },
      choice.how.ccOriginal ? originalRecipients(rawOf.get(m.raw_id) as Buffer | null) : []);
    if (who.to.length === 0) {
      notes.push(`no reply to <${target.msgid}>: no recipient is left after the allow and deny lists`);
      return null;
    }
    const key = idemKey({ seriesId, version: series.version, sink: sink.name, kind, msgid: target.msgid, ...(keyDigest ? { digest: keyDigest } : {}) });
    const meta: ReplyMeta & { seriesRaised: string[] } = {
      lineageId: series.lineage_id, lineageTitle, seriesTitle: input.series.title, applyStatus: input.check.status, summary,
      openConcerns: open.map(({ dismissedBy: _b, dismissedWhy: _w, ...c }) => c), raised: [...new Set(raised.map((t) => t.concern.id))],
      resolved: summary ? concerns.resolved.map((c) => c.id) : [], seriesRaised: raisedIds,
    };
    return {
      key, seriesId, lineageId: series.lineage_id, checkId, version: series.version, sink: sink.name, kind, targetMsgid: target.msgid,
      listId: choice.lists[0]?.id ?? null, messageId: `<vfio-review.${key}@${policy.ownDomain}>`, subject: replySubject(target.subject),
      from: policy.from, to: who.to, cc: who.cc, inReplyTo, references,
      headers: { 'X-vfio-review': `${kind}; series=${seriesId}; v=${series.version}; key=${key}` },
      body, meta, findingsDigest: digest, decidedAt: now.toISOString(),
    };
  };
  const result = (inserts: (NewReply | null)[], updates: (NewReply | null)[] = []): PlanResult => ({
    seriesId, inserts: inserts.filter((r): r is NewReply => r !== null), updates: updates.filter((r): r is NewReply => r !== null),
    listId: sink.name === 'stdout' ? null : (choice.lists[0]?.id ?? null),
    perDay: sink.name === 'stdout' ? null : (choice.lists[0]?.perDay ?? null), notes,
  });

  const existing = outboxRows(db, { seriesId, sink: sink.name }).filter((r) => r.version === series.version);
  const units = composeReplies(input);
  if (existing.length === 0) return result(units.map((u) => toReply(u.kind, u.target, u.summary, u.body, u.findings)));

  // A rerun of a version already answered: say something only when the findings changed.
  const last = existing[existing.length - 1]!;
  if (last.findingsDigest === digest) return { seriesId, skip: 'already answered; the findings did not change' };
  const before = new Set((last.meta as ReplyMeta & { seriesRaised?: string[] }).seriesRaised ?? []);
  const added = concerns.raised.filter((t) => !before.has(t.concern.id));
  const dismissed = new Set(concerns.suppressed.map((t) => t.concern.id));
  const gone: ConcernRef[] = lineageConcerns(db, concerns.lineageId).filter(
    (c) => before.has(c.id) && !raisedIds.includes(c.id) && !dismissed.has(c.id) && c.state !== 'dismissed',
  );
  const statusChanged = appliedClass(last.meta.applyStatus) !== appliedClass(input.check.status);
  if (added.length === 0 && gone.length === 0 && !statusChanged) {
    return { seriesId, skip: 'already answered; only dismissed concerns changed' };
  }
  if (sink.editsInPlace) return result(...editInPlace(existing, units, input, toReply));
  const target = units.find((u) => u.summary)?.target ?? input.series.cover ?? input.series.patches.find((p) => p) ?? null;
  if (!target) return { seriesId, skip: 'no message to reply to' };
  return result([toReply('rerun', target, true, renderRerun(input, target, added, gone), added, digest)]);
}

type ToReply = (kind: ReplyKind, target: TargetMessage, summary: boolean, body: string, raised: TrackedFinding[]) => NewReply | null;

/** Sinks that edit (GitHub): every earlier reply is re-rendered under its own key; new targets get new replies. */
function editInPlace(
  existing: { targetMsgid: string; kind: ReplyKind; meta: ReplyMeta }[],
  units: ReplyUnit[],
  input: ComposeInput,
  toReply: ToReply,
): [(NewReply | null)[], (NewReply | null)[]] {
  const inserts: (NewReply | null)[] = [];
  const updates: (NewReply | null)[] = [];
  const byTarget = new Map(existing.filter((e) => e.kind !== 'rerun').map((e) => [`${e.kind}\0${e.targetMsgid}`, e]));
  for (const u of units) {
    const k = `${u.kind}\0${u.target.msgid}`;
    if (byTarget.delete(k)) updates.push(toReply(u.kind, u.target, u.summary, u.body, u.findings));
    else inserts.push(toReply(u.kind, u.target, u.summary, u.body, u.findings));
  }
  // Earlier replies with nothing left to say are edited to say so (review and follow-up bodies read
  // right with no findings); an old apply-failed or clean reply stays the record of that check.
  for (const old of byTarget.values()) {
    if (old.kind !== 'review' && old.kind !== 'follow-up') continue;
    const t = [input.series.cover, ...input.series.patches].find((p) => p?.msgid === old.targetMsgid);
    if (t) updates.push(toReply(old.kind, t, old.meta.summary, renderUnit(old.kind, input, t, old.meta.summary, []), []));
  }
  return [inserts, updates];
}
