/**
 * `vfio-review sim --scenario ID [--tree DIR] [--json]`: run one curated scenario and print its
 * verdict with the lockdep-style counterexample or outcome witness; `vfio-review sim --list`
 * lists the scenarios. Exit status 0 when the verdict is the scenario's expected one, 1 when not.
 */
import { existsSync } from 'node:fs';
import { VrError } from '../errors.js';
import { treeReader } from '../sim/fs-reader.js';
import { runScenario } from '../sim/run.js';
import { scenarioById, scenarios } from '../sim/scenarios/index.js';
import { parseCli } from './args.js';

const USAGE = 'usage: vfio-review sim --list | sim --scenario ID [--tree DIR] [--json] [--no-reduction] [--max-states N] [--time-ms N]';

function positiveInt(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new VrError('USAGE', `--${name} wants a positive integer, got ${v}`);
  return n;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCli(argv, {
    list: { type: 'boolean' }, scenario: { type: 'string' }, tree: { type: 'string' }, 'no-reduction': { type: 'boolean' },
    'max-states': { type: 'string' }, 'time-ms': { type: 'string' },
  });
  if (values.list) {
    const rows = scenarios.map((s) => ({ id: s.id, expect: s.expect, tree: s.tree !== undefined, memory: s.memory ?? 'sc', purpose: s.purpose }));
    if (values.json) process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    else for (const r of rows) process.stdout.write(`${r.id.padEnd(28)} ${r.expect.padEnd(14)} ${r.tree ? 'tree' : '    '}  ${r.purpose}\n`);
    return 0;
  }
  if (!values.scenario) throw new VrError('USAGE', USAGE);
  const sc = scenarioById(values.scenario);
  if (!sc) throw new VrError('USAGE', `unknown scenario '${values.scenario}' (see vfio-review sim --list)`);
  if (sc.tree && !values.tree) throw new VrError('USAGE', `scenario ${sc.id} runs on a kernel tree: --tree DIR`);
  if (values.tree && !existsSync(values.tree)) throw new VrError('USAGE', `--tree ${values.tree}: no such directory`);
  const maxStates = positiveInt('max-states', values['max-states']);
  const timeMs = positiveInt('time-ms', values['time-ms']);
  const r = await runScenario(sc, {
    ...(values.tree ? { reader: treeReader(values.tree) } : {}),
    ...(values['no-reduction'] ? { reduction: false } : {}),
    bounds: { ...(maxStates ? { maxStates } : {}), ...(timeMs ? { timeMs } : {}) },
  });
  const res = r.result;
  if (values.json) {
    const trace = res.trace ?? res.exists?.witness ?? null;
    process.stdout.write(JSON.stringify({
      id: r.id, expect: r.expect, verdict: res.verdict, pass: r.pass, reason: r.reason, bound: res.bound, fault: res.fault,
      exists: res.exists ? { frequency: res.exists.frequency, sat: res.exists.sat, unsat: res.exists.unsat } : null,
      outcomes: Object.fromEntries(Object.entries(res.outcomes).map(([k, o]) => [k, { frequency: o.frequency, sat: o.sat, unsat: o.unsat }])),
      trace: trace ? { threads: trace.threads, preemptions: trace.preemptions, steps: trace.steps.map((s) => ({ cpu: s.thread, text: s.text, at: s.at ?? null, lock: s.lock ?? null })) } : null,
      stats: res.stats, text: r.text,
    }, null, 2) + '\n');
  } else {
    process.stdout.write(`${r.id}: ${res.verdict} (expected ${r.expect}: ${r.pass ? 'as expected' : r.reason})\n`);
    process.stdout.write(`${res.stats.states} states, ${res.stats.transitions} transitions, ${res.stats.ms.toFixed(0)} ms\n\n${r.text}\n`);
  }
  return r.pass ? 0 : 1;
}
