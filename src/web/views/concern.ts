/** `/concerns/:id`: one concern across the versions of its series, and the dismiss form. */
import { html, type Html } from './html.js';
import { badge, csrfField, msgid, page, table, when, type ViewCtx } from './layout.js';
import { paths } from '../routes.js';
import type { ConcernDetail } from '../data/concern.js';

function dismissForm(ctx: ViewCtx, d: ConcernDetail): Html {
  const c = d.concern;
  if (c.state === 'dismissed') {
    return html`<p class="notice" id="dismissed">Dismissed by ${c.dismissedBy ?? '?'}${d.dismissedVia ? ` (${d.dismissedVia})` : ''} ${when(d.dismissedAt)}: ${c.dismissedWhy ?? ''}</p>`;
  }
  if (!ctx.actions) return html``;
  if (!ctx.principal) return html`<p><a href="${paths.login(ctx.here)}">Log in</a> to dismiss this concern.</p>`;
  return html`<form method="post" action="${paths.dismiss(c.id)}" class="action" id="dismiss-form">${csrfField(ctx)}
<h2>Dismiss</h2><p class="muted">A dismissed concern is still recorded when found again, and never raised in a reply.</p>
<label>by <input type="text" name="by" id="dismiss-by" required maxlength="300" placeholder="your name or address"></label>
<label>why <textarea name="why" id="dismiss-why" required maxlength="2000" rows="3"></textarea></label>
<button type="submit" id="dismiss">dismiss</button></form>`;
}

export function concernPage(ctx: ViewCtx, d: ConcernDetail): string {
  const c = d.concern;
  const versions = d.versions.map(
    (v) => html`<tr><td><a href="${paths.series(v.seriesId)}">v${v.version}</a></td><td>${when(v.date)}</td><td>${v.subject}</td>
<td>${badge(v.verdict)}</td><td>${v.checkId === null ? '' : html`<a href="${paths.series(v.seriesId)}#check-${v.checkId}">#${v.checkId}</a>`}</td></tr>`,
  );
  const sightings = d.sightings.map(
    (s) => html`<tr><td><a href="${paths.series(s.seriesId)}#check-${s.checkId}">#${s.checkId}</a></td><td>v${s.version ?? '?'}</td>
<td>${s.trigger ?? ''}</td><td>${when(s.checkedAt)}</td><td><code>${s.finding.file}:${s.finding.line}</code><br>${msgid(s.finding.patch)}</td>
<td class="msg">${s.finding.message}${s.finding.evidence?.length ? html`<pre class="evidence">${s.finding.evidence.join('\n')}</pre>` : ''}${s.finding.trace ? html`<pre class="trace">${s.finding.trace}</pre>` : ''}</td></tr>`,
  );
  return page(
    ctx,
    `Concern ${c.id}`,
    html`<h1>Concern <code>${c.id}</code> ${badge(c.state)}</h1>
<dl class="facts"><dt>rule</dt><dd>${c.rule} <span class="muted">(${c.category})</span></dd><dt>severity</dt><dd>${badge(c.severity)}</dd>
<dt>where</dt><dd><code>${c.file}</code>${c.function ? html` in <code>${c.function}()</code>` : ''}</dd>
<dt>series</dt><dd>${c.seriesId === null ? (c.lineageTitle ?? '') : html`<a href="${paths.series(c.seriesId)}">${c.subject ?? ''}</a>`}</dd>
<dt>author</dt><dd>${c.author ?? ''}</dd><dt>first posted</dt><dd>${when(c.since)}</dd><dt>latest finding</dt><dd class="msg">${c.message}</dd></dl>
${dismissForm(ctx, d)}
<h2>By version</h2>${table(['version', 'posted', 'subject', 'verdict', 'latest check'], versions, 'versions')}
<h2>Sightings</h2>${table(['check', 'version', 'trigger', 'checked', 'where', 'finding'], sightings, 'sightings')}`,
  );
}
