/**
 * @latch/postgres: Latch's system of record on PostgreSQL and PGlite. Observations, rated
 * records (SQL reports, a change log that never skips), two-phase quota, usage counters and
 * prepaid credits,
 * with shipped SQL migrations applied by {@link migrate} or by your own migration tool.
 */

export { PostgresApiKeyStore } from "./api-key-store.js";
export { type BusyReason, PostgresBusyError } from "./busy-error.js";
export { PostgresCreditLedger, type PostgresCreditLedgerOptions } from "./credit-ledger.js";
export type { GroupCommitOptions } from "./group-commit.js";
export { DEFAULT_POSTGRES_HOLD_RETENTION_MS, type PurgeResolvedHoldsOptions } from "./hold-retention.js";
export { MIGRATIONS, type Migration } from "./migrations/index.js";
export { type MigrateOptions, type MigrateResult, migrate } from "./migrator.js";
export {
  PostgresObservationStore,
  type PostgresObservationStoreOptions,
  type PostgresStoreOptions,
} from "./observation-store.js";
export { type MaintainPartitionsOptions, maintainPartitions } from "./partitions.js";
export {
  fromPglite,
  type PGliteLike,
  type PgliteSessionLike,
  type PoolLike,
  type Queryable,
  type QueryResultLike,
} from "./queryable.js";
export { PostgresQuota, type PostgresQuotaOptions, type SweepExpiredOptions } from "./quota.js";
export { PostgresRatedRecordStore } from "./rated-record-store.js";
export {
  type ApplyRetentionOptions,
  applyRetention,
  type RetentionExport,
  type RetentionMonth,
  type RetentionResult,
} from "./retention.js";
export {
  assertMigrated,
  DEFAULT_SCHEMA,
  quoteSchema,
  REQUIRED_SCHEMA_VERSION,
  schemaVersion,
} from "./schema.js";
export { SchemaIncompatibleError } from "./schema-incompatible-error.js";
export { SchemaNotMigratedError } from "./schema-not-migrated-error.js";
export type { CopyFrom } from "./staged-copy.js";
export type { TransactionOptions } from "./transaction.js";
export { PostgresUsageCounter, type PostgresUsageCounterOptions } from "./usage-counter.js";
