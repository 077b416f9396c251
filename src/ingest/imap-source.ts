import { setTimeout as delay } from 'node:timers/promises';
import { ImapFlow, type ImapFlowError } from 'imapflow';
import { VrError, reasonOf } from '../errors.js';
import { CursorStore } from '../store/cursors.js';
import type { Db } from '../store/db.js';
import type { AddOutcome, Ingestor, IngestSummary } from './ingest.js';

export interface ImapSourceConfig {
  host: string;
  port: number;
  /** TLS from the first byte (993). */
  secure: boolean;
  /** Without `secure`: true requires STARTTLS, false never tries it, unset upgrades when offered. */
  starttls?: boolean;
  auth: { user: string; pass: string };
  mailboxes: string[];
  tlsRejectUnauthorized?: boolean;
  /** Safety-net poll of every mailbox, and the only trigger when IDLE is off or unsupported. Default 5 min. */
  pollIntervalMs?: number;
  /** Use IDLE when the server offers it. Default true. */
  idle?: boolean;
  /** UIDs per FETCH command. Default 100. */
  batchSize?: number;
}

/** Connection options for one login (TLS, STARTTLS, auth), shared by every client the project opens. */
export function imapClientOptions(cfg: ImapSourceConfig): ConstructorParameters<typeof ImapFlow>[0] {
  return {
    host: cfg.host,
    port: cfg.port,
    secure: cfg.secure,
    ...(cfg.secure || cfg.starttls === undefined ? {} : { doSTARTTLS: cfg.starttls }),
    auth: { user: cfg.auth.user, pass: cfg.auth.pass },
    tls: { rejectUnauthorized: cfg.tlsRejectUnauthorized ?? true },
    logger: false,
  };
}

/** What the source needs from an Ingestor; a Pick so tests can wrap a real one. */
export type IngestTarget = Pick<Ingestor, 'sourceId' | 'add' | 'finish'>;

export interface MailboxSyncResult {
  mailbox: string;
  sourceId: number;
  uidValidity: string;
  /** The UIDVALIDITY of the stored cursor when it differed: the mailbox was re-read from UID 1. */
  previousUidValidity: string | null;
  fromUid: number;
  lastUid: number;
  outcomes: Record<AddOutcome, number>;
}

export interface ImapSyncSummary {
  mailboxes: MailboxSyncResult[];
  /** Messages handed to the ingestor in this sync. */
  stored: number;
  uidValidityChanges: { mailbox: string; previous: string; current: string }[];
  /** The signal fired before every mailbox was read to its end. */
  aborted: boolean;
  /** Ingestor.finish() of this sync; null when nothing was stored since the last finish. */
  ingest: IngestSummary | null;
}

export type ImapProgress =
  | { kind: 'connected'; role: 'sync' | 'idle'; mailbox?: string }
  | { kind: 'disconnected'; role: 'sync' | 'idle'; mailbox?: string; reason: string }
  | { kind: 'uidvalidity-changed'; mailbox: string; previous: string; current: string }
  | { kind: 'mailbox'; mailbox: string; uidValidity: string; fromUid: number; pending: number }
  | { kind: 'stored'; mailbox: string; uid: number; outcome: AddOutcome }
  | { kind: 'synced'; stored: number }
  | { kind: 'idling'; mailbox: string }
  | { kind: 'exists'; mailbox: string; count: number; prevCount: number }
  | { kind: 'poll' }
  | { kind: 'reconnecting'; attempt: number; delayMs: number; error: string }
  | { kind: 'stopped' };

export interface ImapSourceOptions {
  onProgress?: (event: ImapProgress) => void;
  /** Reconnect delay: initialMs doubling up to maxMs, with jitter. Defaults 500 ms and 60 s. */
  backoff?: { initialMs?: number; maxMs?: number };
}

export interface WatchOptions {
  signal: AbortSignal;
  /** Called after each sync that stored something or saw a UIDVALIDITY change; a throw stops watch(). */
  onBatch?: (summary: ImapSyncSummary) => void | Promise<void>;
}

