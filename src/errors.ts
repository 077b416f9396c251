/**
 * The one catalogue of error codes. Every failure vfio-review records or throws
 * carries one of these codes, a human sentence and, where there is one, the
 * failing step and the peer's answer.
 */
export const ERROR_CODES = {
  CONFIG_INVALID: 'the configuration is invalid',
  DB_MIGRATION: 'a database migration could not be applied',
  MAIL_PARSE: 'the message could not be parsed',
  MAIL_NO_HEADERS: 'the message has no header block',
  MBOX_READ: 'the mbox file could not be read',
  MAILDIR_READ: 'the Maildir could not be read',
  IMAP_CONNECT: 'the IMAP server could not be reached or refused the login',
  IMAP_MAILBOX: 'the IMAP mailbox could not be opened',
  IMAP_UIDVALIDITY: 'the IMAP mailbox UIDVALIDITY changed; resyncing',
  IMAP_FETCH: 'an IMAP fetch failed',
  APPLY_TREE: 'the tree is not a usable git repository',
  APPLY_GIT: 'git failed at something other than applying a patch',
  TREE_INIT: 'the kernel tree could not be provisioned',
  NOT_FOUND: 'no such object',
  DAEMON_RUNNING: 'a daemon is already running on this store',
  USAGE: 'the command line is invalid',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class VrError extends Error {
  readonly code: ErrorCode;
  readonly step: string | undefined;
  readonly response: string | undefined;

  constructor(code: ErrorCode, message?: string, opts: { step?: string; response?: string; cause?: unknown } = {}) {
    super(message ?? ERROR_CODES[code], { cause: opts.cause });
    this.name = 'VrError';
    this.code = code;
    this.step = opts.step;
    this.response = opts.response;
  }
}

/** A one-line reason for recording a failure, whatever was thrown. */
export function reasonOf(err: unknown): string {
  if (err instanceof VrError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return `${err.name}: ${err.message}`.slice(0, 2000);
  return String(err).slice(0, 2000);
}
