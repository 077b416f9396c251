/**
 * The GitHub sink against the local GitHub double (test/helpers/github-http.ts): real HTTP, octokit
 * with its retry and throttling plugins, every request checked against GitHub's OpenAPI description.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDb, type Db } from '../../src/store/db.js';
import {
  GithubSink,
  deliveryMarker,
  escapeMarkdown,
  fenceCode,
  inlineCode,
  lineageMarker,
  parseCommand,
  parseGithubConfig,
  type GithubSinkConfig,
} from '../../src/report/sinks/github.js';
import type { ConcernRef, OutboxRow, ReplyMeta } from '../../src/report/types.js';
import { decide, deliverDue, outboxRows, type NewReply } from '../../src/report/outbox.js';
import { startGithubDouble, type GithubDouble } from '../helpers/github-http.js';

const REPO = 'vfio-review/reviews';
const UNIT = 5; // ms per GitHub "second" (retry-after, reset, backoff)
const silent = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

let gh: GithubDouble;
let db: Db;

function config(over: Partial<GithubSinkConfig> = {}): GithubSinkConfig {
  return {
    repo: REPO,
    token: 'test-token',
    baseUrl: gh.url,
    allowedUsers: ['alex-williamson', 'JGunthorpe'],
    timeUnitMs: UNIT,
    minWriteIntervalMs: 0,
    minNotifyIntervalMs: 0,
    log: silent,
    ...over,
  };
}

const concern = (id: string, message: string, over: Partial<ConcernRef> = {}): ConcernRef => ({
  id,
  state: 'new',
  rule: 'lock-order',
  category: 'locking',
  file: 'drivers/vfio/pci/vfio_pci_core.c',
  function: 'vfio_pci_core_ioctl',
  message,
  ...over,
});

function reply(over: Partial<Omit<OutboxRow, 'meta'>> & { meta?: Partial<ReplyMeta> } = {}): OutboxRow {
  const version = over.version ?? 1;
  const { meta, ...rest } = over;
  return {
    id: 1,
    key: `key-v${version}-review`,
    seriesId: 100 + version,
    lineageId: 7,
    checkId: version,
    version,
    sink: 'github',
    kind: 'review',
    targetMsgid: `cover.v${version}@example.org`,
    listId: 'kvm.vger.kernel.org',
    messageId: `<vfio-review.key-v${version}@bot.example.org>`,
    subject: `Re: [PATCH v${version} 0/3] vfio/pci: fix the memory lock order`,
    from: 'vfio-review <bot@example.org>',
    to: ['author@example.org'],
    cc: [],
    inReplyTo: `<cover.v${version}@example.org>`,
    references: [`<cover.v${version}@example.org>`],
    headers: {},
    body: `Hi,\n\nvfio-review applied v${version} to vfio/next and found:\n\n> +\tdown_write(&vdev->memory_lock);\n\nThis takes memory_lock under mmap_lock.\n`,
    findingsDigest: 'abc',
    revision: 1,
    state: 'sending',
    attempts: 1,
    nextAt: '2026-01-01T00:00:00Z',
    lastError: null,
    remoteId: null,
    decidedAt: '2026-01-01T00:00:00Z',
    sentAt: null,
    ...rest,
    meta: {
      lineageId: rest.lineageId === undefined ? 7 : rest.lineageId,
      lineageTitle: 'vfio/pci: fix the memory lock order',
      seriesTitle: 'vfio/pci: fix the memory lock order',
      applyStatus: 'applied',
      summary: true,
      openConcerns: [concern('0123456789ab', 'memory_lock taken under mmap_lock')],
      raised: ['0123456789ab'],
      resolved: [],
      ...meta,
    },
  };
}

beforeEach(async () => {
  gh = await startGithubDouble({
    repos: [REPO],
    tokens: { 'test-token': 'vfio-review-bot', 'alex-token': 'alex-williamson', 'mallory-token': 'mallory' },
  });
  db = openDb(':memory:');
  db.prepare('INSERT INTO lineages (id, key, title) VALUES (?, ?, ?)').run(7, 'lineage-7', 'vfio/pci: fix the memory lock order');
  db.prepare('INSERT INTO lineages (id, key, title) VALUES (?, ?, ?)').run(8, 'lineage-8', 'iommu: another series');
});

afterEach(async () => {
  // Every request of every test was valid against GitHub's OpenAPI description, and the double
  // answered in GitHub's shapes.
  expect(gh.failures.map((c) => `${c.method} ${c.path}: ${c.problems.join('; ')}`)).toEqual([]);
  expect(gh.responseFailures).toEqual([]);
  expect(gh.unimplemented.map((c) => c.operationId)).toEqual([]);
  db.close();
  await gh.close();
});

/** A comment by someone else, through the API (so it is validated too). */
async function commentAs(token: string, issue: number, body: string): Promise<number> {
  const res = await fetch(`${gh.url}/repos/${REPO}/issues/${issue}/comments`, {
    method: 'POST',
    headers: { authorization: `token ${token}`, 'content-type': 'application/json', accept: 'application/vnd.github+json' },
    body: JSON.stringify({ body }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: number }).id;
}

const labelsOf = (n: number) => [...(gh.issue(n)?.labels ?? [])].sort();

describe('the double itself', () => {
  it('refuses what GitHub refuses: no token, unknown path, invalid body', async () => {
    const noAuth = await fetch(`${gh.url}/repos/${REPO}/issues/1`);
    expect(noAuth.status).toBe(401);
    const unknown = await fetch(`${gh.url}/repos/${REPO}/no-such-thing`, { headers: { authorization: 'token test-token' } });
    expect(unknown.status).toBe(404);
    const bad = await fetch(`${gh.url}/repos/${REPO}/issues`, {
      method: 'POST',
      headers: { authorization: 'token test-token', 'content-type': 'application/json' },
      body: JSON.stringify({ body: 'no title', state: 'bogus' }),
    });
    expect(bad.status).toBe(422);
    expect(JSON.stringify(await bad.json())).toContain("must have required property 'title'");
    expect(gh.failures).toHaveLength(2); // the unknown path and the invalid body
    expect(noAuth.headers.get('x-github-request-id')).toBeTruthy();
    for (const h of ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'x-ratelimit-used', 'x-ratelimit-resource']) {
      expect(bad.headers.get(h), h).toBeTruthy();
    }
    gh.failures.splice(0); // expected here; every other test asserts none
  });
});

