import { parseCli } from './args.js';
import { Progress } from './progress.js';
import { VrError } from '../errors.js';
import { runCampaign, loadSeeds, type CampaignResult } from '../fuzz/campaign.js';
import { OPERATORS, type OperatorId } from '../fuzz/mutate.js';
import { runPatchCampaign, type PatchCampaignResult } from '../fuzz/patch-campaign.js';
import { PATCH_OPERATORS, type PatchOperatorId } from '../fuzz/patch-mutate.js';

function count(name: string, v: string | undefined, dflt: number, min = 0): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) throw new VrError('USAGE', `--${name} wants an integer >= ${min}, got '${v}'`);
  return n;
}

function ids<T extends string>(flag: string, names: string[] | undefined, all: readonly { id: T }[]): T[] | undefined {
  if (!names?.length) return undefined;
  const known = new Map<string, T>(all.map((o) => [o.id, o.id]));
  return names.map((n) => {
    const id = known.get(n);
    if (!id) throw new VrError('USAGE', `unknown --${flag} '${n}' (have: ${[...known.keys()].join(', ')})`);
    return id;
  });
}

/** Left-aligned text columns, right-aligned number columns. */
function table(head: string[], rows: string[][], textCols = 2): string[] {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i < textCols ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ').trimEnd();
  return [line(head), ...rows.map(line)];
}

/** The mail campaign: counts per mutation kind and per outcome, then each finding with its replay command. */
export function summaryTable(r: CampaignResult): string {
  const family = new Map<string, string>(OPERATORS.map((o) => [o.id, o.family]));
  const rows = Object.entries(r.perOperator)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([id, t]) => [id, family.get(id) ?? '', t.cases, t.inputs, t.parsed, t.failed, t.crashes, t.hangs, t.violations].map(String));
  const out = ['MALFORMED MAIL (a case with stacked mutations counts under each of them)'];
  out.push(...table(['mutation', 'family', 'cases', 'messages', 'stored-ok', 'parse-failure-recorded', 'crash', 'hang', 'violation'], rows), '');
  out.push(
    `seeds: ${r.seeds.note} (fingerprint ${r.seeds.fingerprint})`,
    `${r.cases} cases (seed ${r.seed}, from index ${r.start}): ${r.inputs} messages fed (${r.streamed} through readMbox + addStream), ` +
      `${r.mboxChecked} mbox splits checked against the reference reader (${r.mboxWritten} against the messages written); ${r.seconds} s, ` +
      `peak RSS ${r.peakRssMb} MB${r.memoryOk ? '' : ' (OVER THE LIMIT)'}`,
    `outcome: stored ok ${r.parsed}, parse failure recorded with a reason ${r.failedWithReason}, crash ${r.crashes.length}, ` +
      `hang ${r.hangs.length}, violation ${r.violations.length}, finish() error ${r.finishErrors.length}`,
    `raw kept: ${r.rawKept}/${r.inputs} messages found byte for byte; ${r.rawRows} raw rows for ${r.distinctInputs} distinct inputs; ` +
      `${r.finishes} finish() calls (${r.finishSeconds.join(', ')} s)`,
  );
  const replay = (i: number): string => (i >= 0 ? `  [vfio-review fuzz --seed ${r.seed} --start ${i} --cases 1 --patch-cases 0]` : '');
  for (const c of r.crashes.slice(0, 20)) out.push(`  crash  #${c.index} ${c.operator} ${c.locator}: ${c.error}${replay(c.index)}`);
  for (const h of r.hangs.slice(0, 20)) {
    const what = h.settled ? `${h.ms} ms of CPU` : h.why === 'idle' ? 'never settles (pending, process idle)' : `given up (${h.why})`;
    out.push(`  hang   #${h.index} ${h.operator} ${h.locator}: ${what}, ${h.wallMs} ms wall${replay(h.index)}`);
  }
  for (const v of r.violations.slice(0, 20)) out.push(`  broken #${v.index} ${v.operator} ${v.locator}: ${v.what}${v.detail ? ` (${v.detail})` : ''}${replay(v.index)}`);
  for (const f of r.finishErrors) out.push(`  finish() after case ${f.afterIndex}: ${f.error}`);
  if (r.crashes.length + r.hangs.length + r.violations.length > 60) out.push('  ... and more: --json lists every one');
  return out.join('\n');
}

