import { VrError } from '../errors.js';
import { SINK_NAMES, type SinkName } from './types.js';

/** Who a reply goes to: the patch author alone, the author with the list in Cc, or the list alone. */
export type ReplyMode = 'author' | 'author+list' | 'list';

/** How one list is answered through one sink. Present = opted in; absent = muted. */
export interface ListSinkPolicy {
  readonly mode: ReplyMode;
  /** Always Cc'd (a maintainer, a second list). */
  readonly cc: readonly string[];
  /** Reply to all: keep the original To/Cc (kernel custom), minus the bot and denied addresses. */
  readonly ccOriginal: boolean;
}

export interface ListPolicy {
  /** List-Id as stored (`kvm.vger.kernel.org`), or '*' for any list, including mail without List-Id. */
  readonly id: string;
  /** The list's posting address, used for 'list' and 'author+list'. */
  readonly address: string | null;
  /** Most replies per sink per 24 hours to series of this list. */
  readonly perDay: number;
  readonly sinks: Readonly<Partial<Record<SinkName, ListSinkPolicy>>>;
}

/** An IMAP login (Drafts, or the Sent mailbox the email sink checks). Passwords come from the environment. */
export interface ImapLogin {
  readonly host: string;
  readonly port: number;
  readonly secure: boolean;
  readonly user: string;
  readonly pass: string;
  readonly tlsRejectUnauthorized: boolean;
}

export interface EmailSinkConfig {
  readonly host: string;
  readonly port: number;
  /** Implicit TLS (465). Otherwise STARTTLS when offered, or always with requireTLS. */
  readonly secure: boolean;
  readonly requireTLS: boolean;
  readonly ignoreTLS: boolean;
  readonly tlsRejectUnauthorized: boolean;
  readonly auth: { readonly user: string; readonly pass: string } | null;
  /** Also sent (Bcc) to this address, so the copy lands in a mailbox `check` can search. */
  readonly bccSelf: string | null;
  /** Where a delivered reply shows up (Sent, or the bot's inbox through the list); null trusts the outbox. */
  readonly check: (ImapLogin & { readonly mailboxes: readonly string[] }) | null;
  /** See Sink.inDoubtGraceMs. */
  readonly inDoubtGraceMs: number;
}

export interface DraftsSinkConfig {
  readonly imap: ImapLogin;
  readonly mailbox: string;
}

/** The `report` section of the configuration, parsed once. */
export interface ReportPolicy {
  /** The domain of the bot's own Message-IDs; mail from it is never answered. */
  readonly ownDomain: string;
  /** From of every reply, e.g. `vfio-review <vfio-review@example.org>`. */
  readonly from: string;
  readonly dashboardUrl: string | null;
  /** Addresses (or `*@domain`) whose `vfio-review: dismiss` lines are obeyed. */
  readonly commandsFrom: readonly string[];
  /** Send 'clean' replies (nothing found). Off by default: silence is the clean result. */
  readonly clean: boolean;
  readonly defaultSink: SinkName;
  /** Recipients must match one of these when any are given. Deny wins over allow. */
  readonly allow: readonly string[];
  readonly deny: readonly string[];
  readonly lists: readonly ListPolicy[];
  readonly email: EmailSinkConfig | null;
  readonly drafts: DraftsSinkConfig | null;
  /** Directory the stdout sink also writes `<key>.eml` files to; null prints only. */
  readonly filesDir: string | null;
  readonly retry: { readonly maxAttempts: number; readonly baseDelayMs: number; readonly maxDelayMs: number };
}

type Obj = Record<string, unknown>;

const fail = (what: string): never => {
  throw new VrError('CONFIG_INVALID', `report.${what}`);
};
const obj = (v: unknown, what: string): Obj =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : fail(`${what} must be an object`);
const str = (v: unknown, what: string): string => (typeof v === 'string' && v.trim() !== '' ? v.trim() : fail(`${what} must be a string`));
const optStr = (v: unknown, what: string): string | null => (v === undefined || v === null ? null : str(v, what));
const bool = (v: unknown, dflt: boolean, what: string): boolean =>
  v === undefined ? dflt : typeof v === 'boolean' ? v : fail(`${what} must be true or false`);
