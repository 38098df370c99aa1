import { isObject, type JsonObject, type ReducedStream, type StreamReducer, takeFields } from "./reducer.js";

/** Envelope fields of a chat completion that a chunk repeats (`provider`: OpenRouter's upstream). */
const ENVELOPE = ["id", "created", "model", "service_tier", "system_fingerprint", "provider"] as const;

/**
 * OpenAI Chat Completions chunks (`chat.completion.chunk`), and every API that copies them:
 * OpenRouter, Groq, DeepSeek, Mistral, xAI, Together, Fireworks, …
 *
 * Usage: OpenAI sends it only when the request sets `stream_options: { include_usage: true }`,
 * once, on a last chunk whose `choices` is `[]`; every earlier chunk has `usage: null`.
 * OpenRouter always sends it; some compatible providers send a running total on several
 * chunks. Either way each reported `usage` is the total so far, so the LAST one wins — chunks
 * are never added up. Groq reports it in `x_groq.usage` (older streams: only there), which
 * counts when the same chunk has no top-level `usage`.
 * (https://platform.openai.com/docs/api-reference/chat-streaming/streaming,
 * https://console.groq.com/docs/api-reference#chat-create)
 *
 * Envelope: `id`, `created`, `model`, `service_tier` (the tier the call ran in),
 * `system_fingerprint` and OpenRouter's `provider`, as the last chunk that carries each of them
 * says, with `object: "chat.completion"` and the `usage`.
 */
export class OpenAIChatStreamReducer implements StreamReducer {
  private readonly envelope: JsonObject = {};
  private usage: JsonObject | undefined;

  add(event: JsonObject): void {
    takeFields(this.envelope, event, ENVELOPE);
    if (isObject(event.usage)) {
      this.usage = event.usage;
    } else if (isObject(event.x_groq) && isObject(event.x_groq.usage)) {
      this.usage = event.x_groq.usage;
    }
  }

  result(): ReducedStream {
    const response: JsonObject = { ...this.envelope, object: "chat.completion" };
    if (this.usage !== undefined) response.usage = this.usage;
    return { usage: this.usage, response };
  }
}
