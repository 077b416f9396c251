import { parseCli } from './args.js';
import { VrError } from '../errors.js';

/** What `bench rules|sim|e2e` modules receive. */
export interface BenchOptions {
  /** The 6.1 kernel tree (a git repository). */
  tree: string;
  /** ../shared/corpus (may be absent: say so and skip the corpus part). */
  corpus: string;
  /** Progress to stderr. */
  log(line: string): void;
}
import { fileURLToPath } from 'node:url';

const CORPUS = fileURLToPath(new URL('../../../shared/corpus/', import.meta.url));
const TREE = fileURLToPath(new URL('../../.cache/linux-6.1', import.meta.url));

/**
 * `vfio-review bench [ingest|apply|rules|sim|e2e ...] [--mbox FILE]`: figures side by side with the peer tool, one run.
 * `apply` also takes `--tree DIR` (default: the project's .cache/linux-6.1, provisioned when missing),
 * `--limit N` (first N series) and `--sample N` (series for the worktree + git am way, default 10).
 */
export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli(
    argv,
    { mbox: { type: 'string' }, tree: { type: 'string' }, limit: { type: 'string' }, sample: { type: 'string' } },
    true,
  );
  const which = positionals.length ? positionals : ['ingest'];
  for (const name of which) {
    if (name === 'ingest') {
      const { benchIngest } = await import('../bench/ingest.js');
      process.stdout.write((await benchIngest(values.mbox ?? CORPUS + 'vfio-iommu-threads.mbox.gz')) + '\n');
    } else if (name === 'apply') {
      const { benchApply } = await import('../bench/apply.js');
      const count = (v: string | undefined, flag: string): number | undefined => {
        if (v === undefined) return undefined;
        if (!/^[1-9]\d*$/.test(v)) throw new VrError('USAGE', `--${flag} takes a positive number, not '${v}'`);
        return Number(v);
      };
      let tree = values.tree;
      if (!tree) {
        const { initTreeFromDebian } = await import('../apply/tree.js');
        tree = (await initTreeFromDebian('linux-source-6.1', TREE)).dir;
      }
      const log = (l: string): void => void process.stderr.write(`bench apply: ${l}\n`);
      const opts = { tree, log, limit: count(values.limit, 'limit'), sample: count(values.sample, 'sample') };
      process.stdout.write((await benchApply(values.mbox ?? CORPUS + 'patches-applying-6.1.192.mbox.gz', opts)) + '\n');
    } else if (name === 'rules' || name === 'sim' || name === 'e2e') {
      // Each of these lives in src/bench/<name>.ts and exports `bench(opts): Promise<string>` (the printed table).
      let tree = values.tree;
      if (!tree) {
        const { initTreeFromDebian } = await import('../apply/tree.js');
        tree = (await initTreeFromDebian('linux-source-6.1', TREE)).dir;
      }
      const log = (l: string): void => void process.stderr.write(`bench ${name}: ${l}\n`);
      const mod = (await import(`../bench/${name}.js`)) as { bench(o: BenchOptions): Promise<string> };
      process.stdout.write((await mod.bench({ tree, corpus: CORPUS, log })) + '\n');
    } else {
      throw new VrError('USAGE', `unknown benchmark '${name}' (have: ingest, apply, rules, sim, e2e)`);
    }
  }
  return 0;
}
