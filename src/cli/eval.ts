import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { parseCli } from './args.js';
import { Progress } from './progress.js';
import { runEval, formatEval, EVAL_PARTS } from '../eval/run.js';
import { VrError } from '../errors.js';

const CORPUS = fileURLToPath(new URL('../../../shared/corpus/', import.meta.url));
const TREE = fileURLToPath(new URL('../../.cache/linux-6.1', import.meta.url));

/**
 * `vfio-review eval [--tree DIR] [--corpus DIR] [--part threads|applying|patches-in|stable]... [--msgid ID]... [--json]`
 * (default: every part; `--msgid` limits patches-in and stable to the series / fixes holding those Message-IDs).
 */
export async function run(argv: string[]): Promise<number> {
  const { values } = parseCli(argv, {
    tree: { type: 'string' }, corpus: { type: 'string' }, part: { type: 'string', multiple: true }, msgid: { type: 'string', multiple: true },
  });
  const bad = (values.part ?? []).filter((p) => !(EVAL_PARTS as readonly string[]).includes(p));
  if (bad.length) throw new VrError('USAGE', `unknown --part ${bad.join(', ')} (parts: ${EVAL_PARTS.join(', ')})`);
  const corpus = values.corpus ?? CORPUS;
  if (!existsSync(corpus)) throw new VrError('USAGE', `no corpus at ${corpus} (give --corpus DIR)`);
  let tree = values.tree ?? TREE;
  if (!existsSync(tree)) {
    const { initTreeFromDebian } = await import('../apply/tree.js');
    await initTreeFromDebian('linux-source-6.1', tree);
  }
  const bars = new Map<string, Progress>();
  const r = await runEval(corpus, tree, {
    ...(values.part ? { parts: values.part } : {}),
    ...(values.msgid ? { msgids: values.msgid.map((m) => m.replace(/^<|>$/g, '')) } : {}),
    progress: (part, done, total) => {
      let p = bars.get(part);
      if (!p) bars.set(part, (p = new Progress(`eval ${part}`)));
      p.tick(done, total);
      if (done === total) p.done();
    },
  });
  process.stdout.write((values.json ? JSON.stringify(r, null, 1) : formatEval(r)) + '\n');
  return 0;
}
