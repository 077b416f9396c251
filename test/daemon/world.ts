/**
 * The daemon tests' world: a small hand-written tree (a few C files under drivers/vfio/), series
 * mailed against it, the configuration file pointing at a real Dovecot, the real SMTP server and
 * (optionally) the GitHub double. Not a test file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRepo, seriesDiffs, type TestRepo } from '../helpers/git-repo.js';
import { startDovecot, type Dovecot } from '../helpers/imap-server.js';
import { startSmtp, type TestSmtp } from '../helpers/smtp-server.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = fileURLToPath(new URL('../../src/cli/bin.js', import.meta.url));
export const BOT = 'bot@bot.example.org';
export const LIST = 'kvm.vger.kernel.org';

/** A function per slot, so each series can change a different one. */
function mainC(slots: number): string {
  const fns = Array.from({ length: slots }, (_, i) => `static int vfio_demo_op${i}(struct vfio_device *device)
{
\tint ret = 0;

\tif (!device)
\t\treturn -EINVAL;
\tret = device->ops->op${i}(device);
\treturn ret;
}
`);
  return `// SPDX-License-Identifier: GPL-2.0-only\n#include <linux/vfio.h>\n#include "vfio.h"\n\n${fns.join('\n')}`;
}

const HEADER = `/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef __VFIO_VFIO_H__
#define __VFIO_VFIO_H__

struct vfio_device;

#endif
`;

const PCI = `// SPDX-License-Identifier: GPL-2.0-only
#include <linux/pci.h>

static int vfio_pci_demo_enable(struct pci_dev *pdev)
{
\tint ret;

\tret = pci_enable_device(pdev);
\tif (ret)
\t\treturn ret;
\treturn 0;
}
`;

export const SLOTS = 24;

/** What the small-tree daemon tests run against: Dovecot, the SMTP server relaying the bot's mail to it, the tree, a temp dir. */
export interface MailWorld {
  dovecot: Dovecot;
  smtp: TestSmtp;
  repo: TestRepo;
  dir: string;
}

/** Starts a {@link MailWorld}; `prefix` names its temp dir. */
export async function startMailWorld(prefix: string): Promise<MailWorld> {
  const dovecot = await startDovecot();
  const smtp = await startSmtp({ relay: { port: dovecot.lmtpPort, map: (r) => (r === BOT ? 'bot' : null) } });
  const repo = await smallTree();
  return { dovecot, smtp, repo, dir: mkdtempSync(join(tmpdir(), prefix)) };
}

/** Stops what {@link startMailWorld} started (any part may be missing when it failed half way). */
export async function stopMailWorld(w: Partial<MailWorld>): Promise<void> {
  await w.smtp?.close();
  await w.dovecot?.stop();
  await w.repo?.dispose();
  if (w.dir) rmSync(w.dir, { recursive: true, force: true });
}

/** The small tree: drivers/vfio/{vfio_main.c, vfio.h, pci/vfio_pci_core.c}. */
export function smallTree(): Promise<TestRepo> {
  return createRepo({ 'drivers/vfio/vfio_main.c': mainC(SLOTS), 'drivers/vfio/vfio.h': HEADER, 'drivers/vfio/pci/vfio_pci_core.c': PCI });
}

/** vfio_main.c with one line added at the top of function `slot` (after `int ret = 0;`). */
function withLine(slot: number, line: string): string {
  return mainC(SLOTS).replace(`vfio_demo_op${slot}(struct vfio_device *device)\n{\n\tint ret = 0;\n`, `vfio_demo_op${slot}(struct vfio_device *device)\n{\n\tint ret = 0;\n\n\t${line}\n`);
}

export interface SeriesSpec {
  /** Distinct per series: titles and Message-IDs are made from it. */
  tag: string;
  slot: number;
  version?: number;
  /** Patch 1 adds BUG_ON (the bug-on rule flags it) or WARN_ON_ONCE (the fix). */
  bug: boolean;
  /** Patches in the series (>= 2; patch 2.. add comments to the PCI file). */
  total?: number;
  from?: string;
  /** Answers the earlier version's cover (b4 style "v2 in reply to v1"). */
  inReplyTo?: string;
}

