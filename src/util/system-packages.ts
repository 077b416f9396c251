import { spawnSync } from 'node:child_process';

/** Debian packages a feature needs, keyed by a binary that proves each one is present. */
const PROBES: Record<string, string> = {
  'dovecot-imapd': '/usr/sbin/dovecot',
  'dovecot-lmtpd': '/usr/lib/dovecot/lmtp',
  b4: '/usr/bin/b4',
  git: '/usr/bin/git',
  'public-inbox': '/usr/bin/public-inbox-index',
  chromium: '/usr/bin/chromium',
  'linux-source-6.1': '/usr/src/linux-source-6.1.tar.xz',
  'xz-utils': '/usr/bin/xz',
  perl: '/usr/bin/perl',
};

import { existsSync } from 'node:fs';

function installed(pkg: string): boolean {
  const probe = PROBES[pkg];
  if (probe) return existsSync(probe);
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

let updated = false;

/**
 * Installs missing Debian packages with apt-get (as root, or through sudo when
 * available). Does nothing when everything is present, so it is safe on every run.
 */
export async function ensureSystemPackages(pkgs: string[]): Promise<void> {
  const missing = pkgs.filter((p) => !installed(p));
  if (missing.length === 0) return;
  const asRoot = process.getuid?.() === 0;
  const prefix = asRoot ? [] : ['sudo', '-n'];
  const run = (args: string[]): void => {
    const cmd = [...prefix, ...args];
    const r = spawnSync(cmd[0]!, cmd.slice(1), {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    if (r.status !== 0) throw new Error(`${cmd.join(' ')} failed with status ${r.status}`);
  };
  process.stderr.write(`vfio-review: installing Debian packages: ${missing.join(' ')}\n`);
  if (!updated) {
    run(['apt-get', 'update']);
    updated = true;
  }
  run(['apt-get', 'install', '-y', '--no-install-recommends', ...missing]);
  const still = missing.filter((p) => !installed(p));
  if (still.length) throw new Error(`Debian packages still missing after install: ${still.join(' ')}`);
}
