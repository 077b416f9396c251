/** Builds small stores for the reporter tests: real ingested mail, checks inserted as the check stage records them. */
import type { Db } from '../../src/store/db.js';
import { Ingestor } from '../../src/ingest/ingest.js';
import type { Finding } from '../../src/check/check.js';
import { mail } from '../helpers/mail.js';

export const FILE = 'drivers/vfio/pci/vfio_pci_core.c';

/** A diff whose post-image lines 100..108 are known: 103-105 are added. */
export function coreDiff(extra = ''): string {
  return `diff --git a/${FILE} b/${FILE}
index 1111111..2222222 100644
--- a/${FILE}
+++ b/${FILE}
@@ -100,6 +100,9 @@ static int vfio_pci_core_enable(struct vfio_pci_core_device *vdev)
 \tint ret;
 
 \tpci_set_power_state(pdev, PCI_D0);
+\tmutex_lock(&vdev->igate);
+\tdown_write(&vdev->memory_lock);
+\tvdev->reset_works = true;${extra}
 \tret = pci_enable_device(pdev);
 \tif (ret)
 \t\tgoto out_power;
`;
}

export function otherDiff(path = 'drivers/vfio/vfio_main.c'): string {
  return `diff --git a/${path} b/${path}
index 3333333..4444444 100644
--- a/${path}
+++ b/${path}
@@ -10,3 +10,4 @@ int vfio_thing(void)
 a
+b
 c
 d
`;
}

const body = (diff: string, msg = 'Change it.'): string =>
  `${msg}\n\nSigned-off-by: Dev One <dev1@example.org>\n---\n${diff}-- \n2.43.0\n`;

export interface VersionSpec {
  version: number;
  title?: string;
  cover?: boolean;
  /** One diff per patch. */
  diffs: string[];
  listId?: string | null;
  headers?: Record<string, string>;
  /** Per-message extra headers by counter (0 = cover). */
  headersBy?: Record<number, Record<string, string>>;
  idPrefix?: string;
  /** Message-ID domain (default example.org). */
  domain?: string;
  subjectOf?: (n: number, total: number, v: number) => string;
}

export interface SeededSeries {
  id: number;
  version: number;
  cover: string | null;
  patches: string[];
}

/** Ingests the versions (threaded: patches reply to the cover, or to patch 1) and returns the series rows. */
export async function seed(db: Db, versions: VersionSpec[]): Promise<SeededSeries[]> {
  const ing = new Ingestor(db);
  const src = ing.sourceId('manual', 'report-tests');
  let n = 0;
  for (const v of versions) {
    const title = v.title ?? 'vfio/pci: take igate around enable';
    const total = v.diffs.length;
    const vt = v.version > 1 ? `v${v.version} ` : '';
    const prefix = v.idPrefix ?? `v${v.version}`;
    const common = { 'List-Id': `<${v.listId === undefined ? 'kvm.vger.kernel.org' : v.listId}>`, To: 'Alex Maintainer <alex@example.org>', Cc: 'kvm@vger.kernel.org, Other Reviewer <other@example.org>', ...v.headers };
    if (v.listId === null) delete (common as Record<string, string>)['List-Id'];
    const dom = v.domain ?? 'example.org';
    const root = v.cover ? `${prefix}.0@${dom}` : `${prefix}.1@${dom}`;
    if (v.cover) {
      const subject = v.subjectOf?.(0, total, v.version) ?? `[PATCH ${vt}0/${total}] ${title}`;
      await ing.add(src, mail({ id: root, subject, body: 'The series.\n', headers: { ...common, ...v.headersBy?.[0] } }), `m${n++}`);
    }
    for (const [i, diff] of v.diffs.entries()) {
      const c = i + 1;
      const id = `${prefix}.${c}@${dom}`;
      const subject = v.subjectOf?.(c, total, v.version) ?? (total === 1 && !v.cover ? `[PATCH ${vt}`.trimEnd() + `] ${title}` : `[PATCH ${vt}${c}/${total}] ${title} part ${c}`);
      await ing.add(src, mail({ id, subject, body: body(diff), ...(id === root ? {} : { inReplyTo: root }), headers: { ...common, ...v.headersBy?.[c] } }), `m${n++}`);
    }
  }
  ing.finish();
  const rows = db.prepare('SELECT id, version FROM series ORDER BY version, id').all() as { id: number; version: number }[];
  return rows.map((r) => {
    const ms = db
      .prepare('SELECT sp.counter, m.message_id FROM series_patches sp JOIN messages m ON m.id = sp.message_id WHERE sp.series_id = ? ORDER BY sp.counter')
      .all(r.id) as { counter: number; message_id: string }[];
    return { id: r.id, version: r.version, cover: ms.find((m) => m.counter === 0)?.message_id ?? null, patches: ms.filter((m) => m.counter > 0).map((m) => m.message_id) };
  });
}

export function finding(f: Partial<Finding> & { patch: string }): Finding {
  return {
    rule: 'lock-order',
    severity: 'warning',
    category: 'lock-order',
    file: FILE,
    line: 104,
    function: 'vfio_pci_core_enable',
    message: 'vdev->igate is taken before vdev->memory_lock here (line 104), but vfio_pci_bar_rw() takes them in the other order.',
    confidence: 'moderate',
    evidence: ['igate -> memory_lock at vfio_pci_core.c:104', 'memory_lock -> igate in vfio_pci_bar_rw()'],
    suggestion: 'take memory_lock first, as the rest of the driver does',
    ...f,
  };
}

export interface CheckSpec {
  status?: 'applied' | 'applied-with-fuzz' | 'already-applied' | 'partial' | 'not-applied' | 'rejected' | 'error';
  findings?: Finding[];
  complete?: boolean;
  error?: string | null;
  trigger?: 'check' | 'rerun' | 'daemon';
  attempts?: { ref: string; commit: string | null; why: string; result: string; failedPatch?: number; file?: string; hunk?: string; context?: string; detail?: string }[];
  label?: string;
}

/** Inserts a checks row as checkSeries records one. */
export function insertCheck(db: Db, seriesId: number, spec: CheckSpec = {}): number {
  const status = spec.status ?? 'applied';
  const applied = !['not-applied', 'rejected', 'error'].includes(status);
  const attempts = spec.attempts ?? [
    { ref: 'vfio/next', commit: null, why: 'mapped', result: 'missing' },
    ...(applied ? [{ ref: 'HEAD', commit: 'abcdef0123456789abcdef0123456789abcdef01', why: 'default', result: 'applied' }] : []),
  ];
  const base = applied ? { ref: 'HEAD', commit: 'abcdef0123456789abcdef0123456789abcdef01' } : null;
  const apply = status === 'error' ? null : { status, base, head: base?.commit ?? null, attempts, patches: [], complete: spec.complete ?? true, label: spec.label ?? status, attemptIndex: 0 };
  const now = new Date().toISOString();
  return Number(
    db
      .prepare(
        `INSERT INTO checks (series_id, trigger, tree, status, base_ref, base_commit, head_commit, label, complete, apply_json,
           findings_json, error, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(seriesId, spec.trigger ?? 'check', '/srv/trees/linux', status, base?.ref ?? null, base?.commit ?? null, base?.commit ?? null,
        spec.label ?? (applied ? 'applied cleanly' : 'not applied; the diff alone was reviewed'), spec.complete === false ? 0 : 1,
        JSON.stringify(apply), JSON.stringify(spec.findings ?? []), spec.error ?? null, now, now).lastInsertRowid,
  );
}
