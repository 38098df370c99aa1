import { isObject, type JsonObject, type ReducedStream, type StreamReducer } from "./reducer.js";

/**
 * OpenAI Responses API events (also OpenRouter's, xAI's and DeepSeek's Responses endpoints).
 *
 * Every lifecycle event (`response.created`, `response.in_progress`, `response.queued`, and the
 * terminal `response.completed`, `response.incomplete` or `response.failed`) carries the whole
 * `response` object; only the terminal one has `usage` filled in (earlier ones: `null`). The
 * last `response` seen is the envelope: `model`, `service_tier` (the tier the call actually
 * ran in — the first events echo the request's, e.g. `auto`), `output` (the output items,
 * whose `web_search_call`s are billed per call) and `usage`.
 * (https://platform.openai.com/docs/api-reference/responses-streaming)
 *
 * A terminal `response` whose `output` is missing or empty while `response.output_item.done`
 * events delivered items gets those items, by `output_index`.
 */
export class OpenAIResponsesStreamReducer implements StreamReducer {
  private response: JsonObject = {};
  private readonly items = new Map<number, unknown>();

  add(event: JsonObject): void {
    if (isObject(event.response)) {
      this.response = event.response;
    } else if (event.type === "response.output_item.done" && typeof event.output_index === "number") {
      this.items.set(event.output_index, event.item);
    }
  }

  result(): ReducedStream {
    const response: JsonObject = { ...this.response };
    const output = response.output;
    if (
      (output === undefined || output === null || (Array.isArray(output) && output.length === 0)) &&
      this.items.size > 0
    ) {
      response.output = [...this.items.entries()].sort(([a], [b]) => a - b).map(([, item]) => item);
    }
    const usage = isObject(response.usage) ? response.usage : undefined;
    return { usage, response };
  }
}