/** The diffs of a series against the tree's base. */
export async function seriesPatches(repo: TestRepo, s: SeriesSpec): Promise<string[]> {
  const total = s.total ?? 3;
  const base = await repo.git('rev-parse', 'HEAD');
  const steps: Record<string, string>[] = [
    { 'drivers/vfio/vfio_main.c': withLine(s.slot, s.bug ? 'BUG_ON(!device->ops);' : 'if (WARN_ON_ONCE(!device->ops))\n\t\treturn -EINVAL;') },
  ];
  let pci = PCI;
  for (let i = 2; i <= total; i++) {
    pci = pci.replace('\treturn 0;\n}', `\t/* ${s.tag}: step ${i} */\n\treturn 0;\n}`);
    steps.push({ 'drivers/vfio/pci/vfio_pci_core.c': pci });
  }
  return seriesDiffs(repo, base, steps);
}

let seq = 0;

/** Cover + patches as raw mail, threaded to the cover, dated now. */
export function seriesMail(s: SeriesSpec, diffs: string[]): { cover: string; ids: string[]; raws: Buffer[] } {
  const v = s.version ?? 1;
  const total = diffs.length;
  const vt = v > 1 ? `v${v} ` : '';
  const from = s.from ?? `Dev ${s.tag} <dev.${s.tag}@example.org>`;
  const cover = `${s.tag}.v${v}.0.${process.pid}.${++seq}@example.org`;
  const ids = [cover, ...diffs.map((_, i) => `${s.tag}.v${v}.${i + 1}.${process.pid}.${seq}@example.org`)];
  const date = new Date().toUTCString();
  const head = (id: string, subject: string, irt: string | undefined, refs: string[]): string =>
    [
      `From: ${from}`,
      `To: kvm@vger.kernel.org`,
      `Cc: Alex Maintainer <alex@example.org>`,
      `Subject: ${subject}`,
      `Date: ${date}`,
      `Message-ID: <${id}>`,
      ...(irt ? [`In-Reply-To: <${irt}>`, `References: ${refs.map((r) => `<${r}>`).join(' ')}`] : []),
      `List-Id: <${LIST}>`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
    ].join('\n');
  const title = `vfio: demo hardening ${s.tag}`;
  const raws = [
    Buffer.from(`${head(cover, `[PATCH ${vt}0/${total}] ${title}`, s.inReplyTo, s.inReplyTo ? [s.inReplyTo] : [])}\n\nThis series hardens demo op ${s.slot}.\n\n${from}\n`),
    ...diffs.map((d, i) =>
      Buffer.from(
        `${head(ids[i + 1]!, `[PATCH ${vt}${i + 1}/${total}] vfio: ${s.tag} part ${i + 1}`, cover, [...(s.inReplyTo ? [s.inReplyTo] : []), cover])}\n\n` +
          `Part ${i + 1} of the ${s.tag} change.\n\nSigned-off-by: ${from}\n---\n${d}-- \n2.43.0\n`,
      ),
    ),
  ];
  return { cover, ids, raws };
}

