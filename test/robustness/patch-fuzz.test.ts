import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { applySeries } from '../../src/apply/apply.js';
import { loadSeeds } from '../../src/fuzz/seeds.js';
import { runPatchCampaign, type PatchCampaignResult } from '../../src/fuzz/patch-campaign.js';
import { PATCH_OPERATORS } from '../../src/fuzz/patch-mutate.js';
import { makeSandbox, type Sandbox } from '../../src/fuzz/patch-repo.js';
import { HAS_CORPUS } from '../helpers/corpus.js';

/**
 * Issue 8, the patch part: malformed diffs (wrong hunk counts, CRLF, no final newline, renames
 * and copies, binary, modes, symlinks, `../`, absolute and `.git/` paths) through applySeries
 * against a small repository in a sandbox. Each series must end applied (with a real commit),
 * failed with a reason or rejected with a reason, and nothing in the sandbox may change but
 * new objects: not the checkout, not `.git`, not the files beside it, no workspace left over.
 */

const SEED = 20_240_902;
const CLEAN = { crashes: [], hangs: [], violations: [] };
const verdict = (r: PatchCampaignResult): Pick<PatchCampaignResult, keyof typeof CLEAN> => ({ crashes: r.crashes, hangs: r.hangs, violations: r.violations });

let sb: Sandbox;
beforeAll(async () => {
  sb = await makeSandbox((await loadSeeds()).messages);
}, 120_000);
afterAll(() => sb?.dispose());

describe('malformed-patch campaign', () => {
  it('gives every series a clear outcome and writes nothing outside the workspace (120 series)', async () => {
    const r = await runPatchCampaign({ cases: 120, seed: SEED, sandbox: sb });
    expect(verdict(r)).toEqual(CLEAN);
    expect(r.outcomes.applied + r.outcomes.failed + r.outcomes.rejected).toBe(120);
    // The mix reaches all three outcomes.
    expect(r.outcomes.applied).toBeGreaterThan(0);
    expect(r.outcomes.failed).toBeGreaterThan(0);
    expect(r.outcomes.rejected).toBeGreaterThan(0);
    expect(existsSync(join(sb.outside, 'pwned'))).toBe(false);
  }, 300_000);

  it('has an oracle that sees a write anywhere in the sandbox but the object store', async () => {
    const before = await sb.snapshot();
    const probes = [join(sb.outside, 'probe'), join(sb.repo, '.git', 'probe'), join(sb.tmp, 'probe'), join(sb.repo, 'drivers', 'probe'), join(sb.repo, '.git', 'objects', 'probe')];
    for (const p of probes) await writeFile(p, 'x');
    try {
      const after = await sb.snapshot();
      const seen = [...after.keys()].filter((k) => !before.has(k));
      expect(seen.sort()).toEqual(['outside/probe', 'repo/.git/probe', 'repo/drivers/probe', 'tmp/probe']);
    } finally {
      for (const p of probes) await rm(p, { force: true });
    }
  });

  it.skipIf(!HAS_CORPUS)('rebuilds pre-images so real corpus patches apply (needs ../shared/corpus)', async () => {
    const corpus = sb.seeds.filter((s) => s.origin === 'corpus');
    expect(corpus.length).toBeGreaterThanOrEqual(20);
    const r = await applySeries({ tree: sb.repo, patches: corpus.slice(0, 3).map((s, i) => ({
      msgid: `c${i}@x`, subject: s.name, authorName: 'A', authorEmail: 'a@b', date: new Date(0), message: `${s.name}\n`, diff: s.diff,
    })), candidates: [{ ref: 'main', why: 'default' }] });
    expect(r.status).toBe('applied');
  }, 60_000);
});

describe('one series per patch operator', () => {
  for (const o of PATCH_OPERATORS) {
    it(`${o.id} (${o.family})`, async () => {
      const r = await runPatchCampaign({ cases: 1, seed: SEED, sandbox: sb, operators: [o.id] });
      expect(verdict(r)).toEqual(CLEAN);
      expect(r.perOperator[o.id]?.cases).toBe(1);
    }, 120_000);
  }
});
