import type { MeterSet } from "../schemas/meters.js";
import { normalizeAnthropic } from "./anthropic.js";
import { normalizeGemini } from "./gemini.js";
import { normalizeOpenAIChat } from "./openai-chat.js";
import { normalizeOpenAIResponses } from "./openai-responses.js";
import { normalizeOpenRouter } from "./openrouter.js";

export {
  normalizeAnthropic,
  normalizeGemini,
  normalizeOpenAIChat,
  normalizeOpenAIResponses,
  normalizeOpenRouter,
};

/**
 * Provider usage → disjoint meters. Each function takes the provider's usage object itself
 * (not the whole response), returns a frozen MeterSet with only its non-zero meters, and throws
 * a `LatchValidationError` (`invalid_input`) naming the provider-side field of a malformed or
 * inconsistent payload.
 *
 * @example
 * const meters = normalize.openaiChat(completion.usage);
 * const meters2 = normalize.anthropic(message.usage);
 * const meters3 = normalize.gemini(response.usageMetadata);
 */
export const normalize: {
  /** OpenAI Chat Completions `usage`. See {@link normalizeOpenAIChat}. */
  readonly openaiChat: (usage: unknown) => MeterSet;
  /** OpenAI Responses API `usage`. See {@link normalizeOpenAIResponses}. */
  readonly openaiResponses: (usage: unknown) => MeterSet;
  /** Anthropic Messages `usage`. See {@link normalizeAnthropic}. */
  readonly anthropic: (usage: unknown) => MeterSet;
  /** Gemini `usageMetadata`. See {@link normalizeGemini}. */
  readonly gemini: (usageMetadata: unknown) => MeterSet;
  /** OpenRouter `usage`. See {@link normalizeOpenRouter}. */
  readonly openrouter: (usage: unknown) => MeterSet;
} = Object.freeze({
  openaiChat: normalizeOpenAIChat,
  openaiResponses: normalizeOpenAIResponses,
  anthropic: normalizeAnthropic,
  gemini: normalizeGemini,
  openrouter: normalizeOpenRouter,
});