/** The configuration file for a daemon watching the bot's INBOX and replying by SMTP (Bcc to itself). */
export function writeConfig(
  dir: string,
  o: { dovecot: Dovecot; smtp: TestSmtp; tree: string; db: string; github?: { url: string; repo: string }; daemon?: Record<string, unknown>; sinks?: string[] },
): string {
  const imap = { host: '127.0.0.1', port: o.dovecot.port, secure: false, user: 'bot' };
  const sinks = o.sinks ?? ['email'];
  const file = join(dir, `config-${++seq}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      {
        db: o.db,
        apply: { tree: o.tree },
        report: {
          ownDomain: 'bot.example.org',
          from: `vfio-review <${BOT}>`,
          commandsFrom: ['alex@example.org'],
          email: { host: '127.0.0.1', port: o.smtp.port, ignoreTLS: true, bccSelf: BOT, inDoubtGraceMs: 0, check: { ...imap, mailboxes: ['INBOX'] } },
          retry: { maxAttempts: 20, baseDelayMs: 200, maxDelayMs: 2000 },
          lists: [{ id: LIST, address: 'kvm@vger.kernel.org', perDay: 1000, sinks: Object.fromEntries(sinks.map((s) => [s, {}])) }],
        },
        ...(o.github ? { github: { repo: o.github.repo, baseUrl: o.github.url, allowedUsers: ['alex-williamson'], botLogin: 'vfio-review-bot', pollIntervalMs: 1000 } } : {}),
        daemon: {
          sources: [{ name: 'lists', ...imap, mailboxes: ['INBOX'], pollIntervalMs: 3000 }],
          waitSeconds: 2,
          workers: 2,
          sinks,
          leaseSeconds: 3,
          tickMs: 200,
          deliverSeconds: 1,
          retrySeconds: 0.5,
          shutdownGraceSeconds: 5,
          maxAgeDays: null,
          logLevel: 'info',
          ...o.daemon,
        },
      },
      null,
      1,
    ),
  );
  return file;
}

export const ENV = { VFIO_REVIEW_IMAP_PASS: 'botpass', VFIO_REVIEW_GITHUB_TOKEN: 'test-token' };

/** A daemon in a child process (`vfio-review run`), with its stderr (the JSON log) collected. */
export interface DaemonChild {
  proc: ChildProcess;
  log: () => string;
  /** Resolves with the log line's object when a line with this msg appears (from the start of the log). */
  waitFor: (msg: string, timeoutMs?: number) => Promise<Record<string, unknown>>;
  /** Resolves when the raw stderr contains `text`. */
  waitText: (text: string, timeoutMs?: number) => Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function spawnDaemon(config: string, env: Record<string, string> = {}): DaemonChild {
  const proc = spawn(process.execPath, [BIN, 'run', '--config', config], {
    cwd: ROOT,
    env: { ...process.env, ...ENV, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let text = '';
  const waiters: { msg: string; resolve: (o: Record<string, unknown>) => void }[] = [];
  const textWaiters: { text: string; resolve: () => void }[] = [];
  const scan = (): void => {
    for (const line of text.split('\n')) {
      if (!line.startsWith('{')) continue;
      let o: Record<string, unknown>;
      try {
        o = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      for (const w of [...waiters]) {
        if (o.msg === w.msg) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(o);
        }
      }
    }
  };
  proc.stderr!.on('data', (b: Buffer) => {
    text += b.toString();
    if (waiters.length) scan();
    for (const w of [...textWaiters]) if (text.includes(w.text)) (textWaiters.splice(textWaiters.indexOf(w), 1), w.resolve());
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.on('exit', (code, signal) => r({ code, signal })));
  return {
    proc,
    log: () => text,
    exited,
    waitFor: (msg, timeoutMs = 60_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no '${msg}' in the daemon log within ${timeoutMs} ms:\n${text.slice(-4000)}`)), timeoutMs);
        void exited.then(() => setTimeout(() => reject(new Error(`daemon exited before '${msg}':\n${text.slice(-4000)}`)), 50));
        waiters.push({ msg, resolve: (o) => (clearTimeout(timer), resolve(o)) });
        scan();
      }),
    waitText: (want, timeoutMs = 60_000) =>
      new Promise<void>((resolve, reject) => {
        if (text.includes(want)) return resolve();
        const timer = setTimeout(() => reject(new Error(`no '${want}' on the daemon's stderr within ${timeoutMs} ms:\n${text.slice(-4000)}`)), timeoutMs);
        textWaiters.push({ text: want, resolve: () => (clearTimeout(timer), resolve()) });
      }),
  };
}

/** Polls `fn` until it returns a truthy value. */
export async function until<T>(fn: () => T | Promise<T>, timeoutMs: number, what: string): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The Message-ID header of a raw reply. */
export function messageIdOf(raw: Buffer): string | null {
  return /^Message-ID:\s*(<[^>]+>)/im.exec(raw.toString('latin1'))?.[1] ?? null;
}
