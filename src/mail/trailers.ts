/**
 * Trailer lines (Acked-by:, Reviewed-by:, Fixes:, Cc: stable ...), from a
 * patch's commit message or from the unquoted lines of a reply. Only lines
 * that look like what b4 would accept are taken: a person trailer needs an
 * address, Fixes needs a commit id; nothing is ever invented.
 */

export const TRAILER_NAMES = [
  'Acked-by',
  'Reviewed-by',
  'Tested-by',
  'Reported-by',
  'Suggested-by',
  'Fixes',
  'Cc',
  'Signed-off-by',
  'Co-developed-by',
  'Link',
  'Closes',
] as const;
export type TrailerName = (typeof TRAILER_NAMES)[number];

export interface Trailer {
  name: TrailerName;
  value: string;
}

const BY_LOWER = new Map<string, TrailerName>(TRAILER_NAMES.map((n) => [n.toLowerCase(), n]));
const LINE = /^(?<name>[A-Za-z][A-Za-z-]{1,30}):[ \t]*(?<value>\S.*?)\s*$/;
const PERSON = /^[^<>]*<[^<>\s@]+@[^<>\s]+>$|^[^\s<>@]+@[^\s<>]+$/;
const FIXES = /^[0-9a-f]{8,40}\b/i;

function accept(name: TrailerName, value: string): boolean {
  if (name === 'Fixes') return FIXES.test(value);
  if (name === 'Link' || name === 'Closes') return /^(?:https?:\/\/|<)/.test(value);
  // "Cc: stable@vger.kernel.org # 5.10+" and "Cc: <stable@...>" are common; keep the address part.
  return PERSON.test(value.replace(/\s+#.*$/, ''));
}

/** Trailers of a commit message (origin: the patch). Signed-off-by and Cc are included; callers filter. */
export function parseTrailers(text: string): Trailer[] {
  const out: Trailer[] = [];
  for (const raw of text.split('\n')) {
    const m = LINE.exec(raw);
    if (!m?.groups) continue;
    const name = BY_LOWER.get(m.groups.name!.toLowerCase());
    if (!name) continue;
    const value = m.groups.value!;
    if (accept(name, value)) out.push({ name, value });
  }
  return out;
}

/**
 * Trailers a reviewer gave in a reply: only unquoted lines above the
 * signature, so quoting a patch's own Signed-off-by or a list footer does not
 * count as giving it.
 */
export function parseReplyTrailers(body: string): Trailer[] {
  const lines: string[] = [];
  for (const l of body.replace(/\r\n/g, '\n').split('\n')) {
    if (l === '-- ') break;
    if (/^\s*>/.test(l)) continue;
    lines.push(l);
  }
  return parseTrailers(lines.join('\n')).filter((t) => t.name !== 'Signed-off-by' && t.name !== 'Link');
}

/** Whether a Cc trailer is a stable tag. */
export function isStableCc(t: Trailer): boolean {
  return t.name === 'Cc' && /stable@(?:vger\.)?kernel\.org/i.test(t.value);
}
