import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Db } from '../store/db.js';
import { Ingestor } from '../ingest/ingest.js';
import { readMbox } from '../ingest/mbox-source.js';
import { checkSeries, type CheckReport, type CheckOptions } from '../check/check.js';
import { msgIdFromUserInput } from '../mail/msgid.js';

/** One labelled review thread of threads/INDEX.md. */
export interface LabelledThread {
  n: number;
  slug: string;
  subject: string;
  category: string;
  concern: string;
  rootMsgid: string;
}

/** Reads threads/INDEX.md: the table rows, with the root patch's Message-ID from its lore link. */
export function readIndex(corpus: string): LabelledThread[] {
  const out: LabelledThread[] = [];
  for (const line of readFileSync(join(corpus, 'threads', 'INDEX.md'), 'utf8').split('\n')) {
    if (!/^\| \d+ \|/.test(line)) continue;
    const c = line.split(' | ').map((x) => x.replace(/^\| ?| ?\|$/g, '').trim());
    out.push({ n: Number(c[0]), slug: c[1]!, subject: c[2]!, category: c[8]!, concern: c[9]!, rootMsgid: msgIdFromUserInput(c[10]!) });
  }
  return out;
}

export type Verdict = 'caught' | 'missed' | 'noisy' | 'quiet' | 'caught+noisy';

export interface ThreadRow {
  thread: LabelledThread;
  applied: string;
  raised: { rule: string; category: string; severity: string; line: number; file: string }[];
  verdict: Verdict;
}

/**
 * Checks each labelled thread's root patch (the series it belongs to, as far
 * as the thread holds it) and compares what was raised with the label:
 * caught = a warning/error of the labelled category on the root patch; noisy =
 * warnings/errors of another category (or any, on a thread labelled none).
 */
export async function evalThreads(db: Db, corpus: string, opts: CheckOptions): Promise<ThreadRow[]> {
  const rows: ThreadRow[] = [];
  for (const t of readIndex(corpus)) {
    const ing = new Ingestor(db, { batch: 500 });
    const src = ing.sourceId('mbox', `threads/${t.slug}.mbox`);
    await ing.addStream(src, readMbox(join(corpus, 'threads', `${t.slug}.mbox`)));
    ing.finish();
    const sid = db
      .prepare('SELECT sp.series_id FROM series_patches sp JOIN messages m ON m.id = sp.message_id WHERE m.message_id = ? ORDER BY sp.series_id DESC LIMIT 1')
      .pluck()
      .get(t.rootMsgid) as number | undefined;
    let report: CheckReport | null = null;
    if (sid !== undefined) report = await checkSeries(db, sid, { ...opts, trigger: 'check' });
    const raised = (report?.findings ?? [])
      .filter((f) => f.patch === t.rootMsgid && f.severity !== 'info')
      .map((f) => ({ rule: f.rule, category: f.category, severity: f.severity, line: f.line, file: f.file }));
    const hit = raised.some((r) => r.category === t.category);
    const other = raised.some((r) => r.category !== t.category);
    const verdict: Verdict = t.category === 'none'
      ? (raised.length ? 'noisy' : 'quiet')
      : hit && other ? 'caught+noisy' : hit ? 'caught' : other ? 'noisy' : 'missed';
    rows.push({
      thread: t,
      applied: report ? (report.apply.base ? `applied (${report.apply.status})` : 'diff alone') : 'no series found',
      raised,
      verdict,
    });
  }
  return rows;
}
