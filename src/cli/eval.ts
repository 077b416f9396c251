import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { parseCli } from './args.js';
import { runEval, formatEval } from '../eval/run.js';
import { VrError } from '../errors.js';

const CORPUS = fileURLToPath(new URL('../../../shared/corpus/', import.meta.url));
const TREE = fileURLToPath(new URL('../../.cache/linux-6.1', import.meta.url));

/** `vfio-review eval [--tree DIR] [--corpus DIR] [--part threads|applying] [--json]` */
export async function run(argv: string[]): Promise<number> {
  const { values } = parseCli(argv, { tree: { type: 'string' }, corpus: { type: 'string' }, part: { type: 'string', multiple: true } });
  const corpus = values.corpus ?? CORPUS;
  if (!existsSync(corpus)) throw new VrError('USAGE', `no corpus at ${corpus} (give --corpus DIR)`);
  let tree = values.tree ?? TREE;
  if (!existsSync(tree)) {
    const { initTreeFromDebian } = await import('../apply/tree.js');
    await initTreeFromDebian('linux-source-6.1', tree);
  }
  const r = await runEval(corpus, tree, { parts: values.part });
  process.stdout.write((values.json ? JSON.stringify(r, null, 1) : formatEval(r)) + '\n');
  return 0;
}
