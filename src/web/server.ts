/**
 * The dashboard: a hono app (createApp, testable with app.request() and no socket) and a listener on
 * 127.0.0.1 (startServer). Pages are rendered on the server and carry no script at all, so the CSP can
 * forbid every script source; the JSON twins serve the same data for tools.
 */
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { serve, type ServerType } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { reasonOf } from '../errors.js';
import { ROUTES, type RouteId } from './routes.js';
import { principalOf } from './auth.js';
import { fail, type AppOptions, type Env } from './context.js';
import { pageHandlers } from './pages.js';
import { actionGuard, actionHandlers } from './actions.js';

export type { AppOptions } from './context.js';

/** No script, no inline style, no plugins, no framing; forms post only here. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  // For browsers that predate frame-ancestors.
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/** Largest POST body: a dismissal reason is at most 2000 characters. */
const MAX_BODY = 64 * 1024;

export function createApp(opts: AppOptions): Hono<Env> {
  const token = opts.token ? opts.token : null;
  if (!opts.csrfSecret || opts.csrfSecret.length < 16) throw new Error('createApp: csrfSecret must be at least 16 characters');
  const o: AppOptions = { ...opts, token };
  const app = new Hono<Env>();

  app.use('*', async (c, next) => {
    c.set('principal', principalOf(c, { token, csrfSecret: opts.csrfSecret }));
    c.set('form', {});
    await next();
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) c.res.headers.set(k, v);
    // Pages carry CSRF tokens and change with every check: never cached, except the stylesheet.
    if (!c.res.headers.has('Cache-Control')) c.res.headers.set('Cache-Control', 'no-store');
  });
  app.use('*', bodyLimit({ maxSize: MAX_BODY, onError: (c) => fail(c, o, 413, 'too-large', 'The request body is too large.') }));

  const handlers = { ...pageHandlers(o), ...actionHandlers(o) };
  const guard = actionGuard(o);
  for (const r of ROUTES) {
    const h = handlers[r.id as RouteId];
    if (!h) throw new Error(`createApp: no handler for route ${r.id}`);
    if (r.auth) app.on(r.method, r.path, guard, h);
    else app.on(r.method, r.path, h);
  }

  app.notFound((c) => fail(c, o, 404, 'not-found', 'No such page.'));
  app.onError((err, c) => {
    // The message may quote mail; the page escapes it, and no stack reaches the client.
    process.stderr.write(`vfio-review serve: ${c.req.method} ${c.req.path}: ${reasonOf(err)}\n`);
    return fail(c, o, 500, 'internal', 'Something went wrong; the server log has the details.');
  });
  return app;
}

export interface RunningServer {
  url: string;
  port: number;
  host: string;
  close(): Promise<void>;
}

/** Listens on host:port (127.0.0.1 and an ephemeral port by default) and resolves once listening. */
export function startServer(opts: AppOptions & { host?: string; port?: number }): Promise<RunningServer> {
  const app = createApp(opts);
  const host = opts.host ?? '127.0.0.1';
  return new Promise((resolve, reject) => {
    let server: ServerType | null = null;
    server = serve({ fetch: app.fetch, hostname: host, port: opts.port ?? 0 }, (info: AddressInfo) => {
      const shown = info.family === 'IPv6' || host.includes(':') ? `[${info.address}]` : info.address;
      resolve({
        url: `http://${shown}:${info.port}`,
        port: info.port,
        host,
        close: () =>
          new Promise<void>((done, failClose) => {
            const s = server as { close(cb: (err?: Error) => void): void; closeAllConnections?(): void };
            s.close((err) => (err ? failClose(err) : done()));
            // Keep-alive connections from a browser would hold close() open until they time out.
            s.closeAllConnections?.();
          }),
      });
    });
    server.once('error', reject);
  });
}
