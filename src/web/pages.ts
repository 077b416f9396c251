/** GET handlers: every page and its JSON twin read the same data function. Public (no auth). */
import type { Handler } from 'hono';
import { absoluteUrl, paths, type RouteId } from './routes.js';
import { fail, sendHtml, sendJson, viewCtx, type AppOptions, type Ctx, type Env } from './context.js';
import { concernFacets, filterQuery, listConcerns, parseConcernFilter } from './data/concerns.js';
import { concernDetail } from './data/concern.js';
import { seriesDetail, seriesIndex } from './data/series.js';
import { health } from './data/health.js';
import { homePage } from './views/home.js';
import { concernsPage } from './views/concerns.js';
import { seriesPage } from './views/series.js';
import { concernPage } from './views/concern.js';
import { healthPage } from './views/health.js';
import { loginPage } from './views/login.js';
import { STYLE_CSS } from './style.js';
import { safeNext } from './auth.js';

/** A series id from the path: a positive integer, nothing else. */
export function seriesIdParam(c: Ctx): number | null {
  const v = c.req.param('id') ?? '';
  return /^[1-9]\d{0,15}$/.test(v) ? Number(v) : null;
}

/** A concern's public id from the path: short and URL-safe (they are 12 hex digits today). */
export function concernIdParam(c: Ctx): string | null {
  const v = c.req.param('id') ?? '';
  return /^[A-Za-z0-9_-]{1,64}$/.test(v) ? v.toLowerCase() : null;
}

export function pageHandlers(opts: AppOptions): Partial<Record<RouteId, Handler<Env>>> {
  const { db } = opts;
  const url = (path: string): string => absoluteUrl(opts.dashboardBase, path);
  const mode = (): { actions: boolean; rerun: boolean } => ({ actions: Boolean(opts.token), rerun: Boolean(opts.token && opts.rerun) });

  const series = (json: boolean) => (c: Ctx) => {
    const id = seriesIdParam(c);
    const d = id === null ? null : seriesDetail(db, id);
    if (!d) return fail(c, opts, 404, 'not-found', 'No such series.');
    if (json) return sendJson(c, { url: url(paths.series(d.series.id)), ...d, rerunAvailable: mode().rerun });
    return sendHtml(c, seriesPage(viewCtx(c, opts), d, mode().rerun));
  };
  const concern = (json: boolean) => (c: Ctx) => {
    const id = concernIdParam(c);
    const d = id === null ? null : concernDetail(db, id);
    if (!d) return fail(c, opts, 404, 'not-found', 'No such concern.');
    if (json) return sendJson(c, { url: url(paths.concern(d.concern.id)), ...d });
    return sendHtml(c, concernPage(viewCtx(c, opts), d));
  };
  const concerns = (json: boolean) => (c: Ctx) => {
    const f = parseConcernFilter(c.req.query());
    const result = listConcerns(db, f);
    if (json) {
      return sendJson(c, {
        filter: filterQuery(f), truncated: result.truncated,
        concerns: result.items.map((i) => ({ ...i, url: url(paths.concern(i.id)) })),
      });
    }
    return sendHtml(c, concernsPage(viewCtx(c, opts), f, result, concernFacets(db)));
  };
  const home = (json: boolean) => (c: Ctx) => {
    const all = c.req.query('all') === '1';
    const items = seriesIndex(db, { all });
    if (json) return sendJson(c, { series: items.map((s) => ({ ...s, url: url(paths.series(s.id)) })) });
    return sendHtml(c, homePage(viewCtx(c, opts), items, all));
  };
  const healthOf = (json: boolean) => (c: Ctx) => {
    const h = health(db, mode());
    return json ? sendJson(c, h) : sendHtml(c, healthPage(viewCtx(c, opts), h));
  };

  return {
    home: home(false),
    'api-home': home(true),
    concerns: concerns(false),
    'api-concerns': concerns(true),
    series: series(false),
    'api-series': series(true),
    concern: concern(false),
    'api-concern': concern(true),
    health: healthOf(false),
    'api-health': healthOf(true),
    'login-form': (c) => sendHtml(c, loginPage(viewCtx(c, opts), safeNext(c.req.query('next')), null)),
    style: (c) => c.body(STYLE_CSS, 200, { 'Content-Type': 'text/css; charset=utf-8', 'Cache-Control': 'public, max-age=3600' }),
  };
}
