import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { ensureSystemPackages } from '../../src/util/system-packages.js';

/**
 * A throwaway Dovecot 2.3 for tests: everything under one temp dir, IMAP and LMTP
 * on 127.0.0.1, plaintext auth, Maildir. Shaped after shared/recipes/dovecot-throwaway.sh.
 *
 * The master runs in the foreground (`-F`) as our child rather than daemonized: we
 * learn at once when it exits (a port clash, a config error), and stopping it does
 * not depend on PID 1 reaping a zombie before the pid file check passes.
 */
export interface Dovecot {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly lmtpPort: number;
  readonly dir: string;
  /** user name -> password */
  readonly users: Readonly<Record<string, string>>;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
  /**
   * Stops and starts the server on the same ports and data; every open session is dropped.
   * `whileDown` runs between the two, e.g. to wait until a client has seen the refusal.
   */
  restart(opts?: { whileDown?: () => Promise<unknown> }): Promise<void>;
  /** APPENDs one message (creating the mailbox when absent) and returns its UID. */
  append(user: string, mailbox: string, raw: Buffer | string): Promise<number>;
  /** APPENDs messages in order over one connection; returns their UIDs. */
  appendMany(user: string, mailbox: string, raws: (Buffer | string)[]): Promise<number[]>;
  /**
   * Makes Dovecot give the mailbox a new UIDVALIDITY (and renumber its messages from 1):
   * stops, deletes the folder's dovecot-uidlist and index files, starts again, and
   * checks over IMAP that the value really changed.
   */
  resetUidValidity(user: string, mailbox: string): Promise<{ before: string; after: string }>;
  /** The server log, for failure messages. */
  log(): string;
}

export const DEFAULT_USERS: Readonly<Record<string, string>> = { bot: 'botpass', alice: 'alicepass', list: 'listpass' };

const DOVECOT = '/usr/sbin/dovecot';
const STOP_GRACE_MS = 5_000;
let instances = 0;
// Masters still running when the test process exits are killed, so a crashed test file leaves no daemon behind.
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) signalGroup(child, 'SIGKILL');
});

function signalGroup(proc: ChildProcess, sig: NodeJS.Signals): void {
  try {
    process.kill(-proc.pid!, sig);
  } catch {
    // ESRCH: the group is already gone
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Ready means the IMAP greeting arrived, not just a TCP accept: Dovecot greets only once
 * auth is up, and a SIGTERM before that leaves imap-login waiting 5 s on a stats handshake.
 */
function greets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(2_000, () => done(false));
    sock.on('data', (b: Buffer) => {
      buf += b.toString('latin1');
      if (buf.includes('\r\n')) done(buf.startsWith('* OK'));
    });
    sock.once('error', () => done(false));
    sock.once('end', () => done(false));
  });
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function config(dir: string, imapPort: number, lmtpPort: number, id: string): string {
  const root = process.getuid?.() === 0;
  // As root, mail processes must not run as root (Dovecot refuses), so they use the packaged
  // system users; as anyone else every process runs as the current user.
  const me = userInfo().username;
  const group = root ? 'dovecot' : readGroupName();
  const mailUser = root ? 'dovecot' : me;
  return `instance_name = vr-test-${id}
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/log/dovecot.log
info_log_path = ${dir}/log/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
# a refused login answers at once (default 2 s), so wrong-password tests stay fast
auth_failure_delay = 0
default_login_user = ${root ? 'dovenull' : me}
default_internal_user = ${mailUser}
default_internal_group = ${group}
first_valid_uid = 1
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n ${dir}/passwd
}
userdb {
  driver = static
  args = uid=${mailUser} gid=${group} home=${dir}/mail/%n
}
mail_location = maildir:~/Maildir
mail_fsync = never
namespace inbox {
  inbox = yes
  separator = /
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${imapPort}
  }
  inet_listener imaps {
    port = 0
  }
  # empty chroot here and below: the same config then runs without root
  chroot =
}
service anvil {
  chroot =
  # no per-IP auth penalty: after a wrong-password test every later login from 127.0.0.1
  # would otherwise wait 2-15 s
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service imap-urlauth-login {
  chroot =
}
service auth-worker {
  user = $default_internal_user
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${lmtpPort}
  }
}
protocol lmtp {
  auth_username_format = %n
}
service stats {
  unix_listener stats-reader {
    mode = 0666
  }
  unix_listener stats-writer {
    mode = 0666
  }
}
`;
}

function readGroupName(): string {
  const gid = process.getgid?.() ?? 0;
  for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
    const [name, , id] = line.split(':');
    if (name && Number(id) === gid) return name;
  }
  return String(gid);
}

/** Maildir++ keeps INBOX in the root and `a/b` in `.a.b` (namespace separator `/`, on-disk `.`). */
function folderDir(dir: string, user: string, mailbox: string): string {
  const root = join(dir, 'mail', user, 'Maildir');
  return mailbox.toUpperCase() === 'INBOX' ? root : join(root, `.${mailbox.split('/').join('.')}`);
}

