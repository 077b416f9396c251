import type { Rule } from './types.js';
import { bugOn } from './bug-on.js';

/** Every rule, sorted by id. Explicit: no directory scanning. */
export const RULES: readonly Rule[] = [bugOn].sort((a, b) => a.id.localeCompare(b.id));
