/**
 * Maintainer commands from GitHub (src/report/github-commands.ts) against the GitHub double: real
 * HTTP, octokit for the bot and for the maintainers, every request checked against GitHub's OpenAPI
 * description. Crashes are simulated in process at each named point, and once for real (SIGKILL of
 * the `report --poll-github` CLI between posting the acknowledgement and recording it).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Octokit } from 'octokit';
import { openDb, type Db } from '../../src/store/db.js';
import { loadConfig } from '../../src/config/load.js';
import { loadReportPolicy, type ReportPolicy } from '../../src/report/policy.js';
import { runReport } from '../../src/report/report.js';
import { lineageConcerns } from '../../src/report/concerns.js';
import { GithubSink, type GithubSinkConfig } from '../../src/report/sinks/github.js';
import { pollGithubCommands, type GithubCommandPoint, type RerunRequest } from '../../src/report/github-commands.js';
import { startGithubDouble, type GithubDouble } from '../helpers/github-http.js';
import { coreDiff, finding, insertCheck, otherDiff, seed, type SeededSeries } from './world.js';

const REPO = 'vfio-review/reviews';
const BOT = 'vfio-review-bot';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url));
const silent = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

let gh: GithubDouble;
let db: Db;
let policy: ReportPolicy;
let dir: string;

const config = (): GithubSinkConfig => ({
  repo: REPO, token: 'test-token', baseUrl: gh.url, allowedUsers: ['alex-williamson'],
  timeUnitMs: 5, minWriteIntervalMs: 0, minNotifyIntervalMs: 0, log: silent,
});
/** A maintainer's own client: their comments and labels go through the validated API too. */
const as = (token: string) => new Octokit({ auth: token, baseUrl: gh.url, log: silent, retry: { enabled: false }, throttle: { enabled: false } });
const [owner, repo] = REPO.split('/') as [string, string];
const comment = async (token: string, issue: number, body: string) =>
  (await as(token).rest.issues.createComment({ owner, repo, issue_number: issue, body })).data.id;
const acks = (issue: number) => gh.comments(issue).filter((c) => c.user === BOT && c.body.includes('<!-- vfio-review:ack:'));

/** A v1 (and optionally v2) of a series, v1 checked with one finding and reported to GitHub: the tracking issue. */
async function world(versions = 1): Promise<{ s: SeededSeries[]; issue: number; concern: string; sink: GithubSink }> {
  const s = await seed(db, [
    { version: 1, cover: true, diffs: [coreDiff(), otherDiff()] },
    ...(versions > 1 ? [{ version: 2, cover: true, diffs: [coreDiff(), otherDiff()] }] : []),
  ]);
  insertCheck(db, s[0]!.id, { findings: [finding({ patch: s[0]!.patches[0]! })] });
  const sink = new GithubSink(config(), db);
  const r = await runReport(db, { seriesIds: [s[0]!.id], sink, policy });
  expect(r.delivery).toMatchObject({ sent: 2, failed: 0 });
  const issue = gh.issues()[0]!.number;
  const concern = lineageConcerns(db, db.prepare('SELECT lineage_id FROM series WHERE id = ?').pluck().get(s[0]!.id) as number)[0]!.id;
  expect(gh.issue(issue)!.body).toContain(concern);
  // The first poll only places the cursor: nothing written before it is a command.
  expect(await pollGithubCommands(db, { config: config(), sink })).toMatchObject({ started: true, applied: [] });
  return { s, issue, concern, sink };
}

beforeEach(async () => {
  gh = await startGithubDouble({ repos: [REPO], tokens: { 'test-token': BOT, 'alex-token': 'alex-williamson', 'mallory-token': 'mallory' } });
  db = openDb(':memory:');
  dir = mkdtempSync(join(tmpdir(), 'vr-ghcmd-'));
  policy = loadReportPolicy({
    ownDomain: 'bot.example.org', from: 'vfio-review <bot@bot.example.org>',
    lists: [{ id: 'kvm.vger.kernel.org', address: 'kvm@vger.kernel.org', sinks: { github: {} } }],
    retry: { maxAttempts: 3, baseDelayMs: 0, maxDelayMs: 0 },
  });
});

