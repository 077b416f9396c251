import type { Rule } from './types.js';
import { bugOn } from './bug-on.js';
import { uapiAbiBreak } from './uapi-abi-break.js';
import { uapiArgszFlags } from './uapi-argsz-flags.js';
import { uapiFeatureMultiplexer } from './uapi-feature-multiplexer.js';
import { uapiLayout } from './uapi-layout.js';

/** Every rule, sorted by id. Explicit: no directory scanning. */
export const RULES: readonly Rule[] = [bugOn, uapiAbiBreak, uapiArgszFlags, uapiFeatureMultiplexer, uapiLayout].sort((a, b) =>
  a.id.localeCompare(b.id),
);
