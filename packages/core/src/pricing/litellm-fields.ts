import { LatchDecimal, PLAIN_DECIMAL } from "../money/decimal.js";
import type { MeterKind } from "../schemas/meters.js";
import { isJsonObject, JsonNumber, type JsonObject, type JsonValue } from "./json-decimal.js";

/**
 * Why a LiteLLM price is not imported. The key is a stable code (`LiteLLMSkippedField.code`),
 * the value the sentence shown to people. Exported so that callers can group or filter skips.
 */
export const LITELLM_SKIP_REASONS = {
  sampleSpec: "LiteLLM's schema example (sample_spec), not a model",
  notAnObject: "entry is not a JSON object",
  noPrice: "no price that maps to a Latch meter; no snapshot produced",
  invalidSnapshot: "the prices do not make a valid snapshot; not imported",
  duplicateModel: "model appears more than once in the cost map; ambiguous, not imported",
  duplicateField: "field appears more than once in the entry; ambiguous, not imported",
  duplicateSnapshotId:
    "another snapshot of this import already has this snapshot id; ambiguous, not imported",
  conflictingPrices:
    "two fields price the same meter differently (e.g. cache_read_input_token_cost and input_cost_per_token_cache_hit); ambiguous, the meter is left unpriced",
  allZero:
    "every price is 0: a placeholder in the map, not a free model; not imported (import it with includeFree / --include-free)",
  notANumber: "price is not a JSON number; not imported (never billed as $0)",
  negative: "negative price; not imported",
  outOfRange: "price is out of range (overflows or underflows a decimal); not imported",
  tooPrecise: "price has more than 40 significant digits; not imported rather than rounded",
  tooManyDigits:
    "price per million does not fit a snapshot price (at most 20 integer and 30 fractional digits)",
  perSecond: "priced per second of audio or video; Latch has no time meter",
  perCharacter: "priced per character; Latch meters tokens",
  perQuery: "priced per query, request, call or session; Latch has no such meter",
  perStorage: "storage price per GB; Latch has no storage meter",
  perPixel: "priced per pixel; Latch has no pixel meter",
  perPage: "priced per page; Latch has no page meter",
  perCredit: "priced per provider credit; Latch has no credit meter",
  inputImage:
    "priced per input image; no Latch meter counts input images (providers bill them as input tokens)",
  imagePricedPerToken:
    "per-image fallback of a model whose generated images are priced per token (output_cost_per_image_token); importing both could bill an image twice",
  videoToken: "priced per video token; Latch has no video meter",
  citationToken: "priced per citation token; Latch has no citation meter",
  audioCacheRead:
    "cached audio input price in a form that maps to no meter (cache_read_input_audio_token_cost itself prices cached_audio_input_tokens)",
  audioCacheWrite: "audio cache-write price; Latch has no audio cache-write meter",
  searchContextSize:
    "web search priced by search context size (low/medium/high), which provider usage does not report; not imported",
  searchPerPrompt:
    "Gemini grounding billed per grounded prompt (web_search_billing_unit per_prompt), not per search; web_search_requests counts searches",
  dbu: "Databricks DBU rate, not a price in currency",
  multiplier: "price multiplier for a region or speed variant; not applied",
  tieredPricingInvalid:
    "tiered_pricing is not contiguous ranges from 0 with numeric token prices; not imported rather than billed at one tier's price",
  tierWithoutBase:
    "threshold price without a base price for the same meter; the lower tier would be unpriced",
  tierPriceInvalid:
    "another threshold price of this meter could not be imported; the meter is left unpriced rather than billed at the wrong tier",
  tierIncomplete:
    "the entry prices long context (above a prompt-token threshold) but not this meter there; the meter is left unpriced rather than billed at its base price above the threshold",
  tierUnmapped: "threshold variant of a price that does not map to a Latch meter",
  serviceTierMissing:
    "no price for this meter in this service tier; the tier's snapshot leaves it unpriced (never the standard price)",
  serviceTierUnmapped: "service-tier variant of a price that does not map to a Latch meter",
  unknown: "unrecognised price field; not imported",
} as const;

/** Stable code of a skip reason: a key of {@link LITELLM_SKIP_REASONS}. */
export type LiteLLMSkipCode = keyof typeof LITELLM_SKIP_REASONS;

