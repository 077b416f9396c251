import addressparser from 'nodemailer/lib/addressparser';
import { addressMatches, type ListPolicy, type ListSinkPolicy, type ReportPolicy } from './policy.js';
import { mailbox, safeAddress } from './text.js';

/** The To and Cc of the original message, read from its raw header block (for reply-to-all). */
export function originalRecipients(raw: Buffer | null): string[] {
  if (!raw) return [];
  const text = raw.subarray(0, 256 * 1024).toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const head = (end < 0 ? text : text.slice(0, end)).replace(/\r?\n[ \t]+/g, ' ');
  const out: string[] = [];
  for (const line of head.split(/\r?\n/)) {
    const m = /^(?:to|cc):(?<v>.*)$/i.exec(line);
    if (!m?.groups) continue;
    const flat = (list: ReturnType<typeof addressparser>): string[] =>
      list.flatMap((a) => ('group' in a && a.group ? flat(a.group) : 'address' in a && a.address ? [a.address] : []));
    for (const a of flat(addressparser(m.groups.v!))) {
      const s = safeAddress(a);
      if (s) out.push(s);
    }
  }
  return [...new Set(out)].slice(0, 100);
}

export interface Audience {
  to: string[];
  cc: string[];
  /** Addresses left out, and why: for the dry run and the log. */
  dropped: { address: string; why: 'deny' | 'not-allowed' | 'own' }[];
}

/**
 * To and Cc for one reply under a list's policy for a sink. The author is the series author (the real
 * sender, also for DMARC-rewritten list copies); lists are the opted-in lists' posting addresses. Deny
 * wins over allow; the bot never mails itself.
 */
export function audience(
  policy: ReportPolicy,
  sinkPolicy: ListSinkPolicy,
  lists: readonly ListPolicy[],
  author: { name: string | null; addr: string | null },
  original: readonly string[],
): Audience {
  const own = safeAddress(/<(?<a>[^>]+)>\s*$/.exec(policy.from)?.groups?.a ?? policy.from);
  const authorAddr = safeAddress(author.addr);
  const listAddrs = lists.map((l) => safeAddress(l.address)).filter((a): a is string => a !== null);
  let to: string[] = [];
  let cc: string[] = [];
  if (sinkPolicy.mode === 'author' || sinkPolicy.mode === 'author+list') to = authorAddr ? [authorAddr] : [];
  if (sinkPolicy.mode === 'list') to = listAddrs;
  if (sinkPolicy.mode === 'author+list') cc = [...listAddrs];
  cc.push(...sinkPolicy.cc.map(safeAddress).filter((a): a is string => a !== null));
  if (sinkPolicy.ccOriginal && sinkPolicy.mode !== 'author') cc.push(...original);
  const dropped: Audience['dropped'] = [];
  const keep = (a: string): boolean => {
    if (a === own) return (dropped.push({ address: a, why: 'own' }), false);
    if (policy.deny.some((p) => addressMatches(p, a))) return (dropped.push({ address: a, why: 'deny' }), false);
    if (policy.allow.length && !policy.allow.some((p) => addressMatches(p, a))) {
      return (dropped.push({ address: a, why: 'not-allowed' }), false);
    }
    return true;
  };
  to = [...new Set(to)].filter(keep);
  cc = [...new Set(cc)].filter((a) => !to.includes(a)).filter(keep);
  if (to.length === 0 && cc.length > 0) to = [cc.shift()!];
  const named = (a: string): string => (a === authorAddr ? mailbox(author.name, a) : a);
  return { to: to.map(named), cc: cc.map(named), dropped };
}
