// Worker entry: module hooks registered on the main thread do not reach a worker's entry module,
// so the worker registers tsx itself, then loads the TypeScript (as src/ingest/parse-worker-entry.mjs).
import { register } from 'tsx/esm/api';

register();
await import('./check-worker.ts');
