import { z } from "zod";
import { LatchValidationError } from "../errors/index.js";
import { CurrencyCodeSchema } from "../money/currency.js";
import { LatchDecimal, PLAIN_DECIMAL } from "../money/decimal.js";
import type { MeterKind } from "../schemas/meters.js";
import { parseWith } from "../schemas/parse.js";
import { type Price, type PriceSnapshot, PriceSnapshotSchema, type TierConfig } from "../schemas/pricing.js";
import { IsoTimestampSchema } from "../schemas/time.js";
import {
  isJsonObject,
  JsonNumber,
  type JsonObject,
  type JsonPath,
  type JsonValue,
  parseJsonExact,
} from "./json-decimal.js";

/** Options of {@link importLiteLLMCostMap}. */
export interface LiteLLMImportOptions {
  /** Start of every snapshot (inclusive), ISO 8601 UTC. Default `1970-01-01T00:00:00Z`. */
  effectiveFrom?: string;
  /** ISO 4217 currency of the prices. Default `USD` (LiteLLM's prices are US dollars). */
  currency?: string;
  /** First part of each `snapshotId` (`<prefix>:<model>:<effectiveFrom>`). Default `litellm`. */
  snapshotIdPrefix?: string;
}

/** One price (or one whole entry, `field: "*"`) the import left out, and why. */
export interface LiteLLMSkippedField {
  /** The model key in the cost map. */
  model: string;
  /** The LiteLLM field, or `*` for the whole entry. */
  field: string;
  reason: string;
}

export interface LiteLLMImportResult {
  /** One validated snapshot per entry with at least one mappable price, in the map's order. */
  snapshots: PriceSnapshot[];
  /** Every price field not imported (never silently dropped), in the map's order. */
  skipped: LiteLLMSkippedField[];
}

const SUBJECT = "LiteLLM cost map";
const DEFAULT_EFFECTIVE_FROM = "1970-01-01T00:00:00Z";

const OptionsSchema = z.strictObject({
  effectiveFrom: IsoTimestampSchema.optional(),
  currency: CurrencyCodeSchema.optional(),
  snapshotIdPrefix: z
    .string({ error: "expected a string" })
    .min(1, { error: "must not be empty" })
    .max(64, { error: "at most 64 characters" })
    .optional(),
});

/** LiteLLM per-token fields and the meter each prices (per million after × 10^6). */
const TOKEN_FIELDS: Readonly<Record<string, MeterKind>> = {
  input_cost_per_token: "input_tokens",
  output_cost_per_token: "output_tokens",
  cache_read_input_token_cost: "cached_input_tokens",
  cache_creation_input_token_cost: "cache_write_tokens",
  cache_creation_input_token_cost_above_1hr: "cache_write_1h_tokens",
  output_cost_per_reasoning_token: "reasoning_tokens",
  input_cost_per_audio_token: "audio_input_tokens",
  output_cost_per_audio_token: "audio_output_tokens",
};

/** Meter → the LiteLLM field of its base price. */
const BASE_FIELD: Readonly<Partial<Record<MeterKind, string>>> = Object.fromEntries(
  Object.entries(TOKEN_FIELDS).map(([field, meter]) => [meter, field]),
);

/** The one per-unit field imported: the price of a generated image, for image-generation models. */
const IMAGE_FIELD = "output_cost_per_image";
const IMAGE_MODES: ReadonlySet<string> = new Set(["image_generation", "image_edit"]);

/** `<base>_above_<n>k_tokens` / `<base>_above_<n>_tokens`: the price once prompt tokens exceed the threshold. */
const ABOVE_THRESHOLD = /^(.+)_above_([1-9][0-9]{0,8})(k?)_tokens$/;

