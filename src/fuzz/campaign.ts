/**
 * The malformed-mail robustness campaign (issue 8). Generated cases go through the real ingest
 * path into a real SQLite store: single messages through `Ingestor.add` (the daemon's path); mbox
 * streams split in memory by `MboxSplitter` then `add`, or (one in 40) written to a file and
 * read the way `vfio-review ingest` reads it, `readMbox` into `Ingestor.addStream` on worker
 * threads. Every input is checked against the ingest contract: no throw, settles in bounded
 * time, its exact bytes stored, a message row 'parsed' or 'failed' with a reason, one raw row
 * per distinct byte sequence fed, `finish()` never throws, memory stays bounded. mbox splits are
 * checked against a reference reader and, for properly written mboxes, against the messages
 * written. Every finding names (seed, index, operators) so it replays alone.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { reasonOf } from '../errors.js';
import { Ingestor } from '../ingest/ingest.js';
import { MboxSplitter, readMbox, type RawMail } from '../ingest/mbox-source.js';
import { openDb } from '../store/db.js';
import { referenceSplit } from './mbox.js';
import { makeCase, type CaseInput, type FuzzCase, type OperatorId } from './mutate.js';
import { mulberry32 } from './rng.js';
import { loadSeeds, type SeedSet } from './seeds.js';
import { cpuNow, settle, Watchdog, type Limits, type Settled } from './watch.js';

export { loadSeeds, type SeedSet } from './seeds.js';

export interface CampaignProgress { done: number; total: number; crashes: number; hangs: number; seconds: number }

export interface CampaignOptions {
  cases: number;
  seed: number;
  /** First case index (replay one case with { start: index, cases: 1 }). */
  start?: number;
  /** Keep the store here; default: a temp file, removed afterwards. */
  dbPath?: string;
  onProgress?: (p: CampaignProgress) => void;
  /** An add that uses more CPU time than this is a hang (default 10 s). */
  timeoutMs?: number;
  /** A pending add while the process does nothing for this long will never settle: a hang (default 2 s). */
  idleMs?: number;
  /** Cases between two finish() calls (default 5,000). */
  finishEvery?: number;
  /** A finish() using more CPU time than this counts as a hang (default 120 s; it rebuilds the whole store). */
  finishTimeoutMs?: number;
  batch?: number;
  /** Only these operators (default: all). */
  operators?: readonly OperatorId[];
  /** Let light operators stack on one message (default: on unless `operators` is given). */
  combine?: boolean;
  seeds?: SeedSet;
  /** Peak RSS allowed (default 2 GiB). */
  maxRssBytes?: number;
  /** A synchronous freeze longer than this kills the process with the case printed (default 120 s; 0: off). */
  stallMs?: number;
  /** Every mbox case through readMbox + addStream (default: the one in 40 the case generator picks). */
  streamAll?: boolean;
}

export interface CaseCrash { index: number; operator: string; locator: string; error: string; stack?: string }
/** `ms` is CPU time. Not `settled`: given up while pending, because the process sat idle (nothing will ever settle it) or past the wall-clock backstop. */
export interface CaseHang { index: number; operator: string; locator: string; ms: number; wallMs: number; settled: boolean; why: 'cpu' | 'idle' | 'wall' }
/**
 * raw-lost: an input's bytes are not stored (or not linked to its copy); no-message: no source row
 * for an input; bad-state / no-reason: a row neither parsed nor failed with a reason; mbox-split:
 * the splitter disagrees with itself (chunked, from a file), with the reference reader, or with
 * the messages written; raw-count: raw rows != distinct inputs; lost-after-commit: fewer source
 * rows in the committed store than inputs accepted.
 */
export type ViolationKind = 'raw-lost' | 'no-message' | 'bad-state' | 'no-reason' | 'mbox-split' | 'raw-count' | 'lost-after-commit';
export interface Violation { index: number; operator: string; locator: string; what: ViolationKind; detail?: string }
export interface OperatorTally { cases: number; inputs: number; parsed: number; failed: number; crashes: number; hangs: number; violations: number }

