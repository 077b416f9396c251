// Worker entry: module hooks registered on the main thread do not reach a
// worker's entry module, so the worker registers tsx itself, then loads the TS.
import { register } from 'tsx/esm/api';

register();
await import('./parse-worker.ts');