/** Starts a throwaway Dovecot on free loopback ports. Installs the Debian packages when absent. */
export async function startDovecot(opts: { users?: Record<string, string> } = {}): Promise<Dovecot> {
  if (!existsSync(DOVECOT) || !existsSync('/usr/lib/dovecot/lmtp')) {
    await ensureSystemPackages(['dovecot-imapd', 'dovecot-lmtpd']);
  }
  const users = { ...(opts.users ?? DEFAULT_USERS) };
  const dir = await mkdtemp(join(tmpdir(), 'vr-dovecot-'));
  const id = `${process.pid}-${++instances}`;
  await Promise.all(['run', 'state', 'mail', 'log'].map((d) => mkdir(join(dir, d))));
  // Login and auth processes run as dovenull/dovecot when started as root and must traverse the dir.
  await chmod(dir, 0o755);
  if (process.getuid?.() === 0) {
    const pw = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('dovecot:'))?.split(':');
    if (pw) await chown(join(dir, 'mail'), Number(pw[2]), Number(pw[3]));
  }
  await writeFile(join(dir, 'passwd'), Object.entries(users).map(([u, p]) => `${u}:{PLAIN}${p}\n`).join(''));

  let child: ChildProcess | undefined;
  let imapPort = 0;
  let lmtpPort = 0;
  const logPath = join(dir, 'log', 'dovecot.log');
  const log = (): string => (existsSync(logPath) ? readFileSync(logPath, 'utf8') : '');

  /** Starts the master; 'in-use' when a port was taken between probing and binding. */
  const launch = async (): Promise<'up' | 'in-use'> => {
    const proc = spawn(DOVECOT, ['-F', '-c', join(dir, 'dovecot.conf')], {
      stdio: ['ignore', 'ignore', 'pipe'],
      // Its own process group, so stop can signal every Dovecot process at once (see halt).
      detached: true,
    });
    let stderr = '';
    proc.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
    let exited = false;
    proc.once('exit', () => {
      exited = true;
      running.delete(proc);
    });
    running.add(proc);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (exited) {
        const why = `${stderr}\n${log()}`;
        if (/address already in use/i.test(why)) return 'in-use';
        throw new Error(`dovecot exited during start:\n${why}`);
      }
      if (await greets(imapPort)) {
        child = proc;
        return 'up';
      }
      await delay(20);
    }
    signalGroup(proc, 'SIGKILL');
    throw new Error(`dovecot did not accept on ${imapPort} within 10 s:\n${stderr}\n${log()}`);
  };

  const halt = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise<void>((r) => proc.once('exit', () => r()));
    // SIGTERM to the whole group, as systemd does to a unit's cgroup: the master alone leaves
    // its imap processes serving their sessions for seconds, and a restart must drop clients.
    signalGroup(proc, 'SIGTERM');
    const timer = setTimeout(() => signalGroup(proc, 'SIGKILL'), STOP_GRACE_MS);
    await gone;
    clearTimeout(timer);
    // Whatever outlived the master (log, stats) goes now; nothing in the group matters any more.
    signalGroup(proc, 'SIGKILL');
    // The pid file goes last; a start before that reports "already running".
    for (let i = 0; i < 100 && existsSync(join(dir, 'run', 'master.pid')); i++) await delay(20);
    rmSync(join(dir, 'run', 'master.pid'), { force: true });
  };

  try {
    for (let attempt = 0; ; attempt++) {
      imapPort = await freePort();
      lmtpPort = await freePort();
      if (imapPort === lmtpPort) continue;
      await writeFile(join(dir, 'dovecot.conf'), config(dir, imapPort, lmtpPort, id));
      if ((await launch()) === 'up') break;
      if (attempt >= 5) throw new Error(`dovecot: no free port pair after ${attempt + 1} tries`);
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  const session = async <T>(user: string, fn: (c: ImapFlow) => Promise<T>): Promise<T> => {
    const pass = users[user];
    if (pass === undefined) throw new Error(`unknown test user ${user}`);
    const c = new ImapFlow({ host: '127.0.0.1', port: imapPort, secure: false, auth: { user, pass }, logger: false });
    c.on('error', () => undefined); // surfaced through the rejected command instead
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.logout().catch(() => c.close());
    }
  };

  const appendMany = (user: string, mailbox: string, raws: (Buffer | string)[]): Promise<number[]> =>
    session(user, async (c) => {
      if (mailbox.toUpperCase() !== 'INBOX' && !(await c.list()).some((m) => m.path === mailbox)) {
        await c.mailboxCreate(mailbox);
      }
      const uids: number[] = [];
      for (const raw of raws) {
        const r = await c.append(mailbox, raw, ['\\Seen']);
        if (!r || r.uid === undefined) throw new Error(`APPEND to ${mailbox} returned no UID`);
        uids.push(r.uid);
      }
      return uids;
    });

  const uidValidity = (user: string, mailbox: string): Promise<string> =>
    session(user, async (c) => {
      const st = await c.status(mailbox, { uidValidity: true });
      if (!st || st.uidValidity === undefined) throw new Error(`STATUS ${mailbox} gave no UIDVALIDITY`);
      return String(st.uidValidity);
    });

  const restart = async (opts: { whileDown?: () => Promise<unknown> } = {}): Promise<void> => {
    await halt();
    await opts.whileDown?.();
    // Same ports: clients are configured with them. Retry briefly in case a socket still lingers.
    for (let i = 0; (await launch()) === 'in-use'; i++) {
      if (i >= 20) throw new Error(`dovecot: port ${imapPort} stayed busy across restart`);
      await delay(100);
    }
  };

  return {
    host: '127.0.0.1',
    port: imapPort,
    lmtpPort,
    dir,
    users,
    log,
    restart,
    appendMany,
    append: async (user, mailbox, raw) => (await appendMany(user, mailbox, [raw]))[0]!,
    async resetUidValidity(user, mailbox) {
      const before = await uidValidity(user, mailbox);
      await halt();
      const folder = folderDir(dir, user, mailbox);
      for (const f of readdirSync(folder)) {
        if (f === 'dovecot-uidlist' || f.startsWith('dovecot.index')) rmSync(join(folder, f), { force: true });
      }
      await restart();
      const after = await uidValidity(user, mailbox);
      if (after === before) throw new Error(`UIDVALIDITY of ${user}/${mailbox} stayed ${before}`);
      return { before, after };
    },
    async stop() {
      await halt();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
