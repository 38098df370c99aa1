/**
 * Compile-time shapes of the provider payloads `record({ api, usage | response })` accepts, one
 * usage type and one response type per normalizer (`UsageApi`).
 *
 * Why types beside the runtime schemas: the schemas in `normalize/*` parse `unknown` and stay the
 * only check that counts (a payload that type-checks can still be inconsistent, and data from
 * the network is never typed); these types let the compiler catch the common mistake earlier,
 * e.g. an Anthropic `usage` passed as `api: "openaiChat"`.
 *
 * Rules the types follow, so that real payloads and the providers' own SDK types compile:
 * - fields as each provider documents them; a count a provider may omit or send as `null` is
 *   `?: number | null` (Latch counts it as 0), a count Latch requires at run time is `number`;
 * - object types are open: a payload with fields Latch does not read (`queue_time`, `cost`,
 *   new provider fields) is assignable, so are the SDKs' interfaces (no index signatures, which
 *   interfaces could not satisfy). Only an object literal written inline meets TypeScript's
 *   excess-property check, which flags a misspelt field;
 * - every field is `readonly`: frozen or `as const` payloads are accepted, nothing is mutated;
 * - enumerations the provider extends over time (service tiers, modalities, item types) are
 *   `string`, as in JSON imports: the runtime maps the values it knows.
 *
 * The field lists mirror the schemas in `normalize/<provider>.ts`; `test/facade/provider-usage-types.test.ts`
 * compiles every recorded real payload in `test/fixtures/real` against them.
 */

/** Token-count details in OpenAI-compatible `prompt_tokens_details`. */
interface OpenAIChatPromptDetails {
  /** Cache reads, inside `prompt_tokens`. */
  readonly cached_tokens?: number | null;
  /** Cache writes (GPT-5.6 and later, OpenRouter), inside `prompt_tokens`. */
  readonly cache_write_tokens?: number | null;
  /** Audio input, inside `prompt_tokens`. */
  readonly audio_tokens?: number | null;
  /** Info only: image input, billed as text input on chat models. */
  readonly image_tokens?: number | null;
  /** Info only. */
  readonly text_tokens?: number | null;
}

/** Token-count details in OpenAI-compatible `completion_tokens_details`. */
interface OpenAIChatCompletionDetails {
  /** Reasoning, inside `completion_tokens` (xAI: beside it). */
  readonly reasoning_tokens?: number | null;
  /** Audio output, inside `completion_tokens`. */
  readonly audio_tokens?: number | null;
  /** Predicted Outputs, inside `completion_tokens`. */
  readonly accepted_prediction_tokens?: number | null;
  /** Predicted Outputs, inside `completion_tokens` and billed as output. */
  readonly rejected_prediction_tokens?: number | null;
}

/**
 * The `usage` of an OpenAI Chat Completions response or last stream chunk, and of the
 * OpenAI-compatible APIs read the same way (DeepSeek, Groq, xAI, Mistral, …).
 * `record({ api: "openaiChat", usage })`; see `normalizeOpenAIChat` for what includes what.
 *
 * @example
 * const usage: OpenAIChatUsage = { prompt_tokens: 2600, completion_tokens: 1000, total_tokens: 3600,
 *   prompt_tokens_details: { cached_tokens: 2000 } };
 */
export interface OpenAIChatUsage {
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly total_tokens: number;
  readonly prompt_tokens_details?: OpenAIChatPromptDetails | null;
  readonly completion_tokens_details?: OpenAIChatCompletionDetails | null;
  /** DeepSeek: prompt tokens served from its context cache. */
  readonly prompt_cache_hit_tokens?: number | null;
  /** DeepSeek: prompt tokens not served from its context cache. */
  readonly prompt_cache_miss_tokens?: number | null;
}

/**
 * A Chat Completions response body (`ChatCompletion`) or last stream chunk:
 * `record({ api: "openaiChat", response })` also reads `service_tier` and Groq's `x_groq.usage`.
 * `usage` is optional here as in the SDK's type; at run time a body with neither `usage` nor
 * `x_groq.usage` is `invalid_input`.
 */
export interface OpenAIChatResponse {
  readonly usage?: OpenAIChatUsage | null;
  /** The tier that served the call: `default`, `flex`, `priority`, `scale`; Groq `on_demand`. */
  readonly service_tier?: string | null;
  /** Groq: where its streams report usage. */
  readonly x_groq?: { readonly id?: string | null; readonly usage?: OpenAIChatUsage | null } | null;
}

/**
 * The `usage` of an OpenAI Responses API response (`response.usage`, or the
 * `response.completed` event's `response.usage`). `record({ api: "openaiResponses", usage })`.
 */
