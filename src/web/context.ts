/** What the handlers share: the app's options, the per-request variables, and response helpers. */
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Db } from '../store/db.js';
import type { Principal } from './auth.js';
import type { ViewCtx } from './views/layout.js';
import { messagePage } from './views/layout.js';

/** Options of {@link createApp}. */
export interface AppOptions {
  db: Db;
  /** The operator token; null or empty: read-only, every action answers 403. */
  token: string | null | undefined;
  /** Key for the session and CSRF HMACs (32 random bytes per process is fine: sessions end at restart). */
  csrfSecret: string;
  /** Re-checks a series version and records the check; absent: no rerun button. */
  rerun?: (seriesId: number) => Promise<void>;
  /** Public base URL of the dashboard (https://review.example.org); JSON answers carry absolute `url`s with it. */
  dashboardBase?: string;
}

export interface Env {
  Variables: {
    principal: Principal | null;
    /** Fields of a POST body (form or JSON object of strings), parsed once by the action guard. */
    form: Record<string, string>;
  };
}

export type Ctx = Context<Env>;

export function isApi(c: Ctx): boolean {
  return c.req.path === '/api' || c.req.path.startsWith('/api/');
}

export function viewCtx(c: Ctx, opts: AppOptions): ViewCtx {
  const u = new URL(c.req.url);
  return { principal: c.get('principal') ?? null, actions: Boolean(opts.token), here: u.pathname + u.search };
}

/**
 * JSON with `<`, `>` and `&` written as \u escapes: the body is plain JSON to any parser, and no byte of
 * mail in it can ever be read as markup, whatever a client or a sniffing proxy does with it.
 */
export function sendJson(c: Ctx, data: unknown, status: ContentfulStatusCode = 200): Response {
  const body = JSON.stringify(data).replace(/[<>&]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return c.body(body, status, { 'Content-Type': 'application/json; charset=utf-8' });
}

export function sendHtml(c: Ctx, page: string, status: ContentfulStatusCode = 200): Response {
  return c.body(page, status, { 'Content-Type': 'text/html; charset=utf-8' });
}

/** An error or refusal in the form the client asked for: JSON under /api, a page elsewhere. */
export function fail(c: Ctx, opts: AppOptions, status: ContentfulStatusCode, error: string, message: string): Response {
  if (isApi(c)) return sendJson(c, { error, message }, status);
  return sendHtml(c, messagePage(viewCtx(c, opts), `${status} ${error}`, message), status);
}
