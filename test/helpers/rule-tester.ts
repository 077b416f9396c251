import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it, expect } from 'vitest';
import type { Rule, RuleFinding } from '../../src/rules/types.js';
import { viewFromSources } from '../../src/rules/context.js';
import { runRules } from '../../src/rules/run.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/c/', import.meta.url));

export interface RuleCase {
  name: string;
  /** Path of the file in the pretend tree (default drivers/vfio/demo.c). */
  path?: string;
  /**
   * A fixture under test/fixtures/c/. Lines marked `// ruleid: <id>` are added by the patch and must
   * be reported; lines marked `// ok: <id>` are added and must not be; unmarked lines are old.
   */
  fixture?: string;
  before?: string | null;
  after?: string;
  /** More files of the same patch. */
  extra?: Record<string, { before: string | null; after: string | null }>;
  /** Expected findings (invalid cases): line, and optionally the messageId text fragment. */
  findings?: { line: number; message?: RegExp | string }[];
}

function fromFixture(rule: Rule, name: string): { before: string; after: string; expect: number[]; ok: number[] } {
  const text = readFileSync(FIXTURES + name, 'utf8');
  const lines = text.split('\n');
  const expectLines: number[] = [];
  const ok: number[] = [];
  const kept: string[] = [];
  lines.forEach((l, i) => {
    const mark = /\/\/ (ruleid|ok): (?<id>[\w-]+)\s*$/.exec(l);
    if (mark?.groups?.id === rule.id) (mark[1] === 'ruleid' ? expectLines : ok).push(i + 1);
    else if (!/\/\/ (ruleid|ok): [\w-]+\s*$/.test(l)) kept.push(l);
    // Lines marked for another rule are added lines too (and that rule's business).
  });
  return { before: kept.join('\n'), after: text, expect: expectLines, ok };
}

async function findingsFor(rule: Rule, c: RuleCase): Promise<{ found: RuleFinding[]; expect: { line: number; message?: RegExp | string }[]; ok: number[] }> {
  const path = c.path ?? 'drivers/vfio/demo.c';
  let files: Record<string, { before: string | null; after: string | null }>;
  let expectF = c.findings ?? [];
  let ok: number[] = [];
  if (c.fixture) {
    const fx = fromFixture(rule, c.fixture);
    files = { [path]: { before: fx.before, after: fx.after } };
    if (!c.findings) expectF = fx.expect.map((line) => ({ line }));
    ok = fx.ok;
  } else {
    files = { [path]: { before: c.before ?? null, after: c.after ?? null } };
  }
  Object.assign(files, c.extra ?? {});
  const view = viewFromSources({ msgid: 'test@example.org', index: 1, subject: c.name }, files);
  const found = (await runRules([rule], [view])).filter((f) => f.rule === rule.id);
  return { found, expect: expectF, ok };
}

/** ESLint-style: valid cases must raise nothing, invalid ones exactly the expected lines. */
export function runRuleTests(rule: Rule, cases: { valid: RuleCase[]; invalid: RuleCase[] }): void {
  const names = [...cases.valid, ...cases.invalid].map((c) => c.name);
  describe(rule.id, () => {
    it('has unique case names and at least one valid and one invalid case', () => {
      expect(new Set(names).size).toBe(names.length);
      expect(cases.valid.length).toBeGreaterThan(0);
      expect(cases.invalid.length).toBeGreaterThan(0);
    });
    for (const c of cases.valid) {
      it(`valid: ${c.name}`, async () => {
        const { found, ok } = await findingsFor(rule, c);
        expect(found.map((f) => `${f.line}: ${f.message}`)).toEqual([]);
        void ok;
      });
    }
    for (const c of cases.invalid) {
      it(`invalid: ${c.name}`, async () => {
        const { found, expect: want, ok } = await findingsFor(rule, c);
        expect(want.length, 'an invalid case must expect findings').toBeGreaterThan(0);
        expect(found.map((f) => f.line).sort((a, b) => a - b)).toEqual(want.map((w) => w.line).sort((a, b) => a - b));
        for (const w of want) {
          if (!w.message) continue;
          const f = found.find((x) => x.line === w.line)!;
          if (typeof w.message === 'string') expect(f.message).toContain(w.message);
          else expect(f.message).toMatch(w.message);
        }
        for (const line of ok) expect(found.some((f) => f.line === line), `line ${line} is marked ok`).toBe(false);
      });
    }
  });
}
