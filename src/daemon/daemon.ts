import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import type { Config } from '../config/load.js';
import { openDb, type Db } from '../store/db.js';
import { VrError, reasonOf } from '../errors.js';
import { Ingestor } from '../ingest/ingest.js';
import { makeSink } from '../report/report.js';
import type { Sink } from '../report/types.js';
import { Heartbeat, pidAlive, recordHealth, runningDaemon } from './health.js';
import { JobStore, type Job, type LeaseOwner } from './jobs.js';
import type { Logger } from './log.js';
import { initCommandCursor, readCommandMail } from './mail-commands.js';
import { CheckPool, WorkerGone } from './pool.js';
import { Reporter } from './reporter.js';
import { scheduleDue } from './schedule.js';
import { serialIngest, watchSource } from './sources.js';
import { pollGithub } from './github.js';

export interface DaemonOptions {
  config: Config;
  /** The store file (worker threads open their own connection to it). */
  dbPath: string;
  /** The kernel tree series are applied to. */
  tree: string;
  log: Logger;
  /** Replaces the sinks the configuration names (tests). */
  sinks?: Sink[];
}

interface InHand {
  job: Job;
  /** The worker task while the check runs. */
  taskId: number | null;
  done: Promise<void>;
}

/**
 * `vfio-review run`: IMAP IDLE -> ingest -> job queue -> check on worker threads -> report through
 * the outbox. The main thread only does I/O and short SQLite statements; checks run on the pool.
 * Every step leaves its result in the store before the next begins (message, series, job, check,
 * outbox row), so a process killed at any point is resumed by the next start: stale leases are
 * taken back, a check already recorded is found rather than redone, decided replies are delivered.
 */
export class Daemon {
  readonly me: LeaseOwner = { owner: `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`, pid: process.pid, host: hostname() };
  readonly #o: DaemonOptions;
  readonly #db: Db;
  readonly #jobs: JobStore;
  readonly #log: Logger;
  readonly #abort = new AbortController();
  readonly #inHand = new Map<number, InHand>();
  readonly #timers: NodeJS.Timeout[] = [];
  #beatTimer: NodeJS.Timeout | undefined;
  #heartbeat: Heartbeat | undefined;
  #pool: CheckPool | undefined;
  #reporter: Reporter | undefined;
  #watchers: Promise<void>[] = [];
  #stopping = false;
  #stopped: Promise<void> | undefined;
  #commandsBusy = false;

  constructor(o: DaemonOptions) {
    this.#o = o;
    this.#log = o.log;
    this.#db = openDb(o.dbPath);
    this.#jobs = new JobStore(this.#db);
  }

  get db(): Db {
    return this.#db;
  }

  get jobs(): JobStore {
    return this.#jobs;
  }