const num = (v: unknown, dflt: number, what: string): number =>
  v === undefined ? dflt : typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : fail(`${what} must be a number >= 0`);
const names = (v: unknown, what: string): string[] =>
  v === undefined ? [] : Array.isArray(v) && v.every((x) => typeof x === 'string') ? v.map((x: string) => x.trim()) : fail(`${what} must be an array of strings`);
/** Addresses and patterns compare case-insensitively; mailbox names (Sent, Drafts) do not, so they use `names`. */
const strs = (v: unknown, what: string): string[] => names(v, what).map((x) => x.toLowerCase());

function imapLogin(v: unknown, what: string, pass: string | undefined): ImapLogin {
  const o = obj(v, what);
  const secure = bool(o.secure, true, `${what}.secure`);
  if (!pass) throw new VrError('CONFIG_INVALID', `set the password for report.${what} in the environment`);
  return {
    host: str(o.host, `${what}.host`),
    port: num(o.port, secure ? 993 : 143, `${what}.port`),
    secure,
    user: str(o.user, `${what}.user`),
    pass,
    tlsRejectUnauthorized: bool(o.tlsRejectUnauthorized, true, `${what}.tlsRejectUnauthorized`),
  };
}

function listSink(v: unknown, what: string): ListSinkPolicy | undefined {
  if (v === undefined || v === false) return undefined;
  const o = v === true ? {} : obj(v, what);
  const mode = o.mode ?? 'author+list';
  if (mode !== 'author' && mode !== 'author+list' && mode !== 'list') fail(`${what}.mode must be author, author+list or list`);
  return { mode: mode as ReplyMode, cc: strs(o.cc, `${what}.cc`), ccOriginal: bool(o.ccOriginal, true, `${what}.ccOriginal`) };
}

/**
 * Parses the `report` section (see docs/design.md, "Reporter"). Secrets come from the environment:
 * VFIO_REVIEW_SMTP_PASS, VFIO_REVIEW_DRAFTS_PASS, VFIO_REVIEW_SENT_PASS (each falling back to
 * VFIO_REVIEW_IMAP_PASS for the IMAP ones). Everything is muted until a list opts a sink in.
 */
