/**
 * End to end on the real 6.1 tree: a 3-patch series whose first patch adds a BUG_ON() to
 * drivers/vfio is appended to the watched mailbox; the review reaches the SMTP server, the tracking
 * issue is created in the GitHub double, `status --json` shows an empty queue; v2 replaces the
 * BUG_ON() and the follow-up says the concern is resolved.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/load.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { openDb } from '../../src/store/db.js';
import { startServer } from '../../src/web/server.js';
import type { DaemonStatus } from '../../src/daemon/health.js';
import { startDovecot, type Dovecot } from '../helpers/imap-server.js';
import { startSmtp, type TestSmtp } from '../helpers/smtp-server.js';
import { startGithubDouble, type GithubDouble } from '../helpers/github-http.js';
import { kernelTree } from '../helpers/kernel-tree.js';
import { lineOf as lineOfIn, patchAt as patchAtIn } from '../../src/bench/e2e.js';
import { BIN, BOT, ENV, LIST, ROOT, until, writeConfig } from './world.js';

const REPO = 'vfio-review/reviews';
let tree: string;
let dovecot: Dovecot;
let smtp: TestSmtp;
let gh: GithubDouble;
let dir: string;

beforeAll(async () => {
  tree = await kernelTree();
  dovecot = await startDovecot();
  smtp = await startSmtp({ relay: { port: dovecot.lmtpPort, map: (r) => (r === BOT ? 'bot' : null) } });
  gh = await startGithubDouble({ repos: [REPO] });
  dir = mkdtempSync(join(tmpdir(), 'vr-daemon-kernel-'));
}, 30 * 60_000);
afterAll(async () => {
  await gh?.close();
  await smtp?.close();
  await dovecot?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// Hunks written against the tree, as the e2e benchmark writes them.
const patchAt = (path: string, after: number, added: string[]): string => patchAtIn(tree, path, after, added);
const lineOf = (path: string, text: string): number => lineOfIn(tree, path, text);

function series(version: number, fixed: boolean, inReplyTo?: string): { cover: string; ids: string[]; raws: Buffer[] } {
  const main = 'drivers/vfio/vfio_main.c';
  // In __vfio_register_dev(), after the declarations and the blank line.
  const at = lineOf(main, '\tstruct vfio_device *existing_device;') + 2;
  const check = fixed ? ['\tif (WARN_ON_ONCE(!device->ops))', '\t\treturn -EINVAL;', ''] : ['\tBUG_ON(!device->ops);', ''];
  const pci = 'drivers/vfio/pci/vfio_pci_core.c';
  const type1 = 'drivers/vfio/vfio_iommu_type1.c';
  const diffs = [
    patchAt(main, at, check),
    patchAt(pci, lineOf(pci, 'int vfio_pci_core_enable(struct vfio_pci_core_device *vdev)') + 5, ['\t/* the device is powered up below, before any config access */']),
    patchAt(type1, lineOf(type1, 'static int vfio_iommu_type1_attach_group(void *iommu_data,') + 3, ['\t/* attach is serialised by iommu->lock */']),
  ];
  const titles = ['vfio: check device ops at registration', 'vfio/pci: document the power-up order', 'vfio/type1: document attach locking'];
  const v = version > 1 ? `v${version} ` : '';
  const cover = `e2e.v${version}.0.${process.pid}@example.org`;
  const ids = [cover, ...diffs.map((_, i) => `e2e.v${version}.${i + 1}.${process.pid}@example.org`)];
  const from = 'Dev One <dev1@example.org>';
  const head = (id: string, subject: string, irt?: string, refs: string[] = []) =>
    [`From: ${from}`, 'To: kvm@vger.kernel.org', 'Cc: Alex Maintainer <alex@example.org>', `Subject: ${subject}`, `Date: ${new Date().toUTCString()}`,
      `Message-ID: <${id}>`, ...(irt ? [`In-Reply-To: <${irt}>`, `References: ${[...refs, irt].map((r) => `<${r}>`).join(' ')}`] : []),
      `List-Id: <${LIST}>`, 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8'].join('\n');
  const raws = [
    Buffer.from(`${head(cover, `[PATCH ${v}0/3] vfio: registration checks`, inReplyTo)}\n\nChecks at registration, and two comments.\n${version > 1 ? '\nv2: WARN_ON_ONCE() and -EINVAL instead of BUG_ON().\n' : ''}`),
    ...diffs.map((d, i) =>
      Buffer.from(`${head(ids[i + 1]!, `[PATCH ${v}${i + 1}/3] ${titles[i]}`, cover, inReplyTo ? [inReplyTo] : [])}\n\n${titles[i]}.\n\nSigned-off-by: ${from}\n---\n${d}-- \n2.43.0\n`),
    ),
  ];
  return { cover, ids, raws };
}

const replyTo = (id: string) => smtp.received.filter((m) => m.raw.toString('latin1').includes(`In-Reply-To: <${id}>`));

