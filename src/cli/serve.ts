import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { parseCli } from './args.js';
import { openDb } from '../store/db.js';
import { loadConfig } from '../config/load.js';
import { checkSeries } from '../check/check.js';
import { VrError } from '../errors.js';
import { startServer } from '../web/server.js';

const USAGE = 'usage: vfio-review serve [--db PATH] [--port N] [--host 127.0.0.1] [--tree DIR] [--config FILE] [--base URL]';

/**
 * `vfio-review serve`: the dashboard on 127.0.0.1 (port 8080 by default). Reading is public; actions
 * (dismiss, rerun) need VFIO_REVIEW_WEB_TOKEN, and without it the server runs read-only. Rerun needs a
 * tree (--tree or apply.tree). Runs until SIGINT or SIGTERM.
 */
export async function run(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values } = parseCli(argv, {
    port: { type: 'string' }, host: { type: 'string' }, tree: { type: 'string' }, config: { type: 'string' }, base: { type: 'string' },
  });
  const port = values.port === undefined ? 8080 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new VrError('USAGE', `--port must be 0..65535\n${USAGE}`);
  const host = values.host ?? '127.0.0.1';
  const config = loadConfig({ file: values.config, env });
  const token = env.VFIO_REVIEW_WEB_TOKEN?.trim() || null;
  const tree = values.tree ?? config.apply.tree;
  const db = openDb(values.db ?? config.db);
  const log = (line: string): void => void process.stderr.write(`vfio-review serve: ${line}\n`);
  if (!token) log('VFIO_REVIEW_WEB_TOKEN is not set: read-only, dismiss and rerun are disabled');
  else if (token.length < 16) log('VFIO_REVIEW_WEB_TOKEN is shorter than 16 characters; use a long random token');
  if (token && !/^(127\.|::1$|localhost$)/.test(host)) log(`listening on ${host} over plain HTTP: put TLS in front before logging in from elsewhere`);
  if (token && !tree) log('no tree (--tree or apply.tree): rerun is disabled');
  const server = await startServer({
    db, token, host, port,
    // Per process: sessions end at restart, which is the cheapest way to revoke them all.
    csrfSecret: randomBytes(32).toString('base64url'),
    ...(values.base ? { dashboardBase: values.base } : {}),
    ...(token && tree
      ? { rerun: async (id: number) => void (await checkSeries(db, id, { tree: resolve(tree), baseMap: config.apply.baseMap, trigger: 'rerun' })) }
      : {}),
  });
  process.stdout.write(`${server.url}/\n`);
  await new Promise<void>((done) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      done();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await server.close();
  db.close();
  return 0;
}
