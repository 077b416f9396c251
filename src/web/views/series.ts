/** `/series/:id`: one series version and everything the bot knows and did about it. */
import { html, loreUrl, safeUrl, type Html } from './html.js';
import { badge, csrfField, msgid, page, table, when, type ViewCtx } from './layout.js';
import { checkBlock } from './checks.js';
import { paths } from '../routes.js';
import type { SeriesDetail } from '../data/series.js';

function header(d: SeriesDetail): Html {
  const s = d.series;
  const author = s.authorName && s.author ? `${s.authorName} <${s.author}>` : (s.author ?? s.authorName ?? '');
  const patchItems = s.patches.map((p, i) => html`<li>${i + 1}/${s.total}: ${msgid(p)}</li>`);
  const issues = d.githubIssues.map((g) => {
    const url = safeUrl(g.url);
    return html`<li>${url ? html`<a href="${url}" rel="noreferrer">${g.repo}#${g.number}</a>` : html`${g.repo}#${g.number}`}</li>`;
  });
  return html`<h1 class="subject">${s.subject}</h1>
<dl class="facts"><dt>version</dt><dd>v${s.version}${s.versionStated ? '' : ' (inferred)'}${s.rfc ? ' RFC' : ''}${s.resend ? ' RESEND' : ''}</dd>
<dt>author</dt><dd>${author}</dd><dt>posted</dt><dd>${when(s.date)}</dd>
<dt>patches</dt><dd>${s.total}${s.complete ? '' : html` <span class="badge b-warn">missing ${s.missing.join(', ')}</span>`}</dd>
${s.baseCommit ? html`<dt>base-commit</dt><dd><code>${s.baseCommit}</code></dd>` : ''}
${s.changeId ? html`<dt>change-id</dt><dd><code>${s.changeId}</code></dd>` : ''}
${d.lineage ? html`<dt>lineage</dt><dd>${d.lineage.title}</dd>` : ''}
${issues.length ? html`<dt>GitHub</dt><dd><ul class="plain">${issues}</ul></dd>` : ''}
<dt>cover</dt><dd>${s.cover ? msgid(s.cover) : html`<span class="muted">none</span>`}</dd>
<dt>messages</dt><dd><ul class="plain">${patchItems}</ul></dd></dl>`;
}

function rerunForm(ctx: ViewCtx, d: SeriesDetail, rerun: boolean): Html {
  if (!ctx.actions) return html``;
  if (!rerun) return html`<p class="muted">Rerun is not available on this server (no tree configured).</p>`;
  if (!ctx.principal) return html`<p><a href="${paths.login(ctx.here)}">Log in</a> to rerun this series.</p>`;
  return html`<form method="post" action="${paths.rerun(d.series.id)}" class="action" id="rerun-form">${csrfField(ctx)}
<button type="submit" id="rerun">rerun the check</button></form>`;
}

function timeline(d: SeriesDetail): Html {
  const items = d.versions.map(
    (v) => html`<li${v.id === d.series.id ? html` class="current"` : ''}><a href="${paths.series(v.id)}">v${v.version}</a> ${when(v.date)}
${badge(v.lastStatus)} <span class="muted">${v.checks} check(s)${v.complete ? '' : ', incomplete'}</span> — ${v.subject}</li>`,
  );
  return html`<h2>Versions</h2><ol class="timeline">${items}</ol>`;
}

function concernMatrix(d: SeriesDetail): Html {
  if (!d.concerns.length) return html`<h2>Concerns</h2><p class="muted">None on this lineage.</p>`;
  const head = ['concern', 'state', 'rule', 'where', 'finding', ...d.versions.map((v) => (v.id === d.series.id ? html`<strong>v${v.version}</strong>` : `v${v.version}`))];
  const rows = d.concerns.map(
    (c) => html`<tr><td><a href="${paths.concern(c.id)}"><code>${c.id}</code></a></td><td>${badge(c.state)}${c.dismissedWhy ? html`<br><span class="muted">${c.dismissedWhy}</span>` : ''}</td>
<td>${c.rule}</td><td><code>${c.file}</code>${c.function ? html`<br><code>${c.function}()</code>` : ''}</td><td class="msg">${c.message}</td>
${d.versions.map((v) => html`<td>${badge(c.byVersion[v.id])}</td>`)}</tr>`,
  );
  return html`<h2>Concerns by version</h2>${table(head, rows, 'matrix')}`;
}

function replies(d: SeriesDetail): Html {
  if (!d.replies.length) return html`<h2>Replies</h2><p class="muted">No reply decided yet.</p>`;
  const rows = d.replies.map((r) => {
    const gh = safeUrl(r.githubUrl);
    return html`<tr><td>${when(r.decidedAt)}</td><td>v${r.version}</td><td>${r.kind}</td><td>${r.sink}</td><td>${badge(r.state)}${r.lastError ? html`<br><span class="muted">${r.lastError}</span>` : ''}</td>
<td>${r.subject}</td><td><code class="msgid">${r.messageId}</code>${r.sink === 'email' && r.state === 'sent' ? html` <a href="${loreUrl(r.messageId)}" rel="noreferrer">lore</a>` : ''}</td>
<td>${msgid(r.targetMsgid)}</td><td>${gh ? html`<a href="${gh}" rel="noreferrer">comment</a>` : ''}</td><td class="num">${r.revision}</td></tr>`;
  });
  return html`<h2>Replies</h2>${table(['decided', 'version', 'kind', 'sink', 'state', 'subject', 'Message-ID', 'in reply to', 'GitHub', 'rev'], rows, 'replies')}`;
}

export function seriesPage(ctx: ViewCtx, d: SeriesDetail, rerun: boolean): string {
  return page(
    ctx,
    d.series.subject,
    html`${header(d)}${rerunForm(ctx, d, rerun)}${timeline(d)}${concernMatrix(d)}
<h2 id="checks">Checks</h2>${d.checks.length ? d.checks.map((c, i) => checkBlock(c, i === 0)) : html`<p class="muted">Not checked yet.</p>`}
${replies(d)}`,
  );
}
