import type { Rule } from './types.js';
import { bugOn } from './bug-on.js';
import { checkThenAct } from './check-then-act.js';
import { errnoContract } from './errno-contract.js';
import { fdLifetime } from './fd-lifetime.js';
import { lockImbalance } from './lock-imbalance.js';
import { lockOrder } from './lock-order.js';
import { plainAccessRace } from './plain-access-race.js';
import { publicationOrder } from './publication-order.js';
import { publishBeforeInit } from './publish-before-init.js';
import { sleepInAtomic } from './sleep-in-atomic.js';
import { staleAfterRelock } from './stale-after-relock.js';
import { trylockEbusy } from './trylock-ebusy.js';
import { uapiAbiBreak } from './uapi-abi-break.js';
import { uapiArgszFlags } from './uapi-argsz-flags.js';
import { uapiExtension } from './uapi-extension.js';
import { uapiFeatureMultiplexer } from './uapi-feature-multiplexer.js';
import { uapiLayout } from './uapi-layout.js';
import { unwindMismatch } from './unwind-mismatch.js';

/** Every rule, sorted by id. Explicit: no directory scanning. */
export const RULES: readonly Rule[] = [
  bugOn,
  checkThenAct,
  errnoContract,
  fdLifetime,
  lockImbalance,
  lockOrder,
  plainAccessRace,
  publicationOrder,
  publishBeforeInit,
  sleepInAtomic,
  staleAfterRelock,
  trylockEbusy,
  uapiAbiBreak,
  uapiArgszFlags,
  uapiExtension,
  uapiFeatureMultiplexer,
  uapiLayout,
  unwindMismatch,
].sort((a, b) => a.id.localeCompare(b.id));
