import { ensureSystemPackages } from '../../src/util/system-packages.js';

/**
 * The suite uses real parts: Dovecot for IMAP, b4 as the series oracle,
 * public-inbox for the ingest peer. Install them once, idempotently.
 */
export default async function setup(): Promise<void> {
  await ensureSystemPackages(['dovecot-imapd', 'dovecot-lmtpd', 'b4', 'git']);
}