/** Why a field is not imported. Exported so that callers can group or filter skips. */
export const LITELLM_SKIP_REASONS = {
  sampleSpec: "LiteLLM's schema example (sample_spec), not a model",
  notAnObject: "entry is not a JSON object",
  noPrice: "no price that maps to a Latch meter; no snapshot produced",
  duplicateModel: "model appears more than once in the cost map; ambiguous, not imported",
  duplicateField: "field appears more than once in the entry; ambiguous, not imported",
  notANumber: "price is not a JSON number; not imported (never billed as $0)",
  negative: "negative price; not imported",
  outOfRange: "price is out of range (overflows or underflows a decimal); not imported",
  tooPrecise: "price has more than 40 significant digits; not imported rather than rounded",
  tooManyDigits:
    "price per million does not fit a snapshot price (at most 20 integer and 30 fractional digits)",
  batch: "batch API price; snapshots hold the standard synchronous price",
  flex: "flex service-tier price; snapshots hold the standard service tier",
  priority: "priority service-tier price; snapshots hold the standard service tier",
  perSecond: "priced per second of audio or video; Latch has no time meter",
  perCharacter: "priced per character; Latch meters tokens",
  perQuery: "priced per query, request, call or session; Latch has no such meter",
  perStorage: "storage price per GB; Latch has no storage meter",
  perPixel: "priced per pixel; Latch has no pixel meter",
  perPage: "priced per page; Latch has no page meter",
  inputImage:
    "input images are counted as input tokens by the providers; image_count meters generated images only",
  imageNotGeneration:
    "image_count is priced per generated image only for image-generation models (mode image_generation)",
  imageToken: "separate image-token price; Latch has no image-token meter",
  audioCacheWrite: "audio cache-write price; Latch has no audio cache-write meter",
  dbu: "Databricks DBU rate, not a price in currency",
  multiplier: "price multiplier for a region or speed variant; not applied",
  tieredPricing:
    "range-based tiered_pricing is not imported; the entry is skipped rather than billed at one tier's price",
  tierWithoutBase:
    "threshold price without a base price for the same meter; the lower tier would be unpriced",
  tierPriceInvalid:
    "another threshold price of this meter could not be imported; the meter is left unpriced rather than billed at the wrong tier",
  tierUnmapped: "threshold variant of a price that does not map to a Latch meter",
  unknown: "unrecognised price field; not imported",
} as const;

/**
 * Imports a LiteLLM-style model cost map (`model_prices_and_context_window.json`) into
 * price snapshots, exactly: every number is read as its source text and converted with
 * decimal.js, so `3e-06` per token becomes `"3"` per million and `1.1e-06` becomes `"1.1"`
 * (never `1.0999999999999999`).
 *
 * Mapping: `input_cost_per_token` → `input_tokens`, `output_cost_per_token` → `output_tokens`,
 * `cache_read_input_token_cost` → `cached_input_tokens`, `cache_creation_input_token_cost` →
 * `cache_write_tokens`, `cache_creation_input_token_cost_above_1hr` → `cache_write_1h_tokens`,
 * `output_cost_per_reasoning_token` → `reasoning_tokens` (absent: `{ as: "output_tokens" }`
 * when there is an output price), `input_cost_per_audio_token` → `audio_input_tokens`,
 * `output_cost_per_audio_token` → `audio_output_tokens`, and `output_cost_per_image` →
 * `image_count` (`perUnit`) for image-generation models. `<field>_above_<n>k_tokens` becomes a
 * request-scoped volume tier on prompt tokens with boundaries `n × 1000` (strict `>`: exactly
 * `n × 1000` prompt tokens is the lower tier) and `null`; a tiered meter without a price at
 * some threshold keeps the price of the tier below. `prices` holds every meter's base price;
 * the tier overrides it for the meters it lists.
 *
 * Every other price field (batch, flex and priority prices, per-second, per-character,
 * per-query, per-pixel and per-image-token prices, multipliers, unknown `*cost*` fields) and
 * every bad price (negative, not a number, out of range) is listed in `skipped` with a
 * reason; metadata (`max_tokens`, `litellm_provider`, `mode`, `supports_*`, …) is ignored.
 * An entry with no mappable price produces no snapshot (`field: "*"`).
 *
 * @throws LatchValidationError (`invalid_input`) when the text is not JSON (with line,
 *   column and JSON pointer), when the top level is not an object, or when an option is
 *   invalid (path `opts.effectiveFrom`, `opts.currency`, `opts.snapshotIdPrefix`).
 *
 * @example
 * const { snapshots, skipped } = importLiteLLMCostMap(
 *   '{"gpt-4o-mini": {"input_cost_per_token": 1.5e-07, "output_cost_per_token": 6e-07,' +
 *     ' "input_cost_per_token_batches": 7.5e-08, "litellm_provider": "openai"}}',
 *   { effectiveFrom: "2026-01-01T00:00:00Z" },
 * );
 * // snapshots[0] → {
 * //   snapshotId: "litellm:gpt-4o-mini:2026-01-01T00:00:00Z",
 * //   model: { billableModel: "gpt-4o-mini", vendor: "openai" },
 * //   currency: "USD", effectiveFrom: "2026-01-01T00:00:00Z",
 * //   prices: {
 * //     input_tokens: { perMillion: "0.15" }, output_tokens: { perMillion: "0.6" },
 * //     reasoning_tokens: { as: "output_tokens" },
 * //   },
 * // }
 * // skipped → [{ model: "gpt-4o-mini", field: "input_cost_per_token_batches", reason: "batch API price; …" }]
 */