describe('the daemon on the real 6.1 tree', () => {
  it('reviews v1 (BUG_ON flagged, mail + tracking issue), reruns on a GitHub /rerun, then says resolved on v2', async () => {
    const db = join(dir, 'e2e.db');
    await dovecot.appendMany('bot', 'lists', []);
    const file = writeConfig(dir, {
      dovecot, smtp, tree, db, sinks: ['email', 'github'], github: { url: gh.url, repo: REPO },
      daemon: { sources: [{ name: 'lists', host: '127.0.0.1', port: dovecot.port, secure: false, user: 'bot', mailboxes: ['lists'] }], waitSeconds: 600, leaseSeconds: 30 },
    });
    const config = loadConfig({ file, env: ENV });
    const daemon = new Daemon({ config, dbPath: db, tree, log: pino({ level: 'silent' }) });
    await daemon.start();
    try {
      const v1 = series(1, false);
      await dovecot.appendMany('bot', 'lists', v1.raws);
      const [review] = await until(() => (replyTo(v1.ids[1]!).length ? replyTo(v1.ids[1]!) : null), 180_000, 'the review of patch 1');
      const text = review!.raw.toString();
      expect(text).toMatch(/BUG_ON\(\) added in __vfio_register_dev\(\)/);
      const concern = /([0-9a-f]{12}) bug-on|bug-on[^\n]*?([0-9a-f]{12})/.exec(text);
      expect(concern, text).not.toBeNull();
      const concernId = concern![1] ?? concern![2]!;
      await until(() => replyTo(v1.cover).length === 1, 30_000, 'the summary on the cover');
      // The GitHub tracking issue with the review comments.
      await until(() => gh.issues(REPO).length === 1 && daemon.jobs.counts().done === 1, 120_000, 'the tracking issue and the job done');
      const issue = gh.issues(REPO)[0]!;
      expect(issue.title).toMatch(/registration checks/);
      expect(gh.comments(issue.number).map((c) => c.body).join('\n')).toContain(concernId);
      expect(gh.failures).toEqual([]);

      const st = spawnSync(process.execPath, [BIN, 'status', '--db', db, '--json'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...ENV } });
      expect(st.status, st.stderr).toBe(0);
      const status = JSON.parse(st.stdout) as DaemonStatus;
      expect(status.queue).toEqual({ queued: 0, running: 0, done: 1, failed: 0 });
      expect(status.daemon.running).toBe(true);
      expect(status.sinks.map((s) => [s.name, s.outbox.pending + s.outbox.sending, s.outbox.failed])).toEqual([['email', 0, 0], ['github', 0, 0]]);

      // A maintainer's `/rerun` on the tracking issue becomes a rerun job; same findings, so no new reply.
      gh.addToken('alex-token', 'alex-williamson');
      const sentBefore = smtp.received.length;
      const posted = await fetch(`${gh.url}/repos/${REPO}/issues/${issue.number}/comments`, {
        method: 'POST',
        headers: { authorization: 'token alex-token', accept: 'application/vnd.github+json', 'content-type': 'application/json' },
        body: JSON.stringify({ body: '/rerun' }),
      });
      expect(posted.status).toBe(201);
      await until(() => daemon.jobs.list().some((j) => j.kind === 'rerun' && j.state === 'done'), 180_000, 'the rerun asked on GitHub');
      expect(daemon.jobs.list().find((j) => j.kind === 'rerun')!.reason).toBe('rerun asked by alex-williamson on GitHub');
      expect(smtp.received.length).toBe(sentBefore);

      const v2 = series(2, true, v1.cover);
      await dovecot.appendMany('bot', 'lists', v2.raws);
      const [follow] = await until(() => (replyTo(v2.cover).length ? replyTo(v2.cover) : null), 180_000, 'the follow-up on v2');
      const body = follow!.raw.toString().replace(/=\r?\n/g, '');
      expect(body).toMatch(/compared it with v1/);
      expect(body).toMatch(new RegExp(`Resolved in v2:\\s*\\r?\\n- ${concernId}`));
      expect(body).toMatch(/New in v2:\s*\r?\n- none/);
      // Nothing is raised on v2, so patch 1 of v2 gets no reply of its own.
      expect(replyTo(v2.ids[1]!)).toHaveLength(0);
      await until(() => daemon.jobs.counts().done === 3 && gh.comments(issue.number).some((c) => c.body.includes('Resolved in v2')), 120_000, 'the follow-up on the tracking issue');
      expect(gh.issues(REPO)).toHaveLength(1);

      // The dashboard over the same store lists the concern, resolved by v2, on its page and in JSON.
      const web = await startServer({ db: openDb(db), token: null, csrfSecret: 'e2e-dashboard-secret-0123456789', host: '127.0.0.1', port: 0 });
      try {
        const all = (await (await fetch(`${web.url}/api/concerns?state=all`)).json()) as { concerns: { id: string; rule: string; state: string }[] };
        expect(all.concerns.find((c) => c.id === concernId)).toMatchObject({ rule: 'bug-on', state: 'resolved' });
        const page = await (await fetch(`${web.url}/concerns/${concernId}`)).text();
        expect(page).toContain(concernId);
        expect(page).toMatch(/resolved/);
      } finally {
        await web.close();
      }
    } finally {
      await daemon.stop('test over');
    }
  }, 15 * 60_000);
});
