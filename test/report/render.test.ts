import { describe, it, expect } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROMPTS_DIR, loadTemplate, parseTemplate, render } from '../../src/report/render.js';
import { composeReplies, renderRerun, renderUnit, type ComposeInput, type TargetMessage } from '../../src/report/compose.js';
import type { TrackedFinding } from '../../src/report/concerns.js';
import { REPLY_KINDS } from '../../src/report/types.js';
import { finishBody, headerText, replySubject, wrapLine } from '../../src/report/text.js';
import { coreDiff, finding, otherDiff } from './world.js';

const TRACE = `  CPU0                          CPU1
  ----                          ----
  lock(&vdev->igate);
                                lock(&vdev->memory_lock);
  lock(&vdev->memory_lock);     /* a very long trace line that is much wider than seventy-two columns */
                                lock(&vdev->igate);

 *** DEADLOCK ***`;

const p1: TargetMessage = { counter: 1, msgid: 'p1@example.org', subject: '[PATCH v2 1/2] vfio/pci: take igate', title: 'vfio/pci: take igate', diff: coreDiff() };
const p2: TargetMessage = { counter: 2, msgid: 'p2@example.org', subject: '[PATCH v2 2/2] vfio: thing', title: 'vfio: thing', diff: otherDiff() };
const cover: TargetMessage = { counter: 0, msgid: 'c0@example.org', subject: '[PATCH v2 0/2] vfio/pci: igate', title: 'vfio/pci: igate', diff: null };

const tf = (f: ReturnType<typeof finding>, id: string, state: 'new' | 'open'): TrackedFinding => ({
  finding: f, fingerprint: id.repeat(4),
  concern: { id, state, rule: f.rule, category: f.category, file: f.file, function: f.function, message: f.message },
});

function input(over: Partial<ComposeInput> = {}): ComposeInput {
  return {
    series: { id: 7, title: 'vfio/pci: igate around enable, with a title long enough to need wrapping', version: 2, total: 2, cover, patches: [p1, p2] },
    check: {
      status: 'applied', label: 'applied cleanly', tree: '/srv/trees/linux', baseRef: 'vfio/next', baseCommit: '0123456789abcdef0123',
      attempts: [
        { ref: 'vfio/next', commit: '0123456789abcdef0123', why: 'mapped', result: 'applied' },
        { ref: 'base-abc', commit: null, why: 'base-commit', result: 'missing' },
      ],
      failedPatch: null, detail: null, error: null,
    },
    concerns: {
      checkId: 1, seriesId: 7, lineageId: 1, reviewable: true, previousSeriesId: 6,
      raised: [
        tf(finding({ patch: p1.msgid, trace: TRACE }), 'aaaaaaaaaaaa', 'open'),
        tf(finding({ patch: p1.msgid, line: 105, rule: 'lockless-access', confidence: 'low', message: 'vdev->reset_works is written here without memory_lock held for write while vfio_pci_ioctl_reset() reads it under igate alone', evidence: [], suggestion: null }), 'bbbbbbbbbbbb', 'new'),
        tf(finding({ patch: p2.msgid, file: 'drivers/vfio/vfio_main.c', line: 300, function: 'vfio_other', rule: 'refcount', message: 'a reference is dropped twice on the error path', confidence: 'high' }), 'cccccccccccc', 'new'),
      ],
      suppressed: [],
      resolved: [{ id: 'dddddddddddd', state: 'resolved', rule: 'bug-on', category: 'robustness', file: 'drivers/vfio/vfio_main.c', function: 'vfio_x', message: 'BUG_ON() on a condition userspace controls' }],
    },
    previousVersion: 1,
    dashboardUrl: 'https://vfio-review.example.org',
    clean: true,
    ...over,
  };
}

