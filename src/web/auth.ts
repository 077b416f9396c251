/**
 * Token auth and CSRF for the dashboard's actions. Reading is public; every POST needs both:
 * - who: the configured token, as `Authorization: Bearer <token>` or through the login form, which sets
 *   an HttpOnly, SameSite=Strict session cookie (stateless: an HMAC over issue time, a nonce and the
 *   token's hash, so rotating the token ends every session and nothing is stored);
 * - intent: a CSRF token that is an HMAC of the session (cookie sessions: its nonce; Bearer clients: the
 *   token's hash), sent as the `csrf` form field or the `X-CSRF-Token` header.
 * SameSite=Strict alone would already stop most cross-site posts; the HMAC token covers older browsers
 * and same-site attackers (another service on 127.0.0.1). Rejected: a server-side session table (state
 * to migrate and expire for one operator), double-submit cookies (a sibling subdomain can plant them).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';
import { getCookie } from 'hono/cookie';

export const SESSION_COOKIE = 'vr_session';
/** Sessions last a working day; the cookie's Max-Age says the same. */
export const SESSION_TTL_S = 12 * 3600;

export interface AuthConfig {
  /** The operator's token; null: read-only mode, every action is refused. */
  token: string | null;
  /** Key for session and CSRF HMACs. */
  csrfSecret: string;
}

/** What the request proved. `csrf` is the token the pages embed in their forms. */
export interface Principal {
  via: 'cookie' | 'bearer';
  csrf: string;
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function mac(secret: string, ...parts: string[]): string {
  return createHmac('sha256', secret).update(parts.join('\0')).digest('base64url');
}

/** Constant-time equality for strings of any length (hashing first hides the length too). */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}

function tokenId(token: string): string {
  return sha256(`vfio-review-web\0${token}`).toString('base64url');
}

/** A new session cookie value for a successful login. */
export function newSession(cfg: AuthConfig & { token: string }, now = Date.now()): string {
  const issued = String(Math.floor(now / 1000));
  const nonce = randomBytes(18).toString('base64url');
  return `v1.${issued}.${nonce}.${mac(cfg.csrfSecret, 'session', issued, nonce, tokenId(cfg.token))}`;
}

/** The nonce of a valid, unexpired session cookie, or null. */
export function verifySession(cfg: AuthConfig, cookie: string | undefined, now = Date.now()): string | null {
  if (!cfg.token || !cookie) return null;
  const m = /^v1\.(?<issued>\d{1,12})\.(?<nonce>[A-Za-z0-9_-]{16,64})\.(?<sig>[A-Za-z0-9_-]{43})$/.exec(cookie);
  if (!m?.groups) return null;
  const { issued, nonce, sig } = m.groups as { issued: string; nonce: string; sig: string };
  if (!sameSecret(sig, mac(cfg.csrfSecret, 'session', issued, nonce, tokenId(cfg.token)))) return null;
  const age = now / 1000 - Number(issued);
  return age >= -60 && age <= SESSION_TTL_S ? nonce : null;
}

function csrfFor(cfg: AuthConfig, via: Principal['via'], subject: string): string {
  return mac(cfg.csrfSecret, 'csrf', via, subject);
}

/** Who the request is, from the Bearer header or the session cookie; null for anonymous readers. */
export function principalOf(c: Context, cfg: AuthConfig): Principal | null {
  if (!cfg.token) return null;
  const authz = c.req.header('authorization');
  if (authz !== undefined) {
    const m = /^Bearer\s+(?<t>\S+)\s*$/i.exec(authz);
    // A wrong Bearer token is not silently downgraded to the cookie: the client meant to use it.
    if (!m?.groups || !sameSecret(m.groups.t!, cfg.token)) return null;
    return { via: 'bearer', csrf: csrfFor(cfg, 'bearer', tokenId(cfg.token)) };
  }
  const nonce = verifySession(cfg, getCookie(c, SESSION_COOKIE));
  return nonce ? { via: 'cookie', csrf: csrfFor(cfg, 'cookie', nonce) } : null;
}

/**
 * A cross-origin POST is refused before anything else: Sec-Fetch-Site must not say cross-site or same-site
 * (another port on 127.0.0.1 is "same-site", and SameSite=Strict cookies go there), and an Origin header
 * that names a host must name this one. `Origin: null` says nothing: with Referrer-Policy no-referrer,
 * Chromium sends it on our own same-origin form posts. Non-browser clients send neither header.
 */
export function crossOrigin(c: Context): boolean {
  const site = c.req.header('sec-fetch-site');
  if (site === 'cross-site' || site === 'same-site') return true;
  const origin = c.req.header('origin');
  if (origin === undefined || origin === 'null') return false;
  try {
    return new URL(origin).host !== (c.req.header('host') ?? new URL(c.req.url).host);
  } catch {
    return true;
  }
}

/** Whether the CSRF token the request carries matches its principal. */
export function csrfValid(p: Principal, sent: string | undefined): boolean {
  return typeof sent === 'string' && sent.length > 0 && sameSecret(sent, p.csrf);
}

/** A `next` target after login: a path on this site only (no `//host`, no scheme), else `/`. */
export function safeNext(next: string | undefined | null): string {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\') || /[\r\n]/.test(next)) return '/';
  return next;
}
