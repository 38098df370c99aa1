/**
 * @latch/testkit: the conformance suites every Latch adapter runs, and realistic fixtures.
 *
 * Each `describe<Contract>(options)` registers a vitest suite for one contract of
 * `@latch/core`. Atomicity, idempotency and conflict tests always run: no option turns them off.
 */
export {
  type MakeRatedRecordOptions,
  makeCorrection,
  makeObservation,
  makeRatedRecord,
  makeSnapshot,
  uniqueId,
} from "./fixtures.js";
export {
  type ApiKeyStoreInspector,
  type ApiKeyStoreSuiteOptions,
  describeApiKeyStore,
} from "./suites/api-key-store.js";
export { type CreditLedgerSuiteOptions, describeCreditLedger } from "./suites/credit-ledger.js";
export { describeExporter, type ExporterSuiteOptions, type ExportReader } from "./suites/exporter.js";
export type { HoldRetentionOptions, RetainedStore } from "./suites/hold-retention.js";
export {
  describeObservationStore,
  type ObservationStoreInspector,
  type ObservationStoreSuiteOptions,
} from "./suites/observation-store.js";
export { describeQuotaReservator, type QuotaReservatorSuiteOptions } from "./suites/quota.js";
export {
  describeRatedRecordStore,
  type RatedRecordStoreInspector,
  type RatedRecordStoreSuiteOptions,
} from "./suites/rated-record-store.js";
export { describeUsageCounter, type UsageCounterSuiteOptions } from "./suites/usage-counter.js";
export { type SyntheticChangeLog, syntheticChangeLog } from "./synthetic.js";