/** Every reply kind rendered from a rich input, so the meta checks below see each template's real output. */
function everyRendering(): { kind: string; text: string }[] {
  const i = input();
  const first = input({ previousVersion: null });
  const failed = input({
    check: { ...i.check, status: 'not-applied', label: 'not applied; the diff alone was reviewed', baseRef: null, baseCommit: null,
      attempts: [{ ref: 'vfio/next', commit: '0123456789abcdef', why: 'mapped', result: 'failed', failedPatch: 1, file: 'drivers/vfio/pci/vfio_pci_core.c', hunk: '@@ -100,6 +100,9 @@', context: '\tint ret;\n\n\tpci_set_power_state(pdev, PCI_D0);', detail: 'error: patch failed' }] },
  });
  const clean = input({ previousVersion: null, concerns: { ...i.concerns, raised: [], resolved: [] } });
  return [
    ...composeReplies(first).map((u) => ({ kind: u.kind, text: u.body })),
    ...composeReplies(i).map((u) => ({ kind: u.kind, text: u.body })),
    ...composeReplies(failed).map((u) => ({ kind: u.kind, text: u.body })),
    ...composeReplies(clean).map((u) => ({ kind: u.kind, text: u.body })),
    { kind: 'rerun', text: renderRerun(i, cover, i.concerns.raised.slice(1), i.concerns.resolved) },
  ];
}

