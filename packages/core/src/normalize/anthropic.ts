import type { ValidationIssue } from "../errors/index.js";
import type { MeterSet } from "../schemas/meters.js";
import { parseWith } from "../schemas/parse.js";
import { count, details, meterSet, n, optionalCount, throwIfIssues, usageObject } from "./shared.js";

const SUBJECT = "Anthropic usage";

/** The `usage` object of an Anthropic Messages response (or a merged stream usage). */
const AnthropicUsageSchema = usageObject({
  input_tokens: count,
  output_tokens: count,
  cache_read_input_tokens: optionalCount,
  cache_creation_input_tokens: optionalCount,
  cache_creation: details({
    ephemeral_5m_input_tokens: optionalCount,
    ephemeral_1h_input_tokens: optionalCount,
  }),
});

/**
 * Normalizes the `usage` of an Anthropic Messages response into disjoint meters.
 *
 * Pass `message.usage`. When streaming, `message_start` carries `message.usage` (input and
 * cache counts, a provisional `output_tokens`) and each `message_delta` carries CUMULATIVE
 * `usage` (`output_tokens`, and on newer API versions the input/cache fields too): pass
 * `message_start.message.usage` overlaid with the non-null fields of the last
 * `message_delta.usage` — never add deltas together.
 *
 * What includes what (Anthropic's own accounting): the input groups sit BESIDE each other.
 * - `input_tokens` EXCLUDES cache reads and cache writes: it is the uncached input as is.
 * - `cache_read_input_tokens` → `cached_input_tokens`.
 * - Cache writes: with the `cache_creation` TTL breakdown,
 *   `ephemeral_5m_input_tokens` → `cache_write_tokens` and
 *   `ephemeral_1h_input_tokens` → `cache_write_1h_tokens`; the breakdown must add up to
 *   `cache_creation_input_tokens` when both are present. Without the breakdown,
 *   `cache_creation_input_tokens` counts as 5-minute writes (`cache_write_tokens`).
 * - `output_tokens` INCLUDES extended-thinking tokens; Anthropic does not report them apart,
 *   so they stay in `output_tokens` (billed at the output rate) and no `reasoning_tokens` is set.
 * - `server_tool_use` (e.g. web search requests) is not a token count and is not metered here.
 *
 * Zero meters are omitted. There is no reported total to check against.
 *
 * @throws LatchValidationError (`invalid_input`, subject `"Anthropic usage"`) for a malformed
 * or missing count, a non-object, or a TTL breakdown that disagrees with
 * `cache_creation_input_tokens` (reported at path `cache_creation`).
 *
 * @example
 * normalizeAnthropic({ input_tokens: 500, cache_read_input_tokens: 1500, output_tokens: 400 });
 * // → { input_tokens: 500, cached_input_tokens: 1500, output_tokens: 400 }
 */
export function normalizeAnthropic(usage: unknown): MeterSet {
  const u = parseWith(AnthropicUsageSchema, usage, SUBJECT);
  const issues: ValidationIssue[] = [];

  let write5m: number;
  let write1h: number;
  if (u.cache_creation) {
    write5m = n(u.cache_creation.ephemeral_5m_input_tokens);
    write1h = n(u.cache_creation.ephemeral_1h_input_tokens);
    const reported = u.cache_creation_input_tokens;
    if (
      reported !== undefined &&
      reported !== null &&
      BigInt(write5m) + BigInt(write1h) !== BigInt(reported)
    ) {
      issues.push({
        path: "cache_creation",
        message:
          "cache_creation.ephemeral_5m_input_tokens + cache_creation.ephemeral_1h_input_tokens must equal cache_creation_input_tokens",
      });
    }
  } else {
    write5m = n(u.cache_creation_input_tokens);
    write1h = 0;
  }
  throwIfIssues(SUBJECT, issues);

  return meterSet(SUBJECT, {
    input_tokens: u.input_tokens,
    cached_input_tokens: n(u.cache_read_input_tokens),
    cache_write_tokens: write5m,
    cache_write_1h_tokens: write1h,
    output_tokens: u.output_tokens,
  });
}