export interface CampaignResult {
  seed: number;
  start: number;
  cases: number;
  /** Messages given to the ingestor (a case may hold several; an mbox case as many as it splits into). */
  inputs: number;
  /** Of `inputs`, those that went through readMbox + addStream. */
  streamed: number;
  crashes: CaseCrash[];
  hangs: CaseHang[];
  violations: Violation[];
  finishErrors: { afterIndex: number; error: string }[];
  rawKept: number;
  /** Raw rows in the store, and distinct byte sequences fed (equal unless a message was lost). */
  rawRows: number;
  distinctInputs: number;
  failedWithReason: number;
  parsed: number;
  /** mbox cases whose split was checked against the reference reader; of them, against the messages written. */
  mboxChecked: number;
  mboxWritten: number;
  finishes: number;
  /** Duration of each finish(), in order. */
  finishSeconds: number[];
  seconds: number;
  peakRssMb: number;
  memoryOk: boolean;
  /** The adds that used the most CPU time (ms), slowest first: where a future hang would come from. */
  slowest: { index: number; operator: string; ms: number }[];
  /** Most frequent parse_error texts (first 80 chars) of failed messages. */
  failureReasons: { reason: string; count: number }[];
  seeds: Omit<SeedSet, 'messages'>;
  perOperator: Record<string, OperatorTally>;
  /** No crash, hang, violation, finish error, and memory within bounds. */
  ok: boolean;
}

type MboxInput = Extract<CaseInput, { kind: 'mbox' }>;

const same = (a: RawMail[], b: RawMail[]): boolean =>
  a.length === b.length && a.every((m, i) => m.locator === b[i]!.locator && m.bytes.equals(b[i]!.bytes));

/** Where two splits first differ, for the violation detail. */
function firstDifference(a: RawMail[], b: RawMail[]): string {
  const i = a.findIndex((m, k) => !b[k] || m.locator !== b[k].locator || !m.bytes.equals(b[k].bytes));
  const at = i < 0 ? a.length : i;
  return `${a.length} vs ${b.length} messages, first difference at #${at} (${a[at]?.locator ?? '-'} / ${b[at]?.locator ?? '-'})`;
}

/**
 * Splits an mbox case whole and in random chunks, and checks both against the reference reader
 * and, when the operator wrote the mbox, against the messages written.
 */
function splitMbox(c: MboxInput): { mails: RawMail[]; mismatch: string | null } {
  const whole = new MboxSplitter(c.format);
  const mails = [...whole.push(c.bytes), ...whole.end()];
  const r = mulberry32(c.chunkSeed);
  const chunked = new MboxSplitter(c.format);
  const got: RawMail[] = [];
  for (let at = 0; at < c.bytes.length;) {
    const n = 1 + r.int(r.chance(0.3) ? 8 : 4096);
    got.push(...chunked.push(c.bytes.subarray(at, at + n)));
    at += n;
  }
  got.push(...chunked.end());
  if (!same(mails, got)) return { mails, mismatch: `chunked split: ${firstDifference(mails, got)}` };
  const ref = referenceSplit(c.bytes, c.format);
  if (!same(mails, ref)) return { mails, mismatch: `splitter vs reference ${c.format} reader: ${firstDifference(mails, ref)}` };
  if (c.expected) {
    const bytes = mails.map((m) => m.bytes);
    const ok = bytes.length === c.expected.length && bytes.every((b, i) => b.equals(c.expected![i]!));
    if (!ok) return { mails, mismatch: `wrote ${c.expected.length} messages, read ${bytes.length} (or other bytes)` };
  }
  return { mails, mismatch: null };
}

/** Prefixes the locators of a stream with the case, so every input's source row is found again. */
async function* relocate(mails: AsyncIterable<RawMail>, index: number): AsyncGenerator<RawMail> {
  for await (const m of mails) yield { bytes: m.bytes, locator: `case:${index}/${m.locator}` };
}