export interface OpenAIResponsesUsage {
  readonly input_tokens: number;
  readonly output_tokens: number;
  readonly total_tokens: number;
  readonly input_tokens_details?: {
    /** Cache reads, inside `input_tokens`. */
    readonly cached_tokens?: number | null;
    /** Cache writes, inside `input_tokens`. */
    readonly cache_write_tokens?: number | null;
  } | null;
  readonly output_tokens_details?: {
    /** Reasoning, inside `output_tokens`. */
    readonly reasoning_tokens?: number | null;
  } | null;
}

/**
 * A Responses API body (`Response`) or its terminal stream event (`response.completed`,
 * `response.incomplete`, `response.failed`): `record({ api: "openaiResponses", response })`
 * also reads `service_tier` and hosted tool calls (`web_search_call` items, `tool_usage`).
 */
export type OpenAIResponsesResponse =
  | OpenAIResponsesBody
  | {
      /** `response.completed` and the other terminal `response.*` events. */
      readonly type: string;
      readonly response: OpenAIResponsesBody;
    };

/** The `Response` object itself (see {@link OpenAIResponsesResponse}). */
interface OpenAIResponsesBody {
  readonly usage?: OpenAIResponsesUsage | null;
  readonly service_tier?: string | null;
  /** Output items; hosted tool calls (`web_search_call`, `image_generation_call`) are metered. */
  readonly output?: readonly { readonly type: string; readonly status?: string | null }[] | null;
  /** Hosted-tool usage outside `usage` (newer API versions). */
  readonly tool_usage?: {
    readonly web_search?: { readonly num_requests?: number | null } | null;
    readonly image_gen?: unknown;
  } | null;
  readonly tools?: readonly unknown[] | null;
}

/** Anthropic's cache-write breakdown by TTL (`usage.cache_creation`). */
interface AnthropicCacheCreation {
  readonly ephemeral_5m_input_tokens?: number | null;
  readonly ephemeral_1h_input_tokens?: number | null;
}

/**
 * The `usage` of an Anthropic Messages response (`message.usage`; for a stream, the merged
 * `message_start` + `message_delta` usage). `record({ api: "anthropic", usage })` also reads
 * `service_tier` and `iterations` from it.
 */
export interface AnthropicUsage {
  /** Uncached input tokens (cache reads and writes are beside it, not inside). */
  readonly input_tokens: number;
  /** Output tokens, thinking included. */
  readonly output_tokens: number;
  readonly cache_read_input_tokens?: number | null;
  readonly cache_creation_input_tokens?: number | null;
  readonly cache_creation?: AnthropicCacheCreation | null;
  /** Server tool calls billed per use. */
  readonly server_tool_use?: {
    readonly web_search_requests?: number | null;
    readonly web_fetch_requests?: number | null;
  } | null;
  /** Info only: `thinking_tokens` is inside `output_tokens`. */
  readonly output_tokens_details?: { readonly thinking_tokens?: number | null } | null;
  /** Per-model iterations (advisor tool, compaction, fallback): other models' are billed apart. */
  readonly iterations?:
    | readonly {
        readonly type: string;
        readonly model?: string | null;
        readonly input_tokens?: number | null;
        readonly output_tokens?: number | null;
        readonly cache_read_input_tokens?: number | null;
        readonly cache_creation_input_tokens?: number | null;
        readonly cache_creation?: AnthropicCacheCreation | null;
      }[]
    | null;
  /** `standard`, `priority` or `batch`. */
  readonly service_tier?: string | null;
}

/** An Anthropic Messages response body (`Message`): `record({ api: "anthropic", response })`. */
export interface AnthropicMessage {
  readonly usage: AnthropicUsage;
}

/** One entry of Gemini's per-modality lists (`promptTokensDetails`, …). */
interface GeminiModalityTokenCount {
  /** `TEXT`, `IMAGE`, `AUDIO`, `VIDEO`, `DOCUMENT`, … */
  readonly modality?: string | null;
  /** Absent means 0 (proto3 JSON omits zero values). */
  readonly tokenCount?: number | null;
}

/**
 * Gemini's `usageMetadata` (Gemini API and Vertex AI, `generateContent` and the last
 * `streamGenerateContent` chunk). `record({ api: "gemini", usage: response.usageMetadata })`.
 * Every field is optional as in Google's proto3 JSON and SDK types; Latch requires
 * `promptTokenCount` at run time.
 */
