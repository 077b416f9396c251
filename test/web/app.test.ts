/** The dashboard through hono's app.request(): routes, escaping, headers, auth and CSRF, JSON twins. No socket. */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { openDb, type Db } from '../../src/store/db.js';
import { createApp, CONTENT_SECURITY_POLICY } from '../../src/web/server.js';
import { ROUTES } from '../../src/web/routes.js';
import { html, raw, safeUrl, loreUrl } from '../../src/web/views/html.js';
import { newSession, verifySession } from '../../src/web/auth.js';
import { buildWorld, lockFinding, recordCheck, IMG, SCRIPT, type World } from './world.js';

const TOKEN = 'test-token-0123456789abcdef';
const SECRET = 's'.repeat(32);

let db: Db;
let w: World;
let reruns: number[];
let app: ReturnType<typeof createApp>;

beforeAll(async () => {
  db = openDb(':memory:');
  w = await buildWorld(db);
  reruns = [];
  app = createApp({
    db, token: TOKEN, csrfSecret: SECRET, dashboardBase: 'https://review.example.org/',
    rerun: async (id) => {
      reruns.push(id);
      recordCheck(db, id, [lockFinding('v2.1@example.org', 104)], 'rerun');
    },
  });
});
afterAll(() => db.close());

const get = (path: string, init?: RequestInit) => app.request(path, init);

/** Logs in through the form and returns the cookie header value. */
async function login(): Promise<string> {
  const r = await app.request('/login', { method: 'POST', body: new URLSearchParams({ token: TOKEN, next: '/health' }) });
  expect(r.status).toBe(303);
  const set = r.headers.get('set-cookie')!;
  return set.split(';')[0]!;
}

/** The CSRF token a logged-in page embeds. */
async function csrfFrom(cookie: string, path: string): Promise<string> {
  const body = await (await get(path, { headers: { cookie } })).text();
  const m = /name="csrf" value="(?<v>[^"]+)"/.exec(body);
  expect(m).not.toBeNull();
  return m!.groups!.v!;
}

const HTML_PAGES = () => ['/', '/?all=1', '/concerns', '/concerns?state=all', `/series/${w.v1}`, `/series/${w.v2}`, `/series/${w.other}`,
  `/concerns/${w.lockId}`, `/concerns/${w.uapiId}`, '/health', '/login', '/nowhere'];

describe('escaping', () => {
  it('html escapes every interpolation and keeps only Html built by views', () => {
    const v = `${SCRIPT}${IMG}'\``;
    expect(html`<p title="${v}">${v}</p>`.toString()).toBe(
      '<p title="&lt;script&gt;alert(&quot;xss-script&quot;)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(&quot;xss-img&quot;)&gt;&#39;&#96;">' +
        '&lt;script&gt;alert(&quot;xss-script&quot;)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(&quot;xss-img&quot;)&gt;&#39;&#96;</p>',
    );
    expect(html`${[v, raw('<b>'), null, false, 3]}`.toString()).toBe(`${html`${v}`}<b>3`);
    expect(safeUrl('javascript:alert(1)')).toBeNull();
    expect(safeUrl('data:text/html,x')).toBeNull();
    expect(safeUrl('https://github.com/a/b/issues/1')).toBe('https://github.com/a/b/issues/1');
    expect(loreUrl('<a/b"c@x>')).toBe('https://lore.kernel.org/r/a%2Fb%22c@x');
  });

  it('no page carries markup from mail, patches or findings: no <script, no <img, no event handler attribute', async () => {
    const cookie = await login();
    for (const path of HTML_PAGES()) {
      for (const headers of [{}, { cookie }] as Record<string, string>[]) {
        const r = await get(path, { headers });
        const body = await r.text();
        expect(r.headers.get('content-type'), path).toMatch(/^text\/html; charset=utf-8/);
        expect(body, path).not.toMatch(/<script|<img|<iframe|<style|<[a-z][^>]*\s(?:on[a-z]+|style)=/i);
        expect(body, path).not.toContain('javascript:');
      }
    }
    const series = await (await get(`/series/${w.v2}`)).text();
    expect(series).toContain('&lt;script&gt;alert(&quot;xss-script&quot;)&lt;/script&gt;');
    expect(series).toContain('&quot;&gt;&lt;img src=x onerror=alert(&quot;xss-img&quot;)&gt;');
  });
});

