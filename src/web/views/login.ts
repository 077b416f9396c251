/** `/login`: exchange the operator token for a session cookie. */
import { html } from './html.js';
import { page, type ViewCtx } from './layout.js';
import { paths } from '../routes.js';

export function loginPage(ctx: ViewCtx, next: string, error: string | null): string {
  if (!ctx.actions) return page(ctx, 'Log in', html`<h1>Log in</h1><p class="notice">This server is read-only: no token is configured.</p>`);
  return page(
    ctx,
    'Log in',
    html`<h1>Log in</h1>${error ? html`<p class="notice" id="login-error">${error}</p>` : ''}
<form method="post" action="${paths.login()}" class="action" id="login-form"><input type="hidden" name="next" value="${next}">
<label>token <input type="password" name="token" id="token" required autocomplete="current-password"></label>
<button type="submit" id="login">log in</button></form>
<p class="muted">The token is the server's VFIO_REVIEW_WEB_TOKEN. The session lasts 12 hours.</p>`,
  );
}
