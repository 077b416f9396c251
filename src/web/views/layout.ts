/** The page shell and the small pieces every page uses. */
import { html, loreUrl, type Html, type Interp } from './html.js';
import { paths } from '../routes.js';
import type { Principal } from '../auth.js';

/** What every view knows about the request. */
export interface ViewCtx {
  principal: Principal | null;
  /** A token is configured: actions exist at all (else the server is read-only). */
  actions: boolean;
  /** The current path and query, for "log in and come back". */
  here: string;
}

export function page(ctx: ViewCtx, title: string, body: Html): string {
  const who = ctx.principal
    ? html`<form method="post" action="${paths.logout()}" class="inline">${csrfField(ctx)}<button type="submit">log out</button></form>`
    : ctx.actions
      ? html`<a href="${paths.login(ctx.here)}">log in</a>`
      : html`<span class="muted">read-only</span>`;
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · vfio-review</title><link rel="stylesheet" href="${paths.style()}"></head>
<body><header><nav><a href="${paths.home()}" class="brand">vfio-review</a> <a href="${paths.home()}">series</a>
<a href="${paths.concerns()}">concerns</a> <a href="${paths.health()}">health</a> <span class="who">${who}</span></nav></header>
<main>${body}</main></body></html>
`.toString();
}

/** The hidden CSRF field of an action form (only rendered for a logged-in principal). */
export function csrfField(ctx: ViewCtx): Html {
  return ctx.principal ? html`<input type="hidden" name="csrf" value="${ctx.principal.csrf}">` : html``;
}

/** An ISO time as a <time> element, minutes precision. */
export function when(isoTime: string | null | undefined): Html {
  if (!isoTime) return html`<span class="muted">—</span>`;
  return html`<time datetime="${isoTime}">${isoTime.slice(0, 16).replace('T', ' ')}</time>`;
}

/** A state or status as a badge; the class is chosen from a fixed set, never from the value itself. */
export function badge(value: string | null | undefined): Html {
  const known: Record<string, string> = {
    new: 'b-bad', open: 'b-bad', resolved: 'b-good', dismissed: 'b-muted', applied: 'b-good', 'applied-with-fuzz': 'b-warn',
    'already-applied': 'b-muted', partial: 'b-warn', 'not-applied': 'b-bad', rejected: 'b-bad', error: 'b-bad', failed: 'b-bad',
    sent: 'b-good', pending: 'b-warn', sending: 'b-warn', found: 'b-bad', absent: 'b-good', 'not-reviewed': 'b-muted',
    'not-checked': 'b-muted', missing: 'b-muted', warning: 'b-warn', info: 'b-muted',
  };
  if (!value) return html`<span class="badge b-muted">—</span>`;
  return html`<span class="badge ${known[value] ?? 'b-muted'}">${value}</span>`;
}

/** A Message-ID as text plus a lore link. */
export function msgid(id: string | null | undefined): Html {
  if (!id) return html`<span class="muted">missing</span>`;
  const bare = id.replace(/^<|>$/g, '');
  return html`<code class="msgid">&lt;${bare}&gt;</code> <a href="${loreUrl(bare)}" rel="noreferrer">lore</a>`;
}

/** A table with a header row; rows are built by the caller with `html`. */
export function table(head: Interp[], rows: Html[], cls = ''): Html {
  return html`<table class="${cls}"><thead><tr>${head.map((h) => html`<th>${h}</th>`)}</tr></thead><tbody>${rows}</tbody></table>`;
}

/** A full page for an error or refusal; the message is text. */
export function messagePage(ctx: ViewCtx, title: string, message: string): string {
  return page(ctx, title, html`<h1>${title}</h1><p class="notice">${message}</p>`);
}
