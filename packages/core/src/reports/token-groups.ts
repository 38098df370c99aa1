import { type MeterKind, type MeterSet, TOKEN_METERS } from "../schemas/meters.js";

/**
 * The token groupings of reports, one definition for every place that shows them: `summarize`
 * (and so the memory and Redis stores), the columns the Postgres store writes and sums, and
 * the HTTP API's lines. Image counts, server-tool requests and custom meters are no group's.
 *
 * @packageDocumentation
 */

/** A report's token field: a `SummaryRow` key (`input_tokens` … on the wire). */
export type TokenGroup =
  | "inputTokens"
  | "outputTokens"
  | "cacheReadTokens"
  | "cacheWriteTokens"
  | "totalTokens";

/**
 * The meters each token group adds up, in `SummaryRow` order: `inputTokens` = input + audio
 * input, `outputTokens` = output + reasoning + audio output, `cacheReadTokens` = cached input (text and audio),
 * `cacheWriteTokens` = 5-minute + 1-hour cache writes, `totalTokens` = every token meter
 * (`TOKEN_METERS`, image tokens included).
 *
 * @example
 * for (const [group, meters] of Object.entries(TOKEN_GROUPS)) …
 */
export const TOKEN_GROUPS: Readonly<Record<TokenGroup, readonly MeterKind[]>> = Object.freeze({
  inputTokens: Object.freeze<MeterKind[]>(["input_tokens", "audio_input_tokens"]),
  outputTokens: Object.freeze<MeterKind[]>(["output_tokens", "reasoning_tokens", "audio_output_tokens"]),
  cacheReadTokens: Object.freeze<MeterKind[]>(["cached_input_tokens", "cached_audio_input_tokens"]),
  cacheWriteTokens: Object.freeze<MeterKind[]>(["cache_write_tokens", "cache_write_1h_tokens"]),
  totalTokens: TOKEN_METERS,
});

/** The token groups in `SummaryRow` order. */
export const TOKEN_GROUP_NAMES: readonly TokenGroup[] = Object.freeze(
  Object.keys(TOKEN_GROUPS) as TokenGroup[],
);

/**
 * One record's token groups as exact integers (a missing meter counts 0). `summarize` adds
 * them with overflow checks; this is for one record's view (an HTTP line, a SQL row).
 *
 * @example
 * tokenGroupsOf({ input_tokens: 100, reasoning_tokens: 20, output_tokens: 5 });
 * // { inputTokens: 100n, outputTokens: 25n, cacheReadTokens: 0n, cacheWriteTokens: 0n, totalTokens: 125n }
 */
export function tokenGroupsOf(meters: MeterSet): Record<TokenGroup, bigint> {
  const sums = {} as Record<TokenGroup, bigint>;
  for (const group of TOKEN_GROUP_NAMES) sums[group] = groupSum(meters, TOKEN_GROUPS[group]);
  return sums;
}

/**
 * One group's exact sum: added as numbers while every quantity and every partial sum is a safe
 * integer (then each addition is exact), one bigint at the end; from the first anything else
 * (a sum past 2^53-1, a bigint, a value no schema checked) on, in bigints as it always was.
 * Each meter is read once, and a non-number is never added to a number (`0 + 5n` throws where
 * `BigInt(5n)` does not).
 */
function groupSum(meters: MeterSet, kinds: readonly MeterKind[]): bigint {
  let sum = 0;
  for (let i = 0; i < kinds.length; i++) {
    const quantity = meters[kinds[i] as MeterKind];
    if (quantity === undefined) continue;
    if (typeof quantity === "number" && Number.isSafeInteger(quantity)) {
      const next = sum + quantity;
      if (Number.isSafeInteger(next)) {
        sum = next;
        continue;
      }
    }
    let big = BigInt(sum) + BigInt(quantity ?? 0);
    for (let k = i + 1; k < kinds.length; k++) big += BigInt(meters[kinds[k] as MeterKind] ?? 0);
    return big;
  }
  return BigInt(sum);
}
