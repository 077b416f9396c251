import { createHash } from 'node:crypto';
import type { ReportFinding } from './types.js';

/**
 * The evidence key of a finding: the rule's own `key` when it sets one (lock classes, field, call),
 * otherwise its message with everything that moves between versions taken out: line references,
 * numbers, hex values, whitespace. Identifiers with digits in them (u32, vfio_pci_core_v2) stay.
 */
export function evidenceKey(f: Pick<ReportFinding, 'message' | 'key'>): string {
  if (f.key !== undefined && f.key.trim() !== '') return f.key.trim();
  return f.message
    .replace(/\b(?:lines?|l\.)\s*\d+(?:\s*(?:-|\.\.|to|and)\s*\d+)?/gi, 'line')
    .replace(/(?<=[\w.\-/]):\d+(?::\d+)?\b/g, '')
    .replace(/\b0x[0-9a-f]+\b/gi, '#')
    .replace(/(?<![\w])[-+]?\d+(?:\.\d+)?(?![\w])/g, '#')
    .replace(/\s+/g, ' ')
    .trim()
    .toLowerCase();
}

/**
 * A finding's identity across rebases and new versions: rule, file, function and evidence key. Never
 * the line, the patch's Message-ID or its position in the series, which all change on a reroll.
 */
export function fingerprint(f: Pick<ReportFinding, 'rule' | 'file' | 'function' | 'message' | 'key'>): string {
  return createHash('sha256')
    .update([f.rule, f.file, f.function ?? '', evidenceKey(f)].join('\0'))
    .digest('hex');
}

/** The id a reply shows for the concern: stable for the same lineage key and fingerprint. */
export function publicConcernId(lineageKey: string, fp: string): string {
  return createHash('sha256').update(`${lineageKey}\0${fp}`).digest('hex').slice(0, 12);
}

/** Order-independent digest of a set of fingerprints: "did the findings change?" */
export function digestOf(fingerprints: Iterable<string>): string {
  return createHash('sha256').update([...new Set(fingerprints)].sort().join('\n')).digest('hex').slice(0, 16);
}
