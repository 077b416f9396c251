import { parseArgs, type ParseArgsConfig } from 'node:util';
import { VrError } from '../errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/** parseArgs with the options every command shares, and usage errors as VrError('USAGE'). */
export function parseCli<O extends Options>(argv: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({
      args: argv,
      options: { db: { type: 'string' }, json: { type: 'boolean' }, ...options },
      allowPositionals,
      strict: true,
    });
  } catch (err) {
    throw new VrError('USAGE', (err as Error).message);
  }
}
