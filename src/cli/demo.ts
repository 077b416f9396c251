import { randomBytes } from 'node:crypto';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCli } from './args.js';
import { baseCommitsIn, buildDemoTree, DEMO_BRANCH } from './demo-tree.js';
import { openDb, DEFAULT_DB_PATH, type Db } from '../store/db.js';
import { Ingestor } from '../ingest/ingest.js';
import { readMbox } from '../ingest/mbox-source.js';
import { defaultBaseMap } from '../config/load.js';
import type { BaseMap } from '../apply/base.js';
import { checkSeries, type CheckReport } from '../check/check.js';
import { runReport, makeSink } from '../report/report.js';
import { loadReportPolicy } from '../report/policy.js';
import { startServer, type RunningServer } from '../web/server.js';
import { VrError } from '../errors.js';

const EXAMPLE = fileURLToPath(new URL('../../examples/demo-series.mbox', import.meta.url));
const USAGE = 'usage: vfio-review demo [--db PATH] [--mbox FILE] [--port N] [--no-serve]';

type Write = (line?: string) => void;

/**
 * `npm start`: the whole pipeline on the bundled example, with no network. Builds the example
 * kernel-like tree (examples/tree) into a git repository beside the database, ingests the example
 * mbox (a v1 and a v2 of one series, and a review), checks every series version against the tree,
 * decides replies through the outbox and prints them (stdout sink: nothing is sent), shows how the
 * concerns moved from v1 to v2, then serves the dashboard on 127.0.0.1 until Ctrl-C.
 * Running it again reuses everything: the outbox decides each reply once, so nothing is printed twice.
 */
