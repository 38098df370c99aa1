import type { ValidationIssue } from "../errors/index.js";
import type { MeterSet } from "../schemas/meters.js";
import { anyValue, object, optional, parseFast } from "./fast-read.js";
import type { NormalizedResponse } from "./result.js";
import {
  checkPartsWithin,
  checkTotal,
  count,
  details,
  meterSet,
  n,
  optionalCount,
  throwIfIssues,
  underPrefix,
  usageObject,
} from "./shared.js";

const SUBJECT = "OpenRouter usage";

/** OpenRouter's OpenAI-compatible `usage` object (`cost`, `cost_details`, `is_byok` are ignored). */
export const OpenRouterUsageSchema = usageObject({
  prompt_tokens: count,
  completion_tokens: count,
  total_tokens: count,
  prompt_tokens_details: details({
    cached_tokens: optionalCount,
    cache_write_tokens: optionalCount,
    audio_tokens: optionalCount,
    // Info only: inside prompt_tokens and billed at the text input rate.
    video_tokens: optionalCount,
  }),
  completion_tokens_details: details({
    reasoning_tokens: optionalCount,
    audio_tokens: optionalCount,
    image_tokens: optionalCount,
  }),
  // Server-side tools. `tool_calls_requested` / `tool_calls_executed` count every OpenRouter
  // server tool call and overlap `web_search_requests` ("do not sum the two"): only the
  // searches are metered.
  server_tool_use_details: details({ web_search_requests: optionalCount }),
});

/**
 * Normalizes OpenRouter's `usage` (chat completions, OpenAI-compatible) into disjoint meters.
 *
 * Pass `response.usage`; when streaming, the `usage` of the last SSE chunk (OpenRouter always
 * sends it; the chunk's `choices` is `[]`). Sources: Usage Accounting
 * (https://openrouter.ai/docs/use-cases/usage-accounting) and Prompt Caching
 * (https://openrouter.ai/docs/features/prompt-caching).
 *
 * What includes what (OpenAI conventions, which OpenRouter follows for every upstream model):
 * - `prompt_tokens` INCLUDES `prompt_tokens_details.cached_tokens` (cache reads) and
 *   `prompt_tokens_details.audio_tokens`, so `input_tokens = prompt_tokens − cached_tokens −
 *   audio_tokens − (cache writes when inside, below)`. `video_tokens` is info only.
 * - Cache writes (`prompt_tokens_details.cache_write_tokens`, reported for models with explicit
 *   caching and write pricing) carry no TTL breakdown and count as 5-minute writes
 *   (`cache_write_tokens`). Where they sit depends on the upstream, and the counts tell which:
 *   - `cached_tokens + cache_write_tokens + audio_tokens ≤ prompt_tokens`: the writes are part
 *     of `prompt_tokens` (Anthropic models: `prompt_tokens = uncached + read + written`) and are
 *     taken out of `input_tokens`. The meters then sum to `total_tokens`.
 *   - more than `prompt_tokens`: the writes are NOT part of the prompt split. This is what
 *     Gemini explicit caching through OpenRouter reports — OpenRouter writes the cache
 *     ("charged at the input token cost plus 5 minutes of cache storage") and the same request
 *     reads it ("cache reads: charged at 0.25×"), so the written tokens are also counted as
 *     read, and `cost` bills both. Latch bills what that `cost` bills:
 *     `input_tokens = prompt_tokens − cached_tokens − audio_tokens` and
 *     `cache_write_tokens = cache_write_tokens` on top, so the token meters sum to
 *     `total_tokens + cache_write_tokens`. Reads and audio must still fit in `prompt_tokens`.
 *   A Gemini explicit-cache write that happens to fit inside `prompt_tokens` cannot be told
 *   apart from an Anthropic one by the counts alone, and is metered the first way.
 * - `completion_tokens` INCLUDES `completion_tokens_details.reasoning_tokens` (OpenRouter bills
 *   reasoning as output tokens), `completion_tokens_details.audio_tokens` and
 *   `completion_tokens_details.image_tokens` (generated images, e.g.
 *   `google/gemini-2.5-flash-image`, priced apart), so `output_tokens = completion_tokens −
 *   reasoning_tokens − audio_tokens − image_tokens`, `image_output_tokens = image_tokens`.
 * - `server_tool_use_details.web_search_requests` → `web_search_requests` (per search, priced
 *   per unit): "the number of web searches performed by server-side tools", whether OpenRouter's
 *   `openrouter:web_search` server tool or a provider's native search; OpenRouter's `cost`
 *   includes them (e.g. $0.01 per search on `openai/gpt-4.1-mini`, OpenAI's $10 per 1,000).
 *   `tool_calls_requested` / `tool_calls_executed` already count those searches ("do not sum
 *   the two", OpenRouter API reference, `ServerToolUse`) and are not metered.
 * - `cost` / `cost_details` (credits charged) are ignored: Latch rates meters itself.
 * - `total_tokens` must equal `prompt_tokens + completion_tokens`.
 *
 * Zero meters are omitted.
 *
 * @throws LatchValidationError (`invalid_input`, subject `"OpenRouter usage"`) for a malformed
 * or missing count, a non-object, details exceeding their total (cache reads + audio past
 * `prompt_tokens`, reasoning + audio + image past `completion_tokens`), or a `total_tokens`
 * that disagrees with the parts.
 *
 * @example
 * normalizeOpenRouter({
 *   prompt_tokens: 5000, completion_tokens: 200, total_tokens: 5200, cost: 0.0021,
 *   prompt_tokens_details: { cached_tokens: 4200, cache_write_tokens: 4200 },
 * });
 * // Gemini explicit cache, written then read: → { input_tokens: 800, cached_input_tokens: 4200, cache_write_tokens: 4200, output_tokens: 200 }
 */
