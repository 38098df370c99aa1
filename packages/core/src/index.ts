/**
 * @latch/core: exact metering and rating of LLM usage — the API an application calls.
 *
 * `createLatch()` and its types, observations and provider normalizers, price snapshots and
 * model matching, the rating engine, the in-memory stores, reports, money helpers and the
 * errors to catch. Every name is listed in the README ("The root API"). What adapter authors
 * need (contracts, input schemas, hashing, engines) is `@latch/core/adapter`; the billing
 * export format is `@latch/core/export`; every error class by code is `@latch/core/errors`.
 * `api/exports.json` records all four surfaces.
 */
export {
  type ApiKeyAuthResult,
  type ApiKeyRecord,
  ApiKeys,
  type ApiKeysOptions,
} from "./api-keys/index.js";
export type { SnapshotThinning } from "./credits/snapshots.js";
export {
  LATCH_ERROR_CODES,
  LatchError,
  type LatchErrorCode,
  type LatchErrorFor,
  LatchValidationError,
  type ValidationIssue,
} from "./errors/index.js";
export { FileExporter, type FileExporterOptions } from "./export/index.js";
export {
  type CreditHold,
  type CreditRoute,
  createLatch,
  type Hold,
  type IngestLog,
  type IngestPublishResult,
  type Latch,
  type LatchConfig,
  type LatchCreditsConfig,
  type LatchWarning,
  type ProviderObservationInput,
  type ProviderUsageInput,
  type QuotaHold,
  type RecordResult,
  type UsageApi,
} from "./facade/create-latch.js";
export { type ProviderUsageInputOf, toObservation } from "./facade/provider-usage.js";
export type {
  AnthropicMessage,
  AnthropicUsage,
  GeminiResponse,
  GeminiUsageMetadata,
  OpenAIChatResponse,
  OpenAIChatUsage,
  OpenAIImagesResponse,
  OpenAIImagesUsage,
  OpenAIResponsesResponse,
  OpenAIResponsesUsage,
  OpenRouterResponse,
  OpenRouterUsage,
  ProviderPayloads,
  ProviderResponse,
  ProviderUsage,
} from "./facade/provider-usage-types.js";
export type { RetryPolicy } from "./facade/retry.js";
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
export type { CurrencyCode } from "./money/currency.js";
export { LatchDecimal, sumDecimals } from "./money/decimal.js";
export { formatMinorUnits, toMinorUnits } from "./money/minor-units.js";
export {
  type NormalizedResponse,
  type NormalizerApi,
  normalize,
  normalizeResponse,
} from "./normalize/index.js";
export {
  accumulateStream,
  createStreamAccumulator,
  type StreamAccumulator,
  type StreamApi,
  type StreamUsage,
} from "./normalize/stream/index.js";
export { accumulate } from "./observation/meter-set.js";
export { parseObservation } from "./observation/parse.js";
export {
  importLiteLLMCostMap,
  type LiteLLMImportOptions,
  type LiteLLMImportResult,
} from "./pricing/litellm.js";
export { type ModelCatalog, type ModelMatchResult, matchModel } from "./pricing/model-match.js";
export { InMemoryPricingSource, type PricingSource } from "./pricing/pricing-source.js";
export { DefaultRatingEngine } from "./rating/engine.js";
export {
  type LinesPage,
  type LinesQuery,
  linesToCsv,
  type SummaryQuery,
  type SummaryRow,
  summarize,
  summaryToCsv,
} from "./reports/index.js";
export { type BillingSubject, UsageEventId } from "./schemas/identity.js";
export type { MeterKind, MeterSet } from "./schemas/meters.js";
export type { UsageObservation, UsageObservationInput } from "./schemas/observation.js";
export type { PriceSnapshot, PriceSnapshotInput } from "./schemas/pricing.js";
export type { RatedUsageRecord } from "./schemas/rating.js";