describe('headers', () => {
  it('every response has the strict CSP, nosniff and no-referrer, pages and errors included', async () => {
    expect(CONTENT_SECURITY_POLICY).toBe("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
    for (const path of [...HTML_PAGES(), '/api/concerns', '/api/health', '/api/series/999', '/static/style.css']) {
      const r = await get(path);
      expect(r.headers.get('content-security-policy'), path).toBe(CONTENT_SECURITY_POLICY);
      expect(r.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(r.headers.get('referrer-policy'), path).toBe('no-referrer');
      expect(r.headers.get('x-frame-options'), path).toBe('DENY');
    }
    const css = await get('/static/style.css');
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
    expect(await css.text()).toContain('.badge');
  });
});

describe('pages', () => {
  it('/concerns lists open concerns and filters by list, path, rule, category, severity, author and age', async () => {
    const ids = async (q: string): Promise<string[]> =>
      ((await (await get(`/api/concerns${q}`)).json()) as { concerns: { id: string }[] }).concerns.map((c) => c.id).sort();
    expect(await ids('')).toEqual([w.lockId, w.uapiId, w.refId].sort());
    expect(await ids('?list=iommu.lists')).toEqual([w.refId]);
    expect(await ids('?list=kvm')).toEqual([w.lockId, w.uapiId].sort());
    expect(await ids('?path=drivers/iommu/')).toEqual([w.refId]);
    expect(await ids('?path=drivers/vfio/*/*.c')).toEqual([w.lockId, w.uapiId].sort());
    expect(await ids('?rule=uapi-layout')).toEqual([w.uapiId]);
    expect(await ids('?category=lock-order')).toEqual([w.lockId]);
    expect(await ids('?severity=error')).toEqual([w.uapiId]);
    expect(await ids('?author=dev%20two')).toEqual([w.refId]);
    expect(await ids('?min_age=25')).toEqual([w.lockId]); // first posted 30 days ago
    expect(await ids('?max_age=5')).toEqual([w.refId]);
    expect(await ids('?state=resolved')).toEqual([]);
    const order = async (q: string) => ((await (await get(`/api/concerns${q}`)).json()) as { concerns: { rule: string }[] }).concerns.map((c) => c.rule);
    expect(await order('?sort=rule&dir=asc')).toEqual(['lock-order', 'refcount', 'uapi-layout']);
    expect(await order('?sort=rule&dir=desc')).toEqual(['uapi-layout', 'refcount', 'lock-order']);
    expect(await order('?sort=date')).toEqual(['refcount', 'uapi-layout', 'lock-order']);
    // Ties go newest concern first.
    expect(await order('?sort=severity&dir=asc')).toEqual(['uapi-layout', 'refcount', 'lock-order']);
    // Unknown sort keys and directions fall back; they never reach SQL.
    expect((await get('/api/concerns?sort=rule;DROP%20TABLE%20concerns&dir=x')).status).toBe(200);
    const page = await (await get('/concerns?rule=refcount&sort=file')).text();
    expect(page).toContain(`/concerns/${w.refId}`);
    expect(page).not.toContain(`/concerns/${w.lockId}"`);
    expect(page).toContain('<option value="refcount" selected>');
  });

  it('/series/:id shows the versions, apply attempts, findings with quoted code and traces, concern state per version, replies', async () => {
    const body = await (await get(`/series/${w.v2}`)).text();
    expect(body).toContain(`<a href="/series/${w.v1}">v1</a>`);
    expect(body).toMatch(/<li class="current"><a href="\/series\/\d+">v2<\/a>/);
    expect(body).toContain('<code>v6.1</code>'); // a failed base attempt
    expect(body).toContain('patch does not apply');
    expect(body).toMatch(/<mark><span class="ln">104<\/span>\+\tdown_write\(&amp;vdev-&gt;memory_lock\);/);
    expect(body).toContain('<pre class="trace">vfio_pci_core_enable()');
    expect(body).toContain('<pre class="evidence">igate -&gt; memory_lock');
    expect(body).toContain(`<a href="/concerns/${w.uapiId}">`);
    expect(body).toMatch(/<span class="badge b-good">absent<\/span><\/td><td><span class="badge b-bad">found<\/span>/); // uapi: v1 absent, v2 found
    expect(body).toContain('<a href="https://lore.kernel.org/r/v2.1@example.org" rel="noreferrer">lore</a>');
    expect(body).toContain('&lt;vfio-review.k1@bot.example.org&gt;');
    expect(body).toContain('kvm/review#7'); // the javascript: issue url is text, not a link
    expect(body).toContain('<a href="/login?next=%2Fseries%2F');
  });

  it('/concerns/:id shows the history across versions', async () => {
    const body = await (await get(`/concerns/${w.uapiId}`)).text();
    expect(body).toMatch(/v1<\/a>.*?absent/s);
    expect(body).toMatch(/v2<\/a>.*?found/s);
    expect((await get('/concerns/ZZZ')).status).toBe(404);
    expect((await get('/concerns/a%3Cb')).status).toBe(404);
  });

  it('/health shows counts, last ingest, last check and the outbox', async () => {
    const body = await (await get('/health')).text();
    expect(body).toContain('id="last-ingest"><time');
    expect(body).toMatch(/<td>checks<\/td><td class="num">\d+<\/td>/);
    expect(body).toMatch(/badge b-good">sent<\/span><\/td><td class="num">1</);
    const h = (await (await get('/api/health')).json()) as { counts: { series: number }; outbox: { sent: number }; actions: boolean; rerun: boolean };
    expect(h.counts.series).toBe(3);
    expect(h.outbox.sent).toBe(1);
    expect([h.actions, h.rerun]).toEqual([true, true]);
  });

  it('unknown things are 404, as a page or as JSON', async () => {
    expect((await get('/series/abc')).status).toBe(404);
    expect((await get('/series/99999')).status).toBe(404);
    const j = await get('/api/series/99999');
    expect(j.status).toBe(404);
    expect(j.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await j.json()).toEqual({ error: 'not-found', message: 'No such series.' });
  });
});

describe('JSON twins', () => {
  it('answer application/json with no markup, carrying the payloads as data', async () => {
    for (const path of ['/api/series', '/api/concerns', `/api/series/${w.v2}`, `/api/concerns/${w.lockId}`, '/api/health']) {
      const r = await get(path);
      expect(r.status, path).toBe(200);
      expect(r.headers.get('content-type'), path).toBe('application/json; charset=utf-8');
      const text = await r.text();
      expect(text, path).not.toMatch(/[<>]/);
      JSON.parse(text);
    }
    const s = (await (await get(`/api/series/${w.v2}`)).json()) as { url: string; series: { subject: string }; checks: { findings: { message: string; quote: unknown }[] }[] };
    expect(s.url).toBe(`https://review.example.org/series/${w.v2}`);
    expect(s.series.subject).toContain(SCRIPT);
    expect(s.checks[0]!.findings[0]!.message).toContain(IMG);
    const c = (await (await get(`/api/concerns/${w.lockId}`)).json()) as { concern: { id: string }; versions: { verdict: string }[]; sightings: unknown[] };
    expect(c.concern.id).toBe(w.lockId);
    expect(c.versions.map((v) => v.verdict)).toEqual(['found', 'found']);
    expect(c.sightings).toHaveLength(2);
  });
});

describe('auth and CSRF on every action', () => {
  const dismissBody = (extra: Record<string, string> = {}) => new URLSearchParams({ by: 'alex@example.org', why: 'intended', ...extra });
  const state = (id: string) => db.prepare('SELECT state FROM concerns WHERE public_id = ?').pluck().get(id);

  it('refuses anonymous, wrong-token, token-without-CSRF and wrong-CSRF posts with 403, and changes nothing', async () => {
    const cookie = await login();
    const csrf = await csrfFrom(cookie, `/concerns/${w.refId}`);
    const bearer = { authorization: `Bearer ${TOKEN}` };
    const tries: [string, RequestInit][] = [
      ['anonymous', { body: dismissBody() }],
      ['anonymous with a csrf field', { body: dismissBody({ csrf }) }],
      ['wrong bearer', { headers: { authorization: 'Bearer nope' }, body: dismissBody() }],
      ['wrong bearer, cookie and csrf', { headers: { authorization: 'Bearer nope', cookie }, body: dismissBody({ csrf }) }],
      ['bearer without csrf', { headers: bearer, body: dismissBody() }],
      ['bearer with the cookie session csrf', { headers: bearer, body: dismissBody({ csrf }) }],
      ['cookie without csrf', { headers: { cookie }, body: dismissBody() }],
      ['cookie with a wrong csrf', { headers: { cookie }, body: dismissBody({ csrf: csrf.slice(0, -2) + 'xx' }) }],
      ['tampered cookie', { headers: { cookie: cookie.replace(/\.[^.]+$/, '.' + 'A'.repeat(43)) }, body: dismissBody({ csrf }) }],
      ['cross-origin with a valid session', { headers: { cookie, origin: 'https://evil.example' }, body: dismissBody({ csrf }) }],
      ['cross-site fetch metadata', { headers: { cookie, 'sec-fetch-site': 'cross-site' }, body: dismissBody({ csrf }) }],
      ['same-site (another port) fetch metadata', { headers: { cookie, 'sec-fetch-site': 'same-site' }, body: dismissBody({ csrf }) }],
    ];
    for (const [name, init] of tries) {
      for (const path of [`/concerns/${w.refId}/dismiss`, `/api/concerns/${w.refId}/dismiss`, `/series/${w.other}/rerun`, `/api/series/${w.other}/rerun`, '/logout']) {
        const r = await app.request(path, { method: 'POST', ...init });
        expect(r.status, `${name}: ${path}`).toBe(403);
      }
    }
    expect(state(w.refId)).toBe('new');
    expect(reruns).toEqual([]);
    // Another session's CSRF token does not fit this session.
    const other = await login();
    const r = await app.request(`/concerns/${w.refId}/dismiss`, { method: 'POST', headers: { cookie: other }, body: dismissBody({ csrf }) });
    expect(r.status).toBe(403);
    // GET on an action URL is not an action.
    expect((await get(`/concerns/${w.refId}/dismiss`)).status).toBe(404);
  });

  it('login: a wrong token is 403, the right one sets an HttpOnly SameSite=Strict cookie and redirects only on-site', async () => {
    const bad = await app.request('/login', { method: 'POST', body: new URLSearchParams({ token: 'wrong' }) });
    expect(bad.status).toBe(403);
    expect(bad.headers.get('set-cookie')).toBeNull();
    const ok = await app.request('/login', { method: 'POST', body: new URLSearchParams({ token: TOKEN, next: '//evil.example/x' }) });
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('/');
    expect(ok.headers.get('set-cookie')).toMatch(/^vr_session=v1\.[^;]+; Max-Age=43200; Path=\/; HttpOnly; SameSite=Strict$/);
    const cross = await app.request('/login', { method: 'POST', headers: { origin: 'https://evil.example' }, body: new URLSearchParams({ token: TOKEN }) });
    expect(cross.status).toBe(403);
    // Sessions expire, and a rotated token ends them.
    const s = newSession({ token: TOKEN, csrfSecret: SECRET }, Date.now() - 13 * 3600_000);
    expect(verifySession({ token: TOKEN, csrfSecret: SECRET }, s)).toBeNull();
    const fresh = newSession({ token: TOKEN, csrfSecret: SECRET });
    expect(verifySession({ token: TOKEN, csrfSecret: SECRET }, fresh)).not.toBeNull();
    expect(verifySession({ token: TOKEN + 'x', csrfSecret: SECRET }, fresh)).toBeNull();
  });

  it('dismisses with a session and its CSRF token (form), then shows who and why', async () => {
    const cookie = await login();
    const csrf = await csrfFrom(cookie, `/concerns/${w.refId}`);
    const missing = await app.request(`/concerns/${w.refId}/dismiss`, { method: 'POST', headers: { cookie }, body: new URLSearchParams({ csrf, by: 'x', why: ' ' }) });
    expect(missing.status).toBe(400);
    const r = await app.request(`/concerns/${w.refId}/dismiss`, { method: 'POST', headers: { cookie }, body: dismissBody({ csrf, why: `intended ${SCRIPT}` }) });
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe(`/concerns/${w.refId}`);
    expect(state(w.refId)).toBe('dismissed');
    const page = await (await get(`/concerns/${w.refId}`)).text();
    expect(page).toContain('Dismissed by alex@example.org (dashboard)');
    expect(page).toContain('intended &lt;script&gt;');
    expect((await (await get('/api/concerns')).json() as { concerns: { id: string }[] }).concerns.map((c) => c.id)).not.toContain(w.refId);
  });

  it('a Bearer client fetches its CSRF token and posts JSON', async () => {
    const bearer = { authorization: `Bearer ${TOKEN}` };
    expect((await get('/api/csrf')).status).toBe(403);
    const { csrf } = (await (await get('/api/csrf', { headers: bearer })).json()) as { csrf: string };
    const r = await app.request(`/api/concerns/${w.uapiId}/dismiss`, {
      method: 'POST', headers: { ...bearer, 'x-csrf-token': csrf, 'content-type': 'application/json' },
      body: JSON.stringify({ by: 'bot-admin', why: 'checked by hand' }),
    });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await r.json()).toMatchObject({ changed: true, concern: { id: w.uapiId, state: 'dismissed' } });
    const again = await app.request(`/api/concerns/${w.uapiId}/dismiss`, {
      method: 'POST', headers: { ...bearer, 'x-csrf-token': csrf, 'content-type': 'application/json' }, body: JSON.stringify({ by: 'b', why: 'w' }),
    });
    expect(await again.json()).toMatchObject({ changed: false });
  });

  it('rerun calls the injected function and redirects to the new check', async () => {
    const cookie = await login();
    const csrf = await csrfFrom(cookie, `/series/${w.v2}`);
    const page = await (await get(`/series/${w.v2}`, { headers: { cookie } })).text();
    expect(page).toContain(`<form method="post" action="/series/${w.v2}/rerun"`);
    const before = db.prepare('SELECT max(id) FROM checks').pluck().get() as number;
    const r = await app.request(`/series/${w.v2}/rerun`, { method: 'POST', headers: { cookie }, body: new URLSearchParams({ csrf }) });
    expect(r.status).toBe(303);
    expect(reruns).toEqual([w.v2]);
    expect(r.headers.get('location')).toBe(`/series/${w.v2}#check-${before + 1}`);
    expect(await (await get(`/series/${w.v2}`)).text()).toContain(`check #${before + 1} · rerun`);
    expect((await app.request('/series/99999/rerun', { method: 'POST', headers: { cookie }, body: new URLSearchParams({ csrf }) })).status).toBe(404);
  });

  it('logout needs the CSRF token and clears the cookie', async () => {
    const cookie = await login();
    const csrf = await csrfFrom(cookie, '/');
    const r = await app.request('/logout', { method: 'POST', headers: { cookie }, body: new URLSearchParams({ csrf }) });
    expect(r.status).toBe(303);
    expect(r.headers.get('set-cookie')).toMatch(/^vr_session=; Max-Age=0/);
  });

  it('refuses oversized bodies', async () => {
    const cookie = await login();
    const r = await app.request(`/concerns/${w.lockId}/dismiss`, { method: 'POST', headers: { cookie }, body: new URLSearchParams({ why: 'x'.repeat(100_000) }) });
    expect(r.status).toBe(413);
  });

  it('without a token the server is read-only: pages work, every action and login is 403', async () => {
    const ro = createApp({ db, token: null, csrfSecret: SECRET, rerun: async () => void reruns.push(-1) });
    expect((await ro.request('/concerns')).status).toBe(200);
    expect(await (await ro.request(`/series/${w.v2}`)).text()).not.toContain('/rerun"');
    expect((await ro.request('/login', { method: 'POST', body: new URLSearchParams({ token: '' }) })).status).toBe(403);
    for (const path of [`/concerns/${w.lockId}/dismiss`, `/api/series/${w.v2}/rerun`]) {
      expect((await ro.request(path, { method: 'POST', headers: { authorization: 'Bearer ' } })).status).toBe(403);
    }
    expect(reruns).not.toContain(-1);
    const noRerun = createApp({ db, token: TOKEN, csrfSecret: SECRET });
    const { csrf } = (await (await noRerun.request('/api/csrf', { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { csrf: string };
    const r = await noRerun.request(`/api/series/${w.v2}/rerun`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'x-csrf-token': csrf } });
    expect(r.status).toBe(503);
  });
});

describe('the URL table', () => {
  it('is documented in docs/web.md, row for row', () => {
    const doc = readFileSync(new URL('../../docs/web.md', import.meta.url), 'utf8');
    for (const r of ROUTES) {
      const row = new RegExp(`^\\|\\s*${r.method}\\s*\\|\\s*\`${r.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\`\\s*\\|\\s*${r.stability}\\s*\\|`, 'm');
      expect(doc, `${r.method} ${r.path}`).toMatch(row);
    }
  });
  it('answers every GET route', async () => {
    const sample = (p: string) => p.replace('/series/:id', `/series/${w.v2}`).replace('/concerns/:id', `/concerns/${w.lockId}`);
    for (const r of ROUTES.filter((x) => x.method === 'GET')) {
      const res = await get(sample(r.path), { headers: r.auth ? { authorization: `Bearer ${TOKEN}` } : {} });
      expect(res.status, r.path).toBe(200);
    }
  });
});