export function normalizeOpenRouter(usage: unknown): MeterSet {
  const u = parseFast(OpenRouterUsageSchema, usage, SUBJECT);
  const cached = n(u.prompt_tokens_details?.cached_tokens);
  const cacheWrite = n(u.prompt_tokens_details?.cache_write_tokens);
  const audioIn = n(u.prompt_tokens_details?.audio_tokens);
  const reasoning = n(u.completion_tokens_details?.reasoning_tokens);
  const audioOut = n(u.completion_tokens_details?.audio_tokens);
  const imageOut = n(u.completion_tokens_details?.image_tokens);

  const issues: ValidationIssue[] = [];
  // Exact comparison (bigint): the counts may each be near 2^53.
  const writesInside = BigInt(cached) + BigInt(cacheWrite) + BigInt(audioIn) <= BigInt(u.prompt_tokens);
  checkPartsWithin(
    issues,
    ["prompt_tokens", u.prompt_tokens],
    [
      ["prompt_tokens_details.cached_tokens", cached],
      ["prompt_tokens_details.audio_tokens", audioIn],
    ],
  );
  checkPartsWithin(
    issues,
    ["completion_tokens", u.completion_tokens],
    [
      ["completion_tokens_details.reasoning_tokens", reasoning],
      ["completion_tokens_details.audio_tokens", audioOut],
      ["completion_tokens_details.image_tokens", imageOut],
    ],
  );
  checkTotal(
    issues,
    ["total_tokens", u.total_tokens],
    [
      ["prompt_tokens", u.prompt_tokens],
      ["completion_tokens", u.completion_tokens],
    ],
  );
  throwIfIssues(SUBJECT, issues);

  return meterSet(SUBJECT, {
    input_tokens: u.prompt_tokens - cached - audioIn - (writesInside ? cacheWrite : 0),
    cached_input_tokens: cached,
    cache_write_tokens: cacheWrite,
    audio_input_tokens: audioIn,
    output_tokens: u.completion_tokens - reasoning - audioOut - imageOut,
    reasoning_tokens: reasoning,
    audio_output_tokens: audioOut,
    image_output_tokens: imageOut,
    web_search_requests: n(u.server_tool_use_details?.web_search_requests),
  });
}

/** An OpenRouter chat completion, as far as billing reads it (its `usage`). */
export const OpenRouterResponseSchema = object({ usage: optional(anyValue) });

/**
 * Normalizes a whole OpenRouter chat completion (or its last stream chunk): the meters of its
 * `usage` (see {@link normalizeOpenRouter}). OpenRouter reports no service tier.
 *
 * @throws LatchValidationError (`invalid_input`, subject `"OpenRouter response"`) naming the
 * field, e.g. `usage.prompt_tokens`.
 *
 * @example
 * normalizeOpenRouterResponse(completion); // → { meters: { input_tokens: 114, cache_write_tokens: 3100, output_tokens: 187 } }
 */
export function normalizeOpenRouterResponse(response: unknown): NormalizedResponse {
  const body = parseFast(OpenRouterResponseSchema, response, "OpenRouter response");
  return { meters: underPrefix("OpenRouter response", "usage", () => normalizeOpenRouter(body.usage)) };
}
