/**
 * @latch/core: exact metering and rating of LLM usage.
 *
 * Types and zod schemas, provider usage normalizers, dated price snapshots, the rating
 * engine, money helpers and the errors every Latch package throws.
 */
export * from "./api-keys/index.js";
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
  type UsageCounter,
} from "./contracts/quota.js";
export type { ChangeLogEntry, PutResult, RatedRecordStore } from "./contracts/rated-record-store.js";
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
export * from "./credits/index.js";
export * from "./errors/index.js";
export {
  BILLING_COLUMNS,
  BILLING_EXPORT_SCHEMA,
  type BillingExport,
  type BillingManifest,
  type BillingRecord,
  buildBillingExport,
  type ExportFormat,
  type ExportPendingOptions,
  type ExportPendingResult,
  exportPending,
  FileExporter,
  type FileExporterOptions,
  toBillingRecord,
} from "./export/index.js";
export { createLatch } from "./facade/create-latch.js";
export { toObservation } from "./facade/provider-usage.js";
export type { RetryPolicy } from "./facade/retry.js";
export type {
  CreditHold,
  CreditRoute,
  Hold,
  Latch,
  LatchConfig,
  LatchCreditsConfig,
  LatchWarning,
  ProviderObservationInput,
  ProviderUsageInput,
  QuotaHold,
  RecordResult,
  UsageApi,
} from "./facade/types.js";
export {
  MemoryApiKeyStore,
  MemoryCreditLedger,
  type MemoryCreditLedgerOptions,
  MemoryObservationStore,
  MemoryQuotaReservator,
  type MemoryQuotaReservatorOptions,
  MemoryRatedRecordStore,
  MemoryUsageCounter,
  type MemoryUsageCounterOptions,
} from "./memory/index.js";
export { type CurrencyCode, CurrencyCodeSchema, isCurrencyCode, minorUnitDigits } from "./money/currency.js";
export { canonicalDecimal, LatchDecimal, sumDecimals } from "./money/decimal.js";
export { formatMinorUnits, toMinorUnits } from "./money/minor-units.js";
export {
  type NormalizedResponse,
  type NormalizerApi,
  normalize,
  normalizeResponse,
  type SeparatelyBilledUsage,
} from "./normalize/index.js";
export {
  accumulateStream,
  createStreamAccumulator,
  STREAM_APIS,
  type StreamAccumulator,
  type StreamApi,
  type StreamUsage,
} from "./normalize/stream/index.js";
export { accumulate, sumMeterSets } from "./observation/meter-set.js";
export { isParsedObservation, parseObservation } from "./observation/parse.js";
export { compileSnapshot } from "./pricing/compiled-snapshot.js";
export {
  importLiteLLMCostMap,
  LITELLM_SKIP_KINDS,
  LITELLM_SKIP_REASONS,
  type LiteLLMImportOptions,
  type LiteLLMImportResult,
  type LiteLLMServiceTier,
  type LiteLLMSkipCode,
  type LiteLLMSkipKind,
  type LiteLLMSkippedField,
} from "./pricing/litellm.js";
export {
  MODEL_MATCH_RULES,
  type ModelCatalog,
  type ModelMatchResult,
  type ModelMatchRule,
  matchModel,
} from "./pricing/model-match.js";
export { InMemoryPricingSource, type PricingSource } from "./pricing/pricing-source.js";
export {
  modelMatchOf,
  type PriceRequest,
  type PriceResolution,
  type PriceUnpricedReason,
  resolvePriceFrom,
  snapshotPricesTier,
} from "./pricing/resolution.js";
export { DefaultRatingEngine, type RatingEngine } from "./rating/engine.js";
export {
  csvRow,
  FILTER_KEYS,
  type FilterKey,
  type LinesPage,
  type LinesQuery,
  LinesQuerySchema,
  linesToCsv,
  SUMMARY_GROUP_KEYS,
  type SummaryGroupKey,
  type SummaryQuery,
  SummaryQuerySchema,
  type SummaryRow,
  selectLines,
  summarize,
  summaryToCsv,
} from "./reports/index.js";
/** The lines order and page cursor, one format for every `RatedRecordStore` (see the module). */
export {
  compareLinesSortKeys,
  decodeLinesCursor,
  encodeLinesCursor,
  type LinesSortKey,
} from "./reports/lines-cursor.js";
/** The report token groupings, one definition for every backend and the HTTP API (see the module). */
export { TOKEN_GROUP_NAMES, TOKEN_GROUPS, type TokenGroup, tokenGroupsOf } from "./reports/token-groups.js";
export {
  type BillingSubject,
  type BillingSubjectInput,
  BillingSubjectSchema,
  type CorrelationIds,
  CorrelationIdsSchema,
  EventIdSchema,
  isWellFormedText,
  UsageEventId,
  UsageEventIdBuilder,
  WellFormedText,
} from "./schemas/identity.js";
export {
  BUILTIN_METERS,
  type BuiltinMeter,
  isMeterKind,
  type MeterKind,
  MeterKindSchema,
  type MeterSet,
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
  type UsageObservation,
  type UsageObservationInput,
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
  type PriceSnapshot,
  type PriceSnapshotInput,
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
  type RatedUsageRecord,
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
