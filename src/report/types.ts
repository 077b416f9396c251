/**
 * Plain data shared by the reporter's stages and every sink. Sinks (email, drafts, stdout, github)
 * import only this file: they see a decided reply, never the store.
 */
import type { Finding } from '../check/check.js';

/** The reply kinds; one template in prompts/ each. */
export const REPLY_KINDS = ['review', 'apply-failed', 'follow-up', 'rerun', 'clean'] as const;
export type ReplyKind = (typeof REPLY_KINDS)[number];

export const SINK_NAMES = ['stdout', 'email', 'drafts', 'github'] as const;
export type SinkName = (typeof SINK_NAMES)[number];

export type OutboxState = 'pending' | 'sending' | 'sent' | 'failed';

/** Where a concern stands on its lineage. */
export type ConcernState = 'new' | 'open' | 'resolved' | 'dismissed';

/**
 * A finding as the reporter takes it: the check's Finding plus an optional normalised evidence key
 * (lock classes, field, call) that rules may set; without it the key is derived from the message.
 */
export type ReportFinding = Finding & { key?: string };

/** A concern as replies and sinks show it. */
export interface ConcernRef {
  /** The id replies print and `vfio-review: dismiss <id>` names. */
  id: string;
  state: ConcernState;
  rule: string;
  category: string;
  file: string;
  function: string | null;
  /** The latest finding's message. */
  message: string;
}

/** What a sink may want beyond the mail itself (GitHub: tracking issue per lineage, labels). */
export interface ReplyMeta {
  lineageId: number | null;
  lineageTitle: string | null;
  seriesTitle: string;
  /** The check's apply status ('applied', 'not-applied', ...). */
  applyStatus: string;
  /** True for the reply to the cover (or to patch 1 when there is none): the series summary. */
  summary: boolean;
  /** Concerns open on the lineage after this check (new and still open), not dismissed ones. */
  openConcerns: ConcernRef[];
  /** Concerns this reply raises. */
  raised: string[];
  /** Concerns resolved by this version. */
  resolved: string[];
}

/** One decided reply, as stored in the outbox. */
export interface OutboxRow {
  id: number;
  /** The idempotency key; also in the X-vfio-review header and the Message-ID. */
  key: string;
  seriesId: number;
  lineageId: number | null;
  checkId: number | null;
  version: number;
  sink: SinkName;
  kind: ReplyKind;
  /** Message-ID (without <>) of the patch or cover this replies to. */
  targetMsgid: string;
  listId: string | null;
  /** The reply's own Message-ID, with <>: `<vfio-review.{key}@{own-domain}>`. */
  messageId: string;
  /** "Re: <original subject>", control characters already stripped. */
  subject: string;
  from: string;
  to: string[];
  cc: string[];
  /** With <>. */
  inReplyTo: string;
  /** With <>, oldest first, ending with inReplyTo. */
  references: string[];
  /** Extra headers (X-vfio-review). */
  headers: Record<string, string>;
  /** Plain text, LF line ends. */
  body: string;
  meta: ReplyMeta;
  findingsDigest: string;
  /** Bumped when a rerun re-renders the reply in place (sinks that edit, GitHub). */
  revision: number;
  state: OutboxState;
  attempts: number;
  nextAt: string;
  lastError: string | null;
  remoteId: string | null;
  decidedAt: string;
  sentAt: string | null;
}

export type DeliverResult = { ok: true; remoteId?: string } | { ok: false; permanent: boolean; answer: string };

/** A place replies go. One interface for every sink. */
export interface Sink {
  name: SinkName;
  /** Hands the reply over. Resolves ok only once the server accepted it; never throws for a refusal. */
  deliver(reply: OutboxRow): Promise<DeliverResult>;
  /**
   * Whether an earlier attempt already reached the server (asked after a crash or an unclear failure,
   * before delivering again): the Message-ID in the Drafts/Sent mailbox, GitHub's hidden marker.
   */
  alreadyDelivered(reply: OutboxRow): Promise<boolean>;
  /** The sink can replace a reply it delivered (GitHub edits its comment); a rerun then re-renders in place. */
  readonly editsInPlace?: boolean;
  /**
   * How long after an unfinished attempt `alreadyDelivered` may still be too early to say yes (mail that
   * comes back through a list takes a while). The outbox waits this long before resending. Default 0.
   */
  readonly inDoubtGraceMs?: number;
  close?(): Promise<void>;
}
