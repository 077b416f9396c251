/**
 * SIGKILL the daemon at random points while 20 series arrive (at least 20 kills, a restart after
 * each), then let it finish: every series is reviewed, checked once, and every reply exists exactly
 * once at the SMTP server and in the outbox.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { openDb } from '../../src/store/db.js';
import { JobStore } from '../../src/daemon/jobs.js';
import { outboxRows } from '../../src/report/outbox.js';
import type { Dovecot } from '../helpers/imap-server.js';
import type { TestSmtp } from '../helpers/smtp-server.js';
import type { TestRepo } from '../helpers/git-repo.js';
import { messageIdOf, seriesMail, seriesPatches, spawnDaemon, until, writeConfig, startMailWorld, stopMailWorld } from './world.js';

const SERIES = 20;
const KILLS = 22;
/** Log messages of the pipeline's steps, in order; a kill lands shortly after one of them. */
const STEPS = ['daemon ready', 'mailboxes synced', 'review queued', 'job claimed', 'series checked', 'series reported', 'job done'];

let dovecot: Dovecot;
let smtp: TestSmtp;
let repo: TestRepo;
let dir: string;

beforeAll(async () => {
  ({ dovecot, smtp, repo, dir } = await startMailWorld('vr-daemon-crash-'));
});
afterAll(async () => {
  await stopMailWorld({ dovecot, smtp, repo, dir });
});

/** A small deterministic generator, so a failing run can be repeated with its seed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

describe('crash safety of the daemon', () => {
  it(`${KILLS} SIGKILLs at random points during ${SERIES} series: each reviewed once, each reply sent exactly once`, async () => {
    const seed = Number(process.env.VR_CRASH_SEED ?? Date.now() % 1_000_000);
    const random = rng(seed);
    const db = join(dir, 'crash.db');
    await dovecot.appendMany('bot', 'crash', []);
    const config = writeConfig(dir, {
      dovecot, smtp, tree: repo.dir, db,
      daemon: {
        sources: [{ name: 'lists', host: '127.0.0.1', port: dovecot.port, secure: false, user: 'bot', mailboxes: ['crash'], pollIntervalMs: 2000 }],
        // Only complete series: a series split across kills must not be reviewed half-way.
        waitSeconds: 3600,
        maxAttempts: 1000,
      },
    });
    const mails = [];
    for (let i = 0; i < SERIES; i++) {
      const spec = { tag: `crash${i}`, slot: i, bug: true };
      mails.push(seriesMail(spec, await seriesPatches(repo, spec)));
    }
    // 80 messages in chunks of 5: series straddle the kills.
    const stream = mails.flatMap((m) => m.raws);
    const perRound = Math.ceil(stream.length / (KILLS - 4));
    const kills: { at: string; delayMs: number }[] = [];
    for (let k = 0; k < KILLS; k++) {
      const chunk = stream.splice(0, perRound);
      if (chunk.length) await dovecot.appendMany('bot', 'crash', chunk);
      // Every fourth round stops the reporter right before or right after the SMTP server's answer
      // (the in-doubt windows); the others kill a random time after a random step of the pipeline.
      const pause = k % 4 === 1 ? 'after-deliver' : k % 4 === 3 ? 'before-deliver' : null;
      const d = spawnDaemon(config, pause ? { VFIO_REVIEW_PAUSE_AT: pause } : {});
      await d.waitFor('daemon ready', 120_000);
      let at: string;
      if (pause) {
        at = await d.waitText(`paused at ${pause}`, 12_000).then(() => pause, () => 'no delivery due');
      } else {
        const step = STEPS[Math.floor(random() * STEPS.length)]!;
        at = await d.waitFor(step, 12_000).then(() => step, () => `${step} (not reached)`);
      }
      const delayMs = pause ? 0 : Math.floor(random() * 400);
      await new Promise((r) => setTimeout(r, delayMs));
      d.proc.kill('SIGKILL');
      const exit = await d.exited;
      expect(exit.signal, d.log().slice(-2000)).toBe('SIGKILL');
      kills.push({ at, delayMs });
    }
    // The kills fell while work was being done, not only at start-up.
    expect(smtp.received.length).toBeGreaterThan(0);
    expect(stream).toHaveLength(0);

    const final = spawnDaemon(config);
    const c = openDb(db);
    try {
      // The last killed run may already have finished everything: wait until this one is up (its SIGTERM
      // handler installed), so the stop below is a clean one and not death by signal during start-up.
      await final.waitFor('daemon ready', 120_000);
      await until(() => {
        const q = new JobStore(c).counts();
        const rows = outboxRows(c);
        return q.done === SERIES && q.queued === 0 && q.running === 0 && rows.length === 2 * SERIES && rows.every((r) => r.state === 'sent');
      }, 300_000, `all ${SERIES} series reviewed and delivered (seed ${seed}; kills ${JSON.stringify(kills)})`);
      final.proc.kill('SIGTERM');
      expect((await final.exited).code).toBe(0);

      const jobs = new JobStore(c).list();
      expect(jobs.map((j) => [j.kind, j.state, j.outcome])).toEqual(new Array(SERIES).fill(['review', 'done', 'reported']));
      // Checked once each: a retaken job finds the check a killed attempt recorded.
      const checks = c.prepare('SELECT series_id, count(*) AS n FROM checks GROUP BY series_id').all() as { series_id: number; n: number }[];
      expect(checks).toHaveLength(SERIES);
      expect(checks.filter((x) => x.n !== 1), `seed ${seed}`).toEqual([]);
      // One outbox row per reply (the cover's summary and patch 1's finding), all sent ...
      const rows = outboxRows(c);
      expect(new Set(rows.map((r) => `${r.seriesId}:${r.kind}:${r.targetMsgid}`)).size).toBe(2 * SERIES);
      for (const m of mails) expect(rows.filter((r) => r.targetMsgid === m.cover || r.targetMsgid === m.ids[1]).map((r) => r.kind).sort()).toEqual(['review', 'review']);
      // ... and each exactly once at the SMTP server, with nothing else sent.
      const sent = smtp.received.map((r) => messageIdOf(r.raw));
      for (const r of rows) expect(sent.filter((id) => id === r.messageId), `${r.messageId} (seed ${seed})`).toHaveLength(1);
      expect(sent.length).toBe(rows.length);
      console.log(`crash test: seed ${seed}; kills landed at: ${kills.map((k) => `${k.at}+${k.delayMs}ms`).join(', ')}`);
    } finally {
      if (final.proc.exitCode === null && final.proc.signalCode === null) final.proc.kill('SIGKILL');
      c.close();
    }
  }, 20 * 60_000);
});
