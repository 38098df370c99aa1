/**
 * @latch/testkit: the conformance suites every Latch adapter runs, and realistic fixtures.
 *
 * `runConformance({ name, setup, teardown, suites })` runs a list of suites against one backend;
 * each `<contract>Suite(options)` (e.g. `observationStoreSuite({ create, inspect })`) is one
 * contract of `@latch/core`. Atomicity, idempotency and conflict tests always run: no option
 * turns them off. The `describe<Contract>(options)` functions register one suite on its own.
 */
export {
  type MakeRatedRecordOptions,
  makeCorrection,
  makeObservation,
  makeRatedRecord,
  makeSnapshot,
  uniqueId,
} from "./fixtures.js";
export { type ConformanceOptions, runConformance } from "./run-conformance.js";
export type { ConformanceSuite, DescribeOptions, SuiteOptions } from "./suite.js";
export {
  type ApiKeyStoreInspector,
  type ApiKeyStoreSuiteOptions,
  apiKeyStoreSuite,
  describeApiKeyStore,
} from "./suites/api-key-store.js";
export {
  type CreditLedgerSuiteOptions,
  creditLedgerSuite,
  describeCreditLedger,
} from "./suites/credit-ledger/index.js";
export type { SnapshotLedgerFactory } from "./suites/credit-ledger/snapshots.js";
export {
  describeExporter,
  type ExporterSuiteOptions,
  type ExportReader,
  exporterSuite,
} from "./suites/exporter.js";
export type { HoldRetentionOptions, RetainedStore } from "./suites/hold-retention.js";
export {
  describeObservationStore,
  type ObservationStoreInspector,
  type ObservationStoreSuiteOptions,
  observationStoreSuite,
} from "./suites/observation-store.js";
export {
  describeQuotaReservator,
  type QuotaReservatorSuiteOptions,
  quotaReservatorSuite,
} from "./suites/quota.js";
export {
  QUOTA_PERIOD_CASES,
  type QuotaPeriodHarness,
  type QuotaPeriodOptions,
} from "./suites/quota-periods.js";
export {
  describeRatedRecordStore,
  type RatedRecordStoreInspector,
  type RatedRecordStoreSuiteOptions,
  ratedRecordStoreSuite,
} from "./suites/rated-record-store.js";
export {
  describeUsageCounter,
  type UsageCounterSuiteOptions,
  usageCounterSuite,
} from "./suites/usage-counter.js";
export { type SyntheticChangeLog, syntheticChangeLog } from "./synthetic.js";
