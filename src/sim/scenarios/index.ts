/**
 * The scenario registry: an explicit, sorted list (no directory scanning), one file per scenario,
 * id == file name.
 */
import type { Scenario } from '../model.js';
import { abba } from './abba.js';
import { abbaOpsCallback } from './abba-ops-callback.js';
import { abbaTrylock } from './abba-trylock.js';
import { ccwAvailState } from './ccw-avail-state.js';
import { checkThenAct } from './check-then-act.js';
import { freeWhileInUse } from './free-while-in-use.js';
import { iommuRemoveVsClaimDmaOwner } from './iommu-remove-vs-claim-dma-owner.js';
import { lockRing4 } from './lock-ring-4.js';
import { mlx5MigrationFdVsClose } from './mlx5-migration-fd-vs-close.js';
import { mpPlain } from './mp-plain.js';
import { mpReleaseAcquire } from './mp-release-acquire.js';
import { mpWmbOnly } from './mp-wmb-only.js';
import { mpWmbRmb } from './mp-wmb-rmb.js';
import { sbMb } from './sb-mb.js';
import { sbPlain } from './sb-plain.js';
import { sbSc } from './sb-sc.js';
import { stalePointerRelock } from './stale-pointer-relock.js';
import { type1UnmapVsUnpin } from './type1-unmap-vs-unpin.js';
import { vfioApApmaskVsAssign } from './vfio-ap-apmask-vs-assign.js';
import { vfioCcwProbeVsMdevCreate } from './vfio-ccw-probe-vs-mdev-create.js';

/** Every scenario, sorted by id. */
export const scenarios: readonly Scenario[] = [
  abba,
  abbaOpsCallback,
  abbaTrylock,
  ccwAvailState,
  checkThenAct,
  freeWhileInUse,
  iommuRemoveVsClaimDmaOwner,
  lockRing4,
  mlx5MigrationFdVsClose,
  mpPlain,
  mpReleaseAcquire,
  mpWmbOnly,
  mpWmbRmb,
  sbMb,
  sbPlain,
  sbSc,
  stalePointerRelock,
  type1UnmapVsUnpin,
  vfioApApmaskVsAssign,
  vfioCcwProbeVsMdevCreate,
];

/** The scenario with this id, or undefined. */
export function scenarioById(id: string): Scenario | undefined {
  return scenarios.find((s) => s.id === id);
}
