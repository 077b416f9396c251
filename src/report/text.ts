/**
 * Text hygiene for replies: what may reach a header, what may reach the body, and 72-column wrapping.
 * Everything that comes from a patch mail (subjects, names, Message-IDs, identifiers in findings) is
 * untrusted.
 */

export const WIDTH = 72;

// C0 controls, DEL, C1 controls, line/paragraph separators and the bidi overrides that can make a
// header or a quoted line read differently from its bytes ("Trojan Source").
const HEADER_UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;
const BODY_UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;

/**
 * One header value from untrusted text: CR, LF and every other control become a space, runs of
 * space collapse. Folding is left to the MIME composer, which folds at whitespace and encodes
 * non-ASCII per RFC 2047; it must never see a raw CR or LF, or the text could add headers.
 */
export function headerText(s: string, max = 900): string {
  return s.replace(HEADER_UNSAFE, ' ').replace(/\s+/g, ' ').trim().slice(0, max);
}

/** Untrusted text for the body: keeps tabs and newlines (code, traces), drops other controls. */
export function bodyText(s: string): string {
  return s.replace(/\r\n?/g, '\n').replace(BODY_UNSAFE, '');
}

/** "Re: <original subject>", not "Re: Re: ...". */
export function replySubject(original: string): string {
  const s = headerText(original);
  return /^re:/i.test(s) ? s : `Re: ${s}`;
}

/**
 * `<id>` when the id can stand in a Message-ID, In-Reply-To or References header as it is: printable
 * ASCII without spaces, angle brackets or quotes, with one '@'. Otherwise null: a reply that cannot
 * be threaded exactly is not sent at all.
 */
export function msgIdHeader(id: string): string | null {
  const bare = id.replace(/^<|>$/g, '');
  if (bare.length === 0 || bare.length > 250) return null;
  if (!/^[\x21-\x7e]+$/.test(bare) || /[<>"\\()\[\],;]/.test(bare)) return null;
  if (bare.split('@').length !== 2) return null;
  return `<${bare}>`;
}

/** A bare address that may go into To/Cc: local@domain, printable ASCII, no specials beyond '.', '+', '-'. */
export function safeAddress(addr: string | null | undefined): string | null {
  if (!addr) return null;
  const a = addr.trim().toLowerCase();
  return /^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$/.test(a) ? a : null;
}

/** `Name <addr>` with the name made header-safe (the composer quotes and encodes it). */
export function mailbox(name: string | null | undefined, addr: string): string {
  const n = name ? headerText(name, 200).replace(/["\\<>]/g, '') : '';
  return n ? `"${n}" <${addr}>` : addr;
}

/**
 * Wraps one logical line at `width` columns on spaces. Continuation lines keep the line's indentation,
 * plus a hanging indent after a list marker ("- ", "* ", "1. "). A single word longer than the width
 * (a long path, a URL) stays whole: breaking it would make it wrong.
 */
export function wrapLine(line: string, width = WIDTH): string[] {
  if (line.length <= width) return [line];
  const m = /^(?<indent>[ \t]*)(?<marker>(?:[-*]|\d+\.)[ ]+)?/.exec(line)!;
  const indent = m.groups!.indent!;
  const hang = indent + ' '.repeat(m.groups!.marker?.length ?? 0);
  const words = line.slice(indent.length).split(/ +/).filter((w) => w !== '');
  const out: string[] = [];
  let cur = indent;
  let fresh = true;
  for (const w of words) {
    if (!fresh && cur.length + 1 + w.length > width) {
      out.push(cur);
      cur = hang + w;
    } else {
      cur = fresh ? cur + w : `${cur} ${w}`;
    }
    fresh = false;
  }
  out.push(cur);
  return out;
}

/** Wraps every line of a prose block; blank lines stay. */
export function wrap(text: string, width = WIDTH): string {
  return text
    .split('\n')
    .flatMap((l) => wrapLine(l.replace(/[ \t]+$/, ''), width))
    .join('\n');
}

/** Lines of a block that must stay exactly as they are (quoted code, traces) are marked with this prefix while a
 * reply is assembled, so the final pass can tell prose from verbatim text; see `finishBody`. */
export const VERBATIM = '\u0000V';

/** Marks every line of a verbatim block. */
export function verbatim(block: string): string {
  return block
    .split('\n')
    .map((l) => VERBATIM + l)
    .join('\n');
}

/**
 * The last pass over a rendered reply: wraps prose lines (template text and prose values alike) at 72
 * columns, leaves verbatim lines alone and unmarks them, trims trailing blanks and collapses runs of
 * empty lines that empty variables leave behind.
 */
export function finishBody(text: string, width = WIDTH): string {
  const out: string[] = [];
  for (const l of text.split('\n')) {
    if (l.startsWith(VERBATIM)) out.push(l.slice(VERBATIM.length).replace(/\s+$/, ''));
    else if (l === '-- ') out.push(l); // the signature separator keeps its space
    else out.push(...wrapLine(l.replace(/[ \t]+$/, ''), width));
  }
  return (
    out
      .join('\n')
      .replace(/\n{3,}/g, '\n\n')
      .replace(/^\n+/, '')
      .replace(/\n*$/, '\n')
  );
}
