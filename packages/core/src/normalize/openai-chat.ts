import type { z } from "zod";
import type { ValidationIssue } from "../errors/index.js";
import type { MeterSet } from "../schemas/meters.js";
import { anyValue, nullish, object, optional, parseFast } from "./fast-read.js";
import type { NormalizedResponse } from "./result.js";
import {
  checkPartsWithin,
  checkTotal,
  count,
  details,
  meterSet,
  n,
  optionalCount,
  optionalTier,
  reportedOpenAITier,
  throwIfIssues,
  underPrefix,
  usageObject,
} from "./shared.js";

const SUBJECT = "OpenAI chat usage";
const RESPONSE_SUBJECT = "OpenAI chat response";

/** The `usage` object of an OpenAI Chat Completions response (or of the last stream chunk). */
export const OpenAIChatUsageSchema = usageObject({
  prompt_tokens: count,
  completion_tokens: count,
  total_tokens: count,
  prompt_tokens_details: details({
    cached_tokens: optionalCount,
    cache_write_tokens: optionalCount,
    audio_tokens: optionalCount,
    // Info only (inside prompt_tokens, billed at the text input rate on chat models).
    image_tokens: optionalCount,
    text_tokens: optionalCount,
  }),
  completion_tokens_details: details({
    reasoning_tokens: optionalCount,
    audio_tokens: optionalCount,
    accepted_prediction_tokens: optionalCount,
    rejected_prediction_tokens: optionalCount,
  }),
  // DeepSeek (OpenAI-compatible): the prompt split into cache hits and misses.
  prompt_cache_hit_tokens: optionalCount,
  prompt_cache_miss_tokens: optionalCount,
});

/**
 * Normalizes the `usage` of an OpenAI Chat Completions response into disjoint meters.
 *
 * Pass `response.usage`; for a stream sent with `stream_options: { include_usage: true }`, pass
 * the `usage` of the last chunk (the one whose `choices` is `[]`). Groq streams put it in the
 * last chunk's `x_groq.usage` ({@link normalizeOpenAIChatResponse} reads either).
 *
 * What includes what (OpenAI's own accounting):
 * - `prompt_tokens` INCLUDES `prompt_tokens_details.cached_tokens` (cache reads),
 *   `prompt_tokens_details.cache_write_tokens` (cache writes) and
 *   `prompt_tokens_details.audio_tokens`, each disjoint from the others, so
 *   `input_tokens = prompt_tokens − cached_tokens − cache_write_tokens − audio_tokens`,
 *   `cached_input_tokens = cached_tokens`, `cache_write_tokens = cache_write_tokens`,
 *   `audio_input_tokens = audio_tokens`. OpenAI's prompt-caching guide
 *   (https://developers.openai.com/api/docs/guides/prompt-caching): "2,000 tokens were read
 *   from the cache and 400 additional tokens were written. The remaining 200 input tokens were
 *   neither read nor written"; writes are billed at 1.25× the input rate on GPT-5.6 and later
 *   (30-minute TTL) and free before. They use the `cache_write_tokens` meter, the one a price
 *   sheet gives OpenAI's write price.
 * - `prompt_tokens_details.image_tokens` / `text_tokens` are info only: chat models bill
 *   image input at the text input rate, so image tokens stay in `input_tokens`.
 * - `completion_tokens` INCLUDES `completion_tokens_details.reasoning_tokens` and
 *   `completion_tokens_details.audio_tokens`, so
 *   `output_tokens = completion_tokens − reasoning_tokens − audio_tokens`,
 *   `reasoning_tokens = reasoning_tokens`, `audio_output_tokens = audio_tokens`.
 * - `accepted_prediction_tokens` / `rejected_prediction_tokens` (Predicted Outputs) are already
 *   inside `completion_tokens` and billed as output: they stay in `output_tokens` (no meter of
 *   their own); each must not exceed `completion_tokens`.
 * - Cached audio: Chat Completions does not split `cached_tokens` by modality (its
 *   `prompt_tokens_details` has no `cached_tokens_details`; only the Realtime API's
 *   `input_token_details` does, and Latch has no Realtime parser), so every cache read is
 *   `cached_input_tokens`, `cached_audio_input_tokens` is never set, and `audio_tokens` is
 *   taken as the uncached audio; the parts must fit together inside `prompt_tokens`.
 * - DeepSeek (https://api-docs.deepseek.com/guides/kv_cache): `prompt_cache_hit_tokens` →
 *   `cached_input_tokens`, `prompt_cache_miss_tokens` → `input_tokens`; together they must
 *   equal `prompt_tokens`, and a `prompt_tokens_details.cached_tokens` sent beside them must
 *   equal the hits.
 * - xAI (Grok chat completions) reports `reasoning_tokens` BESIDE `completion_tokens`:
 *   `total_tokens = prompt_tokens + completion_tokens + reasoning_tokens` (its
 *   `cost_in_usd_ticks` bills all three; checked on the recorded grok-3-mini payloads of
 *   vercel/ai `packages/xai/src/__fixtures__`). When `reasoning_tokens > 0` and `total_tokens`
 *   says so, `output_tokens = completion_tokens − audio_tokens` and the reasoning is not taken
 *   out of it; the meters then sum to that `total_tokens`.
 *
 * The meters always sum back to `total_tokens`. Zero meters are omitted.
 *
 * @throws LatchValidationError (`invalid_input`, subject `"OpenAI chat usage"`) for a
 * malformed count (negative, fractional, NaN, a string, > 2^53-1), a missing
 * `prompt_tokens` / `completion_tokens` / `total_tokens`, a non-object, or an inconsistent
 * payload (details exceeding their total, `total_tokens ≠ prompt_tokens + completion_tokens`,
 * DeepSeek hits and misses that do not add up to `prompt_tokens`).
 *
 * @example
 * normalizeOpenAIChat({
 *   prompt_tokens: 2600, completion_tokens: 1000, total_tokens: 3600,
 *   prompt_tokens_details: { cached_tokens: 2000, cache_write_tokens: 400 },
 *   completion_tokens_details: { reasoning_tokens: 600 },
 * });
 * // → { input_tokens: 200, cached_input_tokens: 2000, cache_write_tokens: 400, output_tokens: 400, reasoning_tokens: 600 }
 */
