/**
 * Message-ID handling. IDs are kept as written (the local part is case
 * sensitive), without angle brackets or surrounding whitespace.
 */

const BRACKETED = /<(?<id>[^<>\s]+)>/g;

/** The Message-IDs in a header value, in order; bare tokens are accepted when no <...> is present. */
export function extractMsgIds(value: string | undefined | null): string[] {
  if (!value) return [];
  const out: string[] = [];
  for (const m of value.matchAll(BRACKETED)) {
    const id = m.groups!.id!;
    if (id.length <= 998) out.push(id);
  }
  if (out.length > 0) return out;
  // Some MUAs write bare ids; accept a single token that looks like local@domain.
  for (const tok of value.split(/\s+/)) {
    if (/^[^\s@<>()"]+@[^\s@<>()"]+$/.test(tok) && tok.length <= 998) out.push(tok);
  }
  return out;
}

/** One normalised Message-ID or null when the value holds none usable. */
export function normaliseMsgId(value: string | undefined | null): string | null {
  return extractMsgIds(value)[0] ?? null;
}

/** Accepts `<id>`, `id`, or a lore-style URL ending in the id, as typed by a user. */
export function msgIdFromUserInput(input: string): string {
  let s = input.trim();
  const url = /^https?:\/\/[^/]+\/(?:[^/]+\/)?(?<id>[^/]+@[^/]+)\/?/.exec(s);
  if (url?.groups) s = decodeURIComponent(url.groups.id!);
  return s.replace(/^<|>$/g, '');
}