/** The `sources.name` of one mailbox: an RFC 5092 style URL. */
export function imapSourceName(cfg: Pick<ImapSourceConfig, 'host' | 'port' | 'auth'>, mailbox: string): string {
  return `imap://${encodeURIComponent(cfg.auth.user)}@${cfg.host}:${cfg.port}/${mailbox}`;
}

/** Equal jitter: half the exponential step is fixed, half random, so retries from many bots spread out. */
export function backoffDelay(attempt: number, opts: ImapSourceOptions['backoff'] = {}, random = Math.random): number {
  const step = Math.min(opts.maxMs ?? 60_000, (opts.initialMs ?? 500) * 2 ** Math.min(attempt, 30));
  return Math.round(step / 2 + (random() * step) / 2);
}

/**
 * An IMAP failure, with whether a reconnect can cure it (a dropped socket, a refused
 * connection). watch() retries only these; a wrong password, a missing mailbox, or the
 * ingestor or onBatch throwing stop it.
 */
export class ImapError extends VrError {
  readonly retryable: boolean;

  constructor(code: 'IMAP_CONNECT' | 'IMAP_MAILBOX' | 'IMAP_FETCH', message: string, err: unknown, step: string, retryable: boolean) {
    const e = err as ImapFlowError | undefined;
    const response = typeof e?.response === 'string' ? e.response : e?.responseText;
    // The message drops the command tag ("2 NO [AUTHENTICATIONFAILED] ..."); `response` keeps it verbatim.
    const why = response?.replace(/^\S+ (?=(?:NO|BAD|BYE)\b)/, '') ?? (err === undefined ? undefined : reasonOf(err));
    super(code, why ? `${message}: ${why}` : message, { step, response, cause: err });
    this.retryable = retryable;
  }
}

/** Runs one imapflow command; its failure becomes a retryable IMAP_FETCH naming `what`. */
async function imapCall<T>(what: string, step: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw err instanceof VrError ? err : new ImapError('IMAP_FETCH', `${what} failed`, err, step, true);
  }
}

/** A tagged NO/BAD to SELECT is the server's answer about the mailbox; anything else is the connection. */
function selectError(err: unknown, mailbox: string): ImapError {
  const e = err as ImapFlowError;
  if (e.mailboxMissing || e.responseStatus === 'NO' || e.responseStatus === 'BAD') {
    return new ImapError('IMAP_MAILBOX', `cannot open mailbox ${mailbox}`, err, 'select', false);
  }
  return new ImapError('IMAP_FETCH', `selecting ${mailbox} failed`, err, 'select', true);
}

/**
 * Reads mailing-list mail from IMAP mailboxes into the store, resuming from a
 * (UIDVALIDITY, last UID) cursor per mailbox.
 *
 * watch() design: one "sync" connection fetches from every mailbox in turn, and one
 * extra connection per mailbox sits in IDLE only to hear EXISTS. IDLE watches the
 * selected mailbox of its connection, and re-selecting a single IDLE connection
 * between mailboxes leaves windows where new mail is not reported; polling the other
 * mailboxes would delay them by a poll interval. Fetching stays on one connection so
 * the ingestor is never entered concurrently (the same patch often arrives through
 * two lists at once). Cost: 1 + N connections for N mailboxes.
 */
export class ImapSource {
  readonly #cfg: ImapSourceConfig;
  readonly #cursors: CursorStore;
  readonly #opts: ImapSourceOptions;
  #client: ImapFlow | undefined;
  #idlers: ImapFlow[] = [];
  // Messages stored since the last finish(): a sync that failed midway still gets its threads rebuilt.
  #unfinished = false;

  constructor(db: Db, config: ImapSourceConfig, opts: ImapSourceOptions = {}) {
    if (config.mailboxes.length === 0) throw new VrError('CONFIG_INVALID', 'imap: no mailboxes configured');
    this.#cfg = config;
    this.#cursors = new CursorStore(db);
    this.#opts = opts;
  }