describe('GithubSink delivery', () => {
  it('first delivery creates the tracking issue with labels and one comment carrying the marker', async () => {
    const sink = new GithubSink(config(), db);
    const row = reply();
    expect(await sink.alreadyDelivered(row)).toBe(false);
    const res = await sink.deliver(row);
    expect(res).toMatchObject({ ok: true });

    const issues = gh.issues();
    expect(issues).toHaveLength(1);
    const issue = issues[0]!;
    expect(issue.title).toBe('vfio/pci: fix the memory lock order [lineage 7]');
    expect(issue.body).toContain(lineageMarker(7));
    expect(issue.body).toContain('0123456789ab');
    expect(issue.body).toContain('memory\\_lock taken under mmap\\_lock');
    expect(labelsOf(issue.number)).toEqual(['concerns-open', 'v1', 'vfio-review']);
    expect(gh.labels().find((l) => l.name === 'concerns-open')?.color).toBe('fbca04');

    const comments = gh.comments(issue.number);
    expect(comments).toHaveLength(1);
    expect(comments[0]!.user).toBe('vfio-review-bot');
    expect(comments[0]!.body).toContain(deliveryMarker(row.key));
    expect(comments[0]!.body).toContain('down_write(&vdev->memory_lock);'); // fenced, verbatim
    if (res.ok) expect(res.remoteId).toBe(`https://github.com/${REPO}/issues/${issue.number}#issuecomment-${comments[0]!.id}`);
    expect(await sink.alreadyDelivered(row)).toBe(true);

    expect(db.prepare('SELECT issue_number FROM github_issues WHERE lineage_id = 7').pluck().get()).toBe(issue.number);
    expect(gh.callsTo('issues/create')).toHaveLength(1);
    expect(gh.callsTo('issues/create-comment')).toHaveLength(1);
    // octokit's headers: a token, the v3 media type
    expect(gh.calls.every((c) => c.headers.authorization === 'token test-token')).toBe(true);
  });

  it('a second version adds a comment and edits the issue body and labels in place', async () => {
    const sink = new GithubSink(config(), db);
    expect((await sink.deliver(reply())).ok).toBe(true);
    const v2 = reply({
      version: 2,
      kind: 'follow-up',
      meta: { openConcerns: [], raised: [], resolved: ['0123456789ab'] },
    });
    expect((await sink.deliver(v2)).ok).toBe(true);

    expect(gh.issues()).toHaveLength(1);
    const issue = gh.issues()[0]!;
    expect(gh.comments(issue.number)).toHaveLength(2);
    expect(gh.comments(issue.number)[1]!.body).toContain(deliveryMarker(v2.key));
    expect(issue.body).toContain('Open concerns (0)');
    expect(issue.body).not.toContain('0123456789ab');
    expect(labelsOf(issue.number)).toEqual(['clean', 'v2', 'vfio-review']);
    expect(gh.callsTo('issues/update')).toHaveLength(1);

    // A late delivery for v1 (say a retry) does not roll the body and labels back.
    const late = reply({ key: 'key-v1-apply-failed', kind: 'apply-failed', targetMsgid: 'patch1.v1@example.org', meta: { applyStatus: 'not-applied' } });
    expect((await sink.deliver(late)).ok).toBe(true);
    expect(labelsOf(issue.number)).toEqual(['clean', 'v2', 'vfio-review']);
    expect(gh.comments(issue.number)).toHaveLength(3);
  });

  it('apply-failed sets its label and keeps labels a maintainer added', async () => {
    const sink = new GithubSink(config(), db);
    expect((await sink.deliver(reply())).ok).toBe(true);
    const n = gh.issues()[0]!.number;
    await fetch(`${gh.url}/repos/${REPO}/issues/${n}/labels`, {
      method: 'POST',
      headers: { authorization: 'token alex-token', 'content-type': 'application/json' },
      body: JSON.stringify({ labels: ['needs-maintainer'] }),
    });
    const v2 = reply({ version: 2, kind: 'apply-failed', meta: { applyStatus: 'not-applied', openConcerns: [] } });
    expect((await sink.deliver(v2)).ok).toBe(true);
    expect(labelsOf(n)).toEqual(['apply-failed', 'needs-maintainer', 'v2', 'vfio-review']);
  });

  it('a rerun of the same version edits its comment instead of adding one', async () => {
    const sink = new GithubSink(config(), db);
    const first = reply();
    expect((await sink.deliver(first)).ok).toBe(true);
    const n = gh.issues()[0]!.number;
    const rerun = reply({
      key: 'key-v1-rerun-digest2',
      kind: 'rerun',
      body: 'Rerun on the same version: the lock order finding is gone.\n',
      meta: { openConcerns: [] },
    });
    expect(await sink.alreadyDelivered(rerun)).toBe(false);
    expect((await sink.deliver(rerun)).ok).toBe(true);

    const comments = gh.comments(n);
    expect(comments).toHaveLength(1);
    expect(comments[0]!.body).toContain('Rerun on the same version');
    expect(comments[0]!.body).toContain(deliveryMarker(first.key)); // the first delivery stays delivered
    expect(comments[0]!.body).toContain(deliveryMarker(rerun.key));
    expect(await sink.alreadyDelivered(first)).toBe(true);
    expect(await sink.alreadyDelivered(rerun)).toBe(true);
    expect(gh.callsTo('issues/update-comment')).toHaveLength(1);
    expect(labelsOf(n)).toEqual(['clean', 'v1', 'vfio-review']);

    // The outbox re-rendering the same row in place (revision 2) edits it again; revision 1 is not enough.
    const rev2 = { ...rerun, revision: 2, body: 'Revision 2 of the rerun reply.\n' };
    expect(await sink.alreadyDelivered(rev2)).toBe(false);
    expect((await sink.deliver(rev2)).ok).toBe(true);
    expect(gh.comments(n)).toHaveLength(1);
    expect(gh.comments(n)[0]!.body).toContain('Revision 2 of the rerun reply.');
    expect(await sink.alreadyDelivered(rev2)).toBe(true);
    // Delivering it again (a retry) changes nothing.
    const before = gh.callsTo('issues/update-comment').length;
    expect((await sink.deliver(rev2)).ok).toBe(true);
    expect(gh.callsTo('issues/update-comment')).toHaveLength(before);

    // Another kind of reply to the same message (the planner keeps one row per kind and target) is
    // its own comment: an apply failure stays the record of its check.
    const failed = reply({ key: 'key-v1-apply-failed', kind: 'apply-failed', meta: { applyStatus: 'not-applied', openConcerns: [] } });
    expect((await sink.deliver(failed)).ok).toBe(true);
    expect(gh.comments(n)).toHaveLength(2);
    expect(gh.comments(n)[0]!.body).toContain('Revision 2 of the rerun reply.');
  });

  it('after a crash between "comment created" and "marked sent", the retry finds the marker and does not post again', async () => {
    const row = reply();
    expect((await new GithubSink(config(), db).deliver(row)).ok).toBe(true);
    // The process died before the outbox marked the row sent and before the local cache was written.
    db.exec('DELETE FROM github_comments; DELETE FROM github_issues;');
    const restarted = new GithubSink(config(), db);
    expect(await restarted.alreadyDelivered(row)).toBe(true);
    // Even a resend without asking first is a no-op.
    expect((await restarted.deliver(row)).ok).toBe(true);
    expect(gh.issues()).toHaveLength(1);
    expect(gh.comments(gh.issues()[0]!.number)).toHaveLength(1);
    expect(gh.callsTo('issues/create-comment')).toHaveLength(1);
  });

  it('a creation whose answer was lost (502 after GitHub did it) is found by its marker, not repeated', async () => {
    gh.inject({ match: { operationId: 'issues/create' }, fault: { kind: 'status-after-processing', status: 502 } });
    gh.inject({ match: { operationId: 'issues/create-comment' }, fault: { kind: 'status-after-processing', status: 502 } });
    const sink = new GithubSink(config(), db);
    const res = await sink.deliver(reply());
    expect(res).toMatchObject({ ok: true });
    expect(gh.issues()).toHaveLength(1);
    expect(gh.comments(gh.issues()[0]!.number)).toHaveLength(1);
    expect(gh.callsTo('issues/create')).toHaveLength(1);
    expect(gh.callsTo('issues/create-comment')).toHaveLength(1);
  });

  it('a lost lineage -> issue mapping does not create a second issue', async () => {
    expect((await new GithubSink(config(), db).deliver(reply())).ok).toBe(true);
    db.exec('DELETE FROM github_issues; DELETE FROM github_comments;');
    // Another lineage's issue in the same repo, and a human's unlabelled issue quoting the marker.
    expect((await new GithubSink(config(), db).deliver(reply({ lineageId: 8, key: 'other', seriesId: 300, meta: { lineageTitle: 'iommu: another series' } }))).ok).toBe(true);
    db.exec('DELETE FROM github_issues;');
    await fetch(`${gh.url}/repos/${REPO}/issues`, {
      method: 'POST',
      headers: { authorization: 'token mallory-token', 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'copycat', body: `${lineageMarker(7)} hijack` }),
    });

    const restarted = new GithubSink(config(), db);
    expect((await restarted.deliver(reply({ version: 2 }))).ok).toBe(true);
    const tracking = gh.issues().filter((i) => i.labels.includes('vfio-review'));
    expect(tracking).toHaveLength(2);
    const seven = tracking.find((i) => i.body?.includes(lineageMarker(7)))!;
    expect(gh.comments(seven.number)).toHaveLength(2);
    // lineage 7 and lineage 8, once each (plus mallory's copycat)
    expect(gh.callsTo('issues/create').filter((c) => c.login === 'vfio-review-bot')).toHaveLength(2);
    expect(db.prepare('SELECT issue_number FROM github_issues WHERE lineage_id = 7').pluck().get()).toBe(seven.number);
    // A stale cached number pointing at the copycat (marker but no vfio-review label) is checked, not trusted.
    db.prepare('UPDATE github_issues SET issue_number = 3 WHERE lineage_id = 7').run();
    expect((await restarted.deliver(reply({ version: 3 }))).ok).toBe(true);
    expect(gh.comments(seven.number)).toHaveLength(3);
  });

  it('retries 5xx answers and then succeeds', async () => {
    gh.inject({ match: { operationId: 'issues/list-for-repo' }, times: 2, fault: { kind: 'status', status: 502 } });
    gh.inject({ match: { operationId: 'issues/create-comment' }, fault: { kind: 'status', status: 503 } });
    const sink = new GithubSink(config(), db);
    expect((await sink.deliver(reply())).ok).toBe(true);
    gh.inject({ match: { operationId: 'issues/update' }, times: 2, fault: { kind: 'status', status: 500 } });
    expect((await sink.deliver(reply({ version: 2 }))).ok).toBe(true);

    expect(gh.callsTo('issues/list-for-repo').map((c) => c.status)).toEqual([502, 502, 200]);
    expect(gh.callsTo('issues/create-comment').map((c) => c.status)).toEqual([503, 201, 201]);
    expect(gh.callsTo('issues/update').map((c) => c.status)).toEqual([500, 500, 200]);
    expect(gh.comments(gh.issues()[0]!.number)).toHaveLength(2);
  });

  it('gives up on a 5xx that does not go away, as a transient failure', async () => {
    gh.inject({ match: { operationId: 'issues/create' }, times: Infinity, fault: { kind: 'status', status: 502 } });
    const res = await new GithubSink(config({ retries: 2 }), db).deliver(reply());
    expect(res).toMatchObject({ ok: false, permanent: false });
    if (!res.ok) expect(res.answer).toMatch(/^502 Server Error/);
    expect(gh.callsTo('issues/create')).toHaveLength(3);
    expect(gh.issues()).toHaveLength(0);
  });

  it('honours a secondary rate limit with retry-after', async () => {
    gh.inject({ match: { operationId: 'issues/create-comment' }, fault: { kind: 'secondary-rate-limit', retryAfter: 8 } });
    expect((await new GithubSink(config(), db).deliver(reply())).ok).toBe(true);
    const tries = gh.callsTo('issues/create-comment');
    expect(tries.map((c) => c.status)).toEqual([403, 201]);
    expect(tries[1]!.at - tries[0]!.at).toBeGreaterThanOrEqual(8 * UNIT - 2);
    expect(gh.comments(gh.issues()[0]!.number)).toHaveLength(1);
  });

  it('honours a secondary rate limit with x-ratelimit-remaining: 0 and x-ratelimit-reset', async () => {
    gh.inject({ match: { operationId: 'issues/update' }, fault: { kind: 'secondary-rate-limit-reset', resetIn: 2 } });
    gh.inject({ match: { operationId: 'issues/list-comments' }, fault: { kind: 'rate-limit', resetIn: 1 } });
    const sink = new GithubSink(config(), db);
    expect((await sink.deliver(reply())).ok).toBe(true);
    expect((await sink.deliver(reply({ version: 2 }))).ok).toBe(true);
    const upd = gh.callsTo('issues/update');
    expect(upd.map((c) => c.status)).toEqual([403, 200]);
    // reset is whole epoch seconds 1-2 s ahead: 1000-2000 ms scaled by UNIT/1000, plus one unit
    expect(upd[1]!.at - upd[0]!.at).toBeGreaterThanOrEqual(UNIT);
    const lc = gh.callsTo('issues/list-comments');
    expect(lc[0]!.status).toBe(403);
    expect(lc[1]!.status).toBe(200);
    expect(lc[1]!.at - lc[0]!.at).toBeGreaterThanOrEqual(UNIT);
  });

  it('retries rate limits a bounded number of times, then fails as transient', async () => {
    gh.inject({ match: { operationId: 'issues/create' }, times: Infinity, fault: { kind: 'secondary-rate-limit', retryAfter: 1 } });
    const res = await new GithubSink(config({ rateLimitRetries: 2, retries: 0 }), db).deliver(reply());
    expect(res).toMatchObject({ ok: false, permanent: false });
    if (!res.ok) expect(res.answer).toMatch(/^403 .*secondary rate limit/);
    expect(gh.callsTo('issues/create')).toHaveLength(3);
  });

  it('does not sleep through a rate limit longer than its patience', async () => {
    gh.inject({ match: { operationId: 'issues/list-labels-for-repo' }, fault: { kind: 'rate-limit', resetIn: 3600, status: 429 } });
    const started = Date.now();
    const res = await new GithubSink(config({ timeUnitMs: 1000, maxRateLimitWaitMs: 50 }), db).deliver(reply());
    expect(Date.now() - started).toBeLessThan(5000);
    expect(res).toMatchObject({ ok: false, permanent: false });
    expect(gh.callsTo('issues/list-labels-for-repo')).toHaveLength(1);
  });

  it('records a 422 as a permanent failure with GitHub\'s answer', async () => {
    gh.inject({
      match: { operationId: 'issues/create-comment' },
      fault: {
        kind: 'status',
        status: 422,
        body: {
          message: 'Validation Failed',
          errors: [{ resource: 'IssueComment', code: 'unprocessable', field: 'data', message: 'Body is too long (maximum is 65536 characters)' }],
          documentation_url: 'https://docs.github.com/rest/issues/comments#create-an-issue-comment',
        },
      },
    });
    const res = await new GithubSink(config(), db).deliver(reply());
    expect(res).toMatchObject({ ok: false, permanent: true });
    if (!res.ok) expect(res.answer).toMatch(/^422 Validation Failed .*Body is too long/);
    expect(gh.callsTo('issues/create-comment')).toHaveLength(1); // never retried
  });

  it('a bad token is a permanent failure; a timed-out request is retried', async () => {
    const bad = await new GithubSink(config({ token: 'wrong' }), db).deliver(reply());
    expect(bad).toMatchObject({ ok: false, permanent: true });
    if (!bad.ok) expect(bad.answer).toMatch(/^401 Bad credentials/);

    gh.inject({ match: { operationId: 'issues/list-labels-for-repo' }, fault: { kind: 'delay', ms: 400 } });
    const res = await new GithubSink(config({ requestTimeoutMs: 100 }), db).deliver(reply());
    expect(res).toMatchObject({ ok: true });
    expect(gh.callsTo('issues/list-labels-for-repo').filter((c) => c.login === 'vfio-review-bot')).toHaveLength(2);
  });

  it('a reply without a lineage is refused permanently without calling GitHub', async () => {
    const res = await new GithubSink(config(), db).deliver(reply({ lineageId: null }));
    expect(res).toMatchObject({ ok: false, permanent: true });
    expect(gh.calls).toHaveLength(0);
  });
});