/**
 * What kind of skip a code is:
 * - `noMeter`: by design — the price is for something no Latch meter measures (seconds,
 *   characters, pixels, pages, storage, DBU, input images, prices that depend on facts usage
 *   does not report, …).
 * - `badPrice`: the value is not a usable price (not a number, negative, out of range).
 * - `ambiguous`: the map says two things at once (duplicates, conflicting prices).
 * - `incomplete`: a tier (long-context or service) lacks a price, so the meter is left unpriced.
 * - `placeholder`: not a real price (sample_spec, all-zero entries).
 * - `superseded`: another field of the entry prices the same thing.
 * - `variant`: a multiplier for a region or speed variant (`provider_specific_entry`,
 *   `regional_processing_uplift_multiplier_*`); Latch could price it as another snapshot
 *   (`model.region`, a tier), but the importer does not derive prices by multiplying yet.
 * - `notAModel`: the entry has nothing to import.
 * - `unknown`: a price-like field this importer does not recognise.
 */
export type LiteLLMSkipKind =
  | "noMeter"
  | "badPrice"
  | "ambiguous"
  | "incomplete"
  | "placeholder"
  | "superseded"
  | "variant"
  | "notAModel"
  | "unknown";

export const LITELLM_SKIP_KINDS: Readonly<Record<LiteLLMSkipCode, LiteLLMSkipKind>> = {
  sampleSpec: "placeholder",
  notAnObject: "notAModel",
  noPrice: "notAModel",
  invalidSnapshot: "badPrice",
  duplicateModel: "ambiguous",
  duplicateField: "ambiguous",
  duplicateSnapshotId: "ambiguous",
  conflictingPrices: "ambiguous",
  allZero: "placeholder",
  notANumber: "badPrice",
  negative: "badPrice",
  outOfRange: "badPrice",
  tooPrecise: "badPrice",
  tooManyDigits: "badPrice",
  perSecond: "noMeter",
  perCharacter: "noMeter",
  perQuery: "noMeter",
  perStorage: "noMeter",
  perPixel: "noMeter",
  perPage: "noMeter",
  perCredit: "noMeter",
  inputImage: "noMeter",
  imagePricedPerToken: "superseded",
  videoToken: "noMeter",
  citationToken: "noMeter",
  audioCacheRead: "noMeter",
  audioCacheWrite: "noMeter",
  searchContextSize: "noMeter",
  searchPerPrompt: "noMeter",
  dbu: "noMeter",
  multiplier: "variant",
  tieredPricingInvalid: "badPrice",
  tierWithoutBase: "incomplete",
  tierPriceInvalid: "incomplete",
  tierIncomplete: "incomplete",
  tierUnmapped: "noMeter",
  serviceTierMissing: "incomplete",
  serviceTierUnmapped: "noMeter",
  unknown: "unknown",
};

/** The service tiers LiteLLM prices apart (`*_priority`, `*_flex`, `*_batches`), by canonical name. */
export type LiteLLMServiceTier = "standard" | "priority" | "flex" | "batch";

/** LiteLLM's field suffix → the canonical service tier (`schemas/service-tier.ts`) it prices. */
const SERVICE_TIER_SUFFIXES: ReadonlyArray<readonly [string, LiteLLMServiceTier]> = [
  ["_priority", "priority"],
  ["_flex", "flex"],
  ["_batches", "batch"],
];

/** LiteLLM per-token fields and the meter each prices (per million after × 10^6). */
export const TOKEN_FIELDS: Readonly<Record<string, MeterKind>> = {
  input_cost_per_token: "input_tokens",
  output_cost_per_token: "output_tokens",
  cache_read_input_token_cost: "cached_input_tokens",
  // DeepSeek's spelling of the cache-hit price (the same meter as cache_read_input_token_cost).
  input_cost_per_token_cache_hit: "cached_input_tokens",
  cache_creation_input_token_cost: "cache_write_tokens",
  cache_creation_input_token_cost_above_1hr: "cache_write_1h_tokens",
  output_cost_per_reasoning_token: "reasoning_tokens",
  input_cost_per_audio_token: "audio_input_tokens",
  cache_read_input_audio_token_cost: "cached_audio_input_tokens",
  output_cost_per_audio_token: "audio_output_tokens",
  input_cost_per_image_token: "image_input_tokens",
  output_cost_per_image_token: "image_output_tokens",
};

