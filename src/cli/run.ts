import { resolve } from 'node:path';
import { parseCli } from './args.js';
import { loadConfig } from '../config/load.js';
import { LOG_LEVELS, type DaemonFlags, type LogLevel } from '../config/daemon.js';
import { VrError } from '../errors.js';
import { Daemon } from '../daemon/daemon.js';
import { daemonLogger } from '../daemon/log.js';

const USAGE = 'usage: vfio-review run --config FILE [--db PATH] [--tree DIR] [--workers N] [--wait-seconds N] [--log-level LEVEL]';

function flagNum(v: string | undefined, flag: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new VrError('USAGE', `--${flag} takes a number >= ${min}, not '${v}'\n${USAGE}`);
  return n;
}

/**
 * `vfio-review run`: the daemon, in the foreground (systemd or a container supervises it). Logs are
 * JSON lines on stderr. SIGTERM or SIGINT: stop taking work, let the checks in hand finish for
 * daemon.shutdownGraceSeconds, release the leases of the rest, exit 0.
 */
export async function run(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values } = parseCli(argv, {
    config: { type: 'string' },
    tree: { type: 'string' },
    workers: { type: 'string' },
    'wait-seconds': { type: 'string' },
    'log-level': { type: 'string' },
  });
  if (!values.config) throw new VrError('USAGE', `give --config FILE\n${USAGE}`);
  const level = values['log-level'];
  if (level !== undefined && !LOG_LEVELS.includes(level as LogLevel)) throw new VrError('USAGE', `--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  const flags: DaemonFlags = {
    ...(values.workers !== undefined ? { workers: flagNum(values.workers, 'workers', 1)! } : {}),
    ...(values['wait-seconds'] !== undefined ? { waitSeconds: flagNum(values['wait-seconds'], 'wait-seconds', 0)! } : {}),
    ...(level !== undefined ? { logLevel: level as LogLevel } : {}),
  };
  const config = loadConfig({ file: values.config, env, flags: { daemon: flags } });
  const tree = values.tree ?? config.apply.tree;
  if (!tree) throw new VrError('USAGE', `give --tree DIR or apply.tree in the configuration\n${USAGE}`);
  const missing = config.daemon.sources.filter((s) => s.passwordMissing).map((s) => `${s.passwordEnv} (source ${s.name})`);
  if (missing.length) throw new VrError('CONFIG_INVALID', `set ${missing.join(', ')} for the IMAP login`);
  if (config.daemon.sources.length === 0) process.stderr.write('vfio-review run: no IMAP source configured (daemon.sources or imap); only queued work and the outbox are served\n');
  const log = daemonLogger(config.daemon.logLevel);
  const daemon = new Daemon({ config, dbPath: resolve(values.db ?? config.db), tree: resolve(tree), log });
  // Listening before start(): a SIGTERM during start-up is a clean stop too, not death by signal.
  const signal = new Promise<NodeJS.Signals>((done) => {
    process.once('SIGTERM', () => done('SIGTERM'));
    process.once('SIGINT', () => done('SIGINT'));
  });
  await daemon.start();
  await daemon.stop(await signal);
  return 0;
}