describe('through the outbox', () => {
  const retry = { maxAttempts: 5, baseDelayMs: 0, maxDelayMs: 0 };
  const newReply = (r: OutboxRow): NewReply => {
    const { id: _i, revision: _r, state: _s, attempts: _a, nextAt: _n, lastError: _l, remoteId: _x, sentAt: _t, ...rest } = r;
    return rest;
  };

  it('an unclear failure is checked before resending; a rerun re-rendered in place edits the comment', async () => {
    const sink = new GithubSink(config({ retries: 0 }), db);
    const first = reply();
    decide(db, { inserts: [newReply(first)], updates: [], listId: null, perDay: null });
    // GitHub posts the comment but the answer is lost: the attempt ends unclear.
    gh.inject({ match: { operationId: 'issues/create-comment' }, fault: { kind: 'status-after-processing', status: 502 } });
    expect(await deliverDue(db, sink, retry)).toMatchObject({ sent: 0, retrying: 1 });
    expect(await deliverDue(db, sink, retry)).toMatchObject({ sent: 0, alreadyThere: 1 });
    const n = gh.issues()[0]!.number;
    expect(gh.comments(n)).toHaveLength(1);
    expect(outboxRows(db, { sink: 'github' })[0]!.state).toBe('sent');

    // A rerun with other findings: the planner re-renders the same row (same key), revision 2.
    const rerun = reply({ body: 'Rerun: nothing left to say.\n', findingsDigest: 'def', meta: { openConcerns: [] } });
    expect(decide(db, { inserts: [], updates: [newReply(rerun)], listId: null, perDay: null })).toMatchObject({ updated: 1 });
    expect(await deliverDue(db, sink, retry)).toMatchObject({ sent: 1 });
    const row = outboxRows(db, { sink: 'github' })[0]!;
    expect(row).toMatchObject({ state: 'sent', revision: 2 });
    expect(row.remoteId).toBe(`https://github.com/${REPO}/issues/${n}#issuecomment-${gh.comments(n)[0]!.id}`);
    expect(gh.comments(n)).toHaveLength(1);
    expect(gh.comments(n)[0]!.body).toContain('Rerun: nothing left to say.');
    expect(labelsOf(n)).toEqual(['clean', 'v1', 'vfio-review']);
  });
});

