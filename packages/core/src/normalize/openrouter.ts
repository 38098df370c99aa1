import type { ValidationIssue } from "../errors/index.js";
import type { MeterSet } from "../schemas/meters.js";
import { parseWith } from "../schemas/parse.js";
import {
  checkPartsWithin,
  checkTotal,
  count,
  details,
  meterSet,
  n,
  optionalCount,
  throwIfIssues,
  usageObject,
} from "./shared.js";

const SUBJECT = "OpenRouter usage";

/** OpenRouter's OpenAI-compatible `usage` object (`cost`, `cost_details`, `is_byok` are ignored). */
const OpenRouterUsageSchema = usageObject({
  prompt_tokens: count,
  completion_tokens: count,
  total_tokens: count,
  prompt_tokens_details: details({
    cached_tokens: optionalCount,
    cache_write_tokens: optionalCount,
    audio_tokens: optionalCount,
  }),
  completion_tokens_details: details({
    reasoning_tokens: optionalCount,
    audio_tokens: optionalCount,
  }),
});

/**
 * Normalizes OpenRouter's `usage` (chat completions, OpenAI-compatible) into disjoint meters.
 *
 * Pass `response.usage`; when streaming, the `usage` of the last SSE chunk (OpenRouter always
 * sends it; the chunk's `choices` is `[]`).
 *
 * What includes what (OpenAI conventions, which OpenRouter follows for every upstream model):
 * - `prompt_tokens` INCLUDES `prompt_tokens_details.cached_tokens` (cache reads),
 *   `prompt_tokens_details.cache_write_tokens` (cache writes, reported only for models with
 *   explicit caching and write pricing) and `prompt_tokens_details.audio_tokens`, so
 *   `input_tokens = prompt_tokens − cached_tokens − cache_write_tokens − audio_tokens`.
 * - Cache writes carry no TTL breakdown, so they count as 5-minute writes (`cache_write_tokens`).
 * - `completion_tokens` INCLUDES `completion_tokens_details.reasoning_tokens` (OpenRouter bills
 *   reasoning as output tokens) and `completion_tokens_details.audio_tokens`, so
 *   `output_tokens = completion_tokens − reasoning_tokens − audio_tokens`.
 * - `cost` / `cost_details` (credits charged) are ignored: Latch rates meters itself.
 * - `total_tokens` must equal `prompt_tokens + completion_tokens`; the meters sum back to it.
 *
 * Zero meters are omitted.
 *
 * @throws LatchValidationError (`invalid_input`, subject `"OpenRouter usage"`) for a malformed
 * or missing count, a non-object, details exceeding their total, or a `total_tokens` that
 * disagrees with the parts.
 *
 * @example
 * normalizeOpenRouter({
 *   prompt_tokens: 2000, completion_tokens: 1000, total_tokens: 3000, cost: 0.0042,
 *   prompt_tokens_details: { cached_tokens: 1500 },
 *   completion_tokens_details: { reasoning_tokens: 600 },
 * });
 * // → { input_tokens: 500, cached_input_tokens: 1500, output_tokens: 400, reasoning_tokens: 600 }
 */
export function normalizeOpenRouter(usage: unknown): MeterSet {
  const u = parseWith(OpenRouterUsageSchema, usage, SUBJECT);
  const cached = n(u.prompt_tokens_details?.cached_tokens);
  const cacheWrite = n(u.prompt_tokens_details?.cache_write_tokens);
  const audioIn = n(u.prompt_tokens_details?.audio_tokens);
  const reasoning = n(u.completion_tokens_details?.reasoning_tokens);
  const audioOut = n(u.completion_tokens_details?.audio_tokens);

  const issues: ValidationIssue[] = [];
  checkPartsWithin(
    issues,
    ["prompt_tokens", u.prompt_tokens],
    [
      ["prompt_tokens_details.cached_tokens", cached],
      ["prompt_tokens_details.cache_write_tokens", cacheWrite],
      ["prompt_tokens_details.audio_tokens", audioIn],
    ],
  );
  checkPartsWithin(
    issues,
    ["completion_tokens", u.completion_tokens],
    [
      ["completion_tokens_details.reasoning_tokens", reasoning],
      ["completion_tokens_details.audio_tokens", audioOut],
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
    input_tokens: u.prompt_tokens - cached - cacheWrite - audioIn,
    cached_input_tokens: cached,
    cache_write_tokens: cacheWrite,
    audio_input_tokens: audioIn,
    output_tokens: u.completion_tokens - reasoning - audioOut,
    reasoning_tokens: reasoning,
    audio_output_tokens: audioOut,
  });
}
