/**
 * A small store for the dashboard tests: two versions of a vfio series whose subject, patch and findings
 * carry XSS payloads, and an unrelated iommu series by another author on another list. Real ingest of
 * hand-written mail; checks inserted as checkSeries records them; concerns tracked by the real tracker.
 */
import type { Db } from '../../src/store/db.js';
import { Ingestor } from '../../src/ingest/ingest.js';
import type { Finding } from '../../src/check/check.js';
import { trackConcerns } from '../../src/report/concerns.js';
import { mail } from '../helpers/mail.js';

/** Payloads that must only ever appear as text. */
export const SCRIPT = '<script>alert("xss-script")</script>';
export const IMG = '"><img src=x onerror=alert("xss-img")>';
export const TITLE = `vfio/pci: take igate ${SCRIPT} ${IMG}`;

export const FILE = 'drivers/vfio/pci/vfio_pci_core.c';
const IOMMU_FILE = 'drivers/iommu/intel/iommu.c';

function coreDiff(extra = ''): string {
  return `diff --git a/${FILE} b/${FILE}
index 1111111..2222222 100644
--- a/${FILE}
+++ b/${FILE}
@@ -100,6 +100,9 @@ static int vfio_pci_core_enable(struct vfio_pci_core_device *vdev)
 \tint ret;
 
 \tpci_set_power_state(pdev, PCI_D0);
+\tmutex_lock(&vdev->igate); /* ${IMG} */
+\tdown_write(&vdev->memory_lock); // ${SCRIPT}
+\tvdev->reset_works = true;${extra}
 \tret = pci_enable_device(pdev);
 \tif (ret)
 \t\tgoto out_power;
`;
}

function iommuDiff(): string {
  return `diff --git a/${IOMMU_FILE} b/${IOMMU_FILE}
index 3333333..4444444 100644
--- a/${IOMMU_FILE}
+++ b/${IOMMU_FILE}
@@ -10,3 +10,4 @@ int intel_thing(void)
 a
+\tget_device(dev);
 c
 d
`;
}

const body = (diff: string): string => `Change it.\n\nSigned-off-by: Dev One <dev1@example.org>\n---\n${diff}-- \n2.43.0\n`;

export interface World {
  v1: number;
  v2: number;
  other: number;
  /** Public ids: the lock-order concern (open on v1 and v2), the uapi one (new on v2), the iommu refcount one. */
  lockId: string;
  uapiId: string;
  refId: string;
}

export function lockFinding(patch: string, line = 104): Finding {
  return {
    rule: 'lock-order', severity: 'warning', category: 'lock-order', patch, file: FILE, line, function: 'vfio_pci_core_enable',
    message: `vdev->igate is taken before vdev->memory_lock ${SCRIPT}, but vfio_pci_bar_rw() takes them in the other order ${IMG}`,
    confidence: 'moderate',
    evidence: [`igate -> memory_lock at vfio_pci_core.c:${line} ${IMG}`, `memory_lock -> igate in vfio_pci_bar_rw() ${SCRIPT}`],
    suggestion: `take memory_lock first ${IMG}`,
    trace: `vfio_pci_core_enable()\n  mutex_lock(&vdev->igate)\n  down_write(&vdev->memory_lock) ${SCRIPT}`,
  };
}

function uapiFinding(patch: string): Finding {
  return {
    rule: 'uapi-layout', severity: 'error', category: 'uapi-abi', patch, file: FILE, line: 105, function: 'vfio_pci_core_enable',
    message: 'reset_works is written without memory_lock held for write', evidence: ['vdev->reset_works = true;'],
  };
}

function refFinding(patch: string): Finding {
  return {
    rule: 'refcount', severity: 'warning', category: 'refcount', patch, file: IOMMU_FILE, line: 11, function: 'intel_thing',
    message: 'the reference taken by get_device() is not put on the error path',
  };
}

/** Inserts a checks row as checkSeries records one, and tracks its concerns. Returns the check id. */
export function recordCheck(db: Db, seriesId: number, findings: Finding[], trigger: 'check' | 'rerun' | 'daemon' = 'check'): number {
  const commit = 'abcdef0123456789abcdef0123456789abcdef01';
  const apply = {
    status: 'applied', base: { ref: 'HEAD', commit }, head: commit, complete: true, label: 'applied cleanly', attemptIndex: 1, patches: [],
    attempts: [
      { ref: 'vfio/next', commit: null, why: 'mapped', result: 'missing' },
      { ref: 'v6.1', commit: '0123456789abcdef0123456789abcdef01234567', why: 'hint', result: 'failed', failedPatch: 1, file: FILE,
        hunk: '@@ -100,6 +100,9 @@', context: `\tint ret;\n${IMG}`, detail: 'patch does not apply' },
      { ref: 'HEAD', commit, why: 'default', result: 'applied' },
    ],
  };
  const now = new Date().toISOString();
  const id = Number(
    db
      .prepare(
        `INSERT INTO checks (series_id, trigger, tree, status, base_ref, base_commit, head_commit, label, complete, apply_json,
           findings_json, error, started_at, finished_at) VALUES (?, ?, ?, 'applied', 'HEAD', ?, ?, 'applied cleanly', 1, ?, ?, NULL, ?, ?)`,
      )
      .run(seriesId, trigger, '/srv/trees/linux', commit, commit, JSON.stringify(apply), JSON.stringify(findings), now, now).lastInsertRowid,
  );
  trackConcerns(db, id);
  return id;
}