describe('commands', () => {
  it('parses /rerun and /dismiss from allowed users only', () => {
    const allowed = ['alex-williamson', 'JGunthorpe'];
    expect(parseCommand('/rerun', 'alex-williamson', allowed)).toEqual({ allowed: true, commands: [{ kind: 'rerun' }], errors: [] });
    expect(parseCommand('/rerun', 'jgunthorpe', allowed).commands).toEqual([{ kind: 'rerun' }]);
    expect(parseCommand('/rerun', 'mallory', allowed)).toEqual({ allowed: false, commands: [], errors: [] });
    expect(parseCommand('thanks!\r\n/dismiss 0123456789AB intended: the lock is dropped first\r\n', 'alex-williamson', allowed).commands).toEqual([
      { kind: 'dismiss', concern: '0123456789ab', reason: 'intended: the lock is dropped first' },
    ]);
    // Quoted, fenced, inline and HTML-commented command text does not count.
    const quoted = '> /rerun\n```\n/rerun\n```\nplease `/rerun`\n<!-- /rerun -->\n/rerunning soon';
    expect(parseCommand(quoted, 'alex-williamson', allowed).commands).toEqual([]);
    const bad = parseCommand('/dismiss 0123456789ab\n/dismiss <concern-id> <reason>', 'alex-williamson', allowed);
    expect(bad.commands).toEqual([]);
    expect(bad.errors).toHaveLength(2);
  });

  it('pollCommands finds new commands on tracking issues, ignores others and the bot itself', async () => {
    const sink = new GithubSink(config(), db);
    expect((await sink.deliver(reply())).ok).toBe(true);
    const n = gh.issues()[0]!.number;
    const start = await sink.pollCommands(null);
    expect(start.commands).toEqual([]);
    expect(start.lastCommentId).toBe(gh.comments(n)[0]!.id);

    const rerunId = await commentAs('alex-token', n, 'Looks wrong, please\n/rerun\n');
    await commentAs('mallory-token', n, '/rerun');
    await commentAs('alex-token', n, '/dismiss 0123456789ab the lock is dropped before mmap_lock');
    await commentAs('alex-token', n, '/dismiss nope');
    // A command on an issue that is not a tracking issue.
    await fetch(`${gh.url}/repos/${REPO}/issues`, {
      method: 'POST',
      headers: { authorization: 'token alex-token', 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'unrelated' }),
    });
    await commentAs('alex-token', n + 1, '/rerun');
    // The bot's own next comment (its footer shows the syntax) is skipped.
    expect((await sink.deliver(reply({ version: 2 }))).ok).toBe(true);

    const polled = await sink.pollCommands(start.lastCommentId);
    expect(polled.commands.map((c) => [c.command, c.author, c.issueNumber, c.lineageId])).toEqual([
      [{ kind: 'rerun' }, 'alex-williamson', n, 7],
      [{ kind: 'dismiss', concern: '0123456789ab', reason: 'the lock is dropped before mmap_lock' }, 'alex-williamson', n, 7],
    ]);
    expect(polled.commands[0]!.commentId).toBe(rerunId);
    expect(polled.errors).toHaveLength(1);
    expect(polled.lastCommentId).toBe(Math.max(...gh.comments(n).map((c) => c.id)));
    expect((await sink.pollCommands(polled.lastCommentId)).commands).toEqual([]);

    // Without the local mapping the lineage comes from the issue's marker.
    db.exec('DELETE FROM github_issues');
    await commentAs('alex-token', n, '/rerun');
    const again = await new GithubSink(config(), db).pollCommands(polled.lastCommentId);
    expect(again.commands.map((c) => c.lineageId)).toEqual([7]);
  });
});

