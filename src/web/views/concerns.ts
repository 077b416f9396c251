/** `/concerns`: concerns across all series, with a GET form for the filters and sortable columns. */
import { html, type Html } from './html.js';
import { badge, page, table, when, type ViewCtx } from './layout.js';
import { paths } from '../routes.js';
import { filterQuery, SORT_KEYS, type ConcernFilter, type ConcernListItem, type SortKey } from '../data/concerns.js';

function option(value: string, label: string, selected: boolean): Html {
  return html`<option value="${value}"${selected ? html` selected` : ''}>${label}</option>`;
}

function select(name: string, current: string, values: string[], anyLabel: string | null): Html {
  return html`<select name="${name}" id="f-${name}">${anyLabel === null ? '' : option('', anyLabel, current === '')}${values.map((v) => option(v, v, v === current))}</select>`;
}

function filterForm(f: ConcernFilter, facets: { rules: string[]; categories: string[]; lists: string[] }): Html {
  const text = (name: string, value: string, placeholder: string): Html =>
    html`<input type="text" name="${name}" id="f-${name}" value="${value}" placeholder="${placeholder}">`;
  const num = (name: string, value: number | null): Html =>
    html`<input type="number" min="0" step="1" name="${name}" id="f-${name}" value="${value ?? ''}">`;
  return html`<form method="get" action="${paths.concerns()}" class="filters">
<label>state ${select('state', f.state, ['open', 'resolved', 'dismissed', 'all'], null)}</label>
<label>list ${html`<input type="text" name="list" id="f-list" value="${f.list}" list="lists" placeholder="kvm.vger.kernel.org">`}
<datalist id="lists">${facets.lists.map((l) => html`<option value="${l.replace(/^<|>$/g, '')}"></option>`)}</datalist></label>
<label>path ${text('path', f.path, 'drivers/vfio/')}</label>
<label>rule ${select('rule', f.rule, facets.rules, 'any')}</label>
<label>category ${select('category', f.category, facets.categories, 'any')}</label>
<label>severity ${select('severity', f.severity, ['error', 'warning', 'info'], 'any')}</label>
<label>author ${text('author', f.author, 'name or address')}</label>
<label>older than ${num('min_age', f.minAge)} days</label>
<label>newer than ${num('max_age', f.maxAge)} days</label>
<label>sort ${select('sort', f.sort, [...SORT_KEYS], null)}</label>
<label>order ${select('dir', f.dir, ['asc', 'desc'], null)}</label>
<button type="submit">filter</button> <a href="${paths.concerns()}">reset</a>
</form>`;
}

/** A column header that sorts by its key, flipping the direction when it is the current sort. */
function sortLink(f: ConcernFilter, key: SortKey, label: string): Html {
  const dir = f.sort === key ? (f.dir === 'asc' ? 'desc' : 'asc') : key === 'date' ? 'desc' : 'asc';
  const mark = f.sort === key ? (f.dir === 'asc' ? ' ▲' : ' ▼') : '';
  return html`<a href="${paths.concerns({ ...filterQuery(f), sort: key, dir })}">${label}</a>${mark}`;
}

export function concernsPage(
  ctx: ViewCtx,
  f: ConcernFilter,
  result: { items: ConcernListItem[]; truncated: boolean },
  facets: { rules: string[]; categories: string[]; lists: string[] },
): string {
  const rows = result.items.map(
    (c) => html`<tr class="concern"><td><a href="${paths.concern(c.id)}"><code>${c.id}</code></a></td><td>${badge(c.state)}</td>
<td>${badge(c.severity)}</td><td>${c.rule}<br><span class="muted">${c.category}</span></td>
<td><code>${c.file}${c.line ? `:${c.line}` : ''}</code>${c.function ? html`<br><code>${c.function}()</code>` : ''}</td>
<td class="msg">${c.message}</td>
<td>${c.seriesId === null ? html`<span class="muted">${c.lineageTitle ?? ''}</span>` : html`<a href="${paths.series(c.seriesId)}">${c.subject ?? ''}</a>`}
<br><span class="muted">v${c.version ?? '?'}, seen on ${c.versionsSeen} version(s)</span></td>
<td>${c.author ?? ''}</td><td>${when(c.since)}<br><span class="muted">${c.ageDays ?? '?'} d</span></td></tr>`,
  );
  const head = [
    'id', sortLink(f, 'state', 'state'), sortLink(f, 'severity', 'severity'), sortLink(f, 'rule', 'rule'), sortLink(f, 'file', 'file'),
    'finding', sortLink(f, 'series', 'series'), sortLink(f, 'author', 'author'), sortLink(f, 'date', 'since'),
  ];
  return page(
    ctx,
    'Concerns',
    html`<h1>Concerns</h1>${filterForm(f, facets)}
<p class="muted" id="count">${result.items.length}${result.truncated ? '+' : ''} concern(s)${result.truncated ? ' (the first ones only; narrow the filter)' : ''}</p>
${result.items.length ? table(head, rows, 'concerns') : html`<p class="muted">Nothing matches.</p>`}`,
  );
}
