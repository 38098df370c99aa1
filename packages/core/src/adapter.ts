/**
 * @latch/core/adapter: the kit for packages that implement or extend Latch's contracts —
 * storage backends, exporters, the CLI, the HTTP API, the testkit.
 *
 * The contracts (`ObservationStore`, `RatedRecordStore`, `QuotaReservator`, `UsageCounter`,
 * `RatedRecordExporter`, `CreditLedger`, `ApiKeyStore`) and the types their methods take and
 * return; the zod input schemas every backend parses with, so all of them refuse the same
 * input; canonical hashing for idempotency; the credit engine and the request checks every
 * ledger makes the same way; price resolution. An application needs none of it: the root
 * (`@latch/core`) is its API. Listed in the README ("The adapter kit").
 */
export type {
  ApiKeyPage,
  ApiKeyStore,
  StoredApiKey,
} from "./api-keys/contract.js";
export { API_KEY_DIGEST, ApiKeyHasher } from "./api-keys/digest.js";
export {
  API_KEY_MODES,
  type ApiKeyMode,
  generateApiKeyId,
  type ParsedApiKey,
  parseApiKey,
} from "./api-keys/format.js";
export {
  API_KEY_SCOPES,
  ApiKeyDigestSchema,
  ApiKeyIdSchema,
  ApiKeyInstantSchema,
  type ApiKeyListOptions,
  ApiKeyListOptionsSchema,
  type ApiKeyQuota,
  ApiKeyQuotaSchema,
  type ApiKeyRecordInput,
  ApiKeyRecordSchema,
  ApiKeyScopeSchema,
  apiKeyQuotaAccount,
  apiKeyQuotaUnits,
  IntervalMsSchema,
  MONEY_QUOTA_SCALE,
  type NewApiKey,
  type NewApiKeyInput,
  NewApiKeySchema,
} from "./api-keys/schemas.js";
export {
  isTestModeTenant,
  TEST_MODE_TENANT_MAX,
  TEST_MODE_TENANT_PREFIX,
  testModeSubject,
} from "./api-keys/test-mode.js";
export {
  type ChangeLogHolder,
  type ChangeLogStatus,
  type ChangeLogStatusQuery,
  DEFAULT_CHANGE_LOG_COUNT_LIMIT,
  parseChangeLogStatusQuery,
} from "./contracts/change-log-status.js";
export { supersededCurrencyMismatch } from "./contracts/currency-chain.js";
export type {
  BatchIntent,
  ExportResult,
  PreviousVersionLookup,
  RatedRecordExporter,
} from "./contracts/exporter.js";
export {
  canonicalHash,
  canonicalJson,
  hashCanonicalJson,
  observationCanonicalJson,
  observationHash,
  ratedRecordHash,
} from "./contracts/hashing.js";
export {
  DEFAULT_MEMORY_HOLD_RETENTION_MS,
  HoldRetentionMsSchema,
  parseHoldRetentionMs,
} from "./contracts/hold-retention.js";
export {
  ChangeLogLimitSchema,
  ConsumerNameSchema,
  CounterKeySchema,
  CounterOpIdSchema,
  CounterPeriodSchema,
  counterOpConflict,
  EventIdListSchema,
  isQuotaName,
  isQuotaUnits,
  ListUnpricedOptionsSchema,
  parseCounterAddOptions,
  parseObservationBatch,
  QuotaActualSchema,
  QuotaAmountSchema,
  QuotaLimitSchema,
  QuotaNameSchema,
  RatedRecordIdSchema,
} from "./contracts/inputs.js";
export type { AppendResult, ObservationStore } from "./contracts/observation-store.js";
export {
  type CounterAddOptions,
  DEFAULT_COUNTER_OP_RETENTION_MS,
  type QuotaAuthorizer,
  type QuotaBalance,
  type QuotaReservator,
  type ReserveRequest,
  type ReserveResult,
  type SetLimitOptions,
  type UsageCounter,
} from "./contracts/quota.js";
/** Budget periods of quota accounts: calendar (time-zone exact) and rolling (see the module). */
export {
  parseQuotaPeriod,
  parseSetLimitOptions,
  QUOTA_ROLLING_BUCKETS,
  QUOTA_ROLLING_MAX_MS,
  type QuotaCalendarPeriod,
  type QuotaPeriod,
  QuotaPeriodSchema,
  type QuotaRollingPeriod,
  quotaPeriodBounds,
  quotaRollingBucketMs,
  quotaRollingEntryAt,
  type StoredQuotaPeriod,
  samePeriod,
} from "./contracts/quota-period.js";
export type { ChangeLogEntry, PutResult, RatedRecordStore } from "./contracts/rated-record-store.js";
export type { RecordWriteResult, RecordWriter } from "./contracts/record-writer.js";
/** The reserve request of a hold and its ttlMs limit, one check for every backend (see the module). */
export {
  HOLD_TTL_MAX_MS,
  HoldTtlSchema,
  isReserveRequest,
  parseReserveRequest,
  ReserveRequestSchema,
} from "./contracts/reserve-request.js";
/** The rated-record version chain, one rule for every `RatedRecordStore` (see the module). */
export {
  checkVersionChain,
  checkVersionShape,
  supersededId,
  supersededNotStored,
} from "./contracts/version-chain.js";
export { addCalendar, EXPIRATION_UNITS, type ExpirationUnit, isTimeZone } from "./credits/calendar.js";
export type {
  CreditAllocation,
  CreditBalance,
  CreditCommitResult,
  CreditFeatureBalance,
  CreditGrant,
  CreditGrantBalance,
  CreditHistoryEntry,
  CreditHistoryPage,
  CreditLedger,
  CreditLedgerPage,
  CreditPeriod,
  CreditReserveResult,
  CreditUsageResult,
} from "./credits/contract.js";
export {
  allocationOf,
  balanceAt,
  CREDIT_SCALE,
  enforcementCheck,
  fromCreditUnits,
  type GrantFact,
  grantFact,
  type HoldFact,
  heldAvailability,
  historyPage,
  holdCheck,
  type LedgerFacts,
  type LedgerSnapshot,
  type SnapshotCapture,
  snapshotsAlong,
  toCreditUnits,
  type UsageFact,
  withHolds,
} from "./credits/engine.js";
export {
  assertNotBeforeHighWatermark,
  assertSameBody,
  assertUsageAmountFits,
  buildGrant,
  ledgerListPage,
  parseCreditCommit,
  parseCreditFeature,
  parseCreditGrant,
  parseCreditHistoryQuery,
  parseCreditLedger,
  parseCreditLedgerListQuery,
  parseCreditReserve,
  parseCreditReset,
  parseCreditUsage,
  parseCreditVoid,
  parseFeatureIdArg,
  parseHoldIdArg,
  parseLedgerIdArg,
  parseTimeArg,
  unknownId,
  usageDecision,
  voidHash,
} from "./credits/requests.js";
export {
  CreditAmountSchema,
  type CreditCommitInput,
  CreditCommitSchema,
  type CreditExpiration,
  CreditExpirationSchema,
  type CreditFeature,
  type CreditFeatureInput,
  CreditFeatureSchema,
  type CreditGrantInput,
  type CreditGrantRequest,
  CreditGrantSchema,
  type CreditHistoryQuery,
  CreditHistoryQuerySchema,
  CreditHoldTtlSchema,
  CreditIdSchema,
  type CreditLedgerInfo,
  type CreditLedgerInput,
  type CreditLedgerListQuery,
  CreditLedgerListQuerySchema,
  CreditLedgerSchema,
  CreditPrioritySchema,
  type CreditReserveInput,
  CreditReserveSchema,
  type CreditResetInput,
  CreditResetSchema,
  type CreditRollover,
  CreditRolloverSchema,
  CreditSubjectFilterSchema,
  CreditUsageAmountSchema,
  type CreditUsageInput,
  CreditUsageSchema,
  CreditUsageVersionSchema,
  type CreditVoidInput,
  CreditVoidSchema,
} from "./credits/schemas.js";
export {
  DEFAULT_SNAPSHOT_EVERY,
  DEFAULT_SNAPSHOT_KEEP_NEWEST,
  DEFAULT_SNAPSHOT_SPARSE_FACTOR,
  decodeLedgerSnapshot,
  dropSnapshotsAfter,
  encodeLedgerSnapshot,
  parseSnapshotEvery,
  parseSnapshotThinning,
  snapshotAtOrBefore,
  snapshotsToThin,
  THINNING_WINDOW,
  type ThinningRule,
  thinAfterWrite,
  voidChangesFrom,
} from "./credits/snapshots.js";
/** Error classes by code, for adapters that add codes of their own (see `LatchError.is`). */
export type { ExportErrorKind, LatchErrorClasses, LatchErrorOptions } from "./errors/index.js";
/** The record path of an ingest worker reading an `IngestLog` (the contract is in the root; see `@latch/nats`). */
export {
  createIngestRecorder,
  type IngestRecorder,
  type IngestRecorderConfig,
} from "./facade/ingest.js";
export { CurrencyCodeSchema, isCurrencyCode } from "./money/currency.js";
export { canonicalDecimal } from "./money/decimal.js";
export {
  type CachedAudioSourceFacts,
  cachedAudioAsCachedText,
  type ImportedPriceSchedule,
} from "./pricing/cached-audio.js";
export { compileSnapshot } from "./pricing/compiled-snapshot.js";
export {
  LITELLM_SKIP_KINDS,
  LITELLM_SKIP_REASONS,
  type LiteLLMServiceTier,
  type LiteLLMSkipCode,
  type LiteLLMSkipKind,
  type LiteLLMSkippedField,
} from "./pricing/litellm.js";
export { MODEL_MATCH_RULES, type ModelMatchRule } from "./pricing/model-match.js";
export {
  modelMatchOf,
  type PriceRequest,
  type PriceResolution,
  type PriceUnpricedReason,
  resolvePriceFrom,
  snapshotPricesTier,
} from "./pricing/resolution.js";
export type { RatingEngine } from "./rating/engine.js";
export { isSealedRecord } from "./rating/sealed-record.js";
export { selectLines } from "./reports/lines.js";
/** The lines order and page cursor, one format for every `RatedRecordStore` (see the module). */
export {
  compareLinesSortKeys,
  decodeLinesCursor,
  encodeLinesCursor,
  type LinesSortKey,
} from "./reports/lines-cursor.js";
export {
  FILTER_KEYS,
  type FilterKey,
  LinesQuerySchema,
  SUMMARY_GROUP_KEYS,
  type SummaryGroupKey,
  SummaryQuerySchema,
} from "./reports/query.js";
/** The report token groupings, one definition for every backend and the HTTP API (see the module). */
export { TOKEN_GROUP_NAMES, TOKEN_GROUPS, type TokenGroup, tokenGroupsOf } from "./reports/token-groups.js";
export {
  type BillingSubjectInput,
  BillingSubjectSchema,
  type CorrelationIds,
  CorrelationIdsSchema,
  EventIdSchema,
  isWellFormedText,
  WellFormedText,
} from "./schemas/identity.js";
export {
  BUILTIN_METERS,
  type BuiltinMeter,
  MeterKindSchema,
  MeterSetSchema,
  PROMPT_METERS,
  QuantitySchema,
  TOKEN_METERS,
} from "./schemas/meters.js";
export {
  type ModelRef,
  type ModelRefInput,
  ModelRefSchema,
  type ProviderRef,
  ProviderRefSchema,
} from "./schemas/model.js";
export {
  type Attributes,
  AttributesSchema,
  UsageObservationSchema,
  type UsageOutcome,
  UsageOutcomeSchema,
  type UsageSource,
  UsageSourceSchema,
  type UsageTiming,
  UsageTimingSchema,
} from "./schemas/observation.js";
export { parseWith } from "./schemas/parse.js";
export {
  type Price,
  PriceSchema,
  PriceSnapshotSchema,
  type PriceTable,
  type TierBaseline,
  type TierBoundary,
  type TierConfig,
  TierConfigSchema,
} from "./schemas/pricing.js";
export {
  type BaselineKey,
  type ModelMatch,
  ModelMatchSchema,
  type RatedLineItem,
  RatedLineItemSchema,
  RatedUsageRecordSchema,
  type RatingContext,
  RatingContextSchema,
} from "./schemas/rating.js";
export {
  canonicalServiceTier,
  SERVICE_TIERS,
  type ServiceTier,
  STANDARD_TIER,
  serviceTierOf,
} from "./schemas/service-tier.js";
export { IsoTimestampSchema } from "./schemas/time.js";