export async function run(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values } = parseCli(argv, { mbox: { type: 'string' }, port: { type: 'string' }, 'no-serve': { type: 'boolean' } });
  const port = values.port === undefined ? null : Number(values.port);
  if (port !== null && (!Number.isInteger(port) || port < 0 || port > 65535)) throw new VrError('USAGE', `--port must be 0..65535\n${USAGE}`);
  const file = resolve(values.mbox ?? EXAMPLE);
  const dbPath = values.db ?? env.VFIO_REVIEW_DB ?? DEFAULT_DB_PATH;
  const work = join(dirname(resolve(dbPath)), 'vfio-review-demo');
  const out: Write = (line = '') => void process.stdout.write(`${line}\n`);
  const shown = (p: string): string => (relative(process.cwd(), p).startsWith('..') ? p : `./${relative(process.cwd(), p)}`);

  out('vfio-review demo: the bundled example series, end to end, on this machine only (nothing is sent).');
  out();
  const tree = await buildDemoTree(join(work, 'sample-tree'));
  out(`1. Tree: ${shown(tree.dir)}, branch ${DEMO_BRANCH} at ${tree.commit} (${tree.created ? 'built from examples/tree' : 'already there'})`);
  const stale = baseCommitsIn(file).filter((c) => !tree.commit.startsWith(c));
  if (stale.length) out(`   note: the mbox names base-commit ${stale[0]}, not this tree's commit; the series will be tried on ${DEMO_BRANCH} instead`);

  const db = openDb(dbPath);
  let server: RunningServer | null = null;
  try {
    const ing = new Ingestor(db, { batch: 100 });
    const src = ing.sourceId('mbox', file);
    const rows: number[] = [];
    for await (const m of readMbox(file)) rows.push((await ing.add(src, m.bytes, m.locator)).messageRowId);
    const sum = ing.finish();
    out(`2. Ingest: ${sum.seen} messages from ${shown(file)} into ${dbPath} (${sum.new} new, ${sum.duplicate} already stored)`);
    const ids = seriesOf(db, rows);
    for (const s of db.prepare(`SELECT id, subject, version, total, complete, base_commit FROM series WHERE id IN (${ids.join(',') || 'NULL'})`).all() as SeriesRow[]) {
      out(`   series ${s.id}: ${s.subject} (v${s.version}, ${s.total} patches, ${s.complete ? 'complete' : 'incomplete'}${s.base_commit ? `, base-commit ${s.base_commit.slice(0, 12)}` : ''})`);
    }

    out(`3. Check: apply each version to the tree and run the rules`);
    for (const id of ids) {
      const r = await checkSeries(db, id, { tree: tree.dir, baseMap: demoBaseMap(), trigger: 'check' });
      out(`   ${checkLine(r)}`);
      for (const f of r.findings) out(`     ${f.file}:${f.line}: ${f.rule} (${f.severity}): ${f.message}`);
    }

    out(`4. Report: replies decided into the outbox, printed by the stdout sink (copies in ${shown(join(work, 'outbox'))}/)`);
    const before = new Set(db.prepare("SELECT id FROM outbox WHERE sink = 'stdout' AND state = 'sent'").pluck().all() as number[]);
    const policy = loadReportPolicy({ defaultSink: 'stdout', filesDir: join(work, 'outbox') }, {});
    const sink = makeSink('stdout', policy, { out: process.stdout });
    const rep = await runReport(db, { seriesIds: ids, sink, policy });
    const d = rep.delivery ?? { sent: 0, failed: 0, retrying: 0 };
    if (d.sent > 0) out('='.repeat(72));
    out(`   ${d.sent} new repl${d.sent === 1 ? 'y' : 'ies'}${d.sent ? ' printed above' : ''}${d.failed ? `, ${d.failed} failed` : ''}${d.retrying ? `, ${d.retrying} to retry` : ''}`);
    for (const s of rep.series) if (s.skipped) out(`   series ${s.seriesId}: ${s.skipped}`);
    const earlier = (db.prepare("SELECT id, series_id, subject, message_id, sent_at FROM outbox WHERE sink = 'stdout' AND state = 'sent' ORDER BY id").all() as OutboxBrief[])
      .filter((r) => before.has(r.id) && ids.includes(r.series_id));
    for (const r of earlier) out(`   already sent: ${r.subject} ${r.message_id} at ${r.sent_at}`);

    out('5. Concerns across versions:');
    for (const line of concernTable(db, ids)) out(`   ${line}`);

    if (values['no-serve']) return 0;
    const token = env.VFIO_REVIEW_WEB_TOKEN?.trim() || null;
    server = await listen(db, { port, token, tree: tree.dir });
    const actions = token ? 'dismiss and rerun after logging in with VFIO_REVIEW_WEB_TOKEN' : 'read-only; set VFIO_REVIEW_WEB_TOKEN to dismiss and rerun';
    out(`6. Dashboard: ${server.url}/concerns  (${actions}; Ctrl-C to stop)`);
    await untilSignal();
    return 0;
  } finally {
    await server?.close();
    db.close();
  }
}

/** The usual cascade (base-commit, maintainers' branches), ending on the demo branch instead of HEAD. */
function demoBaseMap(): BaseMap {
  return { ...defaultBaseMap(), default: DEMO_BRANCH };
}

/** `[applied] v1 "title": on <base> (why); N findings` */
function checkLine(r: CheckReport): string {
  const base = r.apply.base;
  const why = r.apply.attempts.find((a) => base && a.ref === base.ref && a.commit === base.commit)?.why;
  const on = base ? `on ${base.commit.slice(0, 12)}${why ? ` (${why})` : ''}` : r.apply.label;
  const n = r.findings.length;
  const failed = r.apply.failedPatch ? `; patch ${r.apply.failedPatch} failed: ${r.apply.detail ?? ''}` : '';
  return `[${r.apply.status}] series ${r.series.id}, v${r.series.version}: ${on}${failed}; ${n === 0 ? 'no findings' : `${n} finding${n === 1 ? '' : 's'}:`}`;
}

interface SeriesRow { id: number; subject: string; version: number; total: number; complete: number; base_commit: string | null }
interface OutboxBrief { id: number; series_id: number; subject: string; message_id: string; sent_at: string }

