import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { openDb, type Db } from '../../src/store/db.js';
import { Ingestor } from '../../src/ingest/ingest.js';
import { readMbox } from '../../src/ingest/mbox-source.js';
import { trackConcerns, lineageConcerns } from '../../src/report/concerns.js';
import { planSeries } from '../../src/report/plan.js';
import { loadReportPolicy } from '../../src/report/policy.js';
import { HAS_CORPUS, corpusFile } from '../helpers/corpus.js';
import { finding, insertCheck } from './world.js';

/*
 * A real lineage: "s390/vfio-ap: fix memory leak in mdev remove callback", v1 (2021-05-05) and v2
 * (2021-05-10, the labelled thread vfio-ap-memleak-mdev-remove-v2-2021), both single patches by the
 * same sender, no threading between them. v2 drops v1's vfio_ap_mdev_clear_apcb() helper and keeps
 * the kfree() at a new line. The findings are made up for the test (rules come and go); the mail,
 * series assembly, lineage linking and hunk quoting are real.
 */
const V1 = '20210505172826.105304-1-akrowiak@linux.ibm.com';
const V2 = '20210510214837.359717-1-akrowiak@linux.ibm.com';
const FILE = 'drivers/s390/crypto/vfio_ap_ops.c';

describe.skipIf(!HAS_CORPUS)('concerns over a real v1 -> v2 lineage from the corpus', () => {
  let db: Db;
  beforeAll(async () => {
    db = openDb(':memory:');
    const ing = new Ingestor(db);
    const src = ing.sourceId('mbox', 'vfio-iommu-threads');
    const want = new Set([V1, V2]);
    // The archive is chronological: stop reading once both postings are in (about a third of the file).
    for await (const m of readMbox(corpusFile('vfio-iommu-threads.mbox.gz'))) {
      const head = m.bytes.subarray(0, Math.min(m.bytes.length, 16_384)).toString('latin1');
      const id = /^Message-I[dD]:\s*<(?<id>[^>]+)>/im.exec(head)?.groups?.id;
      if (!id || !want.has(id)) continue;
      await ing.add(src, m.bytes, m.locator);
      want.delete(id);
      if (want.size === 0) break;
    }
    ing.finish();
  }, 120_000);
  afterAll(() => db?.close());

  it('tracks one concern as still open and another as resolved, and quotes the real v2 hunk', () => {
    const series = db
      .prepare(`SELECT s.id, s.version, s.lineage_id, s.complete, m.message_id FROM series s
                JOIN series_patches sp ON sp.series_id = s.id JOIN messages m ON m.id = sp.message_id ORDER BY s.version`)
      .all() as { id: number; version: number; lineage_id: number; complete: number; message_id: string }[];
    expect(series.map((s) => [s.version, s.message_id, s.complete])).toEqual([[1, V1, 1], [2, V2, 1]]);
    expect(series[0]!.lineage_id).toBe(series[1]!.lineage_id);
    const [v1, v2] = series as [(typeof series)[0], (typeof series)[0]];

    const freed = (patch: string, line: number) => finding({
      patch, file: FILE, line, function: 'vfio_ap_mdev_remove', rule: 'mdev-free-while-hooked', category: 'lifetime-uaf', confidence: 'low',
      message: `matrix_mdev is freed at line ${line} while kvm->arch.crypto.pqap_hook may still point into it`, evidence: [], suggestion: null,
    });
    const dropped = finding({
      patch: V1, file: FILE, line: 356, function: 'vfio_ap_mdev_clear_apcb', rule: 'lock-dropped-flag', category: 'race-toctou',
      message: 'matrix_dev->lock is dropped around kvm_arch_crypto_clear_masks() while kvm_busy is set', evidence: [], suggestion: null,
    });
    const c1 = trackConcerns(db, insertCheck(db, v1.id, { findings: [freed(V1, 400), dropped] }));
    expect(c1.raised.map((t) => t.concern.state)).toEqual(['new', 'new']);
    const c2 = trackConcerns(db, insertCheck(db, v2.id, { findings: [freed(V2, 372)] }));
    expect(c2.raised.map((t) => [t.finding.rule, t.concern.state])).toEqual([['mdev-free-while-hooked', 'open']]);
    expect(c2.resolved.map((c) => c.function)).toEqual(['vfio_ap_mdev_clear_apcb']);
    expect(lineageConcerns(db, v1.lineage_id).map((c) => [c.rule, c.state])).toEqual([
      ['mdev-free-while-hooked', 'open'],
      ['lock-dropped-flag', 'resolved'],
    ]);

    const policy = loadReportPolicy({ ownDomain: 'bot.example.org', from: 'vfio-review <bot@bot.example.org>' });
    const plan = planSeries(db, v2.id, { name: 'stdout' }, policy);
    if (!('inserts' in plan)) throw new Error(plan.skip);
    expect(plan.inserts).toHaveLength(1);
    const reply = plan.inserts[0]!;
    expect(reply).toMatchObject({ kind: 'follow-up', inReplyTo: `<${V2}>`, subject: 'Re: [PATCH v2] s390/vfio-ap: fix memory leak in mdev remove callback' });
    expect(reply.to).toEqual(['"Tony Krowiak" <akrowiak@linux.ibm.com>']);
    expect(reply.cc).toContain('linux-s390@vger.kernel.org');
    expect(reply.body).toContain(
      [
        '> diff --git a/drivers/s390/crypto/vfio_ap_ops.c b/drivers/s390/crypto/vfio_ap_ops.c',
        '> [ ... ]',
        '> @@ -366,17 +367,7 @@ static int vfio_ap_mdev_remove(struct mdev_device *mdev)',
        '> [ ... ]',
        '> +\tvfio_ap_mdev_unset_kvm(matrix_mdev);',
        '>  \tlist_del(&matrix_mdev->node);',
        '>  \tkfree(matrix_mdev);',
      ].join('\n'),
    );
    expect(reply.body).toMatch(/Resolved in v2:\n- [0-9a-f]{12} lock-dropped-flag in\s+drivers\/s390\/crypto\/vfio_ap_ops\.c,\s+vfio_ap_mdev_clear_apcb\(\)/);
    expect(reply.body).toMatch(/Still open:\n- [0-9a-f]{12} mdev-free-while-hooked/);
  });
});