export function importLiteLLMCostMap(jsonText: string, opts?: LiteLLMImportOptions): LiteLLMImportResult {
  if (typeof jsonText !== "string")
    throw LatchValidationError.at(SUBJECT, "jsonText", "expected JSON text as a string");
  const options = parseWith(OptionsSchema, opts ?? {}, "LiteLLM import options", "opts");
  const effectiveFrom = options.effectiveFrom ?? DEFAULT_EFFECTIVE_FROM;
  const currency = options.currency ?? "USD";
  const prefix = options.snapshotIdPrefix ?? "litellm";

  const duplicateModels = new Set<string>();
  const duplicateFields = new Map<string, Set<string>>();
  const onDuplicateKey = (path: JsonPath) => {
    const [model, field] = path;
    if (typeof model !== "string") return;
    if (path.length === 1) duplicateModels.add(model);
    else if (path.length === 2 && typeof field === "string") {
      const fields = duplicateFields.get(model) ?? new Set<string>();
      duplicateFields.set(model, fields);
      fields.add(field);
    }
  };
  const root = parseJsonExact(jsonText, { subject: SUBJECT, onDuplicateKey });
  if (!isJsonObject(root)) {
    throw LatchValidationError.at(SUBJECT, "", "expected a JSON object mapping model names to their prices");
  }

  const snapshots: PriceSnapshot[] = [];
  const skipped: LiteLLMSkippedField[] = [];
  for (const model of Object.keys(root)) {
    const skip = (field: string, reason: string) => skipped.push({ model, field, reason });
    const entry = root[model];
    if (model === "sample_spec") {
      skip("*", LITELLM_SKIP_REASONS.sampleSpec);
      continue;
    }
    if (duplicateModels.has(model)) {
      skip("*", LITELLM_SKIP_REASONS.duplicateModel);
      continue;
    }
    if (!isJsonObject(entry)) {
      skip("*", LITELLM_SKIP_REASONS.notAnObject);
      continue;
    }
    const snapshot = importEntry(model, entry, duplicateFields.get(model), skip, {
      effectiveFrom,
      currency,
      prefix,
    });
    if (snapshot) snapshots.push(snapshot);
  }
  return { snapshots, skipped };
}

interface EntryContext {
  effectiveFrom: string;
  currency: string;
  prefix: string;
}

type Conversion = { ok: true; value: string } | { ok: false; reason: string };

