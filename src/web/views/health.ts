/** `/health`: counts, last ingest, last check, outbox by state. */
import { html } from './html.js';
import { badge, page, table, when, type ViewCtx } from './layout.js';
import { paths } from '../routes.js';
import type { Health } from '../data/health.js';

export function healthPage(ctx: ViewCtx, h: Health): string {
  const k = h.counts;
  const counts: [string, number][] = [
    ['messages', k.messages], ['messages that failed to parse', k.parseFailed], ['series versions', k.series],
    ['relevant series versions', k.relevantSeries], ['lineages', k.lineages], ['checks', k.checks],
    ['concerns new', k.concerns.new], ['concerns open', k.concerns.open], ['concerns resolved', k.concerns.resolved],
    ['concerns dismissed', k.concerns.dismissed],
  ];
  return page(
    ctx,
    'Health',
    html`<h1>Health</h1>
<dl class="facts"><dt>last ingest</dt><dd id="last-ingest">${when(h.lastIngest)}</dd>
<dt>last check</dt><dd id="last-check">${h.lastCheck ? html`<a href="${paths.series(h.lastCheck.seriesId)}#check-${h.lastCheck.id}">#${h.lastCheck.id}</a> ${h.lastCheck.trigger} ${badge(h.lastCheck.status)} ${when(h.lastCheck.finishedAt)}` : html`<span class="muted">none</span>`}</dd>
<dt>last check error</dt><dd>${h.lastCheckError ? html`<a href="${paths.series(h.lastCheckError.seriesId)}#check-${h.lastCheckError.id}">#${h.lastCheckError.id}</a> ${when(h.lastCheckError.finishedAt)} <code>${h.lastCheckError.error}</code>` : html`<span class="muted">none</span>`}</dd>
<dt>last reply sent</dt><dd>${when(h.lastSent)}</dd>
<dt>actions</dt><dd>${h.actions ? 'enabled (token configured)' : 'read-only (no token)'}; rerun ${h.rerun ? 'available' : 'not available'}</dd></dl>
<h2>Counts</h2>${table(['what', 'count'], counts.map(([w, n]) => html`<tr><td>${w}</td><td class="num">${n}</td></tr>`), 'counts')}
<h2>Outbox</h2>${table(['state', 'count'], Object.entries(h.outbox).map(([s, n]) => html`<tr><td>${badge(s)}</td><td class="num">${n}</td></tr>`), 'outbox')}
${h.outboxBySink.length ? table(['sink', 'state', 'count'], h.outboxBySink.map((r) => html`<tr><td>${r.sink}</td><td>${badge(r.state)}</td><td class="num">${r.count}</td></tr>`), 'outbox-sinks') : ''}`,
  );
}
