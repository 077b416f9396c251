/**
 * `bench e2e`: mail in, reply out, through the whole daemon. A throwaway Dovecot and an SMTP server
 * run on loopback (the test suite's own helpers: the bench is a development tool and needs the
 * devDependencies anyway), `vfio-review run` runs as a child process on the 6.1 tree, and 20
 * 5-patch series are mailed one after another. The time measured runs from the IMAP APPEND of each
 * series' last patch to the SMTP server accepting the reply: IDLE notification, fetch, ingest,
 * series rebuild, queue, apply, rules, checkpatch.pl, concern tracking, outbox, SMTP.
 *
 * The peer column is what a plain per-series job does with the same mail (a fresh `git worktree`,
 * `git am`, the tree's checkpatch.pl on each patch, the worktree removed), on a sample of series
 * because a kernel checkout alone takes tens of seconds here. It has no mail in or out and finds
 * less, so it is context, not a like-for-like race.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import type { BenchOptions } from '../cli/bench.js';
import { git, gitOk, hermeticEnv, run as runProc } from '../apply/git.js';
import { table } from './measure.js';

const BIN = fileURLToPath(new URL('../cli/bin.js', import.meta.url));
const SERIES = 20;
const PATCHES = 5;
const LIST = 'kvm.vger.kernel.org';
const BOT = 'bot@bot.example.org';

/** A hunk adding `added` after line `after` of a file of the tree; the context is read from the tree. */
export function patchAt(tree: string, path: string, after: number, added: string[]): string {
  const lines = readFileSync(join(tree, path), 'utf8').split('\n');
  const ctx = (from: number, to: number) => lines.slice(from - 1, to).map((l) => (l === '' ? ' ' : ` ${l}`));
  return [
    `diff --git a/${path} b/${path}`, `--- a/${path}`, `+++ b/${path}`,
    `@@ -${after - 2},6 +${after - 2},${6 + added.length} @@`,
    ...ctx(after - 2, after), ...added.map((a) => `+${a}`), ...ctx(after + 1, after + 3), '',
  ].join('\n');
}

/** The line of `text` (exact, first) in a file of the tree. */
export function lineOf(tree: string, path: string, text: string): number {
  const i = readFileSync(join(tree, path), 'utf8').split('\n').indexOf(text);
  if (i < 0) throw new Error(`${path} has no line '${text}' (not the 6.1 tree?)`);
  return i + 1;
}

