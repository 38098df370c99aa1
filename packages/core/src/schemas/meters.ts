import { z } from "zod";

/** Every built-in meter. Meters are disjoint: each token is counted in exactly one of them. */
export const BUILTIN_METERS = [
  "input_tokens",
  "cached_input_tokens",
  "cache_write_tokens",
  "cache_write_1h_tokens",
  "output_tokens",
  "reasoning_tokens",
  "audio_input_tokens",
  "audio_output_tokens",
  "image_count",
  // Added 2026-12 (at the end, so the canonical order of existing meters is unchanged).
  /** Image tokens in the prompt, where the provider reports and prices them apart (gpt-image). */
  "image_input_tokens",
  /** Generated image tokens (Gemini image output, gpt-image, OpenRouter image_tokens). */
  "image_output_tokens",
  /** Server-side web searches run by the provider (Anthropic web_search, OpenAI web_search_call). Per unit. */
  "web_search_requests",
  /** Server-side web fetches run by the provider (Anthropic web_fetch). Per unit. */
  "web_fetch_requests",
  // Added 2026-12 (at the end, as above).
  /**
   * Audio tokens read from the prompt cache, where the provider reports the cached part by
   * modality (Gemini `cacheTokensDetails`) and prices it apart from cached text (Gemini 2.x/3
   * Flash: $0.10/Mtok against $0.03/Mtok). Disjoint from `cached_input_tokens`, which then holds
   * the other cached tokens.
   */
  "cached_audio_input_tokens",
] as const;

export type BuiltinMeter = (typeof BUILTIN_METERS)[number];
export type MeterKind = BuiltinMeter | `custom:${string}`;

/** Input-side meters: their sum is a request's "prompt tokens" (tier baselines). */
export const PROMPT_METERS: readonly MeterKind[] = [
  "input_tokens",
  "cached_input_tokens",
  "cache_write_tokens",
  "cache_write_1h_tokens",
  "audio_input_tokens",
  "image_input_tokens",
  "cached_audio_input_tokens",
];

/**
 * Token meters: their sum is a request's "total tokens". Image counts, server-tool requests and
 * custom meters are not tokens.
 */
export const TOKEN_METERS: readonly MeterKind[] = [
  "input_tokens",
  "cached_input_tokens",
  "cache_write_tokens",
  "cache_write_1h_tokens",
  "output_tokens",
  "reasoning_tokens",
  "audio_input_tokens",
  "audio_output_tokens",
  "image_input_tokens",
  "image_output_tokens",
  "cached_audio_input_tokens",
];

const builtinSet: ReadonlySet<string> = new Set(BUILTIN_METERS);
const BUILTIN_ORDER: ReadonlyMap<string, number> = new Map(BUILTIN_METERS.map((m, i) => [m, i]));

/** Canonical meter order: built-ins in declaration order, then custom meters by name. */
export function compareMeters(a: string, b: string): number {
  const ia = BUILTIN_ORDER.get(a);
  const ib = BUILTIN_ORDER.get(b);
  if (ia !== undefined && ib !== undefined) return ia - ib;
  if (ia !== undefined) return -1;
  if (ib !== undefined) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}
const CUSTOM_NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/;

/** True for a built-in meter or `custom:<name>` (name: lowercase letters, digits, `_ . -`, ≤ 63). */
export function isMeterKind(value: string): value is MeterKind {
  return builtinSet.has(value) || (value.startsWith("custom:") && CUSTOM_NAME.test(value.slice(7)));
}

export const MeterKindSchema = z.custom<MeterKind>(
  (v) => typeof v === "string" && isMeterKind(v),
  "expected a built-in meter (input_tokens, output_tokens, …) or custom:<name>",
);

/** A count: a safe integer ≥ 0 (≤ 2^53-1). */
export const QuantitySchema = z
  .number({ error: "expected a non-negative integer" })
  .int({ error: "expected an integer, not a fraction" })
  .nonnegative({ error: "expected a non-negative integer" })
  .max(Number.MAX_SAFE_INTEGER, { error: "exceeds 2^53-1" });

/**
 * Exactly the values {@link QuantitySchema} accepts, which it returns unchanged: a number that
 * is a safe integer ≥ 0 (so `-0` too, kept as is; never NaN, ±Infinity, a fraction, a bigint or
 * a string of digits). For the hot-path pre-checks, which must agree with the schema
 * (`test/normalize/fast-read.test.ts` pins it).
 */
export function isQuantity(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

export type MeterSet = Readonly<Partial<Record<MeterKind, number>>>;

/**
 * Most meters one observation may carry (built-ins and `custom:` together). A call has a
 * handful; the bound keeps an observation small enough for every store and ingest log (NATS
 * refuses messages over its `max_payload`, 1 MiB by default) and its parsing linear in practice.
 */
export const MAX_METERS = 64;

export const MeterSetSchema: z.ZodType<MeterSet, Readonly<Partial<Record<string, number>>>> = z
  .record(z.string(), QuantitySchema)
  .superRefine((meters, ctx) => {
    const keys = Object.keys(meters);
    if (keys.length > MAX_METERS)
      ctx.addIssue({
        code: "custom",
        path: [],
        message: `at most ${MAX_METERS} meters (got ${keys.length})`,
      });
    for (const key of keys) {
      if (!isMeterKind(key)) {
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: "unknown meter: expected a built-in meter or custom:<name>",
        });
      }
    }
  }) as z.ZodType<MeterSet, Readonly<Partial<Record<string, number>>>>;
