/**
 * The dashboard's URL table, as public-inbox keeps one (design_www.txt): stable URLs are promised to
 * users, replies and bookmarks and change only with a deprecation; unstable ones may change in any
 * release. docs/web.md prints the same table and test/web/app.test.ts checks that the two agree and
 * that the server answers every row. server.ts registers handlers by route id, so a route cannot exist
 * without a row here.
 */

export type Stability = 'stable' | 'unstable';

export interface RouteSpec {
  readonly id: string;
  readonly method: 'GET' | 'POST';
  /** hono path pattern. */
  readonly path: string;
  readonly stability: Stability;
  /** Actions need the token (Bearer or the login cookie) and a CSRF token. */
  readonly auth: boolean;
  readonly summary: string;
}

export const ROUTES = [
  { id: 'home', method: 'GET', path: '/', stability: 'stable', auth: false, summary: 'series versions, newest first, with their latest check and open concerns' },
  { id: 'concerns', method: 'GET', path: '/concerns', stability: 'stable', auth: false, summary: 'concerns across all series; filters and sort as query parameters' },
  { id: 'series', method: 'GET', path: '/series/:id', stability: 'stable', auth: false, summary: 'one series version: versions timeline, apply attempts, findings, concern state per version, replies' },
  { id: 'concern', method: 'GET', path: '/concerns/:id', stability: 'stable', auth: false, summary: 'one concern (its public id, as replies print it): history across versions, dismissal' },
  { id: 'health', method: 'GET', path: '/health', stability: 'stable', auth: false, summary: 'counts, last ingest, last check, outbox by state' },
  { id: 'api-home', method: 'GET', path: '/api/series', stability: 'stable', auth: false, summary: 'JSON twin of /' },
  { id: 'api-concerns', method: 'GET', path: '/api/concerns', stability: 'stable', auth: false, summary: 'JSON twin of /concerns (same query parameters)' },
  { id: 'api-series', method: 'GET', path: '/api/series/:id', stability: 'stable', auth: false, summary: 'JSON twin of /series/:id' },
  { id: 'api-concern', method: 'GET', path: '/api/concerns/:id', stability: 'stable', auth: false, summary: 'JSON twin of /concerns/:id' },
  { id: 'api-health', method: 'GET', path: '/api/health', stability: 'stable', auth: false, summary: 'JSON twin of /health' },
  { id: 'dismiss', method: 'POST', path: '/concerns/:id/dismiss', stability: 'stable', auth: true, summary: 'dismiss a concern: fields by, why (form: redirects to the concern)' },
  { id: 'rerun', method: 'POST', path: '/series/:id/rerun', stability: 'stable', auth: true, summary: 're-check a series version (form: redirects to the series)' },
  { id: 'api-dismiss', method: 'POST', path: '/api/concerns/:id/dismiss', stability: 'stable', auth: true, summary: 'JSON twin of the dismiss action' },
  { id: 'api-rerun', method: 'POST', path: '/api/series/:id/rerun', stability: 'stable', auth: true, summary: 'JSON twin of the rerun action' },
  { id: 'api-csrf', method: 'GET', path: '/api/csrf', stability: 'unstable', auth: true, summary: 'the CSRF token for a Bearer client (send it as X-CSRF-Token)' },
  { id: 'login-form', method: 'GET', path: '/login', stability: 'unstable', auth: false, summary: 'the login form (the token)' },
  { id: 'login', method: 'POST', path: '/login', stability: 'unstable', auth: false, summary: 'exchange the token for a session cookie' },
  { id: 'logout', method: 'POST', path: '/logout', stability: 'unstable', auth: true, summary: 'drop the session cookie' },
  { id: 'style', method: 'GET', path: '/static/style.css', stability: 'unstable', auth: false, summary: 'the one stylesheet' },
] as const satisfies readonly RouteSpec[];

export type RouteId = (typeof ROUTES)[number]['id'];

/** Builders for the stable URLs, for views and for other stages (replies, GitHub) that link here. */
export const paths = {
  home: (): string => '/',
  concerns: (query?: Record<string, string>): string => {
    const q = query ? new URLSearchParams(Object.entries(query).filter(([, v]) => v !== '')).toString() : '';
    return q ? `/concerns?${q}` : '/concerns';
  },
  series: (id: number): string => `/series/${id}`,
  concern: (publicId: string): string => `/concerns/${encodeURIComponent(publicId)}`,
  health: (): string => '/health',
  dismiss: (publicId: string): string => `/concerns/${encodeURIComponent(publicId)}/dismiss`,
  rerun: (id: number): string => `/series/${id}/rerun`,
  login: (next?: string): string => (next ? `/login?${new URLSearchParams({ next }).toString()}` : '/login'),
  logout: (): string => '/logout',
  style: (): string => '/static/style.css',
} as const;

/** An absolute dashboard URL for a stable path, when the dashboard's public base is known. */
export function absoluteUrl(base: string | undefined, path: string): string {
  return base ? base.replace(/\/+$/, '') + path : path;
}
