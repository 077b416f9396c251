import { beforeAll, describe, expect, it } from 'vitest';
import { loadSeeds, runCampaign, type CampaignResult, type SeedSet } from '../../src/fuzz/campaign.js';
import { OPERATORS, makeCase } from '../../src/fuzz/mutate.js';
import { HAS_CORPUS } from '../helpers/corpus.js';

/**
 * Issue 8, the mail part: generated malformed mail, seeded from ../shared/corpus, through the real
 * ingest path (Ingestor.add; mbox streams through MboxSplitter, or readMbox + addStream) into a
 * real SQLite store, then finish(). Every invariant of the ingest contract is asserted, on a mixed
 * campaign and on one case per operator, so a regression names the operator. Time limits are
 * findings the campaign reports (hangs), never timed assertions; the long run is `npm run fuzz`.
 *
 * Bugs the campaign found are fixed, each with a regression test next to the code it touched:
 * test/ingest/ident-collision.test.ts, test/mail/hostile-input.test.ts, test/apply/double-slash.test.ts.
 */

const SEED = 20_240_901;
const CLEAN = { crashes: [], hangs: [], violations: [], finishErrors: [], memoryOk: true };
const verdict = (r: CampaignResult): Pick<CampaignResult, keyof typeof CLEAN> => ({
  crashes: r.crashes, hangs: r.hangs, violations: r.violations, finishErrors: r.finishErrors, memoryOk: r.memoryOk,
});
/** Every message fed is stored byte for byte, with a row that is parsed or failed with a reason. */
function everyMessageKept(r: CampaignResult): void {
  expect(r.rawKept).toBe(r.inputs);
  expect(r.rawRows).toBe(r.distinctInputs);
  expect(r.parsed + r.failedWithReason).toBe(r.inputs);
}

let seeds: SeedSet;
beforeAll(async () => {
  seeds = await loadSeeds();
}, 60_000);

describe('malformed-mail campaign', () => {
  it.skipIf(!HAS_CORPUS)('keeps every invariant over 2,500 mixed cases derived from the corpus (needs ../shared/corpus)', async () => {
    expect(seeds.fromCorpus).toBeGreaterThan(100);
    const r = await runCampaign({ cases: 2500, seed: SEED, seeds, finishEvery: 1000 });
    expect(verdict(r)).toEqual(CLEAN);
    expect(r.cases).toBe(2500);
    everyMessageKept(r);
    expect(r.finishes).toBe(3);
    expect(r.mboxChecked).toBeGreaterThan(100);
    expect(r.mboxWritten).toBeGreaterThan(10);
    // Each light operator came up: the mix did what it says.
    const light = OPERATORS.filter((o) => !o.heavy).map((o) => o.id);
    expect(light.filter((id) => !r.perOperator[id]?.cases)).toEqual([]);
  }, 300_000);

  it('keeps every invariant on the built-in seeds when the corpus is absent, and says so', async () => {
    const own = await loadSeeds({ corpus: '/nonexistent/corpus' });
    expect(own.fromCorpus).toBe(0);
    expect(own.messages.length).toBe(own.builtin);
    expect(own.note).toMatch(/corpus not found/);
    const operators = OPERATORS.filter((o) => !o.heavy).map((o) => o.id);
    const r = await runCampaign({ cases: 300, seed: SEED, seeds: own, operators, combine: true });
    expect(verdict(r)).toEqual(CLEAN);
    everyMessageKept(r);
  }, 120_000);

  it('takes mbox cases through the `vfio-review ingest` path (readMbox + addStream on worker threads)', async () => {
    const operators = OPERATORS.filter((o) => o.family === 'mbox').map((o) => o.id);
    const r = await runCampaign({ cases: 8, seed: SEED, seeds, operators, streamAll: true });
    expect(verdict(r)).toEqual(CLEAN);
    expect(r.streamed).toBe(r.inputs);
    everyMessageKept(r);
  }, 120_000);

  it('replays any case from (seed, index) alone', () => {
    const a = makeCase(seeds.messages, SEED, 1234);
    expect(makeCase(seeds.messages, SEED, 1234)).toEqual(a);
    expect(makeCase(seeds.messages, SEED + 1, 1234)).not.toEqual(a);
  });
});

describe('one case per operator', () => {
  for (const o of OPERATORS) {
    it(`${o.id} (${o.family})`, async () => {
      // A stricter bound than the campaign's 10 s of CPU: a sound parse of the largest case takes about a second.
      const r = await runCampaign({ cases: 1, seed: SEED, seeds, operators: [o.id], timeoutMs: 5000 });
      expect(verdict(r)).toEqual(CLEAN);
      expect(r.perOperator[o.id]?.cases).toBe(1);
      everyMessageKept(r);
    }, 60_000);
  }
});
