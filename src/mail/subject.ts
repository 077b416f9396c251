/** What a subject line announces, decided in the order reply > pull > cover/patch > other. */
export type SubjectKind = 'patch' | 'cover' | 'reply' | 'pull' | 'other';

/**
 * A subject line read with b4's `LoreSubject` grammar (`[PATCH vN m/n]` and friends). Every value that a
 * subject may leave out carries a `*Stated` flag, so callers can tell "v1 because it said v1" from "v1
 * because it said nothing".
 */
export interface ParsedSubject {
  kind: SubjectKind;
  /** The subject without reply markers and leading bracket groups, whitespace collapsed and trimmed. */
  title: string;
  /** Tokens of the leading bracket groups that are not grammar words, as written, in order. */
  prefixes: string[];
  /** The N of vN; 1 when not stated. */
  version: number;
  versionStated: boolean;
  /** The m of m/n (0 is the cover letter) and its n; 1/1 when not stated. Recorded as written, even m > n. */
  counter: number;
  total: number;
  counterStated: boolean;
  rfc: boolean;
  resend: boolean;
}

// Control characters (NUL, folded CR/LF/TAB, C1) are treated as whitespace: a title is a display and
// lineage key, and a NUL in it would only break SQLite text and terminal output further down.
const SPACE_RUN = /[\p{Cc}\s]+/gu;
// Sticky so the engine tries position 0 only, whatever the length of the input.
const REPLY = /(?:(?:re|aw|fwd?) ?: ?)+/iy;
// b4 caps counters and versions at four digits; a longer run is a prefix, not a series counter.
const COUNTER = /^(?<counter>\d{1,4})\/(?<total>\d{1,4})$/;
const VERSION = /^v(?<version>\d{1,4})$/i;
// "[PATCHv5 2/2]" is common enough that b4 special-cases it; RFCv2 and RESENDv2 occur too.
const GLUED = /^(?<word>patch|rfc|resend)(?<version>v\d{1,4})$/i;
const PATCH_WORD = /^patch(?:es)?$/i;
const RFC_WORD = /^rfc$/i;
const RESEND_WORD = /^resend$/i;
const PULL_WORD = /^pull$/i;
// Only meaningful inside a group that also says PULL: "[GIT PULL]", "[PULL REQUEST]".
const PULL_FILLER = /^(?:git|request)$/i;

interface Group {
  body: string;
  end: number;
}

/**
 * Reads the bracket group starting at `start` (which must be '['), tolerating nested brackets the way b4
 * does by flattening them ("[PATCH [v2] 1/3]"). Returns null when the group never closes, so that a
 * truncated "[PATCH v2 foo" stays part of the title.
 */
function readGroup(s: string, start: number): Group | null {
  let depth = 0;
  for (let i = start; i < s.length; i++) {
    const ch = s[i];
    if (ch === '[') depth++;
    else if (ch === ']' && --depth === 0) {
      return { body: s.slice(start + 1, i).replace(/[[\]]/g, ' '), end: i + 1 };
    }
  }
  return null;
}

function tokens(body: string): string[] {
  // git format-patch --subject-prefix sometimes yields "PATCH,v2,1/3"; b4 only strips commas at the edges.
  const out: string[] = [];
  for (const raw of body.split(/[\s,;]+/)) {
    if (raw === '') continue;
    const glued = GLUED.exec(raw);
    if (glued?.groups) out.push(glued.groups.word!, glued.groups.version!);
    else out.push(raw);
  }
  return out;
}

/** Collapses whitespace and control characters to single spaces and trims. */
function collapse(s: string): string {
  return s.replace(SPACE_RUN, ' ').trim();
}

/**
 * Parses a decoded Subject header. Never throws; runs in time linear in the input. Unlike b4, a reply's
 * bracket tag is still parsed (b4 stops at "Re:"), so a reply can be matched to the patch it answers.
 */