describe('markdown from mail', () => {
  it('escapes HTML, fences and mentions from subjects and findings in the issue and the comment', async () => {
    const evil = 'vfio: <script>alert(1)</script> ```` @torvalds fixes #12 [x](javascript:alert(1)) <img src=x onerror=alert(2)>';
    const row = reply({
      subject: `Re: [PATCH 0/1] ${evil}`,
      body: 'quoted code:\n> +\tx = `y`;\n> ````\n```` not the end\n<script>alert(3)</script>\n',
      meta: {
        lineageTitle: evil,
        openConcerns: [concern('0123456789ab', `message with ${evil}`, { file: 'drivers/vfio/`odd`.c', function: '<b>f</b>' })],
      },
    });
    expect((await new GithubSink(config(), db).deliver(row)).ok).toBe(true);
    const issue = gh.issues()[0]!;
    const body = issue.body!;
    expect(body).not.toMatch(/<(script|img)\b/i);
    expect(body).toContain('`<b>f</b>()`'); // in a code span: shown as text
    expect(body.replace(/`[^`\n]*`/g, '')).not.toMatch(/<b\b/i);
    expect(body).toContain('&lt;script&gt;');
    expect(body).not.toContain('](javascript');
    expect(body).not.toMatch(/(^|[^`\\])````/); // no raw backtick run that could open a fence
    expect(body).not.toContain('@torvalds'); // defused mention
    expect(body).toContain('@\u200btorvalds');
    expect(body).toContain('\\#\u200b12');
    expect(body).toContain('``drivers/vfio/`odd`.c``');
    // The title is plain text on GitHub: kept, but single-line.
    expect(issue.title).toBe(`${evil} [lineage 7]`);

    const comment = gh.comments(issue.number)[0]!.body;
    // The plain-text reply is fenced with a fence longer than any backtick run inside it.
    expect(comment).toContain('`````text\nquoted code:\n');
    expect(comment).toContain('\n`````\n');
    expect(comment).not.toMatch(/<script>alert\(1\)/);
    const outside = comment.replace(/`````text\n[\s\S]*?\n`````\n/, '');
    expect(outside).not.toMatch(/<(script|img)\b/i);
  });

  it('escaping helpers', () => {
    expect(escapeMarkdown('a *b* _c_ <d> & `e` # [f](g) | ~h~ $x$')).toBe(
      'a \\*b\\* \\_c\\_ &lt;d&gt; &amp; \\`e\\` \\# \\[f\\]\\(g\\) \\| \\~h\\~ \\$x\\$',
    );
    expect(escapeMarkdown('line one\n  line two\u0007')).toBe('line one line two');
    expect(escapeMarkdown('mail me: a@b.org, cc @x')).toBe('mail me\\: a@b\\.org, cc @\u200bx');
    expect(inlineCode('a`b')).toBe('``a`b``');
    expect(inlineCode('`x`')).toBe('`` `x` ``');
    expect(fenceCode('x\n```\ny')).toBe('````text\nx\n```\ny\n````');
    expect(fenceCode('plain')).toBe('```text\nplain\n```');
  });
});

describe('configuration', () => {
  it('reads the github block and the token from the environment', () => {
    expect(parseGithubConfig(undefined, {})).toBeNull();
    expect(() => parseGithubConfig({ repo: 'a/b' }, {})).toThrow(/VFIO_REVIEW_GITHUB_TOKEN/);
    expect(() => parseGithubConfig({ repo: 'nope' }, { VFIO_REVIEW_GITHUB_TOKEN: 't' })).toThrow(/owner\/name/);
    expect(
      parseGithubConfig(
        { repo: 'kvm/reviews', baseUrl: 'https://ghe.example.org/api/v3/', allowedUsers: ['alex-williamson'], botLogin: 'vfio-review-bot' },
        { VFIO_REVIEW_GITHUB_TOKEN: 'ghp_x' },
      ),
    ).toEqual({
      repo: 'kvm/reviews',
      token: 'ghp_x',
      baseUrl: 'https://ghe.example.org/api/v3',
      allowedUsers: ['alex-williamson'],
      botLogin: 'vfio-review-bot',
    });
  });
});