const tally = (): OperatorTally => ({ cases: 0, inputs: 0, parsed: 0, failed: 0, crashes: 0, hangs: 0, violations: 0 });
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const stackOf = (e: unknown): string | undefined => (e as Error | undefined)?.stack?.split('\n').slice(0, 6).join('\n');

/** Runs `cases` generated cases (indices start .. start+cases-1) and checks every invariant. */
export async function runCampaign(opts: CampaignOptions): Promise<CampaignResult> {
  const t0 = performance.now();
  const seed = opts.seed >>> 0;
  const start = opts.start ?? 0;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const limits: Limits = { cpuMs: timeoutMs, idleMs: opts.idleMs ?? 2000, wallMs: Math.max(120_000, 6 * timeoutMs) };
  const finishEvery = opts.finishEvery ?? 5000;
  const maxRss = opts.maxRssBytes ?? 2 * 1024 ** 3;
  const seeds = opts.seeds ?? (await loadSeeds());
  const scratch = mkdtempSync(join(tmpdir(), 'vr-fuzz-'));
  const db = openDb(opts.dbPath ?? join(scratch, 'fuzz.db'));
  const watchdog = new Watchdog(seed, opts.stallMs ?? 120_000);
  const ing = new Ingestor(db, { batch: opts.batch ?? 500 });
  const source = ing.sourceId('manual', `fuzz:${seed}:${start}`);
  const check = db.prepare(
    `SELECT m.parse_state AS state, m.parse_error AS error, r.bytes = ? AS same
     FROM message_sources s JOIN messages m ON m.id = s.message_id JOIN raw_messages r ON r.id = s.raw_id
     WHERE s.source_id = ? AND s.locator = ?`,
  );
  const rawBySha = db.prepare('SELECT bytes = ? FROM raw_messages WHERE sha256 = ?').pluck();
  const rawCount = db.prepare('SELECT count(*) FROM raw_messages').pluck();
  const rawAtStart = rawCount.get() as number;
  const fed = new Set<string>();
  const res: CampaignResult = {
    seed, start, cases: 0, inputs: 0, streamed: 0, crashes: [], hangs: [], violations: [], finishErrors: [], rawKept: 0,
    rawRows: 0, distinctInputs: 0, failedWithReason: 0, parsed: 0, mboxChecked: 0, mboxWritten: 0, finishes: 0,
    finishSeconds: [], seconds: 0, peakRssMb: 0, memoryOk: true, slowest: [], failureReasons: [],
    seeds: { fromCorpus: seeds.fromCorpus, builtin: seeds.builtin, note: seeds.note, fingerprint: seeds.fingerprint },
    perOperator: {}, ok: false,
  };
  const abandoned: Promise<unknown>[] = [];
  // A rejection nobody handles (a stray promise in a parser, a worker) is a crash of the case that
  // was running; recorded here, it neither kills the campaign nor goes unnoticed.
  let current = start;
  const onUnhandled = (reason: unknown): void => {
    res.crashes.push({ index: current, operator: 'unhandled rejection', locator: `case:${current}`, error: reasonOf(reason), stack: stackOf(reason) });
  };
  process.on('unhandledRejection', onUnhandled);
  let okInputs = 0;
  let peakRss = 0;

  const finish = (after: number): void => {
    const began = performance.now();
    const cpu0 = cpuNow();
    watchdog.arm(after, true, Math.max(opts.stallMs ?? 0, 900_000));
    try {
      ing.finish();
      res.finishes++;
    } catch (err) {
      res.finishErrors.push({ afterIndex: after, error: reasonOf(err) });
    } finally {
      watchdog.disarm();
    }
    const ms = Math.round(cpuNow() - cpu0);
    const wallMs = Math.round(performance.now() - began);
    res.finishSeconds.push(Math.round(wallMs / 100) / 10);
    if (ms > (opts.finishTimeoutMs ?? 120_000)) res.hangs.push({ index: after, operator: 'finish()', locator: '*', ms, wallMs, settled: true, why: 'cpu' });
  };

  try {
    for (let index = start; index < start + opts.cases; index++) {
      current = index;
      const c: FuzzCase = makeCase(seeds.messages, seed, index, opts.operators, opts.combine ?? !opts.operators);
      const operator = c.operators.join('+');
      const tallies = c.operators.map((id) => (res.perOperator[id] ??= tally()));
      const bump = (k: keyof OperatorTally): void => { for (const t of tallies) t[k]++; };
      const violation = (v: Omit<Violation, 'index' | 'operator'>): void => { res.violations.push({ index, operator, ...v }); bump('violations'); };
      const hang = (locator: string, out: Settled<unknown>): void => {
        res.hangs.push({ index, operator, locator, ms: out.cpuMs, wallMs: out.wallMs, settled: out.kind !== 'stuck', why: out.kind === 'stuck' ? out.why : 'cpu' });
        bump('hangs');
      };
      const crash = (locator: string, error: unknown, what = ''): void => {
        res.crashes.push({ index, operator, locator, error: `${what}${reasonOf(error)}`, stack: stackOf(error) });
        bump('crashes');
      };
      /** After add/addStream threw: the bytes must still be stored. */
      const keptAfterCrash = (bytes: Buffer, locator: string): void => {
        if (rawBySha.get(bytes, sha256(bytes)) === 1) res.rawKept++;
        else violation({ locator, what: 'raw-lost', detail: 'the ingestor threw and no raw row holds these bytes' });
      };
      /** The stored row of one input that the ingestor accepted. */
      const checkStored = (bytes: Buffer, locator: string): void => {
        okInputs++;
        const row = check.get(bytes, source, locator) as { state: string; error: string | null; same: number } | undefined;
        if (!row) return violation({ locator, what: 'no-message' });
        if (row.same === 1) res.rawKept++;
        else violation({ locator, what: 'raw-lost', detail: 'the raw row linked to this copy holds other bytes' });
        if (row.state === 'parsed') {
          res.parsed++;
          bump('parsed');
        } else if (row.state === 'failed') {
          bump('failed');
          if (row.error && row.error.trim()) res.failedWithReason++;
          else violation({ locator, what: 'no-reason' });
        } else violation({ locator, what: 'bad-state', detail: row.state });
      };
      const count = (inputs: readonly RawMail[]): void => {
        for (const m of inputs) fed.add(sha256(m.bytes));
        res.inputs += inputs.length;
        for (const t of tallies) t.inputs += inputs.length;
      };
      bump('cases');
      res.cases++;

      const input = c.input;
      let inputs: RawMail[];
      if (input.kind === 'messages') {
        inputs = input.messages.map((bytes, k) => ({ bytes, locator: `case:${index}#${k}` }));
      } else {
        watchdog.arm(index, false);
        let split: { mails: RawMail[]; mismatch: string | null };
        try {
          split = splitMbox(input);
        } catch (err) {
          crash(`case:${index}`, err, 'mbox split: ');
          continue;
        } finally {
          watchdog.disarm();
        }
        res.mboxChecked++;
        if (input.expected) res.mboxWritten++;
        if (split.mismatch) violation({ locator: `case:${index}`, what: 'mbox-split', detail: split.mismatch });
        inputs = split.mails.map((m) => ({ bytes: m.bytes, locator: `case:${index}/${m.locator}` }));
        if (input.stream || opts.streamAll) {
          // The `vfio-review ingest` path: a file (gzipped or not), readMbox, addStream on worker threads.
          count(inputs);
          res.streamed += inputs.length;
          const file = join(scratch, `case.mbox${input.gzip ? '.gz' : ''}`);
          writeFileSync(file, input.gzip ? gzipSync(input.bytes) : input.bytes);
          const out = await settle(() => ing.addStream(source, relocate(readMbox(file, { format: input.format }), index)), { ...limits, cpuMs: timeoutMs * Math.max(1, inputs.length) });
          if (out.kind === 'stuck') {
            hang(`case:${index}/stream`, out);
            abandoned.push(out.pending.catch(() => undefined));
            continue;
          }
          if (out.kind === 'threw') {
            crash(`case:${index}/stream`, out.error, 'addStream: ');
            for (const m of inputs) keptAfterCrash(m.bytes, m.locator);
            continue;
          }
          for (const m of inputs) checkStored(m.bytes, m.locator);
          continue;
        }
      }

      count(inputs);
      for (const { bytes, locator } of inputs) {
        watchdog.arm(index, false);
        const out = await settle(() => ing.add(source, bytes, locator), limits);
        watchdog.disarm();
        const ms = out.cpuMs;
        if (res.slowest.length < 10 || ms > res.slowest[9]!.ms) {
          res.slowest = [...res.slowest, { index, operator, ms }].sort((a, b) => b.ms - a.ms).slice(0, 10);
        }
        // A synchronous parse holds the poll back, so CPU time is judged after the fact as well.
        if (out.kind === 'stuck' || ms > timeoutMs) {
          hang(locator, out);
          if (out.kind === 'stuck') {
            abandoned.push(out.pending.catch(() => undefined));
            continue;
          }
        }
        if (out.kind === 'threw') {
          crash(locator, out.error);
          keptAfterCrash(bytes, locator);
          continue;
        }
        checkStored(bytes, locator);
      }
      peakRss = Math.max(peakRss, process.memoryUsage.rss());
      const done = index - start + 1;
      if (done % finishEvery === 0) finish(index);
      if (opts.onProgress && (done % 250 === 0 || done === opts.cases)) {
        opts.onProgress({ done, total: opts.cases, crashes: res.crashes.length, hangs: res.hangs.length, seconds: (performance.now() - t0) / 1000 });
      }
    }
    if (res.cases % finishEvery !== 0 || res.cases === 0) finish(start + res.cases - 1);
    // After the last commit: one source row per input the ingestor accepted, one raw row per distinct input.
    const committed = db.prepare('SELECT count(*) FROM message_sources WHERE source_id = ?').pluck().get(source) as number;
    res.failureReasons = db.prepare(
      `SELECT substr(parse_error, 1, 80) AS reason, count(*) AS count FROM messages WHERE parse_state = 'failed'
       GROUP BY 1 ORDER BY 2 DESC LIMIT 12`,
    ).all() as { reason: string; count: number }[];
    if (committed < okInputs) {
      res.violations.push({ index: -1, operator: '*', locator: '*', what: 'lost-after-commit', detail: `${committed} source rows for ${okInputs} inputs` });
    }
    res.rawRows = (rawCount.get() as number) - rawAtStart;
    res.distinctInputs = fed.size;
    // Only judged on a fresh store: a reused one may already hold some of the inputs.
    if (rawAtStart === 0 && res.rawRows !== res.distinctInputs && res.hangs.every((h) => h.settled)) {
      res.violations.push({ index: -1, operator: '*', locator: '*', what: 'raw-count', detail: `${res.rawRows} raw rows for ${res.distinctInputs} distinct inputs` });
    }
  } finally {
    // Late adds may still land before the store closes; one that never settles is not waited for long.
    await settle(() => Promise.allSettled(abandoned), { cpuMs: 2000, idleMs: 500, wallMs: 2000 });
    process.off('unhandledRejection', onUnhandled);
    await watchdog.stop();
    db.close();
    rmSync(scratch, { recursive: true, force: true });
  }
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
  res.peakRssMb = Math.round(peakRss / 1024 / 1024);
  res.memoryOk = peakRss <= maxRss;
  res.seconds = Math.round((performance.now() - t0) / 100) / 10;
  res.ok = res.crashes.length === 0 && res.hangs.length === 0 && res.violations.length === 0 && res.finishErrors.length === 0 && res.memoryOk;
  return res;
}
