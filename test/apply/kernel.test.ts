import { beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { applySeries } from '../../src/apply/apply.js';
import { gitOk, makeWorkspace } from '../../src/apply/git.js';
import { initTreeFromDebian } from '../../src/apply/tree.js';
import type { ApplyResult, PatchInput } from '../../src/apply/types.js';
import { readMbox } from '../../src/ingest/mbox-source.js';
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

interface Mail {
  patch: PatchInput;
  encoding: string;
}

/** Minimal header/body split for the corpus: enough for 7bit/8bit patch mails, nothing MIME. */
function parseMail(bytes: Buffer, n: number): Mail {
  const text = bytes.toString('utf8').replace(/\r\n/g, '\n');
  const cut = text.indexOf('\n\n');
  const head = (cut < 0 ? text : text.slice(0, cut)).replace(/\n[ \t]+/g, ' ');
  const body = cut < 0 ? '' : text.slice(cut + 2);
  const header = (name: string): string =>
    new RegExp(`^${name}:[ \\t]*(?<v>.*)$`, 'im').exec(head)?.groups?.v?.trim() ?? '';
  const from = /^(?<name>.*?)\s*<(?<email>[^>]+)>/.exec(header('From'));
  const lines = body.split('\n');
  const start = lines.findIndex((l) => l.startsWith('diff --git '));
  let end = lines.length;
  if (start >= 0) {
    const sig = lines.indexOf('-- ', start);
    if (sig >= 0) end = sig;
  }
  const sep = lines.indexOf('---');
  const subject = header('Subject').replace(/^\[[^\]]*\]\s*/, '');
  return {
    // The header of a MIME part counts too: signed mails carry the patch in a QP text part.
    encoding: /^Content-Transfer-Encoding:[ \t]*quoted-printable/im.test(text)
      ? 'quoted-printable'
      : header('Content-Transfer-Encoding').toLowerCase() || '7bit',
    patch: {
      msgid: header('Message-ID') || `<corpus-${n}>`,
      subject,
      authorName: from?.groups?.name?.replace(/^"|"$/g, '') ?? 'unknown',
      authorEmail: from?.groups?.email ?? 'unknown@unknown',
      date: new Date(header('Date')),
      message: `${subject}\n\n${lines.slice(0, sep >= 0 ? sep : start >= 0 ? start : lines.length).join('\n')}`,
      diff: start < 0 ? '' : `${lines.slice(start, end).join('\n')}\n`,
    },
  };
}

interface Tally {
  total: number;
  byStatus: Record<string, number>;
  byMethod: Record<string, number>;
  /** Messages that did not get the expected status, with their transfer encoding. */
  off: { msgid: string; subject: string; status: string; encoding: string; detail: string }[];
  ms: number[];
  /** Applied forward and flagged `reverseApplies` (in patches-in: counted as reported already-applied). */
  ambiguous: string[];
}

async function runCorpus(file: string, expected: ApplyResult['status']): Promise<Tally> {
  const t: Tally = { total: 0, byStatus: {}, byMethod: {}, off: [], ms: [], ambiguous: [] };
  let n = 0;
  for await (const raw of readMbox(join(CORPUS, file))) {
    const { patch, encoding } = parseMail(raw.bytes, n++);
    const t0 = performance.now();
    const res = await applySeries({ tree, patches: [patch], candidates: base });
    t.ms.push(performance.now() - t0);
    t.total++;
    t.byStatus[res.status] = (t.byStatus[res.status] ?? 0) + 1;
    const method = res.patches[0]?.method;
    if (method) t.byMethod[method] = (t.byMethod[method] ?? 0) + 1;
    // Both directions apply (a merged pure addition re-applies one block down): see reverseApplies.
    const ambiguous = res.patches[0]?.reverseApplies === true;
    if (ambiguous) t.ambiguous.push(patch.msgid);
    if (res.status !== expected && !(ambiguous && expected === 'already-applied')) {
      const p = res.patches[0]!;
      t.off.push({ msgid: patch.msgid, subject: patch.subject, status: res.status, encoding, detail: `${p.file ?? ''} ${p.hunk ?? ''} ${p.detail ?? ''}`.trim() });
    }
  }
  const sorted = [...t.ms].sort((a, b) => a - b);
  const mean = t.ms.reduce((a, b) => a + b, 0) / t.ms.length;
  console.log(
    `${file}: ${t.total} messages; ${JSON.stringify(t.byStatus)}; methods ${JSON.stringify(t.byMethod)}; ` +
      `also reverse-apply ${t.ambiguous.length}; off ${t.off.length}; ` +
      `ms/patch mean ${mean.toFixed(0)}, median ${sorted[sorted.length >> 1]!.toFixed(0)}, max ${sorted[sorted.length - 1]!.toFixed(0)}`,
  );
  for (const o of t.off) console.log(`  ${o.status} [${o.encoding}] ${o.msgid} ${o.subject}: ${o.detail.slice(0, 200)}`);
  return t;
}

const haveCorpus = existsSync(CORPUS);

describe.runIf(haveCorpus)('the vfio/iommu corpus against linux-source 6.1.192', () => {
  it('applies every message of patches-applying-6.1.192', async () => {
    const t = await runCorpus('patches-applying-6.1.192.mbox.gz', 'applied');
    expect(t.total).toBe(451);
    // Only mails whose body is transfer-encoded (no MIME decoder here) may miss.
    expect(t.off.filter((o) => o.encoding !== 'quoted-printable' && o.encoding !== 'base64')).toEqual([]);
  }, 30 * 60_000);

  it('reports every message of patches-in-6.1.192 as already applied', async () => {
    const t = await runCorpus('patches-in-6.1.192.mbox.gz', 'already-applied');
    expect(t.total).toBe(566);
    expect(t.off.filter((o) => o.encoding !== 'quoted-printable' && o.encoding !== 'base64')).toEqual([]);
    expect(t.ambiguous.length).toBeLessThanOrEqual(3); // the corpus README names three such mails
  }, 30 * 60_000);
});
