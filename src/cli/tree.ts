import { parseCli } from './args.js';
import { initTreeFromDebian } from '../apply/tree.js';
import { VrError } from '../errors.js';

/** `vfio-review tree init --from-debian linux-source-6.1 DIR`: a kernel git tree from Debian's source package. */
export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli(argv, { 'from-debian': { type: 'string' } }, true);
  const [verb, dir] = positionals;
  if (verb !== 'init' || !dir || !values['from-debian']) {
    throw new VrError('USAGE', 'usage: vfio-review tree init --from-debian linux-source-6.1 DIR');
  }
  const r = await initTreeFromDebian(values['from-debian'], dir);
  process.stdout.write(values.json ? JSON.stringify(r) + '\n' : `${dir}: ${JSON.stringify(r)}\n`);
  return 0;
}