function importEntry(
  model: string,
  entry: JsonObject,
  duplicates: ReadonlySet<string> | undefined,
  skip: (field: string, reason: string) => void,
  ctx: EntryContext,
): PriceSnapshot | undefined {
  const mode = typeof entry.mode === "string" ? entry.mode : undefined;
  const base = new Map<MeterKind, Price>();
  /** threshold → meter → price per million above it. */
  const above = new Map<number, Map<MeterKind, Price>>();
  const aboveFields = new Map<string, MeterKind>(); // field → meter, to report a tier without base price
  const badAbove = new Set<MeterKind>(); // meters whose threshold price could not be imported

  if (Object.hasOwn(entry, "tiered_pricing")) {
    skip("tiered_pricing", LITELLM_SKIP_REASONS.tieredPricing);
    skip("*", LITELLM_SKIP_REASONS.noPrice);
    return undefined;
  }

  for (const field of Object.keys(entry)) {
    const value = entry[field] as JsonValue;
    const target = classify(field, mode);
    if (target.kind === "ignore") continue;
    if (target.kind === "skip") {
      skip(field, target.reason);
      continue;
    }
    const converted: Conversion = duplicates?.has(field)
      ? { ok: false, reason: LITELLM_SKIP_REASONS.duplicateField }
      : convertPrice(value, target.per);
    if (!converted.ok) {
      skip(field, converted.reason);
      if (target.kind === "above") badAbove.add(target.meter);
      continue;
    }
    const price: Price =
      target.per === "million" ? { perMillion: converted.value } : { perUnit: converted.value };
    if (target.kind === "price") {
      base.set(target.meter, price);
    } else {
      const table = above.get(target.threshold) ?? new Map<MeterKind, Price>();
      above.set(target.threshold, table);
      table.set(target.meter, price);
      aboveFields.set(field, target.meter);
    }
  }

  // A meter whose threshold price is bad is left unpriced (rating reports no_price_for_meter
  // and the usage stays re-ratable) rather than billed at the lower tier's price above the threshold.
  for (const meter of badAbove) {
    if (base.delete(meter)) skip(BASE_FIELD[meter] as string, LITELLM_SKIP_REASONS.tierPriceInvalid);
    for (const [field, m] of aboveFields) {
      if (m === meter) {
        skip(field, LITELLM_SKIP_REASONS.tierPriceInvalid);
        aboveFields.delete(field);
      }
    }
    for (const table of above.values()) table.delete(meter);
  }
  // A threshold price needs a base price for the same meter, or the lower tier is unpriced.
  for (const [field, meter] of aboveFields) {
    if (base.has(meter)) continue;
    skip(field, LITELLM_SKIP_REASONS.tierWithoutBase);
    for (const table of above.values()) table.delete(meter);
  }
  for (const [threshold, table] of above) if (table.size === 0) above.delete(threshold);

  if (base.size === 0) {
    skip("*", LITELLM_SKIP_REASONS.noPrice);
    return undefined;
  }
  if (!base.has("reasoning_tokens") && base.has("output_tokens"))
    base.set("reasoning_tokens", { as: "output_tokens" });

  const prices: Record<string, Price> = {};
  for (const [meter, price] of base) prices[meter] = price;
  const tiers = buildTiers(base, above);

  const vendor = entry.litellm_provider;
  const candidate = {
    snapshotId: `${ctx.prefix}:${model}:${ctx.effectiveFrom}`,
    model:
      typeof vendor === "string" && vendor.length > 0
        ? { billableModel: model, vendor }
        : { billableModel: model },
    currency: ctx.currency,
    effectiveFrom: ctx.effectiveFrom,
    prices,
    ...(tiers ? { tiers } : {}),
  };
  const parsed = PriceSnapshotSchema.safeParse(candidate);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? `${issue.path.map(String).join(".")}: ` : "";
    skip("*", `snapshot is invalid (${where}${issue?.message ?? "invalid"}); not imported`);
    return undefined;
  }
  return parsed.data;
}

/**
 * One request-scoped volume tier on prompt tokens: boundaries at each threshold (ascending)
 * and an open last one. Each tiered meter is priced at every boundary: its base price below
 * the first threshold, then the price above each threshold, carrying the previous price
 * forward where a threshold has none.
 */
function buildTiers(base: ReadonlyMap<MeterKind, Price>, above: ReadonlyMap<number, Map<MeterKind, Price>>) {
  if (above.size === 0) return undefined;
  const thresholds = [...above.keys()].sort((a, b) => a - b);
  const meters = new Set<MeterKind>();
  for (const table of above.values()) for (const meter of table.keys()) meters.add(meter);

  let current: Record<string, Price> = {};
  for (const meter of meters) current[meter] = base.get(meter) as Price;
  const boundaries: TierConfig["boundaries"] = [{ upTo: thresholds[0] as number, prices: current }];
  for (let i = 0; i < thresholds.length; i++) {
    const table = above.get(thresholds[i] as number) as Map<MeterKind, Price>;
    current = { ...current };
    for (const [meter, price] of table) current[meter] = price;
    boundaries.push({ upTo: thresholds[i + 1] ?? null, prices: current });
  }
  const tier: TierConfig = { scope: "request", mode: "volume", baseline: "prompt_tokens", boundaries };
  return [tier];
}

type Target =
  | { kind: "ignore" }
  | { kind: "skip"; reason: string }
  | { kind: "price"; meter: MeterKind; per: "million" | "unit" }
  | { kind: "above"; meter: MeterKind; per: "million"; threshold: number };