afterEach(async () => {
  expect(gh.failures.map((c) => `${c.method} ${c.path}: ${c.problems.join('; ')}`)).toEqual([]);
  expect(gh.responseFailures).toEqual([]);
  expect(gh.unimplemented.map((c) => c.operationId)).toEqual([]);
  db.close();
  await gh.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('/rerun', () => {
  it('from an allowed user: the callback runs once and one acknowledgement is posted, across two polls', async () => {
    const { s, issue, sink } = await world(2);
    const asked: RerunRequest[] = [];
    const rerun = (r: RerunRequest) => void asked.push(r);
    const id = await comment('alex-token', issue, 'The lock order changed in v2, please\n/rerun\n');

    const first = await pollGithubCommands(db, { config: config(), sink, rerun });
    expect(asked).toEqual([{ key: `github:${REPO}:comment:${id}`, seriesId: s[1]!.id, version: 2, lineageId: expect.any(Number), by: 'alex-williamson', via: 'github', url: expect.stringContaining(`#issuecomment-${id}`) }]);
    expect(first).toMatchObject({ started: false, acked: 1, applied: [{ source: 'comment', sourceId: id, issueNumber: issue, author: 'alex-williamson', state: 'acked', rerun: { seriesId: s[1]!.id, version: 2 }, errors: [] }] });
    expect(acks(issue)).toHaveLength(1);
    expect(acks(issue)[0]!.body).toContain('v2 is being reviewed again');

    // The bot's acknowledgement is a comment too: the next poll skips it and does nothing again.
    const second = await pollGithubCommands(db, { config: config(), sink, rerun });
    expect(second).toMatchObject({ comments: 1, applied: [], acked: 0 });
    expect(asked).toHaveLength(1);
    expect(acks(issue)).toHaveLength(1);
    expect(gh.callsTo('issues/create-comment').filter((c) => c.login === BOT)).toHaveLength(3); // two replies + one ack
  });

  it.each(['github-recorded', 'github-applied', 'github-ack-posted'] as GithubCommandPoint[])(
    'a crash at %s: after the restart, one rerun and one acknowledgement',
    async (at) => {
      const { issue, sink } = await world();
      let reruns = 0;
      const rerun = () => void reruns++;
      await comment('alex-token', issue, '/rerun');
      const crash = (p: GithubCommandPoint) => {
        if (p === at) throw new Error(`simulated crash at ${p}`);
      };
      await expect(pollGithubCommands(db, { config: config(), sink, rerun, onPoint: crash })).rejects.toThrow(/simulated crash/);
      const row = db.prepare('SELECT state, ack_attempts FROM github_commands').get();
      expect(row).toEqual({
        'github-recorded': { state: 'recorded', ack_attempts: 0 },
        'github-applied': { state: 'applied', ack_attempts: 0 },
        'github-ack-posted': { state: 'applied', ack_attempts: 1 },
      }[at]);
      expect(acks(issue)).toHaveLength(at === 'github-ack-posted' ? 1 : 0);

      // A new process: a new sink, the same store.
      const restarted = await pollGithubCommands(db, { config: config(), sink: new GithubSink(config(), db), rerun });
      expect(restarted).toMatchObject(at === 'github-ack-posted' ? { acked: 0, alreadyAcked: 1 } : { acked: 1, alreadyAcked: 0 });
      expect(restarted.applied.map((a) => a.state)).toEqual(['acked']);
      expect(reruns).toBe(1);
      expect(acks(issue)).toHaveLength(1);
      expect(db.prepare('SELECT state FROM github_commands').pluck().all()).toEqual(['acked']);
      expect((await pollGithubCommands(db, { config: config(), sink, rerun })).applied).toEqual([]);
      expect(acks(issue)).toHaveLength(1);
    },
  );

  it('without a rerun callback the command is answered as not done', async () => {
    const { issue, sink } = await world();
    await comment('alex-token', issue, '/rerun');
    const r = await pollGithubCommands(db, { config: config(), sink });
    expect(r.applied[0]).toMatchObject({ rerun: null, errors: [expect.stringMatching(/not available/)] });
    expect(acks(issue)[0]!.body).toContain('not done');
  });
});

describe('who may command', () => {
  it('ignores users who are not allowed, the bot itself, and issues that are not tracking issues', async () => {
    const { issue, concern, sink } = await world();
    let reruns = 0;
    await comment('mallory-token', issue, `/rerun\n/dismiss ${concern} it is fine, trust me`);
    await comment('mallory-token', issue, 'just a remark');
    const other = (await as('alex-token').rest.issues.create({ owner, repo, title: 'unrelated' })).data.number;
    await comment('alex-token', other, '/rerun');
    await comment('test-token', issue, '/rerun'); // the bot's own login

    const r = await pollGithubCommands(db, { config: config(), sink, rerun: () => void reruns++ });
    expect(r.applied).toEqual([]);
    expect(r.ignored.map((i) => [i.author, i.why])).toEqual([['mallory', 'not an allowed user'], ['alex-williamson', 'not a tracking issue']]);
    expect(reruns).toBe(0);
    expect(acks(issue)).toHaveLength(0);
    expect(db.prepare('SELECT count(*) FROM github_commands').pluck().get()).toBe(0);
    expect(db.prepare('SELECT state FROM concerns').pluck().get()).toBe('new');
  });
});

describe('/dismiss', () => {
  it('dismisses the concern for the lineage; the next reply no longer raises it', async () => {
    const { s, issue, concern, sink } = await world(2);
    await comment('alex-token', issue, `Thanks.\n/dismiss ${concern.toUpperCase()} igate is dropped before memory_lock is taken\n`);
    const r = await pollGithubCommands(db, { config: config(), sink });
    expect(r.applied[0]).toMatchObject({ dismissed: [{ concern, changed: true }], errors: [], state: 'acked' });
    const c = lineageConcerns(db, r.applied[0]!.lineageId!)[0]!;
    expect(c).toMatchObject({ id: concern, state: 'dismissed', dismissedBy: 'alex-williamson', dismissedWhy: 'igate is dropped before memory_lock is taken' });
    expect(db.prepare('SELECT dismissed_via FROM concerns').pluck().get()).toBe('github');
    expect(acks(issue)[0]!.body).toMatch(new RegExp(`/dismiss ${concern}\`: dismissed for the whole series lineage`));

    // v2 has the same finding and a new one: its replies raise only the new one, and the tracking
    // issue lists only the new one as open.
    const other = finding({ patch: s[1]!.patches[1]!, rule: 'refcount', category: 'refcount', file: 'drivers/vfio/vfio_main.c', line: 11, function: 'vfio_thing', message: 'the reference is not put on the error path' });
    insertCheck(db, s[1]!.id, { findings: [finding({ patch: s[1]!.patches[0]! }), other] });
    expect((await runReport(db, { seriesIds: [s[1]!.id], sink, policy })).delivery).toMatchObject({ sent: 2, failed: 0 });
    const open = lineageConcerns(db, r.applied[0]!.lineageId!).filter((x) => x.state !== 'dismissed');
    expect(open.map((x) => x.rule)).toEqual(['refcount']);
    const body = gh.issue(issue)!.body!;
    expect(body).toContain('Latest version: **v2**');
    expect(body).toContain('Open concerns (1)');
    expect(body).toContain(open[0]!.id);
    expect(body).not.toContain(concern);
    const v2 = gh.comments(issue).filter((x) => x.user === BOT && x.body.includes('· v2 ·'));
    expect(v2).toHaveLength(2);
    for (const x of v2) expect(x.body).not.toContain(concern);

    // Dismissing it again changes nothing and says so.
    await comment('alex-token', issue, `/dismiss ${concern} again`);
    const again = await pollGithubCommands(db, { config: config(), sink });
    expect(again.applied[0]).toMatchObject({ dismissed: [{ concern, changed: false }] });
    expect(acks(issue).at(-1)!.body).toContain('already dismissed');
  });

  it('records malformed commands and unknown concerns with the reason, and answers them', async () => {
    const { issue, concern, sink } = await world();
    const id = await comment('alex-token', issue, `/dismiss nope\n/dismiss ${concern}\n/dismiss 0123456789ab not ours`);
    const r = await pollGithubCommands(db, { config: config(), sink });
    expect(r.applied).toHaveLength(1);
    expect(r.applied[0]!.errors).toEqual([
      expect.stringMatching(/^malformed command .*: \/dismiss nope$/),
      expect.stringMatching(/^malformed command .*: \/dismiss [0-9a-f]{12}$/),
      '/dismiss 0123456789ab: no such concern',
    ]);
    const row = db.prepare('SELECT source_id, state, errors_json, outcome_json FROM github_commands').get() as Record<string, unknown>;
    expect(row).toMatchObject({ source_id: id, state: 'acked' });
    expect(JSON.parse(row.errors_json as string)).toHaveLength(2);
    expect(JSON.parse(row.outcome_json as string).errors).toHaveLength(3);
    const ack = acks(issue)[0]!.body;
    expect(ack.match(/^- not done: /gm)).toHaveLength(3);
    expect(ack).toContain('Edited comments are not read again');
    expect(lineageConcerns(db, r.applied[0]!.lineageId!)[0]!.state).toBe('new');
  });
});

describe('dismissal label', () => {
  it('an allowed user adding it dismisses the open concerns once; others adding it are ignored', async () => {
    const { issue, concern, sink } = await world();
    await as('mallory-token').rest.issues.addLabels({ owner, repo, issue_number: issue, labels: ['false-positive'] });
    await as('mallory-token').rest.issues.removeLabel({ owner, repo, issue_number: issue, name: 'false-positive' });
    const ignored = await pollGithubCommands(db, { config: config(), sink });
    expect(ignored.ignored.map((i) => [i.source, i.author, i.why])).toEqual([['label', 'mallory', 'not an allowed user']]);

    await as('alex-token').rest.issues.addLabels({ owner, repo, issue_number: issue, labels: ['needs-thought', 'False-Positive'] });
    const r = await pollGithubCommands(db, { config: config(), sink });
    expect(r.applied).toHaveLength(1);
    expect(r.applied[0]).toMatchObject({ source: 'label', author: 'alex-williamson', dismissed: [{ concern, changed: true }], state: 'acked' });
    expect(lineageConcerns(db, r.applied[0]!.lineageId!)[0]).toMatchObject({ state: 'dismissed', dismissedWhy: 'label "false-positive" added to the tracking issue' });
    expect(acks(issue)).toHaveLength(1);
    expect((await pollGithubCommands(db, { config: config(), sink })).applied).toEqual([]);
    expect(acks(issue)).toHaveLength(1);
  });
});

describe('report --poll-github (the CLI, in a child process)', () => {
  function runChild(args: string[], env: Record<string, string>, pauseAt?: string): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], {
        cwd: ROOT,
        env: { ...process.env, ...env, ...(pauseAt ? { VFIO_REVIEW_PAUSE_AT: pauseAt } : {}) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`child timed out; stderr:\n${stderr}`));
      }, 60_000);
      child.stdout.on('data', (b: Buffer) => void (stdout += b.toString()));
      child.stderr.on('data', (b: Buffer) => {
        stderr += b.toString();
        if (pauseAt && stderr.includes(`vfio-review: paused at ${pauseAt}`)) child.kill('SIGKILL');
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout, stderr });
      });
    });
  }

  it('SIGKILL after the acknowledgement was posted: the restart finds it and posts nothing more', async () => {
    const dbPath = join(dir, 'store.db');
    db.close();
    db = openDb(dbPath);
    const { issue, concern } = await world();
    db.close();
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ github: { repo: REPO, baseUrl: gh.url, allowedUsers: ['alex-williamson'], botLogin: BOT } }));
    const env = { VFIO_REVIEW_GITHUB_TOKEN: 'test-token' };
    const args = ['--poll-github', '--config', file, '--db', dbPath, '--json'];
    await comment('alex-token', issue, `/dismiss ${concern} intended`);

    const killed = await runChild(args, env, 'github-ack-posted');
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    expect(acks(issue)).toHaveLength(1);
    const restarted = await runChild(args, env);
    expect(restarted.code, restarted.stderr).toBe(0);
    expect(JSON.parse(restarted.stdout)).toMatchObject({ alreadyAcked: 1, acked: 0, applied: [{ dismissed: [{ concern, changed: true }], state: 'acked' }] });
    expect(acks(issue)).toHaveLength(1);
    db = openDb(dbPath);
    expect(db.prepare('SELECT state FROM concerns').pluck().get()).toBe('dismissed');
  });
});

