import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The shared real-mail corpus, read at run time and never copied into this repository. */
export const CORPUS = fileURLToPath(new URL('../../../shared/corpus/', import.meta.url));
export const HAS_CORPUS = existsSync(CORPUS);
export const corpusFile = (name: string): string => CORPUS + name;
