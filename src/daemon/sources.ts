import { setTimeout as delay } from 'node:timers/promises';
import type { Db } from '../store/db.js';
import { reasonOf } from '../errors.js';
import type { DaemonSource } from '../config/daemon.js';
import { ImapSource, type ImapProgress, type ImapSyncSummary, type IngestTarget } from '../ingest/imap-source.js';
import type { Ingestor } from '../ingest/ingest.js';
import { recordHealth } from './health.js';
import type { Logger } from './log.js';

/**
 * The Ingestor as IMAP sources see it, with add() serialised: each source runs its own watch(),
 * and two sources must not interleave one message's stage and record (the same patch often
 * arrives through two lists at once).
 */
export function serialIngest(ingestor: Ingestor): IngestTarget {
  let chain: Promise<unknown> = Promise.resolve();
  return {
    sourceId: (kind, name) => ingestor.sourceId(kind, name),
    add: (sourceId, bytes, locator) => {
      const run = chain.then(() => ingestor.add(sourceId, bytes, locator));
      chain = run.catch(() => undefined);
      return run;
    },
    finish: () => ingestor.finish(),
  };
}

/**
 * Watches one configured source until `signal` aborts: IMAP IDLE per mailbox with the source's
 * poll as the fallback (ImapSource.watch reconnects after network failures by itself). Failures
 * it does not retry (login refused, a missing mailbox) are recorded and tried again after a
 * growing pause, up to 5 minutes: the daemon keeps serving the other sources meanwhile.
 */
export async function watchSource(
  db: Db,
  src: DaemonSource,
  target: IngestTarget,
  opts: { signal: AbortSignal; log: Logger; onBatch: (s: ImapSyncSummary) => Promise<void> },
): Promise<void> {
  const log = opts.log.child({ source: src.name });
  let lastIngestMark = 0;
  const onProgress = (e: ImapProgress): void => {
    switch (e.kind) {
      case 'stored': {
        // One health write a second at most: a backfill stores thousands.
        if (Date.now() - lastIngestMark > 1000) {
          lastIngestMark = Date.now();
          recordHealth(db, 'source', src.name, { ingested: true });
        }
        log.debug({ mailbox: e.mailbox, uid: e.uid, outcome: e.outcome }, 'message stored');
        return;
      }
      case 'synced':
        recordHealth(db, 'source', src.name, { ok: true, ...(e.stored > 0 ? { ingested: true } : {}) });
        if (e.stored > 0) log.info({ stored: e.stored }, 'mailboxes synced');
        return;
      case 'reconnecting':
        recordHealth(db, 'source', src.name, { error: e.error });
        log.warn({ attempt: e.attempt, delayMs: e.delayMs, err: e.error }, 'imap reconnecting');
        return;
      case 'disconnected':
        log.warn({ role: e.role, mailbox: e.mailbox ?? null, reason: e.reason }, 'imap connection lost');
        return;
      case 'uidvalidity-changed':
        log.warn({ mailbox: e.mailbox, previous: e.previous, current: e.current }, 'imap uidvalidity changed; re-reading');
        return;
      case 'connected':
        log.info({ role: e.role, mailbox: e.mailbox ?? null }, 'imap connected');
        return;
      case 'exists':
        log.debug({ mailbox: e.mailbox, count: e.count }, 'imap new mail');
        return;
      default:
        return;
    }
  };
  for (let failures = 0; !opts.signal.aborted; ) {
    const source = new ImapSource(db, src.imap, { onProgress });
    try {
      await source.watch(target, {
        signal: opts.signal,
        onBatch: async (summary) => {
          failures = 0;
          // A failure after ingest (commands, scheduling) must not stop the watch: the next tick retries it.
          await opts.onBatch(summary).catch((err: unknown) => log.error({ err: reasonOf(err) }, 'after-ingest step failed'));
        },
      });
    } catch (err) {
      if (opts.signal.aborted) break;
      const why = reasonOf(err);
      recordHealth(db, 'source', src.name, { error: why });
      const waitMs = Math.min(300_000, 5_000 * 2 ** Math.min(failures++, 6));
      log.error({ err: why, retryInMs: waitMs }, 'imap source stopped; retrying later');
      await delay(waitMs, undefined, { signal: opts.signal }).catch(() => undefined);
    }
  }
}