const R = LITELLM_SKIP_REASONS;

/** Decides what a field of an entry is: a price to import, a price to skip (with why), or metadata. */
function classify(field: string, mode: string | undefined): Target {
  const tokenMeter = TOKEN_FIELDS[field];
  if (tokenMeter !== undefined && Object.hasOwn(TOKEN_FIELDS, field)) {
    return { kind: "price", meter: tokenMeter, per: "million" };
  }
  if (field === IMAGE_FIELD) {
    return mode !== undefined && IMAGE_MODES.has(mode)
      ? { kind: "price", meter: "image_count", per: "unit" }
      : { kind: "skip", reason: R.imageNotGeneration };
  }
  if (field === "provider_specific_entry" || /multiplier|uplift/.test(field))
    return { kind: "skip", reason: R.multiplier };
  if (field === "search_context_cost_per_query") return { kind: "skip", reason: R.perQuery };
  if (!/cost|price/.test(field)) return { kind: "ignore" };

  // Price-like from here on: every branch imports or reports it.
  if (field.endsWith("_batches")) return { kind: "skip", reason: R.batch };
  if (field.endsWith("_flex")) return { kind: "skip", reason: R.flex };
  if (field.endsWith("_priority")) return { kind: "skip", reason: R.priority };
  if (field.includes("dbu")) return { kind: "skip", reason: R.dbu };
  if (field.includes("per_second")) return { kind: "skip", reason: R.perSecond };
  if (field.includes("per_character")) return { kind: "skip", reason: R.perCharacter };
  if (field.includes("per_pixel")) return { kind: "skip", reason: R.perPixel };
  if (field.includes("per_page")) return { kind: "skip", reason: R.perPage };
  if (/per_query|per_request|per_call|per_session|per_1k_calls/.test(field))
    return { kind: "skip", reason: R.perQuery };
  if (field.includes("per_gb")) return { kind: "skip", reason: R.perStorage };
  if (field.includes("image_token")) return { kind: "skip", reason: R.imageToken };
  if (field.startsWith("input_cost_per_image")) return { kind: "skip", reason: R.inputImage };
  if (field.includes("audio_token") && field.startsWith("cache_creation"))
    return { kind: "skip", reason: R.audioCacheWrite };

  const m = ABOVE_THRESHOLD.exec(field);
  if (m) {
    const baseField = m[1] ?? "";
    const meter = Object.hasOwn(TOKEN_FIELDS, baseField) ? TOKEN_FIELDS[baseField] : undefined;
    if (meter === undefined) return { kind: "skip", reason: R.tierUnmapped };
    const threshold = Number(m[2]) * (m[3] === "k" ? 1000 : 1);
    return { kind: "above", meter, per: "million", threshold };
  }
  return { kind: "skip", reason: R.unknown };
}

/**
 * A LiteLLM price (per token, or per unit) → a canonical plain decimal string per million
 * (or per unit), exactly. Refuses anything that would need rounding or is not a price.
 */
function convertPrice(value: JsonValue, per: "million" | "unit"): Conversion {
  if (!(value instanceof JsonNumber)) return { ok: false, reason: R.notANumber };
  let d: LatchDecimal;
  try {
    d = new LatchDecimal(value.text);
  } catch {
    return { ok: false, reason: R.notANumber };
  }
  if (!d.isFinite()) return { ok: false, reason: R.outOfRange };
  // decimal.js flushes exponents past its range to 0: a non-zero source must stay non-zero.
  if (d.isZero() && /[1-9]/.test(mantissa(value.text))) return { ok: false, reason: R.outOfRange };
  if (d.isNeg() && !d.isZero()) return { ok: false, reason: R.negative };
  if (d.isZero()) return { ok: true, value: "0" };
  if (d.sd() > 40) return { ok: false, reason: R.tooPrecise };
  // × 10^6 only moves the exponent; with ≤ 40 significant digits it is exact at precision 40.
  const scaled = per === "million" ? d.times(1_000_000) : d;
  const text = scaled.toFixed();
  if (!PLAIN_DECIMAL.test(text)) return { ok: false, reason: R.tooManyDigits };
  return { ok: true, value: text };
}

/** The digits before the exponent of a JSON number's text. */
function mantissa(text: string): string {
  const e = text.search(/[eE]/);
  return e === -1 ? text : text.slice(0, e);
}
