import { beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { applySeries } from '../../src/apply/apply.js';
import { gitOk, makeWorkspace } from '../../src/apply/git.js';
import { initTreeFromDebian } from '../../src/apply/tree.js';
import type { ApplyResult, PatchInput } from '../../src/apply/types.js';
import { readMbox } from '../../src/ingest/mbox-source.js';
import { parseMessage } from '../../src/mail/parse.js';
import { kernelTree, projectRoot } from '../helpers/kernel-tree.js';
import { snapshot } from '../helpers/git-repo.js';

const BRANCH = 'debian/6.1';
const CORPUS = join(projectRoot, '..', 'shared', 'corpus');
const base = [{ ref: BRANCH, why: 'default' as const }];

let tree: string;
beforeAll(async () => {
  tree = await kernelTree();
}, 30 * 60_000);

async function gitIn(...args: string[]): Promise<string> {
  const ws = await makeWorkspace();
  try {
    return await gitOk(args, { gitDir: join(tree, '.git'), cwd: ws.dir, home: ws.home });
  } finally {
    await ws.dispose();
  }
}
const show = (spec: string): Promise<string> => gitIn('show', spec);

describe('the Debian linux-source-6.1 tree', () => {
  it('is provisioned once: a second init does nothing', async () => {
    const again = await initTreeFromDebian('linux-source-6.1', tree, { log: () => undefined });
    expect(again).toMatchObject({ created: false, branch: BRANCH });
    expect(again.commit).toBe(await gitIn('rev-parse', BRANCH));
  });

  it('takes a hand-written patch to drivers/vfio/vfio_main.c without touching the checkout', async () => {
    const path = 'drivers/vfio/vfio_main.c';
    const lines = (await show(`${BRANCH}:${path}`)).split('\n');
    const at = lines.indexOf('#define DRIVER_DESC\t"VFIO - User Level meta-driver"');
    expect(at).toBeGreaterThan(3);
    // Three lines of context either side of the new line, numbered from the real file.
    const before = lines.slice(at - 2, at + 1);
    const after = lines.slice(at + 1, at + 4);
    const diff = [
      `diff --git a/${path} b/${path}`,
      `--- a/${path}`,
      `+++ b/${path}`,
      `@@ -${at - 1},6 +${at - 1},7 @@`,
      ...before.map((l) => ` ${l}`),
      '+/* vfio-review was here */',
      ...after.map((l) => ` ${l}`),
      '',
    ].join('\n');
    const head = await snapshot(join(tree, '.git'), ['objects']);
    const patch: PatchInput = {
      msgid: '<vfio-main-comment@example.org>',
      subject: 'vfio: add a comment',
      authorName: 'A Tester',
      authorEmail: 'a.tester@example.org',
      date: new Date('2024-05-06T07:08:09Z'),
      message: 'vfio: add a comment\n\nSigned-off-by: A Tester <a.tester@example.org>\n',
      diff,
    };
    const t0 = performance.now();
    const res = await applySeries({ tree, patches: [patch], candidates: base });
    const ms = performance.now() - t0;
    expect(res.status).toBe('applied');
    const after1 = (await show(`${res.head}:${path}`)).split('\n');
    expect(after1[at + 1]).toBe('/* vfio-review was here */');
    expect(after1.length).toBe(lines.length + 1);
    expect(await snapshot(join(tree, '.git'), ['objects'])).toEqual(head);
    console.log(`kernel tree: one-patch series applied in ${ms.toFixed(0)} ms`);
  });
});

/** A corpus mail as the apply stage gets it: decoded by the project's parser (QP, base64, MIME parts). */
async function patchOf(bytes: Buffer, n: number): Promise<PatchInput> {
  const m = await parseMessage(bytes);
  const title = m.subjectInfo.title;
  return {
    msgid: m.messageId ?? `<corpus-${n}>`,
    subject: title,
    // git am takes the in-body From: as the author when the mail has one.
    authorName: m.bodyAuthor?.name ?? m.fromName ?? m.fromAddr ?? 'unknown',
    authorEmail: m.bodyAuthor?.addr ?? m.fromAddr ?? 'unknown@unknown',
    date: m.date ?? new Date(0),
    message: `${title}\n\n${m.commitMessage ?? ''}`,
    diff: m.diff ?? '',
  };
}

interface Tally {
  total: number;
  byStatus: Record<string, number>;
  byMethod: Record<string, number>;
  /** Messages that did not get the expected status. */
  off: { msgid: string; subject: string; status: string; detail: string }[];
  ms: number[];
  /** Decided already-applied although the diff also applies forward (onto a copy of its own lines). */
  ownLines: string[];
}

/** Applies each mail of `file` as a one-patch series; `expect` says which status each message should get. */
async function runCorpus(file: string, expect: (msgid: string) => ApplyResult['status']): Promise<Tally> {
  const t: Tally = { total: 0, byStatus: {}, byMethod: {}, off: [], ms: [], ownLines: [] };
  let n = 0;
  for await (const raw of readMbox(join(CORPUS, file))) {
    const patch = await patchOf(raw.bytes, n++);
    const t0 = performance.now();
    const res = await applySeries({ tree, patches: [patch], candidates: base });
    t.ms.push(performance.now() - t0);
    t.total++;
    t.byStatus[res.status] = (t.byStatus[res.status] ?? 0) + 1;
    const p = res.patches[0]!;
    if (p.method) t.byMethod[p.method] = (t.byMethod[p.method] ?? 0) + 1;
    if (p.status === 'already-applied' && p.detail?.includes('own added lines')) t.ownLines.push(patch.msgid);
    if (res.status !== expect(patch.msgid)) {
      t.off.push({ msgid: patch.msgid, subject: patch.subject, status: res.status, detail: `${p.file ?? ''} ${p.hunk ?? ''} ${p.detail ?? ''}`.trim() });
    }
  }
  const sorted = [...t.ms].sort((a, b) => a - b);
  const mean = t.ms.reduce((a, b) => a + b, 0) / t.ms.length;
  console.log(
    `${file}: ${t.total} messages; ${JSON.stringify(t.byStatus)}; methods ${JSON.stringify(t.byMethod)}; ` +
      `already applied though forward applies too: ${t.ownLines.length}; off ${t.off.length}; ` +
      `ms/patch mean ${mean.toFixed(0)}, median ${sorted[sorted.length >> 1]!.toFixed(0)}, max ${sorted[sorted.length - 1]!.toFixed(0)}`,
  );
  for (const o of t.off) console.log(`  ${o.status} ${o.msgid} ${o.subject}: ${o.detail.slice(0, 200)}`);
  return t;
}

/** Message-IDs of a corpus file. */
async function msgids(file: string): Promise<Set<string>> {
  const out = new Set<string>();
  for await (const raw of readMbox(join(CORPUS, file))) {
    const id = (await parseMessage(raw.bytes)).messageId;
    if (id) out.add(id);
  }
  return out;
}

const haveCorpus = existsSync(CORPUS);

describe.runIf(haveCorpus)('the vfio/iommu corpus against linux-source 6.1.192', () => {
  const APPLYING = 'patches-applying-6.1.192.mbox.gz';
  const IN = 'patches-in-6.1.192.mbox.gz';
  // The corpus README: "3 patch mails both apply and reverse-apply to 6.1.192". They are the same
  // three messages in both files (s390/vfio-ap pure additions whose added block ends with the
  // context it was inserted before); they are merged, so both files must call them already applied.
  let both: Set<string>;
  beforeAll(async () => {
    const [a, b] = await Promise.all([msgids(APPLYING), msgids(IN)]);
    both = new Set([...a].filter((id) => b.has(id)));
  });

  it('applies every message of patches-applying-6.1.192 (the three merged ones: already applied)', async () => {
    expect(both.size).toBe(3);
    const t = await runCorpus(APPLYING, (id) => (both.has(id) ? 'already-applied' : 'applied'));
    expect(t.total).toBe(451);
    expect(t.off).toEqual([]);
    expect(t.byStatus).toEqual({ applied: 448, 'already-applied': 3 });
    expect(new Set(t.ownLines)).toEqual(both);
  }, 30 * 60_000);

  it('reports every message of patches-in-6.1.192 as already applied', async () => {
    const t = await runCorpus(IN, () => 'already-applied');
    expect(t.total).toBe(566);
    expect(t.off).toEqual([]);
    expect(new Set(t.ownLines)).toEqual(both);
  }, 30 * 60_000);
});
