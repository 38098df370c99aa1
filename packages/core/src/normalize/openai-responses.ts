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

const SUBJECT = "OpenAI Responses usage";

/** The `usage` object of an OpenAI Responses API response. */
const OpenAIResponsesUsageSchema = usageObject({
  input_tokens: count,
  output_tokens: count,
  total_tokens: count,
  input_tokens_details: details({ cached_tokens: optionalCount }),
  output_tokens_details: details({ reasoning_tokens: optionalCount }),
});

/**
 * Normalizes the `usage` of an OpenAI Responses API response into disjoint meters.
 *
 * Pass `response.usage`; when streaming, pass `event.response.usage` of the final
 * `response.completed` event (earlier events carry `usage: null`).
 *
 * What includes what:
 * - `input_tokens` INCLUDES `input_tokens_details.cached_tokens`, so
 *   `input_tokens (meter) = input_tokens − cached_tokens`, `cached_input_tokens = cached_tokens`.
 * - `output_tokens` INCLUDES `output_tokens_details.reasoning_tokens`, so
 *   `output_tokens (meter) = output_tokens − reasoning_tokens`, `reasoning_tokens = reasoning_tokens`.
 * - `total_tokens` must equal `input_tokens + output_tokens`; the meters sum back to it.
 *
 * Zero meters are omitted.
 *
 * @throws LatchValidationError (`invalid_input`, subject `"OpenAI Responses usage"`) for a
 * malformed or missing count, a non-object, `cached_tokens > input_tokens`,
 * `reasoning_tokens > output_tokens`, or a `total_tokens` that disagrees with the parts.
 *
 * @example
 * normalizeOpenAIResponses({
 *   input_tokens: 2000, input_tokens_details: { cached_tokens: 1500 },
 *   output_tokens: 1000, output_tokens_details: { reasoning_tokens: 600 },
 *   total_tokens: 3000,
 * });
 * // → { input_tokens: 500, cached_input_tokens: 1500, output_tokens: 400, reasoning_tokens: 600 }
 */
export function normalizeOpenAIResponses(usage: unknown): MeterSet {
  const u = parseWith(OpenAIResponsesUsageSchema, usage, SUBJECT);
  const cached = n(u.input_tokens_details?.cached_tokens);
  const reasoning = n(u.output_tokens_details?.reasoning_tokens);

  const issues: ValidationIssue[] = [];
  checkPartsWithin(
    issues,
    ["input_tokens", u.input_tokens],
    [["input_tokens_details.cached_tokens", cached]],
  );
  checkPartsWithin(
    issues,
    ["output_tokens", u.output_tokens],
    [["output_tokens_details.reasoning_tokens", reasoning]],
  );
  checkTotal(
    issues,
    ["total_tokens", u.total_tokens],
    [
      ["input_tokens", u.input_tokens],
      ["output_tokens", u.output_tokens],
    ],
  );
  throwIfIssues(SUBJECT, issues);

  return meterSet(SUBJECT, {
    input_tokens: u.input_tokens - cached,
    cached_input_tokens: cached,
    output_tokens: u.output_tokens - reasoning,
    reasoning_tokens: reasoning,
  });
}
