import { LatchValidationError } from "../../errors/index.js";
import { AnthropicStreamReducer } from "./anthropic.js";
import { GeminiStreamReducer } from "./gemini.js";
import { OpenAIChatStreamReducer } from "./openai-chat.js";
import { OpenAIResponsesStreamReducer } from "./openai-responses.js";
import { isObject, type StreamReducer } from "./reducer.js";
import { SseDataDecoder } from "./sse.js";

/**
 * The streaming APIs whose usage can be accumulated, named like the normalizers that take the
 * result (`normalize.openaiChat`, …). OpenAI-compatible providers (Groq, DeepSeek, Mistral,
 * xAI, Together, Fireworks, …) stream chat completions: use `"openaiChat"`; OpenRouter's chat
 * stream has the same shape and is `"openrouter"`.
 */
export const STREAM_APIS = ["openaiChat", "openaiResponses", "anthropic", "gemini", "openrouter"] as const;
export type StreamApi = (typeof STREAM_APIS)[number];

/** What a whole stream reported, as the provider's own objects. */
export interface StreamUsage {
  /**
   * The provider's usage object for the whole response, exactly as reported (Anthropic's
   * merged from `message_start` and `message_delta`): `usage` for OpenAI-shaped and Anthropic
   * streams, `usageMetadata` for Gemini. Undefined when the stream carried none (an OpenAI
   * stream requested without `stream_options.include_usage`, or one cut off early).
   */
  readonly usage: Readonly<Record<string, unknown>> | undefined;
  /**
   * The response envelope as the non-streamed call would have returned it, without the
   * generated text: the model, the service tier the call ran in, the response id, output
   * item / content block types (server-side tool calls), and the usage above under its usual
   * key. Pass it where a whole response is expected.
   */
  readonly response: Readonly<Record<string, unknown>>;
}

/** Accumulates one streamed response. Feed it events or raw SSE text, then read `result()`. */
export interface StreamAccumulator {
  /** One parsed event payload (the JSON `data` of one SSE event). Non-objects are ignored. */
  push(event: unknown): void;
  /** A chunk of the raw SSE byte or text stream, split anywhere. */
  write(chunk: string | Uint8Array): void;
  /**
   * After the last `write`: takes a final event the stream did not close with a blank line.
   * Not needed when only `push` is used.
   */
  end(): void;
  /** The usage and envelope accumulated so far (a fresh object on every call). */
  result(): StreamUsage;
}

function reducerFor(api: StreamApi): StreamReducer {
  switch (api) {
    case "openaiChat":
    case "openrouter":
      return new OpenAIChatStreamReducer();
    case "openaiResponses":
      return new OpenAIResponsesStreamReducer();
    case "anthropic":
      return new AnthropicStreamReducer();
    case "gemini":
      return new GeminiStreamReducer();
  }
}

/**
 * A stream usage accumulator for `api`. Each API's rule (which events carry usage, which one
 * wins, how Anthropic's are merged) is documented on its reducer and in the package README:
 *
 * - `openaiChat` / `openrouter`: the last chunk's `usage` (OpenAI sends it only with
 *   `stream_options: { include_usage: true }`), or Groq's `x_groq.usage`;
 * - `openaiResponses`: the `response` of the terminal event (`response.completed`, …);
 * - `anthropic`: `message_start.message.usage` overlaid with each `message_delta.usage`
 *   (cumulative counts, never added up);
 * - `gemini`: the last chunk's `usageMetadata`.
 *
 * The accumulator never throws on provider data: malformed or foreign events are skipped, and
 * the normalizer that takes `result().usage` validates it.
 *
 * @throws LatchValidationError (`invalid_input`, subject `"stream api"`) for an unknown `api`.
 *
 * @example
 * const acc = createStreamAccumulator("anthropic");
 * for await (const chunk of upstream.body) {
 *   relay(chunk);
 *   acc.write(chunk);
 * }
 * acc.end();
 * const { usage, response } = acc.result();
 * const meters = normalize.anthropic(usage); // or record({ api: "anthropic", usage, observation })
 */
export function createStreamAccumulator(api: StreamApi): StreamAccumulator {
  if (!(STREAM_APIS as readonly string[]).includes(api)) {
    throw LatchValidationError.at("stream api", "", `expected one of ${STREAM_APIS.join(", ")}`);
  }
  const reducer = reducerFor(api);
  const decoder = new SseDataDecoder();
  const push = (event: unknown): void => {
    if (isObject(event)) reducer.add(event);
  };
  return {
    push,
    write(chunk) {
      for (const event of decoder.push(chunk)) push(event);
    },
    end() {
      for (const event of decoder.end()) push(event);
    },
    result: () => reducer.result(),
  };
}

/**
 * Accumulates a whole recorded stream at once: raw SSE text, or the already-parsed event
 * payloads in order (for Gemini's non-SSE stream, the parsed JSON array).
 *
 * @example
 * const { usage } = accumulateStream("openaiChat", sseText);
 * const meters = normalize.openaiChat(usage);
 */
export function accumulateStream(api: StreamApi, input: string | Iterable<unknown>): StreamUsage {
  const acc = createStreamAccumulator(api);
  if (typeof input === "string") {
    acc.write(input);
    acc.end();
  } else {
    for (const event of input) acc.push(event);
  }
  return acc.result();
}