export function loadReportPolicy(json: unknown, env: NodeJS.ProcessEnv = process.env): ReportPolicy {
  const o = json === undefined ? {} : obj(json, '(section) must be an object');
  const from = str(o.from ?? 'vfio-review <vfio-review@localhost>', 'from');
  const ownDomain = str(o.ownDomain ?? /@(?<d>[^>\s]+)>?\s*$/.exec(from)?.groups?.d ?? 'localhost', 'ownDomain').toLowerCase();
  if (!/^[a-z0-9.-]+$/.test(ownDomain)) fail('ownDomain must be a plain domain name');
  const defaultSink = (o.defaultSink ?? 'drafts') as SinkName;
  if (!SINK_NAMES.includes(defaultSink)) fail(`defaultSink must be one of ${SINK_NAMES.join(', ')}`);
  const lists = (o.lists === undefined ? [] : Array.isArray(o.lists) ? o.lists : fail('lists must be an array')).map(
    (l: unknown, i: number): ListPolicy => {
      const x = obj(l, `lists[${i}]`);
      const s = x.sinks === undefined ? {} : obj(x.sinks, `lists[${i}].sinks`);
      const sinks: Partial<Record<SinkName, ListSinkPolicy>> = {};
      for (const [k, v] of Object.entries(s)) {
        if (!SINK_NAMES.includes(k as SinkName)) fail(`lists[${i}].sinks.${k} is not a sink`);
        const p = listSink(v, `lists[${i}].sinks.${k}`);
        if (p) sinks[k as SinkName] = p;
      }
      return {
        id: str(x.id, `lists[${i}].id`).toLowerCase(),
        address: optStr(x.address, `lists[${i}].address`)?.toLowerCase() ?? null,
        perDay: num(x.perDay, 20, `lists[${i}].perDay`),
        sinks,
      };
    },
  );
  let email: EmailSinkConfig | null = null;
  if (o.email !== undefined) {
    const e = obj(o.email, 'email');
    const secure = bool(e.secure, false, 'email.secure');
    const user = optStr(e.user, 'email.user');
    if (user && !env.VFIO_REVIEW_SMTP_PASS) throw new VrError('CONFIG_INVALID', 'set VFIO_REVIEW_SMTP_PASS for report.email.user');
    const check = e.check === undefined ? null : obj(e.check, 'email.check');
    email = {
      host: str(e.host, 'email.host'),
      port: num(e.port, secure ? 465 : 587, 'email.port'),
      secure,
      requireTLS: bool(e.requireTLS, false, 'email.requireTLS'),
      ignoreTLS: bool(e.ignoreTLS, false, 'email.ignoreTLS'),
      tlsRejectUnauthorized: bool(e.tlsRejectUnauthorized, true, 'email.tlsRejectUnauthorized'),
      auth: user ? { user, pass: env.VFIO_REVIEW_SMTP_PASS! } : null,
      bccSelf: optStr(e.bccSelf, 'email.bccSelf'),
      check: check
        ? {
            ...imapLogin(check, 'email.check', env.VFIO_REVIEW_SENT_PASS ?? env.VFIO_REVIEW_IMAP_PASS),
            mailboxes: check.mailboxes === undefined ? ['Sent'] : names(check.mailboxes, 'email.check.mailboxes'),
          }
        : null,
      inDoubtGraceMs: num(e.inDoubtGraceMs, 10 * 60_000, 'email.inDoubtGraceMs'),
    };
  }
  let drafts: DraftsSinkConfig | null = null;
  if (o.drafts !== undefined) {
    const d = obj(o.drafts, 'drafts');
    drafts = {
      imap: imapLogin(d.imap, 'drafts.imap', env.VFIO_REVIEW_DRAFTS_PASS ?? env.VFIO_REVIEW_IMAP_PASS),
      mailbox: typeof d.mailbox === 'string' ? d.mailbox : 'Drafts',
    };
  }
  const r = o.retry === undefined ? {} : obj(o.retry, 'retry');
  return Object.freeze({
    ownDomain,
    from,
    dashboardUrl: optStr(o.dashboardUrl, 'dashboardUrl')?.replace(/\/+$/, '') ?? null,
    commandsFrom: strs(o.commandsFrom, 'commandsFrom'),
    clean: bool(o.clean, false, 'clean'),
    defaultSink,
    allow: strs(o.allow, 'allow'),
    deny: strs(o.deny, 'deny'),
    lists,
    email,
    drafts,
    filesDir: optStr(o.filesDir, 'filesDir'),
    retry: {
      maxAttempts: num(r.maxAttempts, 8, 'retry.maxAttempts'),
      baseDelayMs: num(r.baseDelayMs, 60_000, 'retry.baseDelayMs'),
      maxDelayMs: num(r.maxDelayMs, 6 * 3600_000, 'retry.maxDelayMs'),
    },
  });
}

/** `a@b.org` matches itself; `*@b.org` and `@b.org` match the domain; `*` matches anything. Case-insensitive. */
export function addressMatches(pattern: string, address: string): boolean {
  const p = pattern.trim().toLowerCase();
  const a = address.trim().toLowerCase();
  if (p === '*') return true;
  if (p.startsWith('*@') || p.startsWith('@')) return a.endsWith(p.slice(p.indexOf('@')));
  return p === a;
}

/** The lists a series was posted to that this sink answers, in configuration order ('*' last). */
export function listsFor(policy: ReportPolicy, sink: SinkName, listIds: readonly string[]): ListPolicy[] {
  const ids = new Set(listIds.map((l) => l.toLowerCase()));
  const exact = policy.lists.filter((l) => l.id !== '*' && ids.has(l.id) && l.sinks[sink]);
  const any = policy.lists.filter((l) => l.id === '*' && l.sinks[sink]);
  return [...exact, ...any];
}
