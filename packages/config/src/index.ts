/**
 * @latch/config: one configuration loader for Latch. `loadLatchConfig()` reads the `LATCH_*`
 * variables (or the JSON file `LATCH_CONFIG` names), validates them with errors that name the
 * variable, and opens the stores, quota, exporter and ingest log `createLatch` takes.
 */
export { type LatchBackends, loadLatchConfig, openLatchBackends } from "./open.js";
export {
  describeSettings,
  hostOf,
  LATCH_VARIABLES,
  type LatchSettings,
  readLatchSettings,
  STORES,
  type StoreKind,
} from "./settings.js";
