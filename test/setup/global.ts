import { ensureSystemPackages } from '../../src/util/system-packages.js';

/**
 * The suite uses real parts: Dovecot for IMAP, b4 as the series oracle, git,
 * and Debian's linux-source-6.1 as the kernel tree (turned into a git tree once,
 * into .cache/, by test/helpers/kernel-tree.ts). Install them once, idempotently.
 */
export default async function setup(): Promise<void> {
  await ensureSystemPackages(['dovecot-imapd', 'dovecot-lmtpd', 'b4', 'git', 'xz-utils', 'perl', 'linux-source-6.1']);
}