/** Series i: patch 1 adds a BUG_ON() (the bug-on rule flags it, so there is a reply), 2..5 add comments in four files. */
function seriesMails(tree: string, i: number): { ids: string[]; raws: Buffer[] } {
  const main = 'drivers/vfio/vfio_main.c';
  const spots: [string, string, number][] = [
    ['drivers/vfio/pci/vfio_pci_core.c', 'int vfio_pci_core_enable(struct vfio_pci_core_device *vdev)', 5],
    ['drivers/vfio/vfio_iommu_type1.c', 'static int vfio_iommu_type1_attach_group(void *iommu_data,', 3],
    ['drivers/vfio/pci/vfio_pci_config.c', 'int vfio_config_init(struct vfio_pci_core_device *vdev)', 5],
    ['drivers/vfio/container.c', 'int vfio_container_attach_group(struct vfio_container *container,', 3],
  ];
  const diffs = [
    patchAt(tree, main, lineOf(tree, main, '\tstruct vfio_device *existing_device;') + 2, ['\tBUG_ON(!device->ops);', '']),
    ...spots.map(([path, text, off], k) => patchAt(tree, path, lineOf(tree, path, text) + off, [`\t/* bench series ${i}: note ${k + 2} */`])),
  ];
  const from = `Bench Dev ${i} <bench${i}@example.org>`;
  const ids = Array.from({ length: PATCHES + 1 }, (_, n) => `bench.${i}.${n}.${process.pid}.${Date.now()}@example.org`);
  const head = (n: number, subject: string) =>
    [`From: ${from}`, 'To: kvm@vger.kernel.org', `Subject: ${subject}`, `Date: ${new Date().toUTCString()}`, `Message-ID: <${ids[n]}>`,
      ...(n > 0 ? [`In-Reply-To: <${ids[0]}>`, `References: <${ids[0]}>`] : []), `List-Id: <${LIST}>`, 'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8'].join('\n');
  const raws = [
    Buffer.from(`${head(0, `[PATCH 0/${PATCHES}] vfio: bench series ${i}`)}\n\nBench series ${i}.\n`),
    ...diffs.map((d, k) =>
      Buffer.from(`${head(k + 1, `[PATCH ${k + 1}/${PATCHES}] vfio: bench ${i} part ${k + 1}`)}\n\nPart ${k + 1}.\n\nSigned-off-by: ${from}\n---\n${d}-- \n2.43.0\n`),
    ),
  ];
  return { ids, raws };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The plain way for one series: worktree add, git am, checkpatch.pl on each patch, worktree remove. */
async function plainWay(tree: string, dir: string, n: number, raws: Buffer[]): Promise<{ ms: number; ok: boolean }> {
  const gitDir = (await gitOk(['rev-parse', '--absolute-git-dir'], { cwd: tree, home: dir })).trim();
  const wt = join(dir, `wt-${n}`);
  const files = raws.slice(1).map((r, k) => {
    const f = join(dir, `p${n}-${k + 1}.eml`);
    writeFileSync(f, r);
    return f;
  });
  const repo = { gitDir, cwd: dir, home: dir };
  const inWt = { cwd: wt, home: dir, env: { GIT_COMMITTER_NAME: 'bench', GIT_COMMITTER_EMAIL: 'bench@example.org' } };
  const t0 = performance.now();
  await gitOk(['worktree', 'add', '--detach', '--quiet', wt, 'HEAD'], { ...repo, timeoutMs: 900_000 });
  try {
    const am = await git(['am', '--quiet', ...files], inWt);
    for (const f of files) await runProc('perl', [join(wt, 'scripts/checkpatch.pl'), '--quiet', '--no-summary', f], { cwd: wt, env: hermeticEnv(dir), timeoutMs: 120_000 });
    await gitOk(['worktree', 'remove', '--force', wt], { ...repo, timeoutMs: 900_000 });
    return { ms: performance.now() - t0, ok: am.code === 0 };
  } finally {
    if (existsSync(wt)) await git(['worktree', 'remove', '--force', wt], repo);
  }
}

export async function bench(o: BenchOptions): Promise<string> {
  const { startDovecot } = await import('../../test/helpers/imap-server.js');
  const { startSmtp } = await import('../../test/helpers/smtp-server.js');
  const dir = mkdtempSync(join(tmpdir(), 'vr-bench-e2e-'));
  const dovecot = await startDovecot();
  const smtp = await startSmtp();
  const loadBefore = loadavg()[0]!;
  let daemon: ChildProcess | undefined;
  try {
    const dbPath = join(dir, 'bench.db');
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({
      db: dbPath,
      apply: { tree: o.tree },
      report: {
        ownDomain: 'bot.example.org', from: `vfio-review <${BOT}>`,
        email: { host: '127.0.0.1', port: smtp.port, ignoreTLS: true },
        lists: [{ id: LIST, address: 'kvm@vger.kernel.org', perDay: 1000, sinks: { email: {} } }],
      },
      daemon: {
        sources: [{ name: 'lists', host: '127.0.0.1', port: dovecot.port, secure: false, user: 'bot', mailboxes: ['lists'] }],
        sinks: ['email'], waitSeconds: 600, maxAgeDays: null, logLevel: 'info',
      },
    }));
    await dovecot.appendMany('bot', 'lists', []);
    let log = '';
    const proc = spawn(process.execPath, [BIN, 'run', '--config', config], {
      env: { ...process.env, VFIO_REVIEW_IMAP_PASS: 'botpass' }, stdio: ['ignore', 'ignore', 'pipe'],
    });
    daemon = proc;
    proc.stderr!.on('data', (b: Buffer) => (log += b.toString()));
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    for (let t = Date.now(); !log.includes('"msg":"daemon ready"'); await sleep(20)) {
      if (proc.exitCode !== null) throw new Error(`the daemon exited:\n${log.slice(-3000)}`);
      if (Date.now() - t > 180_000) throw new Error(`the daemon did not start:\n${log.slice(-3000)}`);
    }
    // Let the workers warm up (the C parser, the models of the files most series reach), as in a daemon that has been up a while.
    const workers = Number(/"workers":(\d+)/.exec(log)?.[1] ?? 1);
    for (let t = Date.now(); (log.match(/"msg":"check worker warm/g) ?? []).length < workers && Date.now() - t < 180_000; ) await sleep(50);
    const db = new Database(dbPath, { readonly: true, fileMustExist: true });
    const first: number[] = [];
    const all: number[] = [];
    const mailed: Buffer[][] = [];
    try {
      for (let i = 0; i < SERIES; i++) {
        const s = seriesMails(o.tree, i);
        mailed.push(s.raws);
        await dovecot.appendMany('bot', 'lists', s.raws.slice(0, PATCHES));
        await sleep(1500); // the first four are in before the last one is sent
        const mine = (): number => smtp.received.filter((m) => s.ids.some((id) => m.raw.includes(`In-Reply-To: <${id}>`))).length;
        const t0 = performance.now();
        await dovecot.append('bot', 'lists', s.raws[PATCHES]!);
        let tFirst = NaN;
        for (;;) {
          const n = mine();
          if (n > 0 && Number.isNaN(tFirst)) tFirst = performance.now() - t0;
          const decided = db
            .prepare(`SELECT count(*) FROM outbox WHERE target_msgid IN (${s.ids.map(() => '?').join(',')})`)
            .pluck()
            .get(...s.ids) as number;
          if (n > 0 && n >= decided) break;
          if (performance.now() - t0 > 300_000) throw new Error(`series ${i}: no reply within 300 s:\n${log.slice(-3000)}`);
          if (proc.exitCode !== null) throw new Error(`the daemon exited:\n${log.slice(-3000)}`);
          await sleep(5);
        }
        first.push(tFirst / 1000);
        all.push((performance.now() - t0) / 1000);
        o.log(`series ${i + 1}/${SERIES}: first reply ${first.at(-1)!.toFixed(2)} s, all ${all.at(-1)!.toFixed(2)} s`);
      }
    } finally {
      db.close();
    }
    proc.kill('SIGTERM');
    await exited;
    const checkMs = [...log.matchAll(/"ms":(\d+),"msg":"series checked"/g)].map((m) => Number(m[1]) / 1000);
    const loadAfter = loadavg()[0]!;
    // Series are mailed one at a time, so the i-th check is the i-th series'.
    const own = checkMs.length === SERIES ? first.map((f, i) => f - checkMs[i]!) : [];

    const sample = Number(process.env.VFIO_REVIEW_BENCH_PEER_SAMPLE ?? 3);
    const peer: number[] = [];
    let peerOk = 0;
    for (let i = 0; i < Math.min(sample, SERIES); i++) {
      const k = Math.floor((i * SERIES) / Math.max(1, sample));
      o.log(`peer: worktree + git am + checkpatch.pl, series ${k + 1} (${i + 1}/${sample})`);
      const r = await plainWay(o.tree, dir, k, mailed[k]!);
      peer.push(r.ms / 1000);
      if (r.ok) peerOk++;
    }
    const row = (what: string, xs: number[]) => [what, xs.length, median(xs), Math.max(...xs)];
    const lines = [
      `bench e2e: IMAP APPEND of the last patch of a ${PATCHES}-patch series -> reply accepted by SMTP; ${SERIES} series in turn on ${o.tree}`,
      table(['measure', 'series', 'median s', 'worst s'], [
        row('vfio-review run: first reply accepted', first),
        row('vfio-review run: every reply of the series accepted', all),
        row('  of which the check on a worker (apply, rules, checkpatch.pl)', checkMs),
        ...(own.length ? [row('  the rest: IDLE, fetch, ingest, series rebuild, queue, report, SMTP', own)] : []),
        ...(peer.length ? [row(`peer: worktree add + git am + checkpatch.pl + worktree remove (sample; no mail in/out)`, peer)] : []),
      ]),
      `target: median under 5 s -> ${median(first) < 5 ? 'met' : 'NOT met'} (${median(first).toFixed(2)} s)`,
      `machine: ${availableParallelism()} cores, 1-minute load average ${loadBefore.toFixed(1)} at the start and ${loadAfter.toFixed(1)} after the daemon part (other work on the machine slows every figure)`,
      peer.length ? `peer: git am applied ${peerOk}/${peer.length} sampled series` : 'peer: n/a (VFIO_REVIEW_BENCH_PEER_SAMPLE=0)',
    ];
    return lines.join('\n');
  } finally {
    if (daemon && daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL');
    await smtp.close();
    await dovecot.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
