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
// Only the name is matched by a regex: `(?<value>\S.*?)\s*$` took quadratic time on a line
// with a long run of blanks (found by the robustness campaign); see lineTrailer.
const NAME = /^(?<name>[A-Za-z][A-Za-z-]{1,30}):[ \t]*/;
const PERSON = /^[^<>]*<[^<>\s@]+@[^<>\s]+>$|^[^\s<>@]+@[^\s<>]+$/;
const FIXES = /^[0-9a-f]{8,40}\b/i;

function accept(name: TrailerName, value: string): boolean {
  if (name === 'Fixes') return FIXES.test(value);
  if (name === 'Link' || name === 'Closes') return /^(?:https?:\/\/|<)/.test(value);
  // "Cc: stable@vger.kernel.org # 5.10+" and "Cc: <stable@...>" are common; keep the address part.
  return PERSON.test(withoutComment(value));
}

/**
 * `value` up to the blanks before its first ` #` comment, as `value.replace(/\s+#.*$/, '')`
 * would give, in linear time: that regex retries `\s+` from every blank of a long run and took
 * quadratic time (26 s on 160,000 blanks; found by the robustness campaign).
 */
function withoutComment(value: string): string {
  const hash = value.search(/\s#/);
  if (hash < 0) return value;
  let start = hash;
  while (start > 0 && /\s/.test(value[start - 1]!)) start--;
  return value.slice(0, start);
}

/** Trailers of a commit message (origin: the patch). Signed-off-by and Cc are included; callers filter. */
export function parseTrailers(text: string): Trailer[] {
  const out: Trailer[] = [];
  for (const raw of text.split('\n')) {
    const m = NAME.exec(raw);
    if (!m?.groups) continue;
    const name = BY_LOWER.get(m.groups.name!.toLowerCase());
    if (!name) continue;
    // The value starts with a non-blank, holds no line terminator, and loses its trailing blanks.
    const value = raw.slice(m[0].length).trimEnd();
    if (!/^\S/.test(value) || /[\r\n\u2028\u2029]/.test(value)) continue;
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
