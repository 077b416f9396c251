import { describe, it, expect } from 'vitest';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { RULES } from '../../src/rules/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('rule catalogue', () => {
  it('is sorted and ids are unique', () => {
    const ids = RULES.map((r) => r.id);
    expect(ids).toEqual([...ids].sort());
    expect(new Set(ids).size).toBe(ids.length);
  });
  for (const r of RULES) {
    it(`${r.id}: id = file = test = doc, meta complete`, () => {
      expect(existsSync(`${ROOT}src/rules/${r.id}.ts`)).toBe(true);
      expect(existsSync(`${ROOT}test/rules/${r.id}.test.ts`)).toBe(true);
      const doc = `${ROOT}docs/rules/${r.id}.md`;
      expect(existsSync(doc)).toBe(true);
      expect(readFileSync(doc, 'utf8')).toMatch(new RegExp(`^# ${r.id}\\n`));
      for (const k of ['description', 'reviewers', 'falsePositives'] as const) expect(r.meta[k].length).toBeGreaterThan(20);
      expect(Object.keys(r.meta.messages).length).toBeGreaterThan(0);
    });
  }
  it('every rule file under src/rules is registered', () => {
    const files = readdirSync(`${ROOT}src/rules`).filter((f) => f.endsWith('.ts') && !['index.ts', 'types.ts', 'run.ts', 'context.ts', 'linediff.ts', 'util.ts', 'uapi-model.ts'].includes(f));
    expect(files.map((f) => f.replace(/\.ts$/, '')).sort()).toEqual(RULES.map((r) => r.id));
  });
});