/** Modes whose `input_cost_per_image` LiteLLM charges per generated image (default_image_cost_calculator). */
const IMAGE_GENERATION_MODES: ReadonlySet<string> = new Set(["image_generation", "image_edit"]);

/**
 * Providers whose grounding LiteLLM bills per grounded prompt unless the entry says
 * `web_search_billing_unit: "per_query"` (litellm/llms/gemini/cost_calculator.py).
 */
const PER_PROMPT_SEARCH_PROVIDERS: ReadonlySet<string> = new Set([
  "gemini",
  "vertex_ai",
  "vertex_ai-language-models",
]);

/** `<base>_above_<n>k_tokens` / `<base>_above_<n>_tokens`: the price once prompt tokens exceed the threshold. */
const ABOVE_THRESHOLD = /^(.+)_above_([1-9][0-9]{0,8})(k?)_tokens$/;

/** What a field of an entry is. */
export type FieldTarget =
  | { kind: "ignore" }
  | { kind: "skip"; code: LiteLLMSkipCode }
  | {
      kind: "price";
      meter: MeterKind;
      per: "million" | "unit";
      tier: LiteLLMServiceTier;
      /** Prompt-token threshold above which this price applies; absent for the base price. */
      threshold?: number;
    }
  | { kind: "search" }
  | { kind: "tieredPricing" };

const has = (entry: JsonObject, field: string) => Object.hasOwn(entry, field);

/** A per-token price field (base or above a threshold), or undefined when it is none. */
function tokenPrice(field: string): { meter: MeterKind; threshold?: number } | undefined {
  if (Object.hasOwn(TOKEN_FIELDS, field)) return { meter: TOKEN_FIELDS[field] as MeterKind };
  const m = ABOVE_THRESHOLD.exec(field);
  const base = m?.[1];
  if (m === null || base === undefined || !Object.hasOwn(TOKEN_FIELDS, base)) return undefined;
  return { meter: TOKEN_FIELDS[base] as MeterKind, threshold: Number(m[2]) * (m[3] === "k" ? 1000 : 1) };
}

function hasNumber(value: JsonValue | undefined): boolean {
  return isJsonObject(value) && Object.values(value).some((v) => v instanceof JsonNumber);
}

/** Decides what a field of an entry is: a price to import, a price to skip (with why), or metadata. */
export function classifyField(field: string, entry: JsonObject): FieldTarget {
  const token = tokenPrice(field);
  if (token !== undefined && token.threshold === undefined)
    return { kind: "price", meter: token.meter, per: "million", tier: "standard" };
  if (field === "search_context_cost_per_query") return { kind: "search" };
  if (field === "tiered_pricing") return { kind: "tieredPricing" };
  // provider_specific_entry holds multipliers (`{"us": 1.1, "fast": 6}`) or, on some entries, metadata.
  if (field === "provider_specific_entry")
    return hasNumber(entry[field]) ? { kind: "skip", code: "multiplier" } : { kind: "ignore" };
  if (/multiplier|uplift/.test(field)) return { kind: "skip", code: "multiplier" };
  if (!/cost|price/.test(field)) return { kind: "ignore" };

  // Price-like from here on: every branch imports or reports it.
  for (const [suffix, tier] of SERVICE_TIER_SUFFIXES) {
    if (!field.endsWith(suffix)) continue;
    const base = tokenPrice(field.slice(0, -suffix.length));
    if (base === undefined) return { kind: "skip", code: "serviceTierUnmapped" };
    return { kind: "price", per: "million", tier, ...base };
  }
  if (token !== undefined)
    return {
      kind: "price",
      meter: token.meter,
      per: "million",
      tier: "standard",
      threshold: token.threshold,
    };
  if (field === "output_cost_per_image") {
    return has(entry, "output_cost_per_image_token")
      ? { kind: "skip", code: "imagePricedPerToken" }
      : { kind: "price", meter: "image_count", per: "unit", tier: "standard" };
  }
  if (field === "input_cost_per_image") {
    // On image-generation entries without an output_cost_per_image, LiteLLM's
    // default_image_cost_calculator charges input_cost_per_image × n, n = images generated:
    // despite its name it is the price of a generated image (DALL·E, gpt-image per size/quality).
    // Where the entry has output_cost_per_image, input_cost_per_image is an input-image price.
    const mode = entry.mode;
    if (
      typeof mode === "string" &&
      IMAGE_GENERATION_MODES.has(mode) &&
      !has(entry, "output_cost_per_image")
    ) {
      return has(entry, "output_cost_per_image_token")
        ? { kind: "skip", code: "imagePricedPerToken" }
        : { kind: "price", meter: "image_count", per: "unit", tier: "standard" };
    }
    return { kind: "skip", code: "inputImage" };
  }
  if (field.includes("dbu")) return { kind: "skip", code: "dbu" };
  if (field.includes("per_second")) return { kind: "skip", code: "perSecond" };
  if (field.includes("per_character")) return { kind: "skip", code: "perCharacter" };
  if (field.includes("per_pixel")) return { kind: "skip", code: "perPixel" };
  if (field.includes("per_page")) return { kind: "skip", code: "perPage" };
  if (field.includes("per_credit")) return { kind: "skip", code: "perCredit" };
  if (/per_query|per_request|per_call|per_session|per_1k_calls/.test(field))
    return { kind: "skip", code: "perQuery" };
  if (field.includes("per_gb")) return { kind: "skip", code: "perStorage" };
  if (field.startsWith("input_cost_per_image")) return { kind: "skip", code: "inputImage" };
  if (field.includes("video_token")) return { kind: "skip", code: "videoToken" };
  if (field.startsWith("citation_")) return { kind: "skip", code: "citationToken" };
  if (field.includes("audio_token") && field.startsWith("cache_creation"))
    return { kind: "skip", code: "audioCacheWrite" };
  if (field.includes("audio_token") && field.startsWith("cache_read"))
    return { kind: "skip", code: "audioCacheRead" };
  if (ABOVE_THRESHOLD.test(field)) return { kind: "skip", code: "tierUnmapped" };
  return { kind: "skip", code: "unknown" };
}