export function normalizeOpenAIChat(usage: unknown): MeterSet {
  const u = parseFast(OpenAIChatUsageSchema, usage, SUBJECT);
  const write = n(u.prompt_tokens_details?.cache_write_tokens);
  const audioIn = n(u.prompt_tokens_details?.audio_tokens);
  const reasoning = n(u.completion_tokens_details?.reasoning_tokens);
  const audioOut = n(u.completion_tokens_details?.audio_tokens);
  const accepted = n(u.completion_tokens_details?.accepted_prediction_tokens);
  const rejected = n(u.completion_tokens_details?.rejected_prediction_tokens);

  // xAI (OpenAI-compatible) reports reasoning BESIDE completion_tokens: total_tokens then
  // equals prompt + completion + reasoning, which, with reasoning > 0, no OpenAI payload does.
  const reasoningBeside =
    reasoning > 0 &&
    BigInt(u.total_tokens) === BigInt(u.prompt_tokens) + BigInt(u.completion_tokens) + BigInt(reasoning);
  const issues: ValidationIssue[] = [];
  const cached = cacheReads(issues, u);
  checkPartsWithin(
    issues,
    ["prompt_tokens", u.prompt_tokens],
    [
      [
        u.prompt_cache_hit_tokens == null ? "prompt_tokens_details.cached_tokens" : "prompt_cache_hit_tokens",
        cached,
      ],
      ["prompt_tokens_details.cache_write_tokens", write],
      ["prompt_tokens_details.audio_tokens", audioIn],
    ],
  );
  checkPartsWithin(
    issues,
    ["completion_tokens", u.completion_tokens],
    [
      ["completion_tokens_details.reasoning_tokens", reasoningBeside ? 0 : reasoning],
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
  if (!reasoningBeside) {
    checkTotal(
      issues,
      ["total_tokens", u.total_tokens],
      [
        ["prompt_tokens", u.prompt_tokens],
        ["completion_tokens", u.completion_tokens],
      ],
    );
  }
  throwIfIssues(SUBJECT, issues);

  return meterSet(SUBJECT, {
    input_tokens: u.prompt_tokens - cached - write - audioIn,
    cached_input_tokens: cached,
    cache_write_tokens: write,
    audio_input_tokens: audioIn,
    output_tokens: u.completion_tokens - (reasoningBeside ? 0 : reasoning) - audioOut,
    reasoning_tokens: reasoning,
    audio_output_tokens: audioOut,
  });
}

/** Cache reads: OpenAI's `cached_tokens`, or DeepSeek's hits (checked against the rest). */
function cacheReads(issues: ValidationIssue[], u: z.output<typeof OpenAIChatUsageSchema>): number {
  const cachedTokens = u.prompt_tokens_details?.cached_tokens;
  const hit = u.prompt_cache_hit_tokens;
  const miss = u.prompt_cache_miss_tokens;
  if (hit == null && miss == null) return n(cachedTokens);
  if (hit != null && miss != null) {
    checkTotal(
      issues,
      ["prompt_tokens", u.prompt_tokens],
      [
        ["prompt_cache_hit_tokens", hit],
        ["prompt_cache_miss_tokens", miss],
      ],
    );
  } else if (miss != null) {
    checkPartsWithin(issues, ["prompt_tokens", u.prompt_tokens], [["prompt_cache_miss_tokens", miss]]);
  }
  const hits = hit ?? Math.max(0, u.prompt_tokens - n(miss));
  if (cachedTokens != null && cachedTokens !== hits) {
    issues.push({
      path: "prompt_tokens_details.cached_tokens",
      message: "must equal prompt_cache_hit_tokens",
    });
  }
  return hits;
}

/** A Chat Completions response (or last stream chunk), as far as billing reads it. */
export const OpenAIChatResponseSchema = object({
  usage: optional(anyValue),
  service_tier: optionalTier,
  x_groq: nullish(object({ usage: optional(anyValue) })),
});

/**
 * Normalizes a whole Chat Completions response (or the last stream chunk): the meters of its
 * `usage` (see {@link normalizeOpenAIChat}) — or, when `usage` is absent or `null`, of Groq's
 * `x_groq.usage` (where Groq streams report usage) — and the tier in `service_tier`
 * (`default` → `standard`, `priority`, `flex`, `scale`; OpenAI reports the tier that actually
 * served the call). Groq's `on_demand`, its standard tier (https://console.groq.com/docs/flex-processing),
 * is `standard` too; `auto`, a request value that names no tier, counts as no tier reported.
 *
 * @throws LatchValidationError (`invalid_input`, subject `"OpenAI chat response"`) naming the
 * field, e.g. `usage.prompt_tokens` or `x_groq.usage.total_tokens`.
 *
 * @example
 * normalizeOpenAIChatResponse(completion);
 * // → { meters: { input_tokens: 1117, output_tokens: 46 }, serviceTier: "standard" }
 */
export function normalizeOpenAIChatResponse(response: unknown): NormalizedResponse {
  const body = parseFast(OpenAIChatResponseSchema, response, RESPONSE_SUBJECT);
  const groq = (body.usage === undefined || body.usage === null) && body.x_groq != null;
  const meters = groq
    ? underPrefix(RESPONSE_SUBJECT, "x_groq.usage", () => normalizeOpenAIChat(body.x_groq?.usage))
    : underPrefix(RESPONSE_SUBJECT, "usage", () => normalizeOpenAIChat(body.usage));
  const serviceTier = chatTier(body.service_tier);
  return serviceTier === undefined ? { meters } : { meters, serviceTier };
}

/** OpenAI-compatible tier spellings: Groq calls its standard tier `on_demand`. */
function chatTier(reported: string | null | undefined): string | undefined {
  return reported?.toLowerCase() === "on_demand" ? "standard" : reportedOpenAITier(reported);
}
