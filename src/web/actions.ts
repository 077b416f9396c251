/**
 * POST handlers and the guard in front of them. Every action needs the token (Bearer or session
 * cookie) and a CSRF token bound to it; anything less is a 403 before the handler runs.
 */
import type { Handler, MiddlewareHandler } from 'hono';
import { deleteCookie, setCookie } from 'hono/cookie';
import { VrError, reasonOf } from '../errors.js';
import { dismissConcern } from '../report/concerns.js';
import { absoluteUrl, paths, type RouteId } from './routes.js';
import { crossOrigin, csrfValid, newSession, safeNext, sameSecret, SESSION_COOKIE, SESSION_TTL_S } from './auth.js';
import { fail, isApi, sendHtml, sendJson, viewCtx, type AppOptions, type Ctx, type Env } from './context.js';
import { concernIdParam, seriesIdParam } from './pages.js';
import { loginPage } from './views/login.js';

/** Form fields (urlencoded or multipart) or a flat JSON object; only string values are kept. */
async function readFields(c: Ctx): Promise<Record<string, string>> {
  const type = c.req.header('content-type') ?? '';
  const src: Record<string, unknown> = type.startsWith('application/json')
    ? ((await c.req.json().catch(() => ({}))) as Record<string, unknown>)
    : ((await c.req.parseBody().catch(() => ({}))) as Record<string, unknown>);
  const out: Record<string, string> = {};
  if (src && typeof src === 'object' && !Array.isArray(src)) {
    for (const [k, v] of Object.entries(src)) if (typeof v === 'string') out[k] = v;
  }
  return out;
}

/** The guard of every authenticated route (table column `auth`). */
export function actionGuard(opts: AppOptions): MiddlewareHandler<Env> {
  return async (c, next) => {
    if (!opts.token) return fail(c, opts, 403, 'read-only', 'This server has no token configured (VFIO_REVIEW_WEB_TOKEN): actions are disabled.');
    if (c.req.method === 'POST' && crossOrigin(c)) return fail(c, opts, 403, 'cross-origin', 'Cross-origin requests are refused.');
    const p = c.get('principal');
    if (!p) return fail(c, opts, 403, 'forbidden', 'Log in, or send Authorization: Bearer <token>.');
    if (c.req.method === 'POST') {
      const fields = await readFields(c);
      c.set('form', fields);
      if (!csrfValid(p, c.req.header('x-csrf-token') ?? fields.csrf)) {
        return fail(c, opts, 403, 'csrf', 'Missing or wrong CSRF token: reload the page and try again.');
      }
    }
    await next();
  };
}

/**
 * Failed logins per minute before /login answers 429 for the rest of that minute. The token should be
 * long and random anyway; this only keeps a script from trying many quickly.
 */
const LOGIN_FAILURES_PER_MINUTE = 10;

export function actionHandlers(opts: AppOptions): Partial<Record<RouteId, Handler<Env>>> {
  const { db } = opts;
  const running = new Set<number>();
  let window = { start: 0, failures: 0 };

  const dismiss: Handler<Env> = (c) => {
    const id = concernIdParam(c);
    if (id === null) return fail(c, opts, 404, 'not-found', 'No such concern.');
    const form = c.get('form');
    try {
      const r = dismissConcern(db, { id, by: form.by ?? '', why: form.why ?? '', via: 'dashboard' });
      if (isApi(c)) return sendJson(c, { ...r, url: absoluteUrl(opts.dashboardBase, paths.concern(r.concern.id)) });
      return c.redirect(paths.concern(r.concern.id), 303);
    } catch (err) {
      if (err instanceof VrError && err.code === 'NOT_FOUND') return fail(c, opts, 404, 'not-found', 'No such concern.');
      if (err instanceof VrError && err.code === 'USAGE') return fail(c, opts, 400, 'bad-request', 'A dismissal needs who (by) and why.');
      throw err;
    }
  };

  const rerun: Handler<Env> = async (c) => {
    const id = seriesIdParam(c);
    if (id === null || !db.prepare('SELECT 1 FROM series WHERE id = ?').get(id)) return fail(c, opts, 404, 'not-found', 'No such series.');
    if (!opts.rerun) return fail(c, opts, 503, 'unavailable', 'Rerun is not available on this server (no tree configured).');
    // One rerun per series at a time: a double click must not record two checks racing each other.
    if (running.has(id)) return fail(c, opts, 409, 'busy', 'A rerun of this series is already running.');
    running.add(id);
    try {
      await opts.rerun(id);
    } catch (err) {
      process.stderr.write(`vfio-review serve: rerun of series ${id} failed: ${reasonOf(err)}\n`);
      return fail(c, opts, 500, 'rerun-failed', `The rerun failed: ${reasonOf(err)}`);
    } finally {
      running.delete(id);
    }
    const check = db.prepare('SELECT max(id) FROM checks WHERE series_id = ?').pluck().get(id) as number | null;
    if (isApi(c)) return sendJson(c, { seriesId: id, checkId: check, url: absoluteUrl(opts.dashboardBase, paths.series(id)) });
    return c.redirect(`${paths.series(id)}${check ? `#check-${check}` : ''}`, 303);
  };

  const login: Handler<Env> = async (c) => {
    if (!opts.token) return fail(c, opts, 403, 'read-only', 'This server has no token configured: there is nothing to log in to.');
    if (crossOrigin(c)) return fail(c, opts, 403, 'cross-origin', 'Cross-origin requests are refused.');
    const now = Date.now();
    if (now - window.start > 60_000) window = { start: now, failures: 0 };
    if (window.failures >= LOGIN_FAILURES_PER_MINUTE) return fail(c, opts, 429, 'too-many', 'Too many failed logins; wait a minute.');
    const form = await readFields(c);
    const next = safeNext(form.next);
    if (!form.token || !sameSecret(form.token, opts.token)) {
      window.failures++;
      return sendHtml(c, loginPage(viewCtx(c, opts), next, 'Wrong token.'), 403);
    }
    setCookie(c, SESSION_COOKIE, newSession({ token: opts.token, csrfSecret: opts.csrfSecret }), {
      httpOnly: true, sameSite: 'Strict', path: '/', maxAge: SESSION_TTL_S, secure: new URL(c.req.url).protocol === 'https:',
    });
    return c.redirect(next, 303);
  };

  return {
    dismiss,
    'api-dismiss': dismiss,
    rerun,
    'api-rerun': rerun,
    login,
    logout: (c) => {
      deleteCookie(c, SESSION_COOKIE, { path: '/' });
      return c.redirect(paths.home(), 303);
    },
    'api-csrf': (c) => sendJson(c, { csrf: c.get('principal')!.csrf, header: 'X-CSRF-Token' }),
  };
}