export interface GeminiUsageMetadata {
  readonly promptTokenCount?: number | null;
  readonly candidatesTokenCount?: number | null;
  readonly thoughtsTokenCount?: number | null;
  readonly cachedContentTokenCount?: number | null;
  readonly toolUsePromptTokenCount?: number | null;
  readonly totalTokenCount?: number | null;
  readonly promptTokensDetails?: readonly GeminiModalityTokenCount[] | null;
  readonly cacheTokensDetails?: readonly GeminiModalityTokenCount[] | null;
  readonly candidatesTokensDetails?: readonly GeminiModalityTokenCount[] | null;
  readonly toolUsePromptTokensDetails?: readonly GeminiModalityTokenCount[] | null;
  /** Gemini API: the tier that served the call (`standard`, `flex`, `priority`). */
  readonly serviceTier?: string | null;
  /** Vertex AI: which quota served the call (`ON_DEMAND`, `PROVISIONED_THROUGHPUT`, …). */
  readonly trafficType?: string | null;
}

/** A Gemini `GenerateContentResponse` (or last stream chunk): `record({ api: "gemini", response })`. */
export interface GeminiResponse {
  readonly usageMetadata?: GeminiUsageMetadata | null;
}

/**
 * The `usage` of an OpenRouter chat completion (or last stream chunk).
 * `record({ api: "openrouter", usage })`. `cost` is OpenRouter's own charge, info only.
 */
export interface OpenRouterUsage {
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly total_tokens: number;
  readonly prompt_tokens_details?: {
    readonly cached_tokens?: number | null;
    readonly cache_write_tokens?: number | null;
    readonly audio_tokens?: number | null;
    /** Info only: inside `prompt_tokens`, billed as text input. */
    readonly video_tokens?: number | null;
  } | null;
  readonly completion_tokens_details?: {
    readonly reasoning_tokens?: number | null;
    readonly audio_tokens?: number | null;
    readonly image_tokens?: number | null;
  } | null;
  readonly server_tool_use_details?: {
    readonly web_search_requests?: number | null;
    /** Info only: every server tool call, overlapping `web_search_requests` (not summed). */
    readonly tool_calls_requested?: number | null;
    /** Info only, as `tool_calls_requested`. */
    readonly tool_calls_executed?: number | null;
  } | null;
  /** Info only: what OpenRouter charged, in credits (USD). */
  readonly cost?: number | null;
}

/** An OpenRouter chat completion body: `record({ api: "openrouter", response })`. */
export interface OpenRouterResponse {
  readonly usage?: OpenRouterUsage | null;
}

/**
 * The `usage` of an OpenAI Images API response (GPT image models: `images.generate`,
 * `images.edit`, or a stream's `image_generation.completed` event).
 * `record({ api: "openaiImages", usage })`.
 */
export interface OpenAIImagesUsage {
  readonly input_tokens: number;
  readonly output_tokens: number;
  readonly total_tokens: number;
  readonly input_tokens_details: {
    readonly text_tokens?: number | null;
    readonly image_tokens?: number | null;
  };
  readonly output_tokens_details?: {
    readonly text_tokens?: number | null;
    readonly image_tokens?: number | null;
  } | null;
}

/**
 * An Images API body (`ImagesResponse`): `record({ api: "openaiImages", response })`. GPT
 * image models report `usage`; DALL·E reports none and its images are counted from `data`.
 */
export interface OpenAIImagesResponse {
  readonly usage?: OpenAIImagesUsage | null;
  readonly data?: readonly unknown[] | null;
}

/**
 * Per provider API (`UsageApi`), the payload types `record()` accepts: `usage` for
 * `record({ api, usage })`, `response` for `record({ api, response })`.
 */
export interface ProviderPayloads {
  openaiChat: { usage: OpenAIChatUsage; response: OpenAIChatResponse };
  openaiResponses: { usage: OpenAIResponsesUsage; response: OpenAIResponsesResponse };
  anthropic: { usage: AnthropicUsage; response: AnthropicMessage };
  gemini: { usage: GeminiUsageMetadata; response: GeminiResponse };
  openrouter: { usage: OpenRouterUsage; response: OpenRouterResponse };
  openaiImages: { usage: OpenAIImagesUsage; response: OpenAIImagesResponse };
}

/**
 * The usage type of a provider API, e.g. `ProviderUsage<"anthropic">` = {@link AnthropicUsage}.
 *
 * @example
 * // Data of unknown shape (a queue, an HTTP body): assert the type; record() still validates.
 * await latch.record({ api: "anthropic", usage: body.usage as ProviderUsage<"anthropic">, observation });
 */
export type ProviderUsage<A extends keyof ProviderPayloads> = ProviderPayloads[A]["usage"];

/** The response-body type of a provider API, e.g. `ProviderResponse<"gemini">` = {@link GeminiResponse}. */
export type ProviderResponse<A extends keyof ProviderPayloads> = ProviderPayloads[A]["response"];
