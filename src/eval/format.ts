import { table } from '../bench/measure.js';
import type { PatchesInResult } from './patches-in.js';
import type { StableResult } from './stable.js';

/** The patches-in part as text: totals, a row per patch, the noisiest rules, then every finding to judge. */
export function formatPatchesIn(r: PatchesInResult): string {
  const out: string[] = [];
  out.push(
    `patches-in-6.1.192 (merged patches, each series reviewed on the 6.1 tree with the series taken out): ${r.patches} patches in ${r.series} series; ` +
      `${r.reversed} reverse-applied, ${r.reviewed} reviewed with the tree around them; ${r.warnings} warnings, ${r.errors} errors (${r.perPatch.toFixed(3)} per patch)`,
  );
  out.push(table(
    ['series', 'n/m', 'patch (Message-ID)', 'reversed', 'applied', 'W', 'E', 'rules'],
    r.rows.map((p) => [p.series, `${p.n}/${p.total}`, p.msgid, p.reversed, p.applied, p.warnings, p.errors, p.rules.join(' ') || '-']),
  ));
  const noisy = Object.entries(r.perRule).sort((a, b) => b[1].count - a[1].count).slice(0, 10);
  if (noisy.length) {
    out.push('', 'Noisiest rules on merged patches');
    out.push(table(['rule', 'findings', 'examples'], noisy.map(([k, v]) => [k, v.count, v.examples.slice(0, 2).join(' | ').slice(0, 200)])));
  }
  if (r.findings.length) {
    // The corpus holds every version of a series that went in, so one finding often repeats on
    // v1..vN of the same patch: printed once, with every patch it was raised on.
    const groups = new Map<string, { head: string; patches: string[] }>();
    for (const f of r.findings) {
      const head = `- ${f.rule} (${f.severity}) ${f.file}:${f.line}${f.function ? ` in ${f.function}()` : ''}: ${f.message}`;
      const g = groups.get(head) ?? { head, patches: [] };
      g.patches.push(`    patch <${f.patch}> "${f.subject}"`);
      groups.set(head, g);
    }
    out.push('', `Every warning/error on merged patches (each is a real issue that went in, or a false positive): ${r.findings.length} findings, ${groups.size} distinct`);
    for (const g of groups.values()) out.push(g.head, ...g.patches);
  }
  if (r.problems.length) {
    out.push('', 'Series that could not be reviewed as posted');
    for (const p of r.problems) out.push(`- series ${p.series} "${p.subject}": ${p.detail}`);
  }
  return out.join('\n');
}

/** The stable part as text: the classification of every Fixes: patch, hit rate per class, then hits and misses with their findings. */
export function formatStable(r: StableResult): string {
  const out: string[] = [];
  out.push(`Stable fixes among the merged patches: ${r.fixes.length} patches with Fixes: (one per fix; other versions folded), classified by keywords`);
  out.push(table(
    ['class', 'patch (Message-ID)', 'title', 'keywords', 'other versions'],
    [...r.fixes].sort((a, b) => a.class.localeCompare(b.class)).map((f) => [f.class, f.msgid, f.title.slice(0, 70), f.keywords.join(', ').slice(0, 90) || '-', f.otherVersions.length || '-']),
  ));
  out.push('', 'Buggy state reviewed (the fix reversed, posted as a patch on the tree minus the fix\'s later series patches): hit = a warning/error on a changed line, in a changed hunk or in a changed function');
  out.push(table(
    ['class', 'fixes', 'reviewed', 'hits', 'on topic', 'misses', 'hit rate'],
    Object.entries(r.perClass).map(([k, v]) => [k, v.fixes, v.reviewed, v.hits, v.onTopic, v.misses, v.reviewed ? `${Math.round((100 * v.hits) / v.reviewed)}%` : '-']),
  ));
  const reviewed = r.rows.filter((x) => x.outcome === 'hit' || x.outcome === 'miss').length;
  out.push(`overall hit rate: ${(100 * r.hitRate).toFixed(0)}% (${r.rows.filter((x) => x.outcome === 'hit').length}/${reviewed}); on topic: ${r.rows.filter((x) => x.onTopic).length}/${reviewed}`);
  out.push('', table(
    ['outcome', 'class', 'patch (Message-ID)', 'title', '+/-', 'functions', 'nearest finding'],
    r.rows.map((x) => {
      const f = x.findings[0];
      return [
        x.outcome + (x.onTopic ? ' (on topic)' : ''), x.class, x.msgid, x.title.slice(0, 60), `+${x.added}/-${x.removed}`, x.functions.join(' ') || '-',
        f ? `${f.rule}@${f.file.split('/').pop()}:${f.line} (${f.near})` : (x.detail ?? '-'),
      ];
    }),
  ));
  const withFindings = r.rows.filter((x) => x.findings.length);
  if (withFindings.length) {
    out.push('', 'Findings on the buggy states');
    for (const x of withFindings) {
      out.push(`- <${x.msgid}> "${x.title}" (${x.outcome})`);
      for (const f of x.findings) out.push(`    ${f.rule} (${f.severity}, ${f.near}${f.onTopic ? ', on topic' : ''}) ${f.file}:${f.line}: ${f.message}`);
    }
  }
  return out.join('\n');
}