  #emit(event: ImapProgress): void {
    this.#opts.onProgress?.(event);
  }

  async #connect(role: 'sync' | 'idle', mailbox?: string): Promise<ImapFlow> {
    const cfg = this.#cfg;
    const client = new ImapFlow({
      ...imapClientOptions(cfg),
      // IDLE connections idle explicitly (auto-IDLE waits 15 s); restart IDLE before servers' 30 min cut-off.
      disableAutoIdle: role === 'idle',
      maxIdleTime: 5 * 60_000,
    });
    // Without an 'error' listener an error event would crash the process; the failure reaches
    // us anyway through the pending command or the 'close' event.
    client.on('error', () => undefined);
    client.on('close', () => {
      if (!client.closedByClient) this.#emit({ kind: 'disconnected', role, mailbox, reason: client.byeReason ?? 'connection closed' });
    });
    try {
      await client.connect();
    } catch (err) {
      client.close();
      const e = err as ImapFlowError;
      if (e.authenticationFailed) {
        // [UNAVAILABLE] is a backend outage (RFC 5530), worth retrying; anything else is the credentials.
        const retry = e.serverResponseCode === 'UNAVAILABLE';
        throw new ImapError('IMAP_CONNECT', `login as ${cfg.auth.user} at ${cfg.host}:${cfg.port} failed`, err, 'login', retry);
      }
      throw new ImapError('IMAP_CONNECT', `cannot connect to ${cfg.host}:${cfg.port}`, err, 'connect', true);
    }
    this.#emit({ kind: 'connected', role, mailbox });
    return client;
  }

  async #syncClient(): Promise<ImapFlow> {
    if (this.#client?.usable) return this.#client;
    this.#client?.close();
    this.#client = await this.#connect('sync');
    return this.#client;
  }

  /**
   * Fetches every mailbox from its cursor to its end, then runs ingestor.finish(). Keeps
   * the connection open for the next call; close() releases it. Run one syncOnce() or
   * watch() at a time per source: they share the connection and the ingestor.
   */
  async syncOnce(ingestor: IngestTarget, opts: { signal?: AbortSignal } = {}): Promise<ImapSyncSummary> {
    return this.#sync(ingestor, this.#cfg.mailboxes, opts.signal);
  }

  async #sync(ingestor: IngestTarget, mailboxes: string[], signal?: AbortSignal): Promise<ImapSyncSummary> {
    const client = await this.#syncClient();
    const summary: ImapSyncSummary = { mailboxes: [], stored: 0, uidValidityChanges: [], aborted: false, ingest: null };
    for (const mailbox of mailboxes) {
      if (signal?.aborted) break;
      const r = await this.#syncMailbox(client, ingestor, mailbox, signal);
      summary.mailboxes.push(r);
      summary.stored += Object.values(r.outcomes).reduce((a, b) => a + b, 0);
      if (r.previousUidValidity !== null) {
        summary.uidValidityChanges.push({ mailbox, previous: r.previousUidValidity, current: r.uidValidity });
      }
    }
    summary.aborted = signal?.aborted ?? false;
    if (this.#unfinished) {
      summary.ingest = ingestor.finish();
      this.#unfinished = false;
    }
    this.#emit({ kind: 'synced', stored: summary.stored });
    return summary;
  }

  async #syncMailbox(client: ImapFlow, ingestor: IngestTarget, mailbox: string, signal?: AbortSignal): Promise<MailboxSyncResult> {
    const sourceId = ingestor.sourceId('imap', imapSourceName(this.#cfg, mailbox));
    const lock = await client.getMailboxLock(mailbox, { readOnly: true }).catch((err: unknown) => {
      throw selectError(err, mailbox);
    });
    try {
      // The lock does not re-SELECT a mailbox that is already selected, and Dovecot does not
      // report new mail during SEARCH: a NOOP brings the view (EXISTS) up to date first.
      await imapCall(`NOOP in ${mailbox}`, 'noop', () => client.noop());
      const box = client.mailbox;
      if (!box) throw new ImapError('IMAP_FETCH', `mailbox ${mailbox} is not selected`, undefined, 'select', true);
      const validity = String(box.uidValidity);
      const cursor = this.#cursors.get(sourceId, mailbox);
      let last = cursor?.uidValidity === validity ? cursor.lastUid : 0;
      const previous = cursor && cursor.uidValidity !== validity ? cursor.uidValidity : null;
      if (previous !== null) {
        // The old UIDs now name other messages or none: re-read everything. The ingestor dedups
        // by content and Message-ID, so this records new locators, not new messages.
        this.#emit({ kind: 'uidvalidity-changed', mailbox, previous, current: validity });
      }
      // Store the new UIDVALIDITY at once, so a drop during the re-read resumes under it.
      if (!cursor || previous !== null) this.#cursors.set(sourceId, mailbox, validity, 0);
      const result: MailboxSyncResult = {
        mailbox, sourceId, uidValidity: validity, previousUidValidity: previous, fromUid: last + 1, lastUid: last,
        outcomes: { new: 0, duplicate: 0, 'new-copy': 0, failed: 0 },
      };
      if (box.exists === 0) return result;
      const found = await imapCall(`UID SEARCH in ${mailbox}`, 'search', () =>
        client.search({ uid: `${last + 1}:*` }, { uid: true }),
      );
      if (!found) throw new ImapError('IMAP_FETCH', `UID SEARCH in ${mailbox} failed`, undefined, 'search', true);
      // `n:*` with n above the highest UID still matches the last message (RFC 3501 6.4.8): filter.
      const uids = found.filter((u) => u > last).sort((a, b) => a - b);
      this.#emit({ kind: 'mailbox', mailbox, uidValidity: validity, fromUid: last + 1, pending: uids.length });
      const batch = Math.max(1, this.#cfg.batchSize ?? 100);
      for (let i = 0; i < uids.length && !signal?.aborted; i += batch) {
        const chunk = uids.slice(i, i + batch);
        const range = `${chunk[0]}:${chunk[chunk.length - 1]}`;
        const what = `UID FETCH ${range} in ${mailbox}`;
        // Stepped by hand rather than for-await, so only the fetch's own failures become
        // IMAP errors (retried) and the ingestor's pass through untouched (fatal).
        const rows = client.fetch(range, { uid: true, source: true }, { uid: true });
        try {
          for (;;) {
            const next = await imapCall(what, 'fetch', () => rows.next());
            if (next.done) break;
            const msg = next.value;
            if (msg.uid <= last) continue;
            if (!msg.source) throw new ImapError('IMAP_FETCH', `${what}: UID ${msg.uid} came without a body`, undefined, 'fetch', true);
            this.#unfinished = true;
            const { outcome } = await ingestor.add(sourceId, msg.source, `uid:${validity}:${msg.uid}`);
            // The cursor moves only after the message is stored: a drop resumes after it, never before.
            last = msg.uid;
            this.#cursors.set(sourceId, mailbox, validity, last);
            result.outcomes[outcome]++;
            this.#emit({ kind: 'stored', mailbox, uid: last, outcome });
            if (signal?.aborted) break;
          }
        } finally {
          // Lets imapflow drain a FETCH we stopped reading early.
          await rows.return(undefined).catch(() => undefined);
        }
        // A connection that closed mid-response can end the iteration without an error.
        if (!client.usable && !signal?.aborted) {
          throw new ImapError('IMAP_FETCH', `connection lost during UID FETCH ${range} in ${mailbox}`, undefined, 'fetch', true);
        }
      }
      result.lastUid = last;
      return result;
    } finally {
      lock.release();
    }
  }

  /**
   * Runs until `signal` aborts: a full sync, then a sync of each mailbox IDLE reports
   * new mail in, plus a poll of all every pollIntervalMs. A lost connection restarts
   * the whole session after an exponential backoff; errors a reconnect cannot cure
   * (login refused, missing mailbox, the ingestor or onBatch throwing) reject.
   */
  async watch(ingestor: IngestTarget, opts: WatchOptions): Promise<void> {
    const { signal } = opts;
    let failures = 0;
    try {
      while (!signal.aborted) {
        try {
          await this.#session(ingestor, opts, () => (failures = 0));
        } catch (err) {
          if (signal.aborted) break;
          if (!(err instanceof ImapError) || !err.retryable) throw err;
          await this.close();
          const delayMs = backoffDelay(failures++, this.#opts.backoff);
          this.#emit({ kind: 'reconnecting', attempt: failures, delayMs, error: reasonOf(err) });
          // An abort ends the wait early (it rejects; nothing to handle).
          await delay(delayMs, undefined, { signal }).catch(() => undefined);
        }
      }
      // Messages stored by a sync the abort cut short still get their threads rebuilt.
      if (this.#unfinished) {
        ingestor.finish();
        this.#unfinished = false;
      }
    } finally {
      await this.close();
      this.#emit({ kind: 'stopped' });
    }
  }

  async #session(ingestor: IngestTarget, opts: WatchOptions, healthy: () => void): Promise<void> {
    const { signal } = opts;
    const mailboxes = this.#cfg.mailboxes;
    // Everything is dirty at the start of a session: mail may have arrived while we were away.
    const dirty = new Set<string>(mailboxes);
    let failure: ImapError | undefined;
    let wake: (() => void) | undefined;
    const poke = (): void => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const lost = (what: string): void => {
      failure ??= new ImapError('IMAP_CONNECT', `${what} closed`, undefined, 'watch', true);
      poke();
    };
    const sync = await this.#syncClient();
    const onSyncClose = (): void => lost('the sync connection');
    sync.on('close', onSyncClose);
    signal.addEventListener('abort', poke);
    const timer = setInterval(() => {
      for (const m of mailboxes) dirty.add(m);
      this.#emit({ kind: 'poll' });
      poke();
    }, this.#cfg.pollIntervalMs ?? 5 * 60_000);
    try {
      if ((this.#cfg.idle ?? true) && sync.capabilities.has('IDLE')) {
        for (const mailbox of mailboxes) {
          const c = await this.#connect('idle', mailbox);
          this.#idlers.push(c);
          await c.mailboxOpen(mailbox, { readOnly: true }).catch((err: unknown) => {
            throw selectError(err, mailbox);
          });
          c.on('exists', (d) => {
            dirty.add(mailbox);
            this.#emit({ kind: 'exists', mailbox, count: d.count, prevCount: d.prevCount });
            poke();
          });
          c.on('close', () => lost(`the IDLE connection for ${mailbox}`));
          void this.#idleLoop(c, mailbox);
        }
      }
      while (!signal.aborted) {
        if (failure) throw failure;
        if (dirty.size > 0) {
          const which = mailboxes.filter((m) => dirty.has(m));
          dirty.clear();
          const summary = await this.#sync(ingestor, which, signal);
          healthy();
          if (summary.stored > 0 || summary.uidValidityChanges.length > 0) await opts.onBatch?.(summary);
          continue;
        }
        // No await between the checks above and arming `wake`: an event cannot slip in between.
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      clearInterval(timer);
      signal.removeEventListener('abort', poke);
      sync.off('close', onSyncClose);
    }
  }

  /** Keeps one connection in IDLE; idle() returns when IDLE ends, which on a live connection is rare. */
  async #idleLoop(c: ImapFlow, mailbox: string): Promise<void> {
    while (c.usable) {
      this.#emit({ kind: 'idling', mailbox });
      const started = Date.now();
      await c.idle().catch(() => undefined); // a failed IDLE closes the connection, reported by 'close'
      // An IDLE the server ends at once (throttling) must not become a busy loop.
      if (Date.now() - started < 1_000) await delay(1_000, undefined, { ref: false });
    }
  }

  /** Logs out of every connection (closing those that do not answer within 2 s). */
  async close(): Promise<void> {
    const all = [...this.#idlers, ...(this.#client ? [this.#client] : [])];
    this.#idlers = [];
    this.#client = undefined;
    await Promise.all(
      all.map(async (c) => {
        if (c.usable) {
          await Promise.race([c.logout().catch(() => undefined), delay(2_000, undefined, { ref: false })]);
        }
        c.close();
      }),
    );
  }
}
