/**
 * Compile-time cases of the typed `record()` overloads. Not a test file of its own:
 * `test/facade/provider-usage-types.test.ts` compiles it with tsc and expects no diagnostic, so
 * every `@ts-expect-error` below must meet an error (an unused one is itself a diagnostic), and
 * every line without one must compile. The package typecheck compiles it too.
 */
import type {
  AnthropicMessage,
  AnthropicUsage,
  GeminiUsageMetadata,
  Latch,
  OpenAIChatResponse,
  OpenAIChatUsage,
  OpenAIImagesUsage,
  OpenAIResponsesResponse,
  OpenAIResponsesUsage,
  OpenRouterUsage,
  ProviderObservationInput,
  ProviderUsage,
  ProviderUsageInput,
  UsageObservationInput,
} from "../../src/index.js";

declare const latch: Latch;
declare const observation: ProviderObservationInput;
declare const ready: UsageObservationInput;

const chat = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 };
const anthropic = { input_tokens: 10, output_tokens: 5, cache_read_input_tokens: null };

// The right usage per API compiles, extra provider fields included (payloads are open: only an
// object literal written inline meets the excess-property check).
const groqUsage = { ...chat, queue_time: 0.1 };
const openRouterUsage = { ...chat, cost: 0.0001, is_byok: false };
const message = { id: "msg_1", type: "message", usage: anthropic };
void latch.record({ api: "openaiChat", usage: groqUsage, observation });
void latch.record({ api: "openrouter", usage: openRouterUsage, observation });
void latch.record({ api: "anthropic", usage: anthropic, observation });
void latch.record({
  api: "openaiResponses",
  usage: { input_tokens: 1, output_tokens: 2, total_tokens: 3 },
  observation,
});
void latch.record({ api: "gemini", usage: { promptTokenCount: 3, totalTokenCount: 3 }, observation });
void latch.record({
  api: "openaiImages",
  usage: { input_tokens: 1, output_tokens: 2, total_tokens: 3, input_tokens_details: { text_tokens: 1 } },
  observation,
});
void latch.record({ api: "anthropic", response: message, observation });
void latch.record({ api: "openaiChat", response: { usage: chat, service_tier: "default" }, observation });
void latch.record({ api: "openaiChat", response: { x_groq: { id: "req_1", usage: chat } }, observation });
void latch.record({
  api: "openaiResponses",
  response: {
    type: "response.completed",
    response: { usage: { input_tokens: 1, output_tokens: 2, total_tokens: 3 } },
  },
  observation,
});
// A ready observation, and a value typed as the union of every API's input.
void latch.record(ready);
declare const anyProvider: ProviderUsageInput;
void latch.record(anyProvider, {});

// The SDKs' interfaces (no index signature, optional details) are assignable.
interface SdkCompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details?: { audio_tokens?: number; cached_tokens?: number };
  completion_tokens_details?: { reasoning_tokens?: number; accepted_prediction_tokens?: number };
}
interface SdkMessage {
  id: string;
  usage: { input_tokens: number; output_tokens: number; cache_creation_input_tokens: number | null };
}
interface SdkGeminiResponse {
  usageMetadata?: { promptTokenCount?: number; candidatesTokenCount?: number; trafficType?: "ON_DEMAND" };
}
declare const sdkUsage: SdkCompletionUsage;
declare const sdkMessage: SdkMessage;
declare const sdkGemini: SdkGeminiResponse;
void latch.record({ api: "openaiChat", usage: sdkUsage, observation });
void latch.record({ api: "anthropic", response: sdkMessage, observation });
void latch.record({ api: "gemini", response: sdkGemini, observation });
const asChat: OpenAIChatUsage = sdkUsage;
const asMessage: AnthropicMessage = sdkMessage;
void asChat;
void asMessage;

// A wrong shape is a compile error.
// @ts-expect-error Anthropic usage passed as OpenAI chat usage
void latch.record({ api: "openaiChat", usage: anthropic, observation });
// @ts-expect-error OpenAI chat usage passed as Anthropic usage
void latch.record({ api: "anthropic", usage: chat, observation });
// @ts-expect-error Gemini usage metadata shares no field with OpenAI Responses usage
void latch.record({ api: "openaiResponses", usage: { promptTokenCount: 3 }, observation });
// @ts-expect-error Anthropic usage shares no field with Gemini usageMetadata
void latch.record({ api: "gemini", usage: anthropic, observation });
// @ts-expect-error a count must be a number
void latch.record({ api: "openaiChat", usage: { ...chat, total_tokens: "15" }, observation });
// @ts-expect-error images usage needs input_tokens_details
void latch.record({
  api: "openaiImages",
  usage: { input_tokens: 1, output_tokens: 2, total_tokens: 3 },
  observation,
});
// @ts-expect-error OpenRouter usage needs total_tokens
void latch.record({ api: "openrouter", usage: { prompt_tokens: 1, completion_tokens: 2 }, observation });
// @ts-expect-error a misspelt field in a literal (excess-property check)
void latch.record({ api: "anthropic", usage: { ...anthropic, cache_read_tokens: 1 }, observation });
// @ts-expect-error an Anthropic message has a usage
void latch.record({ api: "anthropic", response: { id: "msg_1" }, observation });
// @ts-expect-error the response's usage is typed too
void latch.record({ api: "openaiChat", response: { usage: anthropic }, observation });
// @ts-expect-error data of unknown shape must be asserted (ProviderUsage<"…">) first
void latch.record({ api: "anthropic", usage: JSON.parse("{}") as unknown, observation });
// @ts-expect-error not both usage and response
void latch.record({ api: "anthropic", usage: anthropic, response: { usage: anthropic }, observation });
// @ts-expect-error an unknown API
void latch.record({ api: "cohere", usage: chat, observation });
// Asserting unknown data is the documented way; run-time validation still checks it.
void latch.record({ api: "anthropic", usage: JSON.parse("{}") as ProviderUsage<"anthropic">, observation });

// Every usage type is the usage of its API.
const usages: [
  AnthropicUsage,
  GeminiUsageMetadata,
  OpenAIResponsesUsage,
  OpenRouterUsage,
  OpenAIImagesUsage,
] = [
  anthropic,
  { promptTokenCount: 1 },
  { input_tokens: 1, output_tokens: 1, total_tokens: 2 },
  chat,
  { input_tokens: 1, output_tokens: 1, total_tokens: 2, input_tokens_details: {} },
];
void usages;
const bodies: [OpenAIChatResponse, OpenAIResponsesResponse] = [
  { usage: chat },
  { output: [{ type: "message" }] },
];
void bodies;
