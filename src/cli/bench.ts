import { parseCli } from './args.js';
import { VrError } from '../errors.js';
import { fileURLToPath } from 'node:url';

const CORPUS = fileURLToPath(new URL('../../../shared/corpus/', import.meta.url));

/** `vfio-review bench [ingest|...] [--mbox FILE]`: figures side by side with the peer tool, one run. */
export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli(argv, { mbox: { type: 'string' } }, true);
  const which = positionals.length ? positionals : ['ingest'];
  for (const name of which) {
    if (name === 'ingest') {
      const { benchIngest } = await import('../bench/ingest.js');
      process.stdout.write((await benchIngest(values.mbox ?? CORPUS + 'vfio-iommu-threads.mbox.gz')) + '\n');
    } else {
      throw new VrError('USAGE', `unknown benchmark '${name}' (have: ingest)`);
    }
  }
  return 0;
}