function patchIds(db: Db, seriesId: number): string[] {
  return db
    .prepare('SELECT m.message_id FROM series_patches sp JOIN messages m ON m.id = sp.message_id WHERE sp.series_id = ? AND sp.counter > 0 ORDER BY sp.counter')
    .pluck()
    .all(seriesId) as string[];
}

export async function buildWorld(db: Db): Promise<World> {
  const ing = new Ingestor(db);
  const src = ing.sourceId('manual', 'web-tests');
  const kvm = { 'List-Id': '<kvm.vger.kernel.org>', To: 'Alex <alex@example.org>' };
  const day = 86_400_000;
  const old = Date.now() - 30 * day;
  let n = 0;
  for (const v of [1, 2]) {
    const vt = v > 1 ? `v${v} ` : '';
    const date = new Date(old + (v - 1) * 10 * day).toUTCString();
    const root = `v${v}.0@example.org`;
    await ing.add(src, mail({ id: root, date, subject: `[PATCH ${vt}0/1] ${TITLE}`, body: `The series ${SCRIPT}.\n`, headers: kvm }), `m${n++}`);
    await ing.add(src, mail({ id: `v${v}.1@example.org`, date, inReplyTo: root, subject: `[PATCH ${vt}1/1] ${TITLE}`, body: body(coreDiff(v === 2 ? '\n+\tvdev->extra = 1;' : '')), headers: kvm }), `m${n++}`);
  }
  await ing.add(src, mail({
    id: 'io.1@example.org', date: new Date(Date.now() - 2 * day).toUTCString(), from: 'Dev Two <dev2@example.net>',
    subject: '[PATCH] iommu/vt-d: take a device reference', body: body(iommuDiff()),
    headers: { 'List-Id': '<iommu.lists.linux.dev>' },
  }), `m${n++}`);
  ing.finish();
  const seriesOf = (msgid: string): number =>
    db.prepare('SELECT sp.series_id FROM series_patches sp JOIN messages m ON m.id = sp.message_id WHERE m.message_id = ?').pluck().get(msgid) as number;
  const v1 = seriesOf('v1.1@example.org');
  const v2 = seriesOf('v2.1@example.org');
  const other = seriesOf('io.1@example.org');
  recordCheck(db, v1, [lockFinding(patchIds(db, v1)[0]!)]);
  recordCheck(db, v2, [lockFinding(patchIds(db, v2)[0]!, 104), uapiFinding(patchIds(db, v2)[0]!)]);
  recordCheck(db, other, [refFinding('io.1@example.org')]);
  const idOf = (rule: string): string => db.prepare('SELECT public_id FROM concerns WHERE rule = ?').pluck().get(rule) as string;
  const lineage = db.prepare('SELECT lineage_id FROM series WHERE id = ?').pluck().get(v2) as number;
  addReply(db, v1, lineage);
  db.prepare("INSERT INTO github_issues (repo, lineage_id, issue_number, html_url, updated_at) VALUES ('kvm/review', ?, 7, ?, ?)")
    .run(lineage, `javascript:alert("xss-gh")`, new Date().toISOString());
  return { v1, v2, other, lockId: idOf('lock-order'), uapiId: idOf('uapi-layout'), refId: idOf('refcount') };
}

function addReply(db: Db, seriesId: number, lineageId: number): void {
  const now = new Date().toISOString();
  db.prepare(
    `INSERT INTO outbox (idem_key, series_id, lineage_id, check_id, version, sink, kind, target_msgid, list_id, message_id, subject,
       from_addr, to_json, cc_json, in_reply_to, references_json, body, findings_digest, state, next_at, decided_at, sent_at, updated_at)
     VALUES ('k1', ?, ?, NULL, 1, 'email', 'review', 'v1.1@example.org', 'kvm.vger.kernel.org', '<vfio-review.k1@bot.example.org>', ?,
       'bot@bot.example.org', '[]', '[]', '<v1.1@example.org>', '[]', 'body', 'd', 'sent', ?, ?, ?, ?)`,
  ).run(seriesId, lineageId, `Re: [PATCH 1/1] ${TITLE}`, now, now, now, now);
}