export function parseSubject(subject: string): ParsedSubject {
  const s = collapse(typeof subject === 'string' ? subject : '');
  const out: ParsedSubject = {
    kind: 'other',
    title: '',
    prefixes: [],
    version: 1,
    versionStated: false,
    counter: 1,
    total: 1,
    counterStated: false,
    rfc: false,
    resend: false,
  };

  REPLY.lastIndex = 0;
  const reply = REPLY.exec(s);
  let pos = reply ? reply[0].length : 0;
  let patchTag = false;
  let pull = false;

  while (s[pos] === '[') {
    const group = readGroup(s, pos);
    if (!group) break;
    pos = group.end;
    if (s[pos] === ' ') pos++;

    const words = tokens(group.body);
    const isPull = words.some((w) => PULL_WORD.test(w));
    pull ||= isPull;
    for (const word of words) {
      const counter = COUNTER.exec(word)?.groups;
      const version = VERSION.exec(word)?.groups;
      // The first stated value wins: in "[PATCH 1/2] [v2]" the first group is the tag and later groups only
      // fill in what it left out.
      if (counter) {
        patchTag = true;
        if (!out.counterStated) {
          out.counter = Number(counter.counter);
          out.total = Number(counter.total);
          out.counterStated = true;
        }
      } else if (version) {
        if (!out.versionStated) {
          out.version = Number(version.version);
          out.versionStated = true;
        }
      } else if (PATCH_WORD.test(word)) {
        patchTag = true;
      } else if (RFC_WORD.test(word)) {
        out.rfc = true;
        patchTag = true;
      } else if (RESEND_WORD.test(word)) {
        out.resend = true;
        patchTag = true;
      } else if (PULL_WORD.test(word) || (isPull && PULL_FILLER.test(word))) {
        // grammar of a pull request tag, not a prefix
      } else {
        out.prefixes.push(word);
      }
    }
  }

  out.title = s.slice(pos).trim();
  if (reply) out.kind = 'reply';
  else if (pull) out.kind = 'pull';
  else if (patchTag) out.kind = out.counterStated && out.counter === 0 ? 'cover' : 'patch';
  return out;
}

// RESEND/REPOST/RFC leading the title text itself ("[PATCH] RESEND: vfio: foo"). Upper case alone is
// enough; in other cases a colon is required so that a title like "Resend queued irqs" survives.
const LEAD_UPPER = /(?:RESEND|REPOST|RFC)(?: ?:)?(?: |$)/y;
const LEAD_COLON = /(?:resend|repost|rfc) ?: ?/iy;
const TRAIL_MARK = /^(?<head>.*?) ?[[(](?:v\d{1,4}|resend)[\])]$/is;
// Longest trailing marker plus slack: matching only this window keeps the lazy head from going quadratic.
const TRAIL_WINDOW = 16;

function stickyLength(re: RegExp, s: string, at: number): number {
  re.lastIndex = at;
  return re.exec(s)?.[0].length ?? 0;
}

/**
 * Key for matching versions of one series: the parsed title (so a whole subject may be passed), NFC,
 * lower case, whitespace collapsed, leading RESEND/REPOST/RFC markers (and bracket groups they uncover)
 * removed, trailing "[v2]"/"(resend)" markers and dots removed. Idempotent; never throws.
 */
export function normaliseTitle(title: string): string {
  const t = parseSubject(title).title;
  let start = 0;
  for (;;) {
    const group = t[start] === '[' ? readGroup(t, start) : null;
    // Bracket groups and reply markers uncovered by a stripped RESEND would be stripped by a second pass.
    const n = group
      ? group.end - start + (t[group.end] === ' ' ? 1 : 0)
      : stickyLength(LEAD_UPPER, t, start) ||
        stickyLength(LEAD_COLON, t, start) ||
        stickyLength(REPLY, t, start);
    if (n === 0) break;
    start += n;
  }
  let end = t.length;
  for (;;) {
    while (end > start && (t[end - 1] === '.' || t[end - 1] === ' ')) end--;
    const from = Math.max(start, end - TRAIL_WINDOW);
    const head = TRAIL_MARK.exec(t.slice(from, end))?.groups?.head;
    if (head === undefined) break;
    end = from + head.length;
  }
  // NFC last: lower-casing can itself produce unnormalised sequences.
  return t.slice(start, end).toLowerCase().normalize('NFC');
}