describe('configuration: report and github sections', () => {
  const write = (o: unknown) => {
    const f = join(dir, 'c.json');
    writeFileSync(f, JSON.stringify(o));
    return f;
  };

  it('carries both sections, layered defaults -> file -> environment -> flags', () => {
    const file = write({
      report: { from: 'vfio-review <bot@bot.example.org>', dashboardUrl: 'https://review.example.org/', commandsFrom: ['alex@example.org'],
        email: { host: 'smtp.example.org', user: 'bot' }, lists: [{ id: 'kvm.vger.kernel.org', sinks: { github: {} } }] },
      github: { repo: 'kvm/reviews', allowedUsers: ['alex-williamson'], dismissLabels: ['not-a-bug'] },
    });
    const env = { VFIO_REVIEW_GITHUB_TOKEN: 'ghp_x', VFIO_REVIEW_SMTP_PASS: 'smtp-secret', VFIO_REVIEW_GITHUB_URL: 'https://ghe.example.org/api/v3' };
    const c = loadConfig({ file, env });
    expect(Object.isFrozen(c)).toBe(true);
    expect(c.report).toMatchObject({ ownDomain: 'bot.example.org', dashboardUrl: 'https://review.example.org', defaultSink: 'drafts', commandsFrom: ['alex@example.org'] });
    expect(c.report.email?.auth).toEqual({ user: 'bot', pass: 'smtp-secret' });
    expect(c.github).toMatchObject({ repo: 'kvm/reviews', token: 'ghp_x', baseUrl: 'https://ghe.example.org/api/v3', allowedUsers: ['alex-williamson'],
      dismissLabels: ['not-a-bug'], pollIntervalMs: 60_000, dashboardUrl: 'https://review.example.org' });
    const flagged = loadConfig({ file, env: { ...env, VFIO_REVIEW_GITHUB_REPO: 'env/repo' }, flags: { report: { defaultSink: 'github' }, github: { repo: 'flag/repo' } } });
    expect(flagged.report.defaultSink).toBe('github');
    expect(flagged.github?.repo).toBe('flag/repo');
    expect(loadConfig({ file, env: { ...env, VFIO_REVIEW_GITHUB_REPO: 'env/repo' } }).github?.repo).toBe('env/repo');
    // Nothing configured: everything muted, no GitHub.
    const none = loadConfig({ env: {} });
    expect(none.github).toBeNull();
    expect(none.report).toMatchObject({ lists: [], email: null, defaultSink: 'drafts' });
    expect(loadConfig({ file: write({ github: { repo: 'a/b' } }), env: { VFIO_REVIEW_GITHUB_TOKEN: 't' } }).github?.dismissLabels).toEqual(['false-positive', 'vfio-review:dismissed']);
  });

  it('takes secrets only from the environment and validates once', () => {
    expect(() => loadConfig({ file: write({ github: { repo: 'a/b', token: 'ghp_in_file' } }), env: { VFIO_REVIEW_GITHUB_TOKEN: 't' } })).toThrow(/github\.token .*VFIO_REVIEW_GITHUB_TOKEN/);
    expect(() => loadConfig({ file: write({ report: { email: { host: 'h', user: 'u', pass: 'p' } } }), env: { VFIO_REVIEW_SMTP_PASS: 'p' } })).toThrow(/report\.email\.pass/);
    expect(() => loadConfig({ file: write({ github: { repo: 'a/b' } }), env: {} })).toThrow(/VFIO_REVIEW_GITHUB_TOKEN/);
    expect(() => loadConfig({ file: write({ report: { email: { host: 'h', user: 'u' } } }), env: {} })).toThrow(/VFIO_REVIEW_SMTP_PASS/);
    expect(() => loadConfig({ file: write({ github: { repo: 'a/b', dismissLabels: 'x' } }), env: { VFIO_REVIEW_GITHUB_TOKEN: 't' } })).toThrow(/dismissLabels/);
    expect(() => loadConfig({ file: write({ github: { repo: 'a/b', pollIntervalMs: 5 } }), env: { VFIO_REVIEW_GITHUB_TOKEN: 't' } })).toThrow(/pollIntervalMs/);
    expect(() => loadConfig({ env: {}, flags: { report: { defaultSink: 'fax' } } })).toThrow(/unknown sink 'fax'/);
    expect(() => loadConfig({ file: write({ report: 'yes' }), env: {} })).toThrow(/report must be an object/);
  });
});
