/**
 * Seed messages for the malformed-mail campaign: real list mail from the shared corpus, read at
 * run time and never copied into the repository, plus a few hand-written messages so the
 * campaign still means something where the corpus is absent.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readMbox } from '../ingest/mbox-source.js';

export const DEFAULT_CORPUS = fileURLToPath(new URL('../../../shared/corpus/', import.meta.url));

export interface SeedSet {
  /** Seed messages as latin1 strings (one char per byte). */
  messages: readonly string[];
  fromCorpus: number;
  builtin: number;
  /** Says where the seeds came from, and when the corpus was not found. */
  note: string;
  /** Short hash of all seeds: a reproducer (seed, index) holds only for the same seed set. */
  fingerprint: string;
}

// Hand-written seeds keep the campaign meaningful without the corpus: a threaded patch, a cover,
// a reply with trailers, a multipart mail with the patch attached, a QP/latin-1 one.
const BUILTIN: readonly string[] = [
  ['From: Dev One <dev1@example.org>', 'To: kvm@vger.kernel.org', 'Subject: [PATCH v2 1/2] vfio/pci: Fix the thing',
    'Date: Fri, 01 Mar 2024 10:00:00 +0000', 'Message-ID: <20240301100000.1-dev1@example.org>',
    'In-Reply-To: <20240301100000.0-dev1@example.org>', 'References: <20240301100000.0-dev1@example.org>',
    'MIME-Version: 1.0', 'Content-Type: text/plain; charset=UTF-8', 'Content-Transfer-Encoding: 8bit', '',
    'Fix it.', '', 'Signed-off-by: Dev One <dev1@example.org>', '---', ' drivers/vfio/pci/vfio_pci_core.c | 1 +', '',
    'diff --git a/drivers/vfio/pci/vfio_pci_core.c b/drivers/vfio/pci/vfio_pci_core.c', 'index 1111111..2222222 100644',
    '--- a/drivers/vfio/pci/vfio_pci_core.c', '+++ b/drivers/vfio/pci/vfio_pci_core.c', '@@ -1,3 +1,4 @@', ' a', '+b', ' c', ' d',
    '-- ', '2.43.0', ''],
  ['From: Dev One <dev1@example.org>', 'Subject: [PATCH v2 0/2] vfio/pci: Things', 'Date: Fri, 01 Mar 2024 09:59:00 +0000',
    'Message-ID: <20240301100000.0-dev1@example.org>', 'Content-Type: text/plain; charset=utf-8', '',
    'Two fixes.', '', 'Link to v1: https://lore.kernel.org/r/20240201-v1@example.org', '',
    'base-commit: 0123456789abcdef0123456789abcdef01234567', 'change-id: 20240201-things-0123', ''],
  ['From: Rev Iewer <rev@example.org>', 'Subject: Re: [PATCH v2 1/2] vfio/pci: Fix the thing',
    'Date: Sat, 02 Mar 2024 08:00:00 +0100', 'Message-ID: <reply-1@example.org>', 'In-Reply-To: <20240301100000.1-dev1@example.org>',
    'References: <20240301100000.0-dev1@example.org> <20240301100000.1-dev1@example.org>', '',
    '> Fix it.', '', 'Reviewed-by: Rev Iewer <rev@example.org>', 'Cc: stable@vger.kernel.org # 6.1+', ''],
  ['From: Att Acher <att@example.org>', 'Subject: [PATCH] iommu/vt-d: Attached', 'Date: Sun, 03 Mar 2024 12:00:00 +0000',
    'Message-ID: <att-1@example.org>', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b1"', '', '--b1',
    'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: base64', '',
    Buffer.from('Commit message.\n\nSigned-off-by: Att Acher <att@example.org>\n').toString('base64'), '--b1',
    'Content-Type: text/x-patch; name="0001.patch"', 'Content-Disposition: attachment; filename="0001.patch"', '',
    'diff --git a/drivers/iommu/iommu.c b/drivers/iommu/iommu.c', '--- a/drivers/iommu/iommu.c', '+++ b/drivers/iommu/iommu.c',
    '@@ -1 +1 @@', '-a', '+b', '--b1--', ''],
  ['From: =?iso-8859-1?q?J=F6rg?= <joerg@example.org>', 'Subject: =?iso-8859-1?q?Re=3A_=5BPATCH=5D_gr=FC=DFe?=',
    'Date: Mon, 04 Mar 2024 12:00:00 +0000', 'Message-ID: <qp-1@example.org>', 'Content-Type: text/plain; charset=iso-8859-1',
    'Content-Transfer-Encoding: quoted-printable', '', 'Gr=FC=DFe,=20', 'soft=', 'break', 'Acked-by: J=F6rg <joerg@example.org>', ''],
].map((lines) => lines.join('\n'));

async function firstMessages(path: string, n: number, out: string[]): Promise<void> {
  for await (const m of readMbox(path)) {
    if (m.bytes.length > 0) out.push(m.bytes.toString('latin1'));
    if (--n <= 0) break;
  }
}

/**
 * The seed set: the first `patches` messages of patches-applying-6.1.192.mbox.gz and the first
 * `perThread` of each threads/*.mbox (sorted, so the set is stable), read at run time and never
 * copied, plus the built-in seeds. Without the corpus, the built-in seeds alone (and the note says so).
 */
export async function loadSeeds(opts: { corpus?: string | null; patches?: number; perThread?: number } = {}): Promise<SeedSet> {
  const dir = opts.corpus === undefined ? DEFAULT_CORPUS : opts.corpus;
  const found: string[] = [];
  let note = 'built-in seeds only (no corpus asked for)';
  if (dir !== null && existsSync(dir)) {
    const patches = join(dir, 'patches-applying-6.1.192.mbox.gz');
    if (existsSync(patches)) await firstMessages(patches, opts.patches ?? 200, found);
    const threads = join(dir, 'threads');
    if (existsSync(threads)) {
      for (const f of readdirSync(threads).filter((x) => x.endsWith('.mbox')).sort()) {
        await firstMessages(join(threads, f), opts.perThread ?? 10, found);
      }
    }
    note = `${found.length} corpus seeds from ${dir} and ${BUILTIN.length} built-in`;
  } else if (dir !== null) {
    note = `corpus not found at ${dir}: built-in seeds only`;
  }
  const messages = [...found, ...BUILTIN];
  const h = createHash('sha256');
  for (const m of messages) h.update(m, 'latin1').update('\0');
  return { messages, fromCorpus: found.length, builtin: BUILTIN.length, note, fingerprint: h.digest('hex').slice(0, 12) };
}

