// Child entry of `bench rules`: a plain .mjs so it can register tsx before loading the TS,
// as src/ingest/parse-worker-entry.mjs does. Measured under /usr/bin/time by src/bench/rules.ts.
import { register } from 'tsx/esm/api';

register();
const { childMain } = await import('./rules-pass.ts');
await childMain(process.argv.slice(2));