/** The patch campaign: counts per mutation kind and per outcome, the commonest reasons, each finding. */
export function patchSummaryTable(r: PatchCampaignResult): string {
  const family = new Map<string, string>(PATCH_OPERATORS.map((o) => [o.id, o.family]));
  const rows = Object.entries(r.perOperator)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([id, t]) => [id, family.get(id) ?? '', t.cases, t.applied, t.failed, t.rejected, t.crashes, t.hangs, t.violations].map(String));
  const out = ['MALFORMED PATCHES (a case with stacked mutations counts under each of them)'];
  out.push(...table(['mutation', 'family', 'cases', 'applied', 'failed-with-reason', 'rejected-with-reason', 'crash', 'hang', 'violation'], rows), '');
  const wrote = r.violations.filter((v) => v.what === 'wrote-outside' || v.what === 'workspace-left').length;
  out.push(
    `seeds: ${r.seeds.git} diffs made by git, ${r.seeds.corpus} corpus patches with rebuilt pre-images`,
    `${r.cases} series (seed ${r.seed}, from index ${r.start}) in ${r.seconds} s; statuses: ${Object.entries(r.statuses).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `outcome: applied ${r.outcomes.applied}, failed with a reason ${r.outcomes.failed}, rejected with a reason ${r.outcomes.rejected}, ` +
      `crash ${r.crashes.length}, hang ${r.hangs.length}, violation ${r.violations.length} (written outside the workspace: ${wrote})`,
    'commonest reasons:',
    ...r.reasons.slice(0, 10).map((x) => `  ${String(x.count).padStart(5)}  ${x.outcome.padEnd(8)} ${x.reason}`),
  );
  const replay = (i: number): string => `  [vfio-review fuzz --cases 0 --seed ${r.seed} --patch-start ${i} --patch-cases 1]`;
  for (const c of r.crashes.slice(0, 20)) out.push(`  crash  #${c.index} ${c.operator}: ${c.error}${replay(c.index)}`);
  for (const h of r.hangs.slice(0, 20)) out.push(`  hang   #${h.index} ${h.operator}: ${h.wallMs} ms wall${replay(h.index)}`);
  for (const v of r.violations.slice(0, 20)) out.push(`  broken #${v.index} ${v.operator}: ${v.what} (${v.detail})${replay(v.index)}`);
  return out.join('\n');
}

/**
 * `vfio-review fuzz [--cases N] [--patch-cases M] [--seed S] [--start I] [--patch-start I]
 * [--operator ID]... [--patch-operator ID]... [--timeout MS] [--db PATH] [--json]`: the
 * malformed-mail campaign (N cases, default 100,000), then the malformed-patch campaign (M
 * series, default N/50, at least 100 when N is). Exits 1 on any crash, hang, lost raw message,
 * write outside the workspace or broken invariant.
 */
export async function run(argv: string[]): Promise<number> {
  const { values } = parseCli(argv, {
    cases: { type: 'string' },
    'patch-cases': { type: 'string' },
    seed: { type: 'string' },
    start: { type: 'string' },
    'patch-start': { type: 'string' },
    operator: { type: 'string', multiple: true },
    'patch-operator': { type: 'string', multiple: true },
    timeout: { type: 'string' },
    'finish-every': { type: 'string' },
    corpus: { type: 'string' },
  });
  const cases = count('cases', values.cases, 100_000, 0);
  const patchCases = count('patch-cases', values['patch-cases'], cases === 0 ? 0 : Math.max(100, Math.round(cases / 50)), 0);
  const seed = count('seed', values.seed, 1);
  const seeds = await loadSeeds(values.corpus === undefined ? {} : { corpus: values.corpus });
  if (!values.json) process.stderr.write(`fuzz: ${seeds.note}\n`);
  let mail: CampaignResult | null = null;
  let patch: PatchCampaignResult | null = null;
  if (cases > 0) {
    const progress = new Progress('fuzz mail');
    mail = await runCampaign({
      cases, seed, seeds,
      start: count('start', values.start, 0),
      operators: ids('operator', values.operator, OPERATORS) as OperatorId[] | undefined,
      timeoutMs: count('timeout', values.timeout, 10_000, 1),
      finishEvery: count('finish-every', values['finish-every'], 5000, 1),
      ...(values.db ? { dbPath: values.db } : {}),
      onProgress: (p) => progress.tick(p.done, p.total, `crash ${p.crashes} hang ${p.hangs}`),
    });
    progress.done();
    if (!values.json) process.stdout.write(`${summaryTable(mail)}\n\n`);
  }
  if (patchCases > 0) {
    const progress = new Progress('fuzz patches');
    patch = await runPatchCampaign({
      cases: patchCases, seed, mail: seeds.messages,
      start: count('patch-start', values['patch-start'], 0),
      operators: ids('patch-operator', values['patch-operator'], PATCH_OPERATORS) as PatchOperatorId[] | undefined,
      onProgress: (p) => progress.tick(p.done, p.total, `crash ${p.crashes} hang ${p.hangs}`),
    });
    progress.done();
    if (!values.json) process.stdout.write(`${patchSummaryTable(patch)}\n`);
  }
  if (values.json) process.stdout.write(`${JSON.stringify({ mail, patch })}\n`);
  return (mail?.ok ?? true) && (patch?.ok ?? true) ? 0 : 1;
}