  #leaseMs(): number {
    return this.#o.config.daemon.leaseSeconds * 1000;
  }

  async start(): Promise<void> {
    const d = this.#o.config.daemon;
    const other = runningDaemon(this.#db);
    if (other) {
      this.#db.close();
      throw new VrError('DAEMON_RUNNING', `a daemon (pid ${other.pid} on ${other.host}) is already running on this store`);
    }
    // Sinks first: a configuration they refuse must fail the start before anything is recorded.
    const sinkNames = d.sinks ?? [this.#o.config.report.defaultSink];
    let sinks: Sink[];
    try {
      sinks = this.#o.sinks ?? sinkNames.map((n) => makeSink(n, this.#o.config.report, { github: { config: this.#o.config.github, db: this.#db } }));
    } catch (err) {
      this.#db.close();
      throw err;
    }
    this.#heartbeat = new Heartbeat(this.#db, this.me, this.#leaseMs() / 3);
    for (const j of this.#jobs.recoverStale(this.me, pidAlive)) {
      this.#log.warn({ jobId: j.id, seriesId: j.seriesId, owner: j.leaseOwner }, 'job taken back from a gone owner');
    }
    initCommandCursor(this.#db);
    const ingestor = new Ingestor(this.#db, { relevance: this.#o.config.relevance, batch: 1 });
    // Messages stored by a process killed before it rebuilt the series would otherwise wait for the next mail.
    ingestor.finish();
    this.#reporter = new Reporter(this.#db, this.#o.config.report, sinks, this.#log);
    this.#pool = new CheckPool(d.workers, {
      warm: { tree: this.#o.tree, ref: this.#o.config.apply.baseMap.default, paths: d.warmPaths, dirs: d.warmDirs },
      onWarm: (e) => (e.error ? this.#log.warn({ ms: e.ms, err: e.error }, 'check worker warm-up failed') : this.#log.info({ ms: e.ms }, 'check worker warmed')),
    });
    const target = serialIngest(ingestor);
    for (const src of d.sources) {
      this.#watchers.push(watchSource(this.#db, src, target, { signal: this.#abort.signal, log: this.#log, onBatch: () => this.#afterIngest() }));
    }
    this.#beatTimer = setInterval(() => this.#beat(), Math.max(50, this.#leaseMs() / 3));
    this.#timers.push(setInterval(() => void this.#tick(), d.tickMs));
    this.#timers.push(setInterval(() => void this.#reporter!.deliver(), d.deliverSeconds * 1000));
    const gh = this.#o.config.github;
    if (gh) this.#timers.push(setInterval(() => void this.#pollGithub(), gh.pollIntervalMs));
    this.#log.info(
      { owner: this.me.owner, workers: this.#pool.size, sources: d.sources.map((s) => s.name), sinks: sinks.map((s) => s.name), tree: this.#o.tree },
      'daemon ready',
    );
    // Whatever a previous run left: replies decided but not delivered, series waiting, jobs queued.
    void this.#reporter.deliver();
    await this.#tick();
  }

  #beat(): void {
    try {
      this.#heartbeat?.beat();
      this.#jobs.renew(this.me, this.#leaseMs());
    } catch (err) {
      this.#log.error({ err: reasonOf(err) }, 'heartbeat failed');
    }
  }

  async #afterIngest(): Promise<void> {
    await this.#readCommands();
    this.#schedule();
    this.#pump();
  }

  async #tick(): Promise<void> {
    if (this.#stopping) return;
    try {
      for (const j of this.#jobs.recoverStale(this.me, pidAlive)) {
        this.#log.warn({ jobId: j.id, seriesId: j.seriesId, owner: j.leaseOwner }, 'job taken back from a gone owner');
      }
      await this.#readCommands();
      this.#schedule();
      this.#pump();
    } catch (err) {
      this.#log.error({ err: reasonOf(err) }, 'tick failed');
    }
  }

  async #readCommands(): Promise<void> {
    if (this.#commandsBusy || this.#stopping) return;
    this.#commandsBusy = true;
    try {
      for (const r of await readCommandMail(this.#db, this.#jobs, this.#o.config.report)) {
        const o = r.outcome;
        this.#log.info(
          { messageId: r.messageId, from: o?.from ?? null, allowed: o?.allowed ?? false, dismissed: o?.dismissed ?? [], rerunJob: r.jobId, seriesId: r.seriesId, errors: [...(o?.errors ?? []), ...(r.error ? [r.error] : [])] },
          'mail command read',
        );
      }
    } finally {
      this.#commandsBusy = false;
    }
  }

  #schedule(): void {
    const d = this.#o.config.daemon;
    for (const s of scheduleDue(this.#db, this.#jobs, { waitSeconds: d.waitSeconds, maxAgeDays: d.maxAgeDays })) {
      this.#log.info({ jobId: s.jobId, seriesId: s.seriesId, why: s.why }, 'review queued');
    }
  }

  async #pollGithub(): Promise<void> {
    if (this.#stopping || !this.#o.config.github || !this.#reporter) return;
    await this.#reporter.exclusive(() => pollGithub(this.#db, this.#jobs, this.#o.config.github!, this.#reporter!.sinks, this.#log)).catch((err: unknown) => {
      recordHealth(this.#db, 'source', `github:${this.#o.config.github!.repo.toLowerCase()}`, { error: reasonOf(err) });
      this.#log.error({ err: reasonOf(err) }, 'github command poll failed');
    });
  }

  /** Claims due jobs while there is a free worker. */
  #pump(): void {
    const pool = this.#pool;
    if (this.#stopping || !pool) return;
    while (this.#inHand.size < pool.size) {
      const job = this.#jobs.claim(this.me, this.#leaseMs());
      if (!job) return;
      const held: InHand = { job, taskId: null, done: Promise.resolve() };
      this.#inHand.set(job.id, held);
      held.done = this.#run(held).finally(() => {
        this.#inHand.delete(job.id);
        this.#pump();
      });
    }
  }

  /** The check this job (or a killed earlier attempt of it) recorded, if any. */
  #findCheck(job: Job): number | null {
    if (job.checkId !== null) return job.checkId;
    return (
      (this.#db
        .prepare('SELECT max(id) FROM checks WHERE series_id = ? AND trigger = ? AND started_at >= ?')
        .pluck()
        .get(job.seriesId, job.kind === 'rerun' ? 'rerun' : 'daemon', job.firstClaimedAt ?? job.createdAt) as number | null) ?? null
    );
  }

  async #run(held: InHand): Promise<void> {
    const { job } = held;
    const d = this.#o.config.daemon;
    const log = this.#log.child({ jobId: job.id, seriesId: job.seriesId, kind: job.kind });
    const started = Date.now();
    log.info({ attempt: job.attempts, reason: job.reason }, 'job claimed');
    try {
      let checkId = this.#findCheck(job);
      if (checkId !== null) {
        log.info({ checkId }, 'check found from an earlier attempt');
      } else {
        if (!this.#db.prepare('SELECT 1 FROM series WHERE id = ?').get(job.seriesId)) {
          this.#jobs.finish(job.id, this.me, 'series-gone');
          log.warn('series no longer exists; job closed');
          return;
        }
        const task = this.#pool!.run({
          dbPath: this.#o.dbPath, seriesId: job.seriesId, tree: this.#o.tree, baseMap: this.#o.config.apply.baseMap,
          trigger: job.kind === 'rerun' ? 'rerun' : 'daemon', checkpatch: d.checkpatch,
        });
        held.taskId = task.taskId;
        const a = await task.answer;
        held.taskId = null;
        if (!a.ok) throw new Error(a.error);
        checkId = this.#findCheck(job);
        if (checkId === null) throw new Error('the check worker finished without recording a check');
        log.info({ checkId, status: a.status, findings: a.findings, ms: Date.now() - started }, 'series checked');
      }
      if (!this.#jobs.setCheck(job.id, this.me, checkId)) {
        log.warn('lease lost before reporting; leaving the job to its new owner');
        return;
      }
      await this.#reporter!.report(job.seriesId);
      if (this.#jobs.finish(job.id, this.me, 'reported')) log.info({ ms: Date.now() - started }, 'job done');
      else log.warn('lease lost before the job was marked done');
    } catch (err) {
      held.taskId = null;
      if (err instanceof WorkerGone && err.stopped) {
        this.#jobs.release(job.id, this.me, 'abandoned at shutdown');
        log.warn('check abandoned at shutdown; lease released');
        return;
      }
      const why = reasonOf(err);
      const state = this.#jobs.fail(job.id, this.me, why, { retryMs: d.retrySeconds * 1000 * 2 ** Math.max(0, job.attempts - 1), maxAttempts: d.maxAttempts });
      log.error({ err: why, state, attempt: job.attempts }, 'job failed');
    }
  }

  /**
   * Stops taking work and IMAP, lets the checks in hand finish for up to shutdownGraceSeconds, then
   * abandons the rest (their leases released, queued again for the next start). Idempotent.
   */
  stop(reason: string): Promise<void> {
    this.#stopped ??= this.#stop(reason);
    return this.#stopped;
  }

  async #stop(reason: string): Promise<void> {
    this.#stopping = true;
    this.#log.info({ reason, inHand: [...this.#inHand.keys()] }, 'daemon stopping');
    for (const t of this.#timers) clearInterval(t);
    this.#abort.abort();
    const settled = (): Promise<unknown> => Promise.allSettled([...this.#inHand.values()].map((h) => h.done));
    await Promise.race([settled(), delay(this.#o.config.daemon.shutdownGraceSeconds * 1000, undefined, { ref: false })]);
    for (const h of this.#inHand.values()) if (h.taskId !== null) await this.#pool?.cancel(h.taskId);
    // Reports in hand are short; a sink that hangs must not keep the process from exiting.
    await Promise.race([settled(), delay(10_000, undefined, { ref: false })]);
    for (const h of this.#inHand.values()) {
      if (this.#jobs.release(h.job.id, this.me, 'abandoned at shutdown')) this.#log.warn({ jobId: h.job.id }, 'job abandoned; lease released');
    }
    await Promise.race([Promise.allSettled(this.#watchers), delay(5_000, undefined, { ref: false })]);
    if (this.#beatTimer) clearInterval(this.#beatTimer);
    await Promise.race([this.#reporter?.close(), delay(5_000, undefined, { ref: false })]);
    await this.#pool?.close();
    this.#heartbeat?.stopped(reason);
    this.#db.close();
    this.#log.info({ reason }, 'daemon stopped');
  }
}