/**
 * How LiteLLM bills the entry's `search_context_cost_per_query`: per search when the price
 * is one number for every context size (and the provider does not bill per grounded prompt);
 * otherwise a skip code.
 */
export function searchPrice(
  value: JsonValue | undefined,
  entry: JsonObject,
): Conversion | { ok: false; code: LiteLLMSkipCode } {
  if (!isJsonObject(value)) return { ok: false, code: "notANumber" };
  const prices = Object.values(value);
  if (prices.length === 0) return { ok: false, code: "notANumber" };
  let first: string | undefined;
  for (const price of prices) {
    const converted = convertPrice(price, "unit");
    if (!converted.ok) return converted;
    if (first !== undefined && converted.value !== first) return { ok: false, code: "searchContextSize" };
    first = converted.value;
  }
  const provider = entry.litellm_provider;
  if (
    typeof provider === "string" &&
    PER_PROMPT_SEARCH_PROVIDERS.has(provider) &&
    entry.web_search_billing_unit !== "per_query"
  ) {
    return { ok: false, code: "searchPerPrompt" };
  }
  return { ok: true, value: first as string };
}

export type Conversion = { ok: true; value: string } | { ok: false; code: LiteLLMSkipCode };

/** Most integer digits of a snapshot price (PLAIN_DECIMAL); a larger exponent is refused before any digit is written. */
const MAX_INTEGER_DIGITS = 20;
/** Most fractional digits of a snapshot price (PLAIN_DECIMAL). */
const MAX_FRACTION_DIGITS = 30;

/**
 * A LiteLLM price (per token, or per unit) → a canonical plain decimal string per million
 * (or per unit), exactly. Refuses anything that would need rounding or is not a price.
 * Runs in time linear in the number's text: an exponent such as `1e99999999` is refused
 * from the exponent alone, never expanded into digits.
 */
