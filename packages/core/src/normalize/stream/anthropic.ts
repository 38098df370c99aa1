import { isObject, type JsonObject, type ReducedStream, type StreamReducer } from "./reducer.js";

/**
 * Anthropic Messages events.
 *
 * `message_start` carries the `message` with its `usage` as known at the start: the input
 * side (`input_tokens`, cache reads and writes with their TTL breakdown), a provisional
 * `output_tokens`, `service_tier`. Each `message_delta` carries a `usage` whose counts are
 * CUMULATIVE — the totals so far, not increments — with the final `output_tokens` and, on
 * current API versions, the input and cache counts again, `server_tool_use` (web search and
 * fetch requests), `output_tokens_details` and `iterations`. So the final usage is the
 * `message_start` usage overlaid, field by field, with every non-null field of each
 * `message_delta` usage in order (an object such as `iterations` is replaced whole, never
 * merged or summed). (https://docs.anthropic.com/en/docs/build-with-claude/streaming#event-types)
 *
 * One exception: when server tools run several sampling iterations, a `message_delta` may
 * raise `cache_creation_input_tokens` without sending the `cache_creation` TTL breakdown again
 * (seen in real streams). The breakdown from `message_start` then describes an older total,
 * so it is dropped, and the normalizer counts the writes as it documents for a usage without
 * a breakdown (5-minute writes). It is never patched up with invented numbers.
 *
 * Envelope: the `message_start` message (`id`, `model`, `role`, …) with `stop_reason` and
 * `stop_sequence` from the deltas, `content` holding each block as `content_block_start`
 * announced it (its type and ids: `server_tool_use`, `web_search_tool_result`, …; text is
 * not accumulated), and the merged `usage`.
 */
export class AnthropicStreamReducer implements StreamReducer {
  private message: JsonObject = {};
  private content: unknown[] = [];
  private usage: JsonObject | undefined;

  add(event: JsonObject): void {
    switch (event.type) {
      case "message_start": {
        // A second message_start starts a new message: nothing of the first one carries over.
        const message = isObject(event.message) ? event.message : {};
        this.message = { ...message };
        this.content = [];
        this.usage = isObject(message.usage) ? { ...message.usage } : undefined;
        break;
      }
      case "content_block_start":
        if (isObject(event.content_block)) this.content.push(event.content_block);
        break;
      case "message_delta": {
        if (isObject(event.delta)) {
          for (const key of ["stop_reason", "stop_sequence", "stop_details"]) {
            if (key in event.delta) this.message[key] = event.delta[key];
          }
        }
        if (isObject(event.usage)) {
          const usage: JsonObject = { ...this.usage };
          for (const [key, value] of Object.entries(event.usage)) {
            if (value !== null && value !== undefined) usage[key] = value;
          }
          dropStaleCacheBreakdown(usage, event.usage);
          this.usage = usage;
        }
        break;
      }
    }
  }

  result(): ReducedStream {
    const response: JsonObject = { ...this.message, content: [...this.content] };
    if (this.usage !== undefined) response.usage = { ...this.usage };
    else delete response.usage;
    return { usage: this.usage === undefined ? undefined : { ...this.usage }, response };
  }
}

/** Removes a `cache_creation` breakdown that a delta's new `cache_creation_input_tokens` outdated. */
function dropStaleCacheBreakdown(usage: JsonObject, delta: JsonObject): void {
  const total = delta.cache_creation_input_tokens;
  const breakdown = usage.cache_creation;
  if (typeof total !== "number" || isObject(delta.cache_creation) || !isObject(breakdown)) return;
  let sum = 0;
  for (const value of Object.values(breakdown)) if (typeof value === "number") sum += value;
  if (sum !== total) delete usage.cache_creation;
}
