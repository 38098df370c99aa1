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

const SUBJECT = "OpenAI chat usage";

/** The `usage` object of an OpenAI Chat Completions response (or of the last stream chunk). */
const OpenAIChatUsageSchema = usageObject({
  prompt_tokens: count,
  completion_tokens: count,
  total_tokens: count,
  prompt_tokens_details: details({
    cached_tokens: optionalCount,
    audio_tokens: optionalCount,
  }),
  completion_tokens_details: details({
    reasoning_tokens: optionalCount,
    audio_tokens: optionalCount,
    accepted_prediction_tokens: optionalCount,
    rejected_prediction_tokens: optionalCount,
  }),
});

/**
 * Normalizes the `usage` of an OpenAI Chat Completions response into disjoint meters.
 *
 * Pass `response.usage`; for a stream sent with `stream_options: { include_usage: true }`, pass
 * the `usage` of the last chunk (the one whose `choices` is `[]`).
 *
 * What includes what (OpenAI's own accounting):
 * - `prompt_tokens` INCLUDES `prompt_tokens_details.cached_tokens` and
 *   `prompt_tokens_details.audio_tokens`, so
 *   `input_tokens = prompt_tokens − cached_tokens − audio_tokens`,
 *   `cached_input_tokens = cached_tokens`, `audio_input_tokens = audio_tokens`.
 * - `completion_tokens` INCLUDES `completion_tokens_details.reasoning_tokens` and
 *   `completion_tokens_details.audio_tokens`, so
 *   `output_tokens = completion_tokens − reasoning_tokens − audio_tokens`,
 *   `reasoning_tokens = reasoning_tokens`, `audio_output_tokens = audio_tokens`.
 * - `accepted_prediction_tokens` / `rejected_prediction_tokens` (Predicted Outputs) are already
 *   inside `completion_tokens` and billed as output: they stay in `output_tokens` (no meter of
 *   their own); each must not exceed `completion_tokens`.
 * - Cached audio: Chat Completions does not split `cached_tokens` by modality. Latch has no
 *   cached-audio meter, so every cache read is `cached_input_tokens` and `audio_tokens` is
 *   taken as the uncached audio; the two must fit together inside `prompt_tokens`.
 *
 * The meters always sum back to `total_tokens`. Zero meters are omitted.
 *
 * @throws LatchValidationError (`invalid_input`, subject `"OpenAI chat usage"`) for a
 * malformed count (negative, fractional, NaN, a string, > 2^53-1), a missing
 * `prompt_tokens` / `completion_tokens` / `total_tokens`, a non-object, or an inconsistent
 * payload (details exceeding their total, `total_tokens ≠ prompt_tokens + completion_tokens`).
 *
 * @example
 * normalizeOpenAIChat({
 *   prompt_tokens: 2000, completion_tokens: 1000, total_tokens: 3000,
 *   prompt_tokens_details: { cached_tokens: 1500 },
 *   completion_tokens_details: { reasoning_tokens: 600 },
 * });
 * // → { input_tokens: 500, cached_input_tokens: 1500, output_tokens: 400, reasoning_tokens: 600 }
 */
export function normalizeOpenAIChat(usage: unknown): MeterSet {
  const u = parseWith(OpenAIChatUsageSchema, usage, SUBJECT);
  const cached = n(u.prompt_tokens_details?.cached_tokens);
  const audioIn = n(u.prompt_tokens_details?.audio_tokens);
  const reasoning = n(u.completion_tokens_details?.reasoning_tokens);
  const audioOut = n(u.completion_tokens_details?.audio_tokens);
  const accepted = n(u.completion_tokens_details?.accepted_prediction_tokens);
  const rejected = n(u.completion_tokens_details?.rejected_prediction_tokens);

  const issues: ValidationIssue[] = [];
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
    ],
  );
  checkPartsWithin(
    issues,
    ["completion_tokens", u.completion_tokens],
    [["completion_tokens_details.accepted_prediction_tokens", accepted]],
  );
  checkPartsWithin(
    issues,
    ["completion_tokens", u.completion_tokens],
    [["completion_tokens_details.rejected_prediction_tokens", rejected]],
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
    input_tokens: u.prompt_tokens - cached - audioIn,
    cached_input_tokens: cached,
    audio_input_tokens: audioIn,
    output_tokens: u.completion_tokens - reasoning - audioOut,
    reasoning_tokens: reasoning,
    audio_output_tokens: audioOut,
  });
}
