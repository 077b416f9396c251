/** `/`: series versions, newest first. */
import { html } from './html.js';
import { badge, page, table, when, type ViewCtx } from './layout.js';
import { paths } from '../routes.js';
import type { SeriesIndexItem } from '../data/series.js';

export function homePage(ctx: ViewCtx, items: SeriesIndexItem[], all: boolean): string {
  const rows = items.map(
    (s) => html`<tr><td><a href="${paths.series(s.id)}">${s.subject}</a></td><td>v${s.version}${s.complete ? '' : html` <span class="badge b-warn">incomplete</span>`}</td>
<td>${s.author ?? ''}</td><td>${when(s.date)}</td><td>${s.lastCheck ? badge(s.lastCheck.status) : html`<span class="muted">not checked</span>`}</td>
<td class="num">${s.openConcerns ? html`<a href="${paths.concerns()}">${s.openConcerns}</a>` : '0'}</td></tr>`,
  );
  const toggle = all
    ? html`<a href="${paths.home()}">relevant series only</a>`
    : html`<a href="/?all=1">include series not relevant to vfio/iommu</a>`;
  return page(
    ctx,
    'Series',
    html`<h1>Series</h1><p>${toggle}</p>
${items.length ? table(['subject', 'version', 'author', 'posted', 'last check', 'open concerns (lineage)'], rows) : html`<p class="muted">No series stored yet.</p>`}`,
  );
}
