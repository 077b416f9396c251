/**
 * Running a scenario: its programs (derived from the tree when it has one), the check, and the
 * judgement against its stated expectation.
 */
import type { SourceReader } from '../cmodel/build.js';
import { check, explain, judge, type CheckResult } from './checker.js';
import type { Bounds, Scenario, ThreadProgram } from './model.js';

/** A scenario's result with its judgement and the rendered counterexample or witness. */
export interface ScenarioRun {
  id: string;
  expect: Scenario['expect'];
  result: CheckResult;
  pass: boolean;
  reason: string;
  text: string;
  programs: ThreadProgram[];
}

/** Options of {@link runScenario}. */
export interface RunOptions {
  reader?: SourceReader;
  reduction?: boolean;
  bounds?: Bounds;
  /** Programs to use instead of the scenario's own (a patched variant). */
  programs?: ThreadProgram[];
}

/** Run one scenario and judge it. */
export async function runScenario(sc: Scenario, opts: RunOptions = {}): Promise<ScenarioRun> {
  const programs = opts.programs ?? (await sc.programs(opts.reader));
  const result = check(programs, {
    ...(sc.memory ? { memory: sc.memory } : {}),
    ...(sc.init ? { init: sc.init } : {}),
    ...(sc.objects ? { objects: sc.objects } : {}),
    ...(sc.unallocated ? { unallocated: sc.unallocated } : {}),
    ...(sc.exists ? { exists: sc.exists } : {}),
    ...(sc.outcomes ? { outcomes: sc.outcomes } : {}),
    ...(sc.invariants ? { invariants: sc.invariants } : {}),
    bounds: { ...sc.bounds, ...opts.bounds },
    ...(opts.reduction !== undefined ? { reduction: opts.reduction } : {}),
  });
  const { pass, reason } = judge(result, sc.expect, sc.exists !== undefined);
  return { id: sc.id, expect: sc.expect, result, pass, reason, text: explain(result), programs };
}
