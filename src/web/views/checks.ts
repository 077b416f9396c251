/** One check on the series page: apply attempts per base, per-patch outcome, findings with quoted code and traces. */
import { html, type Html } from './html.js';
import { badge, msgid, table, when } from './layout.js';
import { paths } from '../routes.js';
import type { CheckView, FindingView } from '../data/series.js';
import type { Quote } from '../data/quote.js';

function quote(q: Quote): Html {
  const lines = q.lines.map((l) => {
    const no = html`<span class="ln">${l.no === null ? '' : String(l.no)}</span>`;
    return l.hit ? html`<mark>${no}${l.text}</mark>` : html`${no}${l.text}`;
  });
  // Lines joined with a newline inside <pre>; the text of each line is escaped by `html`.
  return html`<pre class="quote"><span class="hunk">${q.header}${q.section ? ` ${q.section}` : ''}</span>
${lines.map((l, i) => (i === 0 ? l : html`\n${l}`))}</pre>`;
}

function finding(f: FindingView): Html {
  return html`<article class="finding sev-${f.severity === 'error' ? 'error' : f.severity === 'warning' ? 'warning' : 'info'}">
<h4>${badge(f.severity)} <span class="rule">${f.rule}</span> <span class="muted">${f.category}${f.confidence ? `, ${f.confidence} confidence` : ''}</span>
${f.concern ? html` — concern <a href="${paths.concern(f.concern.id)}"><code>${f.concern.id}</code></a> ${badge(f.concern.state)}` : ''}</h4>
<p class="where"><code>${f.file}:${f.line}</code>${f.function ? html` in <code>${f.function}()</code>` : ''} · patch ${msgid(f.patch)}</p>
<p class="msg">${f.message}</p>
${f.quote ? quote(f.quote) : ''}
${f.evidence?.length ? html`<h5>evidence</h5><pre class="evidence">${f.evidence.join('\n')}</pre>` : ''}
${f.suggestion ? html`<p class="suggestion"><strong>suggestion:</strong> ${f.suggestion}</p>` : ''}
${f.trace ? html`<h5>trace</h5><pre class="trace">${f.trace}</pre>` : ''}
</article>`;
}

function attempts(c: CheckView): Html {
  if (!c.attempts.length) return html`<p class="muted">No base was tried.</p>`;
  const rows = c.attempts.map(
    (a) => html`<tr><td><code>${a.ref}</code></td><td><code>${a.commit ? a.commit.slice(0, 12) : '—'}</code></td><td>${a.why}</td>
<td>${badge(a.result)}</td><td>${a.failedPatch ?? ''}</td><td>${a.file ? html`<code>${a.file}</code>` : ''}</td>
<td>${a.detail ?? ''}${a.hunk || a.context ? html`<pre class="context">${a.hunk ?? ''}${a.hunk && a.context ? '\n' : ''}${a.context ?? ''}</pre>` : ''}</td></tr>`,
  );
  return table(['base', 'commit', 'why', 'result', 'failed patch', 'file', 'detail'], rows, 'attempts');
}

function patches(c: CheckView): Html {
  if (!c.patches.length) return html``;
  const rows = c.patches.map(
    (p) => html`<tr><td class="num">${p.index}</td><td>${p.subject ?? ''}</td><td>${badge(p.status)}${p.method ? ` (${p.method})` : ''}</td><td>${p.detail ?? ''}</td></tr>`,
  );
  return html`<details><summary>per patch</summary>${table(['#', 'subject', 'result', 'detail'], rows, 'patches')}</details>`;
}

/** A check as a <details> block; the newest one is open. */
export function checkBlock(c: CheckView, open: boolean): Html {
  return html`<section class="check" id="check-${c.id}"><details${open ? html` open` : ''}>
<summary>check #${c.id} · ${c.trigger} · ${badge(c.status)} · ${c.label} · ${when(c.finishedAt)} · ${c.findings.length} finding(s)</summary>
<p>tree <code>${c.tree}</code>${c.baseRef ? html` · base <code>${c.baseRef}</code> <code>${(c.baseCommit ?? '').slice(0, 12)}</code>` : ''}${c.headCommit ? html` · head <code>${c.headCommit.slice(0, 12)}</code>` : ''}${c.complete ? '' : ' · series incomplete'}</p>
${c.error ? html`<pre class="error">${c.error}</pre>` : ''}
<h4>apply attempts</h4>${attempts(c)}${patches(c)}
<h4>findings</h4>${c.findings.length ? c.findings.map(finding) : html`<p class="muted">None.</p>`}
</details></section>`;
}
