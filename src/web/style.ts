/**
 * The one stylesheet, served from /static/style.css. Kept in a module rather than a .css file so the
 * server needs no asset path at run time; the CSP allows styles from 'self' only, so the pages carry
 * no inline style attributes either.
 */
export const STYLE_CSS = `
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #fff; --muted: #687078; --line: #d8dde3; --bad: #b3261e; --good: #1e7b34; --warn: #8a5a00; --code: #f3f5f7; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e8eb; --bg: #14171a; --muted: #9aa3ab; --line: #30363d; --bad: #ff7b72; --good: #56d364; --warn: #e3b341; --code: #1d2227; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { border-bottom: 1px solid var(--line); padding: .5rem 1rem; }
nav a { margin-right: .8rem; } nav .brand { font-weight: 700; } nav .who { float: right; }
main { padding: 1rem; max-width: 100rem; }
a { color: inherit; text-decoration: underline; text-decoration-color: var(--muted); }
h1 { font-size: 1.35rem; margin: .3rem 0 .8rem; overflow-wrap: anywhere; }
h2 { font-size: 1.1rem; margin: 1.4rem 0 .5rem; } h4 { margin: .6rem 0 .3rem; } h5 { margin: .4rem 0 .2rem; font-size: .85rem; }
table { border-collapse: collapse; width: 100%; margin: .3rem 0 1rem; }
th, td { border-bottom: 1px solid var(--line); padding: .3rem .45rem; text-align: left; vertical-align: top; }
th { font-weight: 600; white-space: nowrap; } td.num { text-align: right; } td.msg, .msg { overflow-wrap: anywhere; }
code, pre { font: 12.5px/1.4 ui-monospace, monospace; background: var(--code); }
pre { padding: .5rem .6rem; overflow-x: auto; white-space: pre; border: 1px solid var(--line); }
pre .ln { display: inline-block; width: 3.5em; color: var(--muted); user-select: none; }
pre mark { display: inline-block; min-width: 100%; background: rgba(255, 200, 0, .28); color: inherit; }
pre .hunk { color: var(--muted); }
.muted { color: var(--muted); } .notice { padding: .5rem .7rem; border: 1px solid var(--line); background: var(--code); }
.badge { display: inline-block; padding: 0 .4rem; border-radius: .6rem; border: 1px solid currentColor; font-size: .8rem; white-space: nowrap; }
.b-bad { color: var(--bad); } .b-good { color: var(--good); } .b-warn { color: var(--warn); } .b-muted { color: var(--muted); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; } dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; overflow-wrap: anywhere; }
ul.plain { list-style: none; padding: 0; margin: 0; }
ol.timeline li.current { font-weight: 600; }
form.filters { display: flex; flex-wrap: wrap; gap: .4rem .9rem; align-items: end; margin-bottom: .8rem; }
form.filters label { display: flex; flex-direction: column; font-size: .8rem; color: var(--muted); }
form.action { border: 1px solid var(--line); padding: .6rem .8rem; margin: .8rem 0; max-width: 40rem; }
form.action label { display: block; margin: .3rem 0; } form.action input[type=text], form.action input[type=password], form.action textarea { width: 100%; }
form.inline { display: inline; }
article.finding { border-left: 3px solid var(--line); padding: .1rem .8rem; margin: .7rem 0; }
article.sev-error { border-left-color: var(--bad); } article.sev-warning { border-left-color: var(--warn); }
section.check > details > summary { cursor: pointer; font-weight: 600; padding: .3rem 0; }
`;