export function convertPrice(value: JsonValue | undefined, per: "million" | "unit"): Conversion {
  if (!(value instanceof JsonNumber)) return { ok: false, code: "notANumber" };
  let d: LatchDecimal;
  try {
    d = new LatchDecimal(value.text);
  } catch {
    return { ok: false, code: "notANumber" };
  }
  if (!d.isFinite()) return { ok: false, code: "outOfRange" };
  // decimal.js flushes exponents past its range to 0: a non-zero source must stay non-zero.
  if (d.isZero() && /[1-9]/.test(mantissa(value.text))) return { ok: false, code: "outOfRange" };
  if (d.isNeg() && !d.isZero()) return { ok: false, code: "negative" };
  if (d.isZero()) return { ok: true, value: "0" };
  if (d.sd() > 40) return { ok: false, code: "tooPrecise" };
  // × 10^6 only moves the exponent; with ≤ 40 significant digits it is exact at precision 40.
  const scaled = per === "million" ? d.times(1_000_000) : d;
  // `e` is the exponent of the leading digit and decimalPlaces() is read off ≤ 40 digits:
  // both are O(1) here, so a huge exponent never reaches toFixed (which would write every digit).
  if (scaled.e >= MAX_INTEGER_DIGITS || scaled.decimalPlaces() > MAX_FRACTION_DIGITS)
    return { ok: false, code: "tooManyDigits" };
  const text = scaled.toFixed();
  if (!PLAIN_DECIMAL.test(text)) return { ok: false, code: "tooManyDigits" };
  return { ok: true, value: text };
}

/** The digits before the exponent of a JSON number's text. */
function mantissa(text: string): string {
  const e = text.search(/[eE]/);
  return e === -1 ? text : text.slice(0, e);
}

/** One tier of LiteLLM's range-based `tiered_pricing`: prices apply when `from < prompt tokens ≤ upTo`. */
export interface RangeTier {
  /** Exclusive lower bound of the range (0 for the first). */
  from: number;
  /** Inclusive upper bound of the range. */
  upTo: number;
  /** Meter → canonical price per million, with the LiteLLM field it came from. */
  prices: Map<MeterKind, string>;
}

/**
 * Reads `tiered_pricing` (Alibaba Model Studio shape): `[{ "range": [0, 256000],
 * "input_cost_per_token": …, "output_cost_per_token": … }, { "range": [256000, 1000000], … }]`.
 * LiteLLM (litellm_core_utils/llm_cost_calc/tiered_pricing.py, select_tier_for_input) picks the
 * one tier with `range[0] < prompt tokens ≤ range[1]` and bills every token of the request at
 * it; above the last range, the last tier — a request-scoped volume tier on prompt tokens.
 * Ranges must be contiguous from 0, with integer bounds and only per-token prices.
 */
export function readRangeTiers(value: JsonValue | undefined): RangeTier[] | { code: LiteLLMSkipCode } {
  const invalid = { code: "tieredPricingInvalid" as const };
  if (!Array.isArray(value) || value.length === 0) return invalid;
  const tiers: RangeTier[] = [];
  let expectedFrom = 0;
  for (const item of value) {
    if (!isJsonObject(item)) return invalid;
    // Search APIs tier a per-query price by result count (exa_ai, firecrawl): no token meter.
    if (Object.keys(item).some((key) => /per_query|per_request/.test(key))) return { code: "perQuery" };
    const range = item.range;
    if (!Array.isArray(range) || range.length !== 2) return invalid;
    const from = integerOf(range[0]);
    const upTo = integerOf(range[1]);
    if (from === undefined || upTo === undefined || from !== expectedFrom || upTo <= from) return invalid;
    const prices = new Map<MeterKind, string>();
    for (const key of Object.keys(item)) {
      if (key === "range") continue;
      if (!Object.hasOwn(TOKEN_FIELDS, key)) return invalid;
      const converted = convertPrice(item[key], "million");
      if (!converted.ok) return { code: converted.code };
      prices.set(TOKEN_FIELDS[key] as MeterKind, converted.value);
    }
    if (prices.size === 0) return invalid;
    tiers.push({ from, upTo, prices });
    expectedFrom = upTo;
  }
  return tiers;
}

/** A JSON number that is a safe non-negative integer (`256000` or `256000.0`), else undefined. */
function integerOf(value: JsonValue | undefined): number | undefined {
  if (!(value instanceof JsonNumber) || value.text.length > 40) return undefined;
  let d: LatchDecimal;
  try {
    d = new LatchDecimal(value.text);
  } catch {
    return undefined;
  }
  if (!d.isFinite() || !d.isInteger() || d.isNeg() || d.gt(Number.MAX_SAFE_INTEGER)) return undefined;
  return d.toNumber();
}