/**
 * Relevant series with a message from this run's file, oldest first. By message, not by source: a
 * database that ingested an older example from the same path keeps those series out of the demo.
 */
function seriesOf(db: Db, messageRowIds: number[]): number[] {
  const ids = messageRowIds.filter((n) => Number.isInteger(n) && n > 0);
  return db
    .prepare(
      `SELECT DISTINCT s.id FROM series s JOIN series_patches sp ON sp.series_id = s.id
       WHERE sp.message_id IN (${ids.join(',') || 'NULL'}) AND s.relevant = 1 ORDER BY s.first_date, s.id`,
    )
    .pluck()
    .all() as number[];
}

/**
 * One row per concern, one column per version of its lineage: new (first seen), open (seen again),
 * resolved (a full review of a later version no longer finds it), dismissed, or '-'.
 */
function concernTable(db: Db, ids: number[]): string[] {
  const lines: string[] = [];
  const lineages = db.prepare(`SELECT DISTINCT lineage_id FROM series WHERE id IN (${ids.join(',') || 'NULL'}) AND lineage_id IS NOT NULL ORDER BY lineage_id`).pluck().all() as number[];
  for (const lineage of lineages) {
    const versions = db
      .prepare(
        `SELECT s.id, s.version, max(cc.check_id) AS check_id FROM series s JOIN concern_checks cc ON cc.series_id = s.id
         WHERE s.lineage_id = ? GROUP BY s.id ORDER BY s.version, s.first_date, s.id`,
      )
      .all(lineage) as { id: number; version: number; check_id: number }[];
    const reviewable = db.prepare('SELECT reviewable FROM concern_checks WHERE check_id = ?').pluck();
    const sighted = db.prepare('SELECT 1 FROM concern_sightings WHERE concern_id = ? AND check_id = ?').pluck();
    const concerns = db.prepare('SELECT id, public_id, rule, file, function, state FROM concerns WHERE lineage_id = ? ORDER BY id').all(lineage) as {
      id: number; public_id: string; rule: string; file: string; function: string | null; state: string;
    }[];
    const title = db.prepare('SELECT title FROM lineages WHERE id = ?').pluck().get(lineage) as string | undefined;
    lines.push(`"${title ?? `lineage ${lineage}`}": ${versions.map((v) => `v${v.version}`).join(' -> ')}`);
    const head = ['concern', 'rule', 'where', ...versions.map((v) => `v${v.version}`)];
    const rows = concerns.map((c) => {
      let seen = false;
      const cells = versions.map((v) => {
        if (sighted.get(c.id, v.check_id)) {
          const cell = seen ? 'open' : 'new';
          seen = true;
          return c.state === 'dismissed' ? 'dismissed' : cell;
        }
        return seen && reviewable.get(v.check_id) === 1 ? 'resolved' : '-';
      });
      return [c.public_id, c.rule, `${c.file}${c.function ? ` ${c.function}()` : ''}`, ...cells];
    });
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    for (const r of [head, ...rows]) lines.push(`  ${r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}`);
    const by = (s: string): number => concerns.filter((c) => c.state === s).length;
    lines.push(`  now: ${by('new') + by('open')} open, ${by('resolved')} resolved, ${by('dismissed')} dismissed`);
  }
  return lines;
}

/** The dashboard on 127.0.0.1: the port asked for, else 8080, else any free port. */
async function listen(db: Db, o: { port: number | null; token: string | null; tree: string }): Promise<RunningServer> {
  const opts = {
    db, token: o.token, host: '127.0.0.1', csrfSecret: randomBytes(32).toString('base64url'),
    ...(o.token ? { rerun: async (id: number) => void (await checkSeries(db, id, { tree: o.tree, baseMap: demoBaseMap(), trigger: 'rerun' })) } : {}),
  };
  if (o.port !== null) return startServer({ ...opts, port: o.port });
  try {
    return await startServer({ ...opts, port: 8080 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    return startServer({ ...opts, port: 0 });
  }
}

function untilSignal(): Promise<void> {
  return new Promise<void>((done) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      done();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
