import { LatchValidationError } from "../errors/index.js";
import type { MeterSet } from "../schemas/meters.js";
import { normalizeAnthropic, normalizeAnthropicResponse, readAnthropicUsage } from "./anthropic.js";
import { normalizeGemini, normalizeGeminiResponse, readGeminiUsage } from "./gemini.js";
import { normalizeOpenAIChat, normalizeOpenAIChatResponse } from "./openai-chat.js";
import { normalizeOpenAIImages, normalizeOpenAIImagesResponse } from "./openai-images.js";
import { normalizeOpenAIResponses, normalizeOpenAIResponsesResponse } from "./openai-responses.js";
import { normalizeOpenRouter, normalizeOpenRouterResponse } from "./openrouter.js";
import type { NormalizedResponse } from "./result.js";

export type { NormalizedResponse, SeparatelyBilledUsage } from "./result.js";
export {
  normalizeAnthropic,
  normalizeAnthropicResponse,
  normalizeGemini,
  normalizeGeminiResponse,
  normalizeOpenAIChat,
  normalizeOpenAIChatResponse,
  normalizeOpenAIImages,
  normalizeOpenAIImagesResponse,
  normalizeOpenAIResponses,
  normalizeOpenAIResponsesResponse,
  normalizeOpenRouter,
  normalizeOpenRouterResponse,
};

/**
 * Provider usage → disjoint meters. Each function takes the provider's usage object itself
 * (not the whole response), returns a frozen MeterSet with only its non-zero meters, and throws
 * a `LatchValidationError` (`invalid_input`) naming the provider-side field of a malformed or
 * inconsistent payload. {@link normalizeResponse} reads a whole response instead (service tier,
 * hosted tool calls outside `usage`).
 *
 * @example
 * const meters = normalize.openaiChat(completion.usage);
 * const meters2 = normalize.anthropic(message.usage);
 * const meters3 = normalize.gemini(response.usageMetadata);
 * const meters4 = normalize.openaiImages(image.usage);
 */
export const normalize: {
  /** OpenAI Chat Completions `usage` (and DeepSeek's, Groq's). See {@link normalizeOpenAIChat}. */
  readonly openaiChat: (usage: unknown) => MeterSet;
  /** OpenAI Responses API `usage`. See {@link normalizeOpenAIResponses}. */
  readonly openaiResponses: (usage: unknown) => MeterSet;
  /** Anthropic Messages `usage`. See {@link normalizeAnthropic}. */
  readonly anthropic: (usage: unknown) => MeterSet;
  /** Gemini `usageMetadata`. See {@link normalizeGemini}. */
  readonly gemini: (usageMetadata: unknown) => MeterSet;
  /** OpenRouter `usage`. See {@link normalizeOpenRouter}. */
  readonly openrouter: (usage: unknown) => MeterSet;
  /** OpenAI Images API `usage` (GPT image models). See {@link normalizeOpenAIImages}. */
  readonly openaiImages: (usage: unknown) => MeterSet;
} = Object.freeze({
  openaiChat: normalizeOpenAIChat,
  openaiResponses: normalizeOpenAIResponses,
  anthropic: normalizeAnthropic,
  gemini: normalizeGemini,
  openrouter: normalizeOpenRouter,
  openaiImages: normalizeOpenAIImages,
});

/** A key of {@link normalize}: which provider API a payload comes from. */
export type NormalizerApi = keyof typeof normalize;

const RESPONSE_NORMALIZERS: Readonly<Record<NormalizerApi, (response: unknown) => NormalizedResponse>> =
  Object.freeze({
    openaiChat: normalizeOpenAIChatResponse,
    openaiResponses: normalizeOpenAIResponsesResponse,
    anthropic: normalizeAnthropicResponse,
    gemini: normalizeGeminiResponse,
    openrouter: normalizeOpenRouterResponse,
    openaiImages: normalizeOpenAIImagesResponse,
  });

/**
 * Normalizes a whole provider response, not only its usage: the disjoint meters (including
 * hosted tool calls found outside `usage`, such as OpenAI `web_search_call` items), the
 * service tier the provider reports (canonical name: OpenAI `service_tier` `default` →
 * `standard`; Anthropic `usage.service_tier`; Gemini `usageMetadata.serviceTier`), and usage the
 * provider bills at another model's rates (`separatelyBilled`: Anthropic advisor and declined
 * fallback attempts, OpenAI's image generation tool). The body each
 * API expects: `openaiChat` a `ChatCompletion` or last stream chunk, `openaiResponses` a
 * `Response` or its `response.completed` event, `anthropic` a `Message`, `gemini` a
 * `GenerateContentResponse`, `openrouter` a chat completion, `openaiImages` an `ImagesResponse`.
 *
 * @throws LatchValidationError (`invalid_input`) naming the field by its path in the body,
 * e.g. `usage.prompt_tokens_details.cached_tokens`.
 *
 * @example
 * const { meters, serviceTier } = normalizeResponse("openaiResponses", response);
 * // meters: { input_tokens: 129, cached_input_tokens: 11904, output_tokens: 44, web_search_requests: 2 }
 * // serviceTier: "priority"
 */
export function normalizeResponse(api: NormalizerApi, response: unknown): NormalizedResponse {
  const fn = RESPONSE_NORMALIZERS[api];
  if (fn === undefined || !Object.hasOwn(RESPONSE_NORMALIZERS, api))
    throw LatchValidationError.at(
      "normalizeResponse",
      "api",
      `expected one of ${Object.keys(normalize).join(", ")}`,
    );
  return fn(response);
}

/**
 * Everything a `usage` object alone says: its meters, and where the usage object carries them
 * (Anthropic `usage`, Gemini `usageMetadata`) the tier and other models' usage. Internal: the
 * facade's `record({ api, usage })`.
 */
export function normalizeUsageDetail(api: NormalizerApi, usage: unknown): NormalizedResponse {
  if (api === "anthropic") return readAnthropicUsage(usage);
  if (api === "gemini") return readGeminiUsage(usage);
  return { meters: normalize[api](usage) };
}
