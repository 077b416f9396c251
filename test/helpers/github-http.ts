/**
 * A local GitHub REST double for tests (shaped after shared/recipes/github-double.ts).
 *
 * Every request is checked against GitHub's published OpenAPI description (@octokit/openapi,
 * api.github.com.json): the route table comes from `paths`; path and query parameters are checked
 * against their schemas (unknown query parameters are failures too); the JSON request body is
 * validated with ajv against the operation's requestBody schema. Unknown paths answer 404, a missing
 * or unknown token 401, an invalid request 422 with the ajv errors; each of those is recorded in
 * `failures` so a test can assert that its client only ever sent valid requests.
 *
 * What the reporter uses is faked with state (issues, issue comments, labels, label events); every JSON answer is
 * itself validated against the operation's response schema (`responseFailures`), so the double
 * answers in GitHub's shapes. Answers carry GitHub's headers (x-ratelimit-*, x-github-request-id,
 * link for pagination, location for creations).
 *
 * Faults are scriptable per test: 5xx before or after processing (the "answer lost" case), primary
 * and secondary rate limits (403/429 with retry-after, or x-ratelimit-remaining: 0 + x-ratelimit-reset)
 * and delays.
 */
import http from 'node:http';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsMod from 'ajv-formats';

// ajv-formats is CommonJS; under NodeNext its default export arrives as the module namespace.
const addFormats = ((addFormatsMod as unknown as { default?: unknown }).default ?? addFormatsMod) as (a: Ajv) => Ajv;

/* ------------------------------------------------------------------------------------------------ */
/* The description and the route table (loaded once per test file)                                  */
/* ------------------------------------------------------------------------------------------------ */

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any -- the OpenAPI document is untyped JSON

const spec: Json = createRequire(import.meta.url)('@octokit/openapi/generated/api.github.com.json');

/**
 * OpenAPI 3.0 `nullable: true` next to `oneOf`/`anyOf` without a `type` (issues/create's milestone,
 * for one) is not JSON Schema and ajv refuses it; rewrite those nodes in place as "that, or null".
 * Nodes with a `type` keep `nullable`, which ajv understands (given null in any `enum`).
 */
function fixNullable(node: Json, seen = new Set<object>()): void {
  if (!node || typeof node !== 'object' || seen.has(node)) return;
  seen.add(node);
  if (Array.isArray(node)) {
    for (const x of node) fixNullable(x, seen);
    return;
  }
  for (const v of Object.values(node)) fixNullable(v, seen);
  // ajv's `nullable` wants null listed in an `enum` too (issue.state_reason is a nullable enum).
  if (node.nullable === true && Array.isArray(node.enum) && !node.enum.includes(null)) node.enum.push(null);
  if (node.nullable === true && node.type === undefined && node.$ref === undefined) {
    const { nullable: _n, description, ...rest } = node;
    for (const k of Object.keys(node)) delete node[k];
    node.anyOf = [rest, { type: 'null' }];
    if (description !== undefined) node.description = description;
  }
}
fixNullable(spec.paths);
fixNullable(spec.components);

const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: true });
addFormats(ajv);
ajv.addSchema(spec, 'gh'); // resolves "#/components/..." refs inside the description

