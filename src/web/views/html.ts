/**
 * The one way views build markup: `html` escapes every interpolation unless it is already `Html`
 * (markup a view built with `html` itself). `raw()` is the only door for markup that is not escaped;
 * it is reserved for strings the views write themselves, never for anything that came from mail, patches
 * or the store. Rejected: a template engine with auto-escaping and `|safe` filters (a dependency for 30 lines).
 */

/** Markup that is safe to emit as it is. Only `html` and `raw` make one. */
export class Html {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  toString(): string {
    return this.#value;
  }
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

/** Escapes text for element content and for quoted attribute values alike. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"'`]/g, (ch) => ENTITIES[ch]!);
}

/** A value a view may interpolate: text is escaped, Html kept, lists joined, nothing for null/undefined/false. */
export type Interp = Html | string | number | boolean | null | undefined | readonly Interp[];

function render(v: Interp): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof Html) return v.toString();
  if (Array.isArray(v)) return v.map(render).join('');
  return escapeHtml(String(v));
}

/** Tagged template: the literal parts are trusted (written here), every `${}` is escaped. */
export function html(strings: TemplateStringsArray, ...values: Interp[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return new Html(out);
}

/** Trusted markup written by the views themselves. Never pass anything derived from input. */
export function raw(trusted: string): Html {
  return new Html(trusted);
}

/**
 * An href for a link whose target came from data (a GitHub issue url): only http(s) URLs become links,
 * so `javascript:` and `data:` can never be clicked.
 */
export function safeUrl(u: string | null | undefined): string | null {
  if (!u) return null;
  try {
    const p = new URL(u);
    return p.protocol === 'https:' || p.protocol === 'http:' ? p.toString() : null;
  } catch {
    return null;
  }
}

/** lore's redirector for a Message-ID (without the angle brackets). */
export function loreUrl(msgid: string): string {
  // '@' stays literal, as lore's own links write it; everything else that is not URL-safe is encoded.
  return `https://lore.kernel.org/r/${encodeURIComponent(msgid.replace(/^<|>$/g, '')).replace(/%40/g, '@')}`;
}