describe('templates', () => {
  it('exist for every reply kind, list every variable they use and use every variable they list', () => {
    const files = readdirSync(PROMPTS_DIR).filter((f) => f.endsWith('.md')).sort();
    expect(files).toEqual([...REPLY_KINDS].map((k) => `${k}.md`).sort());
    for (const k of REPLY_KINDS) expect(Object.keys(loadTemplate(k).variables).length).toBeGreaterThan(1);
  });

  it('fail loudly on a missing, an unknown or an unlisted variable', () => {
    const t = loadTemplate('clean');
    const ok = { series: 's', applied: 'a', footer: 'f' };
    expect(() => render(t, ok)).not.toThrow();
    expect(() => render(t, { series: 's', applied: 'a' })).toThrow(/missing variable\(s\): footer/);
    expect(() => render(t, { ...ok, extra: 'x' })).toThrow(/unknown variable\(s\): extra/);
    expect(() => parseTemplate('---\nkind: clean\nvariables:\n  a: x\n---\n{{a}} {{b}}\n')).toThrow(/\{\{b\}\} is used but not listed/);
    expect(() => parseTemplate('---\nkind: clean\nvariables:\n  a: x\n  b: y\n---\n{{a}}\n')).toThrow(/'b' is listed but never used/);
    expect(() => parseTemplate('no front matter')).toThrow(/front matter/);
    // A value is never expanded again.
    expect(render(t, { ...ok, series: '{{footer}}' })).toContain('{{footer}}');
  });

  it('render every kind', () => {
    expect(new Set(everyRendering().map((r) => r.kind))).toEqual(new Set(REPLY_KINDS));
  });

  it('never carry a trailer, HTML, fake humanity or an over-long prose line, and always show confidence', () => {
    for (const { kind, text } of everyRendering()) {
      expect(text, kind).not.toMatch(/^[A-Z][a-z-]+-by:/m);
      expect(text, kind).not.toMatch(/<\/?(?:html|p|br|div|b|i|a|pre|code)\b[^>]*>/i);
      expect(text, kind).not.toMatch(/\b(?:I think|I believe|Thanks|Thank you|I'm|sorry|Hope)\b/i);
      expect(text, kind).not.toMatch(/\{\{|\}\}/);
      expect(text, kind).not.toMatch(/[\u0000\r]/);
      const traceLines = new Set(TRACE.split('\n'));
      for (const line of text.split('\n')) {
        if (line.length <= 72 || line.startsWith('>') || traceLines.has(line)) continue;
        // A single unbreakable word (a long Message-ID) may overflow; prose may not.
        expect(line.trim().includes(' '), `${kind}: ${line}`).toBe(false);
      }
      if (/\[(?:warning|error|info)\]/.test(text)) expect(text, kind).toMatch(/confidence (?:high|moderate|low|not stated)/);
      expect(text, kind).toMatch(/\n-- \n/);
      expect(text, kind).toContain('vfio-review: dismiss <concern id> <reason>');
      expect(text, kind).toContain('https://vfio-review.example.org/series/7');
    }
  });

  it('quote only the hunk lines a finding concerns, with elisions, and keep traces as they are', () => {
    const units = composeReplies(input());
    const onP1 = units.find((u) => u.target.msgid === p1.msgid)!;
    expect(onP1.kind).toBe('follow-up');
    expect(onP1.body).toContain(
      [
        '> diff --git a/drivers/vfio/pci/vfio_pci_core.c b/drivers/vfio/pci/vfio_pci_core.c',
        '> [ ... ]',
        '> @@ -100,6 +100,9 @@ static int vfio_pci_core_enable(struct vfio_pci_core_device *vdev)',
        '> [ ... ]',
        '>  \tpci_set_power_state(pdev, PCI_D0);',
        '> +\tmutex_lock(&vdev->igate);',
        '> +\tdown_write(&vdev->memory_lock);',
        '',
        '[warning] lock-order, confidence moderate, concern aaaaaaaaaaaa',
        'Still open from v1: vdev->igate is taken before vdev->memory_lock here',
      ].join('\n'),
    );
    expect(onP1.body).toContain(TRACE.split('\n').map((l) => l.trimEnd()).join('\n'));
    // The second finding continues the quote instead of repeating the hunk.
    expect(onP1.body).toContain('> +\tvdev->reset_works = true;\n\n[warning] lockless-access, confidence low, concern bbbbbbbbbbbb\nNew in v2: vdev->reset_works');
    expect(onP1.body).not.toContain('int ret;');
    // A line outside the patch's hunks is named, not quoted.
    const onP2 = units.find((u) => u.target.msgid === p2.msgid)!;
    expect(onP2.body.replace(/\n/g, ' ')).toContain('At drivers/vfio/vfio_main.c:300, vfio_other(), outside the lines this patch changes:');
    expect(onP2.body).not.toMatch(/^> /m);
  });

  it('put the series summary on the cover, with resolved, still open and new', () => {
    const summary = composeReplies(input()).find((u) => u.summary)!;
    expect(summary.target.msgid).toBe(cover.msgid);
    expect(summary.body).toMatch(/Resolved in v2:\n- dddddddddddd bug-on in drivers\/vfio\/vfio_main\.c, vfio_x\(\): BUG_ON\(\)/);
    expect(summary.body).toMatch(/Still open:\n- aaaaaaaaaaaa lock-order/);
    expect(summary.body).toMatch(/New in v2:\n- bbbbbbbbbbbb lockless-access[\s\S]*\n- cccccccccccc refcount/);
    // Without a cover, patch 1 carries the summary and its own findings in one reply.
    const noCover = composeReplies(input({ series: { ...input().series, cover: null } }));
    expect(noCover.map((u) => [u.target.counter, u.summary])).toEqual([[1, true], [2, false]]);
    expect(noCover[0]!.body).toContain('Still open:');
    expect(noCover[0]!.body).toContain('> +\tmutex_lock(&vdev->igate);');
  });

  it('send nothing for a clean result unless asked to', () => {
    const i = input({ previousVersion: null });
    const clean = { ...i, concerns: { ...i.concerns, raised: [], resolved: [] } };
    expect(composeReplies({ ...clean, clean: false })).toEqual([]);
    expect(composeReplies(clean).map((u) => u.kind)).toEqual(['clean']);
    expect(renderUnit('clean', clean, cover, true, [])).toContain('has nothing to report');
  });
});

describe('text hygiene', () => {
  it('keeps CR, LF and controls out of headers and writes Re: once', () => {
    expect(headerText('a\r\nBcc: victim@example.org\u0000\u202e x')).toBe('a Bcc: victim@example.org x');
    expect(replySubject('[PATCH] x\r\nX-Evil: 1')).toBe('Re: [PATCH] x X-Evil: 1');
    expect(replySubject('Re: [PATCH] x')).toBe('Re: [PATCH] x');
  });
  it('wraps at 72 with hanging indents and never breaks a word', () => {
    const long = `- ${'word '.repeat(30)}`.trim();
    const lines = wrapLine(long);
    expect(lines.every((l) => l.length <= 72)).toBe(true);
    expect(lines.slice(1).every((l) => l.startsWith('  word'))).toBe(true);
    expect(wrapLine(`x ${'y'.repeat(100)}`)).toEqual(['x', 'y'.repeat(100)]);
    expect(finishBody('a\n\n\n\nb\n-- \nc')).toBe('a\n\nb\n-- \nc\n');
  });
  it('keeps the committed templates within 72 columns', () => {
    for (const k of REPLY_KINDS) {
      const body = readFileSync(join(PROMPTS_DIR, `${k}.md`), 'utf8').split('\n---\n')[1]!;
      for (const l of body.split('\n')) expect(l.length, `${k}: ${l}`).toBeLessThanOrEqual(72);
    }
  });
});