const escapePtr = (s: string) => encodeURIComponent(s.replace(/~/g, '~0').replace(/\//g, '~1'));
const ptr = (...parts: string[]) => 'gh#/' + parts.map(escapePtr).join('/');

const compiled = new Map<string, ValidateFunction>();
function validator(pointer: string): ValidateFunction {
  let v = compiled.get(pointer);
  if (!v) {
    v = ajv.getSchema(pointer);
    if (!v) throw new Error(`github double: no schema at ${pointer}`);
    compiled.set(pointer, v);
  }
  return v;
}

/** Follows "#/components/..." references inside the description; returns the object and its pointer parts. */
function deref(obj: Json, at: string[]): { obj: Json; at: string[] } {
  let cur = obj;
  let where = at;
  for (let i = 0; i < 10 && cur && typeof cur.$ref === 'string'; i++) {
    where = (cur.$ref as string).replace(/^#\//, '').split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    cur = where.reduce((o: Json, k) => o?.[k], spec);
  }
  return { obj: cur, at: where };
}

interface Param {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required: boolean;
  /** Pointer to the parameter's schema inside the description. */
  schemaPtr: string;
  type: string | undefined;
}

interface Route {
  re: RegExp;
  names: string[];
  path: string;
  method: string;
  operationId: string;
  op: Json;
  params: Param[];
  /** literal segments first when several templates match (issues/comments vs issues/{issue_number}) */
  rank: number[];
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;
const routes: Route[] = [];
for (const [path, item] of Object.entries<Json>(spec.paths)) {
  for (const method of METHODS) {
    const op = item[method];
    if (!op) continue;
    const names: string[] = [];
    const re = new RegExp(
      '^' + path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{([^}]+)\\?\}/g, (_m, n: string) => (names.push(n), '([^/]+)')) + '$',
    );
    const params: Param[] = [];
    const raw: [Json, string[]][] = [
      ...((item.parameters ?? []) as Json[]).map((p, i): [Json, string[]] => [p, ['paths', path, 'parameters', String(i)]]),
      ...((op.parameters ?? []) as Json[]).map((p, i): [Json, string[]] => [p, ['paths', path, method, 'parameters', String(i)]]),
    ];
    for (const [p, at] of raw) {
      const d = deref(p, at);
      const schema = deref(d.obj.schema, [...d.at, 'schema']);
      params.push({
        name: d.obj.name,
        in: d.obj.in,
        required: !!d.obj.required,
        schemaPtr: ptr(...d.at, 'schema'),
        type: typeof schema.obj?.type === 'string' ? schema.obj.type : undefined,
      });
    }
    const rank = path.split('/').map((seg) => (seg.startsWith('{') ? 1 : 0));
    routes.push({ re, names, path, method: method.toUpperCase(), operationId: op.operationId, op, params, rank });
  }
}
routes.sort((a, b) => {
  for (let i = 0; i < Math.min(a.rank.length, b.rank.length); i++) if (a.rank[i] !== b.rank[i]) return a.rank[i]! - b.rank[i]!;
  return a.rank.length - b.rank.length;
});

function coerce(value: string, type: string | undefined): unknown {
  if ((type === 'integer' && /^-?\d+$/.test(value)) || (type === 'number' && value.trim() !== '' && Number.isFinite(Number(value)))) {
    return Number(value);
  }
  if (type === 'boolean' && (value === 'true' || value === 'false')) return value === 'true';
  return value;
}

function requestBodySchemaPtr(r: Route): { ptr: string; required: boolean } | null {
  if (!r.op.requestBody) return null;
  const d = deref(r.op.requestBody, ['paths', r.path, r.method.toLowerCase(), 'requestBody']);
  if (!d.obj?.content?.['application/json']) return null;
  return { ptr: ptr(...d.at, 'content', 'application/json', 'schema'), required: !!d.obj.required };
}

function responseSchemaPtr(r: Route, status: number): string | null {
  const resp = r.op.responses?.[String(status)];
  if (!resp) return null;
  const d = deref(resp, ['paths', r.path, r.method.toLowerCase(), 'responses', String(status)]);
  if (!d.obj?.content?.['application/json']?.schema) return null;
  return ptr(...d.at, 'content', 'application/json', 'schema');
}

const ajvMessages = (errors: ErrorObject[] | null | undefined, where: string) =>
  (errors ?? []).map((e) => `${where}${e.instancePath || ''} ${e.message ?? 'is invalid'}`.trim());

/* ------------------------------------------------------------------------------------------------ */
/* Public types                                                                                     */
/* ------------------------------------------------------------------------------------------------ */

export interface RecordedCall {
  /** Date.now() when the request arrived. */
  at: number;
  method: string;
  /** Path without the query string. */
  path: string;
  query: Record<string, string>;
  /** The OpenAPI operationId, or null for a path the description does not know. */
  operationId: string | null;
  params: Record<string, string>;
  body: unknown;
  headers: http.IncomingHttpHeaders;
  status: number;
  /** The login the token belongs to. */
  login: string | null;
  /** Which scripted fault answered, if any. */
  fault?: string;
  /** Why the request failed the OpenAPI checks (empty when it passed). */
  problems: string[];
}

export type Fault =
  /** Answer with this status without processing the request (GitHub never saw it). */
  | { kind: 'status'; status: number; body?: unknown }
  /** Process the request, then answer with this status: the change happened but the answer was lost. */
  | { kind: 'status-after-processing'; status: number }
  /** 403 "secondary rate limit" with retry-after (seconds). */
  | { kind: 'secondary-rate-limit'; retryAfter: number; status?: 403 | 429 }
  /** 403 "secondary rate limit" with x-ratelimit-remaining: 0 and x-ratelimit-reset = now + resetIn s, no retry-after. */
  | { kind: 'secondary-rate-limit-reset'; resetIn: number; status?: 403 | 429 }
  /** 403 "API rate limit exceeded" (primary) with x-ratelimit-remaining: 0 and x-ratelimit-reset = now + resetIn s. */
  | { kind: 'rate-limit'; resetIn: number; status?: 403 | 429 }
  /** Wait, then go on (other faults and the normal answer still apply). */
  | { kind: 'delay'; ms: number };

export interface FaultRule {
  match?: { method?: string; operationId?: string; path?: RegExp | string };
  /** How many matching requests this rule answers (default 1; Infinity for all). */
  times?: number;
  fault: Fault;
}

export interface FakeLabel {
  id: number;
  node_id: string;
  name: string;
  color: string;
  description: string | null;
  default: boolean;
}

export interface FakeIssue {
  id: number;
  node_id: string;
  number: number;
  title: string;
  body: string | null;
  state: 'open' | 'closed';
  state_reason: 'completed' | 'not_planned' | 'duplicate' | 'reopened' | null;
  labels: string[];
  user: string;
  comments: number[];
  created_at: string;
  updated_at: string;
  closed_at: string | null;
}

export interface FakeComment {
  id: number;
  node_id: string;
  repo: string;
  issueNumber: number;
  body: string;
  user: string;
  created_at: string;
  updated_at: string;
}

/** An issue event the double records (label changes only): what `issues/list-events-for-repo` lists. */
export interface FakeIssueEvent {
  id: number;
  repo: string;
  issueNumber: number;
  event: 'labeled' | 'unlabeled';
  label: string;
  actor: string;
  created_at: string;
}

export interface GithubDoubleOptions {
  /** Repositories that exist ("owner/name"); others answer 404. Default: ['vfio-review/reviews']. */
  repos?: string[];
  /** token -> login. Default: { 'test-token': 'vfio-review-bot' }. */
  tokens?: Record<string, string>;
  /** Rate limit advertised in x-ratelimit-limit (default 5000). */
  rateLimit?: number;
}

export interface GithubDouble {
  readonly url: string;
  /** Every request, in arrival order. */
  readonly calls: RecordedCall[];
  /** Requests that failed the OpenAPI checks (unknown path, bad parameter, invalid body, bad JSON). */
  readonly failures: RecordedCall[];
  /** Answers of the double that do not match the description's response schema (a bug in the double). */
  readonly responseFailures: string[];
  /** Operations that are valid per the description but not faked here. */
  readonly unimplemented: RecordedCall[];
  /** Adds a fault rule; rules are tried in order, each answers `times` matching requests. */
  inject(rule: FaultRule): void;
  clearFaults(): void;
  addToken(token: string, login: string): void;
  issues(repo?: string): FakeIssue[];
  issue(number: number, repo?: string): FakeIssue | undefined;
  comments(number: number, repo?: string): FakeComment[];
  /** Label events, oldest first. */
  events(repo?: string): FakeIssueEvent[];
  labels(repo?: string): FakeLabel[];
  /** Calls with this operationId (after faults: each attempt is recorded). */
  callsTo(operationId: string): RecordedCall[];
  close(): Promise<void>;
}

/* ------------------------------------------------------------------------------------------------ */
/* The server                                                                                       */
/* ------------------------------------------------------------------------------------------------ */

interface RepoState {
  id: number;
  owner: string;
  name: string;
  nextNumber: number;
  issues: Map<number, FakeIssue>;
  labels: Map<string, FakeLabel>;
}

class HttpAnswer {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {}
}

const DOCS = 'https://docs.github.com/rest';
const isoSecond = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
const nodeId = (prefix: string, id: number) => Buffer.from(`${prefix}${id}`).toString('base64');
const notFound = () => new HttpAnswer(404, { message: 'Not Found', documentation_url: DOCS, status: '404' });
const validationFailed = (errors: unknown[], message = 'Validation Failed') =>
  new HttpAnswer(422, { message, errors, documentation_url: DOCS, status: '422' });

export async function startGithubDouble(opts: GithubDoubleOptions = {}): Promise<GithubDouble> {
  const calls: RecordedCall[] = [];
  const failures: RecordedCall[] = [];
  const responseFailures: string[] = [];
  const unimplemented: RecordedCall[] = [];
  const faults: (FaultRule & { left: number })[] = [];
  const tokens = new Map(Object.entries(opts.tokens ?? { 'test-token': 'vfio-review-bot' }));
  const limit = opts.rateLimit ?? 5000;
  const used = new Map<string, number>();
  const windowReset = Math.floor(Date.now() / 1000) + 3600;
  const userIds = new Map<string, number>();
  const comments = new Map<number, FakeComment>();
  const events: FakeIssueEvent[] = [];
  const repos = new Map<string, RepoState>();
  let nextId = 1000;
  let base = '';

  for (const full of opts.repos ?? ['vfio-review/reviews']) {
    const [owner, name] = full.split('/');
    if (!owner || !name) throw new Error(`github double: bad repo ${full}`);
    repos.set(full.toLowerCase(), { id: nextId++, owner, name, nextNumber: 1, issues: new Map(), labels: new Map() });
  }

  const userJson = (login: string) => {
    let id = userIds.get(login);
    if (id === undefined) userIds.set(login, (id = userIds.size + 1));
    return {
      login,
      id,
      node_id: nodeId('04:User', id),
      avatar_url: `https://avatars.githubusercontent.com/u/${id}?v=4`,
      gravatar_id: '',
      url: `https://api.github.com/users/${login}`,
      html_url: `https://github.com/${login}`,
      followers_url: `https://api.github.com/users/${login}/followers`,
      following_url: `https://api.github.com/users/${login}/following{/other_user}`,
      gists_url: `https://api.github.com/users/${login}/gists{/gist_id}`,
      starred_url: `https://api.github.com/users/${login}/starred{/owner}{/repo}`,
      subscriptions_url: `https://api.github.com/users/${login}/subscriptions`,
      organizations_url: `https://api.github.com/users/${login}/orgs`,
      repos_url: `https://api.github.com/users/${login}/repos`,
      events_url: `https://api.github.com/users/${login}/events{/privacy}`,
      received_events_url: `https://api.github.com/users/${login}/received_events`,
      type: 'User',
      site_admin: false,
    };
  };
  const privateUserJson = (login: string) => {
    const u = userJson(login);
    return {
      ...u,
      user_view_type: 'public',
      name: null,
      company: null,
      blog: '',
      location: null,
      email: null,
      hireable: null,
      bio: null,
      twitter_username: null,
      public_repos: 0,
      public_gists: 0,
      followers: 0,
      following: 0,
      created_at: '2020-01-01T00:00:00Z',
      updated_at: '2020-01-01T00:00:00Z',
    };
  };
  const repoApi = (r: RepoState) => `${base}/repos/${r.owner}/${r.name}`;
  const labelJson = (r: RepoState, l: FakeLabel) => ({
    id: l.id,
    node_id: l.node_id,
    url: `${repoApi(r)}/labels/${encodeURIComponent(l.name)}`,
    name: l.name,
    description: l.description,
    color: l.color,
    default: l.default,
  });
  const association = (r: RepoState, login: string) => (login.toLowerCase() === r.owner.toLowerCase() ? 'OWNER' : 'NONE');
  const issueJson = (r: RepoState, i: FakeIssue) => ({
    id: i.id,
    node_id: i.node_id,
    url: `${repoApi(r)}/issues/${i.number}`,
    repository_url: repoApi(r),
    labels_url: `${repoApi(r)}/issues/${i.number}/labels{/name}`,
    comments_url: `${repoApi(r)}/issues/${i.number}/comments`,
    events_url: `${repoApi(r)}/issues/${i.number}/events`,
    html_url: `https://github.com/${r.owner}/${r.name}/issues/${i.number}`,
    number: i.number,
    state: i.state,
    state_reason: i.state_reason,
    title: i.title,
    body: i.body,
    user: userJson(i.user),
    labels: i.labels.map((n) => labelJson(r, r.labels.get(n.toLowerCase())!)),
    assignee: null,
    assignees: [],
    milestone: null,
    locked: false,
    active_lock_reason: null,
    comments: i.comments.length,
    closed_at: i.closed_at,
    created_at: i.created_at,
    updated_at: i.updated_at,
    closed_by: null,
    author_association: association(r, i.user),
  });
  const commentJson = (r: RepoState, c: FakeComment) => ({
    id: c.id,
    node_id: c.node_id,
    url: `${repoApi(r)}/issues/comments/${c.id}`,
    html_url: `https://github.com/${r.owner}/${r.name}/issues/${c.issueNumber}#issuecomment-${c.id}`,
    body: c.body,
    user: userJson(c.user),
    created_at: c.created_at,
    updated_at: c.updated_at,
    issue_url: `${repoApi(r)}/issues/${c.issueNumber}`,
    author_association: association(r, c.user),
  });

  /** GitHub creates a label that does not exist yet when an issue is given it. */
  const ensureLabel = (r: RepoState, name: string): FakeLabel => {
    const key = name.toLowerCase();
    let l = r.labels.get(key);
    if (!l) {
      const id = nextId++;
      l = { id, node_id: nodeId('05:Label', id), name, color: 'ededed', description: null, default: false };
      r.labels.set(key, l);
    }
    return l;
  };
  const labelNames = (r: RepoState, items: unknown[]): string[] => {
    const out: string[] = [];
    for (const it of items) {
      const name = typeof it === 'string' ? it : (it as { name?: string }).name;
      if (typeof name !== 'string' || !name) continue;
      const l = ensureLabel(r, name);
      if (!out.some((n) => n.toLowerCase() === l.name.toLowerCase())) out.push(l.name);
    }
    return out;
  };
  const touch = (i: FakeIssue) => (i.updated_at = isoSecond(Date.now()));
  /** GitHub records a labeled / unlabeled event per label a change adds or takes off, by the caller. */
  const labelEvents = (c: { r: RepoState; login: string }, i: FakeIssue, before: string[], after: string[]) => {
    const has = (list: string[], n: string) => list.some((l) => l.toLowerCase() === n.toLowerCase());
    const changes = [
      ...after.filter((n) => !has(before, n)).map((label) => ({ event: 'labeled' as const, label })),
      ...before.filter((n) => !has(after, n)).map((label) => ({ event: 'unlabeled' as const, label })),
    ];
    for (const ch of changes) {
      events.push({ id: nextId++, repo: `${c.r.owner}/${c.r.name}`.toLowerCase(), issueNumber: i.number, ...ch, actor: c.login, created_at: isoSecond(Date.now()) });
    }
  };
  const issueEventJson = (r: RepoState, e: FakeIssueEvent) => {
    const i = r.issues.get(e.issueNumber);
    const l = r.labels.get(e.label.toLowerCase());
    return {
      id: e.id,
      node_id: nodeId(e.event === 'labeled' ? '014:LabeledEvent' : '016:UnlabeledEvent', e.id),
      url: `${repoApi(r)}/issues/events/${e.id}`,
      actor: userJson(e.actor),
      event: e.event,
      commit_id: null,
      commit_url: null,
      created_at: e.created_at,
      issue: i ? issueJson(r, i) : null,
      label: { name: e.label, color: l?.color ?? 'ededed' },
      performed_via_github_app: null,
    };
  };

  function paginate<T>(items: T[], query: Record<string, string>, path: string): HttpAnswer {
    const perPage = Math.min(Math.max(Number(query.per_page ?? 30) || 30, 1), 100);
    const page = Math.max(Number(query.page ?? 1) || 1, 1);
    const last = Math.max(Math.ceil(items.length / perPage), 1);
    const slice = items.slice((page - 1) * perPage, page * perPage);
    const link = (p: number, rel: string) => {
      const q = new URLSearchParams({ ...query, per_page: String(perPage), page: String(p) });
      return `<${base}${path}?${q.toString()}>; rel="${rel}"`;
    };
    const links: string[] = [];
    if (page < last) links.push(link(page + 1, 'next'), link(last, 'last'));
    if (page > 1) links.push(link(1, 'first'), link(page - 1, 'prev'));
    return new HttpAnswer(200, slice, links.length ? { link: links.join(', ') } : {});
  }

  /* ---- the fakes, by operationId ---- */
  type Ctx = { r: RepoState; p: Record<string, string>; q: Record<string, string>; body: Json; login: string };
  const issueOf = (c: Ctx) => c.r.issues.get(Number(c.p.issue_number));
  const handlers: Record<string, (c: Ctx) => HttpAnswer> = {
    'issues/create': (c) => {
      const now = isoSecond(Date.now());
      const id = nextId++;
      const i: FakeIssue = {
        id,
        node_id: nodeId('05:Issue', id),
        number: c.r.nextNumber++,
        title: String(c.body.title),
        body: typeof c.body.body === 'string' ? c.body.body : null,
        state: 'open',
        state_reason: null,
        labels: labelNames(c.r, c.body.labels ?? []),
        user: c.login,
        comments: [],
        created_at: now,
        updated_at: now,
        closed_at: null,
      };
      c.r.issues.set(i.number, i);
      labelEvents(c, i, [], i.labels);
      return new HttpAnswer(201, issueJson(c.r, i), { location: `${repoApi(c.r)}/issues/${i.number}` });
    },
    'issues/get': (c) => {
      const i = issueOf(c);
      return i ? new HttpAnswer(200, issueJson(c.r, i)) : notFound();
    },
    'issues/update': (c) => {
      const i = issueOf(c);
      if (!i) return notFound();
      if (c.body?.title != null) i.title = String(c.body.title);
      if (c.body && 'body' in c.body) i.body = c.body.body;
      if (Array.isArray(c.body?.labels)) {
        const before = i.labels;
        i.labels = labelNames(c.r, c.body.labels);
        labelEvents(c, i, before, i.labels);
      }
      if (c.body?.state && c.body.state !== i.state) {
        i.state = c.body.state;
        i.closed_at = i.state === 'closed' ? isoSecond(Date.now()) : null;
        i.state_reason = i.state === 'closed' ? (c.body.state_reason ?? 'completed') : 'reopened';
      }
      touch(i);
      return new HttpAnswer(200, issueJson(c.r, i));
    },
    'issues/list-for-repo': (c) => {
      const state = c.q.state ?? 'open';
      const wanted = (c.q.labels ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
      const since = c.q.since ? Date.parse(c.q.since) : null;
      let list = [...c.r.issues.values()].filter(
        (i) =>
          (state === 'all' || i.state === state) &&
          wanted.every((w) => i.labels.some((l) => l.toLowerCase() === w)) &&
          (since === null || Date.parse(i.updated_at) >= since) &&
          (!c.q.creator || i.user.toLowerCase() === c.q.creator.toLowerCase()),
      );
      const sort = c.q.sort ?? 'created';
      const key = (i: FakeIssue) => (sort === 'updated' ? Date.parse(i.updated_at) : sort === 'comments' ? i.comments.length : 0) * 1e9 + i.number;
      list = list.sort((a, b) => key(a) - key(b));
      if ((c.q.direction ?? 'desc') === 'desc') list.reverse();
      return paginate(list.map((i) => issueJson(c.r, i)), c.q, `/repos/${c.r.owner}/${c.r.name}/issues`);
    },
    'issues/create-comment': (c) => {
      const i = issueOf(c);
      if (!i) return notFound();
      const now = isoSecond(Date.now());
      const id = nextId++;
      const cm: FakeComment = {
        id,
        node_id: nodeId('012:IssueComment', id),
        repo: `${c.r.owner}/${c.r.name}`.toLowerCase(),
        issueNumber: i.number,
        body: c.body.body,
        user: c.login,
        created_at: now,
        updated_at: now,
      };
      comments.set(id, cm);
      i.comments.push(id);
      touch(i);
      return new HttpAnswer(201, commentJson(c.r, cm), { location: `${repoApi(c.r)}/issues/comments/${id}` });
    },
    'issues/list-comments': (c) => {
      const i = issueOf(c);
      if (!i) return notFound();
      const since = c.q.since ? Date.parse(c.q.since) : null;
      const list = i.comments
        .map((id) => comments.get(id)!)
        .filter((cm) => since === null || Date.parse(cm.updated_at) >= since)
        .map((cm) => commentJson(c.r, cm));
      return paginate(list, c.q, `/repos/${c.r.owner}/${c.r.name}/issues/${i.number}/comments`);
    },
    'issues/list-comments-for-repo': (c) => {
      const repo = `${c.r.owner}/${c.r.name}`.toLowerCase();
      const since = c.q.since ? Date.parse(c.q.since) : null;
      let list = [...comments.values()].filter((cm) => cm.repo === repo && (since === null || Date.parse(cm.updated_at) >= since));
      list.sort((a, b) => a.id - b.id);
      if (c.q.sort === 'updated') list.sort((a, b) => Date.parse(a.updated_at) - Date.parse(b.updated_at) || a.id - b.id);
      if (c.q.sort && c.q.direction === 'desc') list.reverse();
      return paginate(list.map((cm) => commentJson(c.r, cm)), c.q, `/repos/${c.r.owner}/${c.r.name}/issues/comments`);
    },
    'issues/get-comment': (c) => {
      const cm = comments.get(Number(c.p.comment_id));
      return cm && cm.repo === `${c.r.owner}/${c.r.name}`.toLowerCase() ? new HttpAnswer(200, commentJson(c.r, cm)) : notFound();
    },
    'issues/update-comment': (c) => {
      const cm = comments.get(Number(c.p.comment_id));
      if (!cm || cm.repo !== `${c.r.owner}/${c.r.name}`.toLowerCase()) return notFound();
      cm.body = c.body.body;
      cm.updated_at = isoSecond(Date.now());
      return new HttpAnswer(200, commentJson(c.r, cm));
    },
    'issues/list-labels-on-issue': (c) => {
      const i = issueOf(c);
      if (!i) return notFound();
      return paginate(i.labels.map((n) => labelJson(c.r, c.r.labels.get(n.toLowerCase())!)), c.q, `/repos/${c.r.owner}/${c.r.name}/issues/${i.number}/labels`);
    },
    'issues/add-labels': (c) => {
      const i = issueOf(c);
      if (!i) return notFound();
      const add = labelNames(c.r, Array.isArray(c.body) ? c.body : (c.body?.labels ?? []));
      const before = [...i.labels];
      for (const n of add) if (!i.labels.some((l) => l.toLowerCase() === n.toLowerCase())) i.labels.push(n);
      labelEvents(c, i, before, i.labels);
      touch(i);
      return new HttpAnswer(200, i.labels.map((n) => labelJson(c.r, c.r.labels.get(n.toLowerCase())!)));
    },
    'issues/set-labels': (c) => {
      const i = issueOf(c);
      if (!i) return notFound();
      const before = i.labels;
      i.labels = labelNames(c.r, Array.isArray(c.body) ? c.body : (c.body?.labels ?? []));
      labelEvents(c, i, before, i.labels);
      touch(i);
      return new HttpAnswer(200, i.labels.map((n) => labelJson(c.r, c.r.labels.get(n.toLowerCase())!)));
    },
    'issues/remove-label': (c) => {
      const i = issueOf(c);
      if (!i) return notFound();
      const before = i.labels;
      i.labels = i.labels.filter((l) => l.toLowerCase() !== String(c.p.name).toLowerCase());
      labelEvents(c, i, before, i.labels);
      if (i.labels.length === before.length) return new HttpAnswer(404, { message: 'Label does not exist', documentation_url: DOCS, status: '404' });
      touch(i);
      return new HttpAnswer(200, i.labels.map((n) => labelJson(c.r, c.r.labels.get(n.toLowerCase())!)));
    },
    'issues/list-events-for-repo': (c) => {
      // GitHub lists a repository's issue events newest first, without since=.
      const repo = `${c.r.owner}/${c.r.name}`.toLowerCase();
      const list = events.filter((e) => e.repo === repo).reverse().map((e) => issueEventJson(c.r, e));
      return paginate(list, c.q, `/repos/${c.r.owner}/${c.r.name}/issues/events`);
    },
    'issues/list-labels-for-repo': (c) =>
      paginate([...c.r.labels.values()].map((l) => labelJson(c.r, l)), c.q, `/repos/${c.r.owner}/${c.r.name}/labels`),
    'issues/get-label': (c) => {
      const l = c.r.labels.get(String(c.p.name).toLowerCase());
      return l ? new HttpAnswer(200, labelJson(c.r, l)) : notFound();
    },
    'issues/create-label': (c) => {
      const name = String(c.body.name);
      if (c.r.labels.has(name.toLowerCase())) {
        return validationFailed([{ resource: 'Label', code: 'already_exists', field: 'name' }]);
      }
      if (c.body.color !== undefined && !/^[0-9a-fA-F]{6}$/.test(c.body.color)) {
        return validationFailed([{ resource: 'Label', code: 'invalid', field: 'color' }]);
      }
      const l = ensureLabel(c.r, name);
      l.color = (c.body.color ?? 'ededed').toLowerCase();
      l.description = c.body.description ?? null;
      return new HttpAnswer(201, labelJson(c.r, l), { location: `${repoApi(c.r)}/labels/${encodeURIComponent(name)}` });
    },
  };

  /* ---- request handling ---- */
  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      responseFailures.push(`double crashed on ${req.method} ${req.url}: ${String((err as Error)?.stack ?? err)}`);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify({ message: 'Server Error' }));
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const at = Date.now();
    const url = new URL(req.url ?? '/', 'http://double');
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const rawBody = Buffer.concat(chunks).toString('utf8');
    const query = Object.fromEntries(url.searchParams.entries());
    const auth = req.headers.authorization ?? '';
    const token = /^(?:token|bearer)\s+(\S+)$/i.exec(auth)?.[1];
    const login = token ? (tokens.get(token) ?? null) : null;
    const call: RecordedCall = {
      at,
      method: req.method ?? 'GET',
      path: url.pathname,
      query,
      operationId: null,
      params: {},
      body: undefined,
      headers: req.headers,
      status: 0,
      login,
      problems: [],
    };
    calls.push(call);

    const tokenKey = token ?? '';
    const count = (used.get(tokenKey) ?? 0) + 1;
    used.set(tokenKey, count);
    const headers: Record<string, string> = {
      'content-type': 'application/json; charset=utf-8',
      'x-github-media-type': 'github.v3; format=json',
      'x-github-api-version-selected': '2022-11-28',
      'x-github-request-id': `${randomBytes(2).toString('hex').toUpperCase()}:${randomBytes(3).toString('hex').toUpperCase()}:${randomBytes(4).toString('hex').toUpperCase()}:${randomBytes(4).toString('hex').toUpperCase()}:${Math.floor(at / 1000).toString(16).toUpperCase()}`,
      'x-ratelimit-limit': String(limit),
      'x-ratelimit-remaining': String(Math.max(limit - count, 0)),
      'x-ratelimit-reset': String(windowReset),
      'x-ratelimit-used': String(count),
      'x-ratelimit-resource': 'core',
    };
    const send = (a: HttpAnswer, route?: Route) => {
      call.status = a.status;
      const h = { ...headers, ...a.headers };
      if (a.status === 204) {
        delete h['content-type'];
        res.writeHead(204, h);
        res.end();
        return;
      }
      if (route && a.status < 300) {
        const sp = responseSchemaPtr(route, a.status);
        if (sp) {
          const v = validator(sp);
          if (!v(a.body)) responseFailures.push(`${route.operationId} ${a.status}: ${ajvMessages(v.errors, 'response').slice(0, 5).join('; ')}`);
        }
      }
      res.writeHead(a.status, h);
      res.end(JSON.stringify(a.body));
    };
    const fail = (a: HttpAnswer, problems: string[]) => {
      call.problems = problems;
      failures.push(call);
      send(a);
    };

    // 1. route
    const method = call.method.toUpperCase();
    let route: Route | undefined;
    let m: RegExpExecArray | null = null;
    for (const r of routes) {
      if (r.method !== method) continue;
      m = r.re.exec(url.pathname);
      if (m) {
        route = r;
        break;
      }
    }
    if (!route || !m) return fail(notFound(), [`no operation ${method} ${url.pathname} in the OpenAPI description`]);
    call.operationId = route.operationId;
    const params: Record<string, string> = Object.fromEntries(route.names.map((n, i) => [n, decodeURIComponent(m![i + 1]!)]));
    call.params = params;

    // 2. authentication (before anything else about the request, like GitHub)
    if (!login) {
      call.status = 401;
      send(new HttpAnswer(401, { message: token ? 'Bad credentials' : 'Requires authentication', documentation_url: DOCS, status: '401' }));
      return;
    }

    // 3. the request against the description
    const problems: string[] = [];
    for (const p of route.params) {
      if (p.in !== 'path' && p.in !== 'query') continue;
      const raw = p.in === 'path' ? params[p.name] : query[p.name];
      if (raw === undefined) {
        if (p.required) problems.push(`missing required ${p.in} parameter ${p.name}`);
        continue;
      }
      const v = validator(p.schemaPtr);
      if (!v(coerce(raw, p.type))) problems.push(...ajvMessages(v.errors, `${p.in} parameter ${p.name}`));
    }
    for (const k of Object.keys(query)) {
      if (!route.params.some((p) => p.in === 'query' && p.name === k)) problems.push(`unknown query parameter ${k}`);
    }
    let body: Json = undefined;
    if (rawBody.length) {
      const ct = String(req.headers['content-type'] ?? '');
      if (!/^application\/json\b/i.test(ct)) problems.push(`content-type ${ct || '(none)'} is not application/json`);
      try {
        body = JSON.parse(rawBody);
      } catch {
        call.body = rawBody;
        return fail(new HttpAnswer(400, { message: 'Problems parsing JSON', documentation_url: DOCS, status: '400' }), ['body is not JSON']);
      }
    }
    call.body = body;
    const rb = requestBodySchemaPtr(route);
    if (rb) {
      if (body === undefined) {
        if (rb.required) problems.push('the request body is required');
      } else {
        const v = validator(rb.ptr);
        if (!v(body)) problems.push(...ajvMessages(v.errors, 'body'));
      }
    } else if (body !== undefined && method !== 'GET') {
      problems.push('the operation takes no JSON request body');
    }
    if (problems.length) {
      return fail(validationFailed(problems.map((message) => ({ code: 'invalid', message })), 'Invalid request'), problems);
    }

    // 4. scripted faults
    let after: number | null = null;
    for (const f of faults) {
      if (f.left <= 0) continue;
      const mt = f.match ?? {};
      if (mt.method && mt.method.toUpperCase() !== method) continue;
      if (mt.operationId && mt.operationId !== route.operationId) continue;
      if (mt.path && !(typeof mt.path === 'string' ? url.pathname === mt.path : mt.path.test(url.pathname))) continue;
      f.left--;
      const fault = f.fault;
      call.fault = call.fault ? `${call.fault},${fault.kind}` : fault.kind;
      if (fault.kind === 'delay') {
        await new Promise((r) => setTimeout(r, fault.ms));
        continue;
      }
      if (fault.kind === 'status-after-processing') {
        after = fault.status;
        break;
      }
      if (fault.kind === 'status') {
        return send(new HttpAnswer(fault.status, fault.body ?? { message: fault.status >= 500 ? 'Server Error' : 'Error' }));
      }
      const now = Math.floor(Date.now() / 1000);
      if (fault.kind === 'secondary-rate-limit') {
        return send(new HttpAnswer(fault.status ?? 403, secondaryMessage(), { 'retry-after': String(fault.retryAfter) }));
      }
      if (fault.kind === 'secondary-rate-limit-reset') {
        return send(new HttpAnswer(fault.status ?? 403, secondaryMessage(), {
          'x-ratelimit-remaining': '0',
          'x-ratelimit-reset': String(now + fault.resetIn),
        }));
      }
      return send(new HttpAnswer(fault.status ?? 403, {
        message: `API rate limit exceeded for user ID ${userIds.get(login) ?? 1}. If you reach out to GitHub Support for help, please include the request ID ${headers['x-github-request-id']}.`,
        documentation_url: 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api',
        status: String(fault.status ?? 403),
      }, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(now + fault.resetIn) }));
    }

    // 5. the fakes
    if (route.operationId === 'users/get-authenticated') return send(new HttpAnswer(200, privateUserJson(login)), route);
    if (!params.owner || !params.repo) return unimpl();
    const r = repos.get(`${params.owner}/${params.repo}`.toLowerCase());
    if (!r) return send(notFound());
    const h = handlers[route.operationId];
    if (!h) return unimpl();
    const answer = h({ r, p: params, q: query, body, login });
    if (after !== null) return send(new HttpAnswer(after, { message: after >= 500 ? 'Server Error' : 'Error' }));
    return send(answer, route);

    function unimpl() {
      unimplemented.push(call);
      send(new HttpAnswer(501, { message: `the GitHub double does not fake ${route!.operationId}` }));
    }
  }

  const secondaryMessage = () => ({
    message:
      'You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID.',
    documentation_url: 'https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits',
    status: '403',
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const repoOf = (repo?: string) => {
    const r = repo ? repos.get(repo.toLowerCase()) : repos.values().next().value;
    if (!r) throw new Error(`github double: no repo ${repo ?? ''}`);
    return r;
  };

  return {
    url: base,
    calls,
    failures,
    responseFailures,
    unimplemented,
    inject: (rule) => void faults.push({ ...rule, left: rule.times ?? 1 }),
    clearFaults: () => void faults.splice(0),
    addToken: (token, login) => void tokens.set(token, login),
    issues: (repo) => [...repoOf(repo).issues.values()],
    issue: (n, repo) => repoOf(repo).issues.get(n),
    comments: (n, repo) => (repoOf(repo).issues.get(n)?.comments ?? []).map((id) => comments.get(id)!),
    events: (repo) => {
      const r = repoOf(repo);
      return events.filter((e) => e.repo === `${r.owner}/${r.name}`.toLowerCase());
    },
    labels: (repo) => [...repoOf(repo).labels.values()],
    callsTo: (operationId) => calls.filter((c) => c.operationId === operationId),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
