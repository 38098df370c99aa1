import { z } from "zod";
import { LatchValidationError } from "../errors/index.js";
import { CurrencyCodeSchema } from "../money/currency.js";
import type { MeterKind } from "../schemas/meters.js";
import { parseWith } from "../schemas/parse.js";
import { type Price, type PriceSnapshot, PriceSnapshotSchema, type TierConfig } from "../schemas/pricing.js";
import { IsoTimestampSchema } from "../schemas/time.js";
import {
  type CachedAudioSourceFacts,
  cachedAudioAsCachedText,
  type ImportedPriceSchedule,
} from "./cached-audio.js";
import { isJsonObject, type JsonObject, type JsonPath, parseJsonExact } from "./json-decimal.js";
import {
  classifyField,
  convertPrice,
  LITELLM_SKIP_REASONS,
  type LiteLLMServiceTier,
  type LiteLLMSkipCode,
  readRangeTiers,
  searchPrice,
} from "./litellm-fields.js";

export {
  LITELLM_SKIP_KINDS,
  LITELLM_SKIP_REASONS,
  type LiteLLMServiceTier,
  type LiteLLMSkipCode,
  type LiteLLMSkipKind,
} from "./litellm-fields.js";

/** Options of {@link importLiteLLMCostMap}. */
export interface LiteLLMImportOptions {
  /** Start of every snapshot (inclusive), ISO 8601 UTC. Default `1970-01-01T00:00:00Z`. */
  effectiveFrom?: string;
  /** ISO 4217 currency of the prices. Default `USD` (LiteLLM's prices are US dollars). */
  currency?: string;
  /** First part of each `snapshotId` (`<prefix>:<model>:<effectiveFrom>`). Default `litellm`. */
  snapshotIdPrefix?: string;
  /**
   * Import snapshots whose every price is 0. Default `false`: the map uses all-zero entries as
   * placeholders, and importing one would bill its model at $0 instead of reporting it unpriced.
   */
  includeFree?: boolean;
}

/** One price (or one whole snapshot, `field: "*"`) the import left out, and why. */
export interface LiteLLMSkippedField {
  /** The model key in the cost map. */
  model: string;
  /** The LiteLLM field, or `*` for the whole entry (or, with `tier`, the whole tier snapshot). */
  field: string;
  /** Stable code of the reason (a key of `LITELLM_SKIP_REASONS`). */
  code: LiteLLMSkipCode;
  reason: string;
  /** The service tier the skip concerns, when it concerns one tier's snapshot only. */
  tier?: Exclude<LiteLLMServiceTier, "standard">;
}

export interface LiteLLMImportResult {
  /**
   * Validated snapshots in the map's order: per entry the standard one, then one per service
   * tier the entry prices (priority, flex, batch).
   */
  snapshots: PriceSnapshot[];
  /** Every price field not imported (never silently dropped), in the map's order. */
  skipped: LiteLLMSkippedField[];
}

const SUBJECT = "LiteLLM cost map";
const DEFAULT_EFFECTIVE_FROM = "1970-01-01T00:00:00Z";
const TIER_ORDER: readonly LiteLLMServiceTier[] = ["standard", "priority", "flex", "batch"];

const OptionsSchema = z.strictObject({
  effectiveFrom: IsoTimestampSchema.optional(),
  currency: CurrencyCodeSchema.optional(),
  snapshotIdPrefix: z
    .string({ error: "expected a string" })
    .min(1, { error: "must not be empty" })
    .max(64, { error: "at most 64 characters" })
    .optional(),
  includeFree: z.boolean({ error: "expected true or false" }).optional(),
});

/**
 * Imports a LiteLLM-style model cost map (`model_prices_and_context_window.json`) into
 * price snapshots, exactly: every number is read as its source text and converted with
 * decimal.js, so `3e-06` per token becomes `"3"` per million and `1.1e-06` becomes `"1.1"`
 * (never `1.0999999999999999`).
 *
 * Mapping (per token → `perMillion`): `input_cost_per_token` → `input_tokens`,
 * `output_cost_per_token` → `output_tokens`, `cache_read_input_token_cost` and DeepSeek's
 * `input_cost_per_token_cache_hit` → `cached_input_tokens`, `cache_creation_input_token_cost`
 * → `cache_write_tokens`, `cache_creation_input_token_cost_above_1hr` →
 * `cache_write_1h_tokens`, `output_cost_per_reasoning_token` → `reasoning_tokens` (absent:
 * `{ as: "output_tokens" }` when there is an output price), `input_cost_per_audio_token` /
 * `output_cost_per_audio_token` → `audio_input_tokens` / `audio_output_tokens`,
 * `cache_read_input_audio_token_cost` → `cached_audio_input_tokens` (absent, on a snapshot with
 * a cache-read price whose entry prices no cached audio and no audio input apart from text:
 * `{ as: "cached_input_tokens" }`, as LiteLLM bills every cache hit at the cache-read price —
 * {@link cachedAudioAsCachedText}),
 * `input_cost_per_image_token` / `output_cost_per_image_token` → `image_input_tokens` /
 * `image_output_tokens`. Per unit (`perUnit`): `output_cost_per_image` → `image_count` (any
 * mode; skipped where the entry prices image tokens, so an image is never billed twice);
 * `input_cost_per_image` on image-generation entries without `output_cost_per_image` →
 * `image_count` (LiteLLM's `default_image_cost_calculator` charges it per generated image);
 * `search_context_cost_per_query` → `web_search_requests` when every context size has the
 * same price and the provider bills per search (not Gemini's per grounded prompt).
 *
 * Long context: `<field>_above_<n>k_tokens` becomes a request-scoped volume tier on prompt
 * tokens with boundaries `n × 1000` (strict `>`: exactly `n × 1000` prompt tokens is the
 * lower tier) and `null`; range-based `tiered_pricing` becomes the same kind of tier at its
 * range ends. Every per-token meter of such an entry must be priced at every threshold: a
 * meter that is not (e.g. a 1-hour cache write without an above-200k price) is left unpriced
 * and reported (`tierIncomplete`), never billed at its base price above the threshold.
 *
 * Service tiers: `<field>_priority`, `<field>_flex` and `<field>_batches` (also after a
 * threshold: `input_cost_per_token_above_200k_tokens_priority`) make one more snapshot per
 * tier, with `model.tier` `priority`, `flex` or `batch` and snapshot id
 * `<prefix>:<model>:<tier>:<effectiveFrom>`, built with the same rules. A tier snapshot
 * prices only the meters the map prices in that tier: a meter priced in the standard snapshot
 * but not in the tier (e.g. batch cache reads) is left unpriced in the tier snapshot and
 * reported (`serviceTierMissing`, with `tier`), never priced at the standard price. Where the
 * standard snapshot is long-context tiered, a tier meter must be priced above the same
 * thresholds (`…_above_272k_tokens_flex`), else it is left unpriced (`tierIncomplete`, with
 * `tier`) rather than billed at the tier's base price above the threshold.
 *
 * A snapshot whose every price is 0 is a placeholder in the map: skipped (`allZero`) unless
 * `includeFree`. Every other price field (per-second, per-character, per-query, per-pixel,
 * multipliers, unknown `*cost*` fields) and every bad price (negative, not a number, out of
 * range — an exponent such as `1e99999999` is refused in constant time) is listed in
 * `skipped` with a code and a reason; metadata (`max_tokens`, `litellm_provider`, `mode`,
 * `supports_*`, …) is ignored. An entry with no mappable price produces no snapshot
 * (`field: "*"`).
 *
 * @throws LatchValidationError (`invalid_input`) when the text is not JSON (with line,
 *   column and JSON pointer), when the top level is not an object, or when an option is
 *   invalid (path `opts.effectiveFrom`, `opts.currency`, `opts.snapshotIdPrefix`, `opts.includeFree`).
 *
 * @example
 * const { snapshots, skipped } = importLiteLLMCostMap(
 *   '{"gpt-4o-mini": {"input_cost_per_token": 1.5e-07, "output_cost_per_token": 6e-07,' +
 *     ' "input_cost_per_token_batches": 7.5e-08, "litellm_provider": "openai"}}',
 *   { effectiveFrom: "2026-01-01T00:00:00Z" },
 * );
 * // snapshots[0] → { snapshotId: "litellm:gpt-4o-mini:2026-01-01T00:00:00Z",
 * //   model: { billableModel: "gpt-4o-mini", vendor: "openai" }, currency: "USD",
 * //   effectiveFrom: "2026-01-01T00:00:00Z",
 * //   prices: { input_tokens: { perMillion: "0.15" }, output_tokens: { perMillion: "0.6" },
 * //             reasoning_tokens: { as: "output_tokens" } } }
 * // snapshots[1] → { snapshotId: "litellm:gpt-4o-mini:batch:2026-01-01T00:00:00Z",
 * //   model: { billableModel: "gpt-4o-mini", vendor: "openai", tier: "batch" }, …,
 * //   prices: { input_tokens: { perMillion: "0.075" } } }
 * // skipped → [{ model: "gpt-4o-mini", field: "output_cost_per_token", code: "serviceTierMissing",
 * //              tier: "batch", reason: "no price for this meter in this service tier; …" }]
 */
export function importLiteLLMCostMap(jsonText: string, opts?: LiteLLMImportOptions): LiteLLMImportResult {
  if (typeof jsonText !== "string")
    throw LatchValidationError.at(SUBJECT, "jsonText", "expected JSON text as a string");
  const options = parseWith(OptionsSchema, opts ?? {}, "LiteLLM import options", "opts");
  const ctx: EntryContext = {
    effectiveFrom: options.effectiveFrom ?? DEFAULT_EFFECTIVE_FROM,
    currency: options.currency ?? "USD",
    prefix: options.snapshotIdPrefix ?? "litellm",
    includeFree: options.includeFree ?? false,
  };

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
  const ids = new Set<string>();
  for (const model of Object.keys(root)) {
    const skip: Skip = (field, code, tier) => {
      const record: LiteLLMSkippedField = { model, field, code, reason: LITELLM_SKIP_REASONS[code] };
      if (tier !== undefined && tier !== "standard") record.tier = tier;
      skipped.push(record);
    };
    const entry = root[model];
    if (model === "sample_spec") {
      skip("*", "sampleSpec");
      continue;
    }
    if (duplicateModels.has(model)) {
      skip("*", "duplicateModel");
      continue;
    }
    if (!isJsonObject(entry)) {
      skip("*", "notAnObject");
      continue;
    }
    for (const snapshot of importEntry(model, entry, duplicateFields.get(model), skip, ctx)) {
      if (ids.has(snapshot.snapshotId)) {
        skip("*", "duplicateSnapshotId", snapshot.model.tier as LiteLLMServiceTier | undefined);
        continue;
      }
      ids.add(snapshot.snapshotId);
      snapshots.push(snapshot);
    }
  }
  return { snapshots, skipped };
}

interface EntryContext {
  effectiveFrom: string;
  currency: string;
  prefix: string;
  includeFree: boolean;
}

type Skip = (field: string, code: LiteLLMSkipCode, tier?: LiteLLMServiceTier) => void;

/** A price read from the map, with the field it came from. */
interface Candidate {
  field: string;
  price: Price;
}

/** The prices of one service tier of an entry, as read (before the consistency rules). */
class TierPrices {
  /** meter → every field pricing it below any threshold. */
  readonly base = new Map<MeterKind, Candidate[]>();
  /** threshold → meter → every field pricing it above that threshold. */
  readonly above = new Map<number, Map<MeterKind, Candidate[]>>();
  /** Meters one of whose threshold prices could not be imported. */
  readonly badAbove = new Set<MeterKind>();
  /** Meters whose base price could not be imported (bad number, duplicated field). */
  readonly badBase = new Set<MeterKind>();

  add(meter: MeterKind, candidate: Candidate, threshold?: number): void {
    let table = this.base;
    if (threshold !== undefined) {
      table = this.above.get(threshold) ?? new Map();
      this.above.set(threshold, table);
    }
    const list = table.get(meter) ?? [];
    table.set(meter, list);
    list.push(candidate);
  }

  /**
   * The price of `meter` as the map states it (before the consistency rules drop anything):
   * undefined when none, `"unreadable"` when a field of it could not be read, its threshold
   * prices lack a base price, or two fields disagree.
   */
  schedule(meter: MeterKind): ImportedPriceSchedule | "unreadable" | undefined {
    if (this.badBase.has(meter) || this.badAbove.has(meter)) return "unreadable";
    const single = (list: Candidate[] | undefined): string | "unreadable" | undefined => {
      const first = list?.[0]?.price;
      if (list === undefined || first === undefined) return undefined;
      if (!("perMillion" in first) || !list.every((c) => samePrice(c.price, first))) return "unreadable";
      return first.perMillion;
    };
    const base = single(this.base.get(meter));
    const above: Array<readonly [number, string]> = [];
    for (const [threshold, table] of this.above) {
      const price = single(table.get(meter));
      if (price === "unreadable") return "unreadable";
      if (price !== undefined) above.push([threshold, price]);
    }
    if (base === undefined) return above.length === 0 ? undefined : "unreadable";
    if (base === "unreadable") return "unreadable";
    return above.length === 0 ? { base } : { base, above };
  }

  isEmpty(): boolean {
    return this.base.size === 0 && this.above.size === 0;
  }

  /** Every field that priced `meter` (base and above every threshold). */
  fieldsOf(meter: MeterKind): string[] {
    const out = (this.base.get(meter) ?? []).map((c) => c.field);
    for (const table of this.above.values()) for (const c of table.get(meter) ?? []) out.push(c.field);
    return out;
  }

  /** Drops a meter everywhere, reporting each of its fields once with `code`. */
  drop(meter: MeterKind, code: LiteLLMSkipCode, skip: Skip, tier: LiteLLMServiceTier): void {
    const reported = new Set<string>();
    for (const field of this.fieldsOf(meter)) {
      if (reported.has(field)) continue;
      reported.add(field);
      skip(field, code, tier);
    }
    this.base.delete(meter);
    for (const table of this.above.values()) table.delete(meter);
  }
}

/** The meters and fields a standard snapshot priced, for the service-tier gap report. */
type StandardMeters = ReadonlyMap<MeterKind, string>;

function importEntry(
  model: string,
  entry: JsonObject,
  duplicates: ReadonlySet<string> | undefined,
  skip: Skip,
  ctx: EntryContext,
): PriceSnapshot[] {
  const tiers = new Map<LiteLLMServiceTier, TierPrices>(TIER_ORDER.map((t) => [t, new TierPrices()]));
  const standard = tiers.get("standard") as TierPrices;

  // Any cached-audio price of the entry, in any form or tier, readable or not: the entry prices
  // cached audio itself, so no snapshot of it bills cached audio as cached text.
  let cachedAudioPriced = false;
  // An audio input price in a form no meter takes (per second): audio is priced apart from text.
  let audioPricedOtherwise = false;
  for (const field of Object.keys(entry)) {
    const target = classifyField(field, entry);
    if (target.kind === "ignore") continue;
    if (
      (target.kind === "price" && target.meter === "cached_audio_input_tokens") ||
      (target.kind === "skip" && target.code === "audioCacheRead") ||
      (target.kind === "tieredPricing" && rangesPriceCachedAudio(entry[field]))
    )
      cachedAudioPriced = true;
    if (target.kind === "skip" && field.startsWith("input_cost_per_audio")) audioPricedOtherwise = true;
    if (target.kind === "skip") {
      skip(field, target.code);
      continue;
    }
    if (duplicates?.has(field)) {
      skip(field, "duplicateField");
      if (target.kind === "price") {
        const prices = tiers.get(target.tier) as TierPrices;
        (target.threshold === undefined ? prices.badBase : prices.badAbove).add(target.meter);
      }
      continue;
    }
    if (target.kind === "search") {
      const search = searchPrice(entry[field], entry);
      if (search.ok) standard.add("web_search_requests", { field, price: { perUnit: search.value } });
      else skip(field, search.code);
      continue;
    }
    if (target.kind === "tieredPricing") {
      const ranges = readRangeTiers(entry[field]);
      if ("code" in ranges) {
        skip(field, ranges.code);
        continue;
      }
      for (const [i, range] of ranges.entries()) {
        // The tier of a range applies above the previous range's end (`from < tokens ≤ upTo`).
        const threshold = i === 0 ? undefined : range.from;
        for (const [meter, perMillion] of range.prices)
          standard.add(meter, { field, price: { perMillion } }, threshold);
      }
      continue;
    }
    const prices = tiers.get(target.tier) as TierPrices;
    const converted = convertPrice(entry[field], target.per);
    if (!converted.ok) {
      skip(field, converted.code);
      (target.threshold === undefined ? prices.badBase : prices.badAbove).add(target.meter);
      continue;
    }
    const price: Price =
      target.per === "million" ? { perMillion: converted.value } : { perUnit: converted.value };
    prices.add(target.meter, { field, price }, target.threshold);
  }

  // The cached-audio alias rule (`cachedAudioAsCachedText`) per service tier, read before the
  // consistency rules drop anything. A tier without its own audio input price is compared with
  // the standard one, which LiteLLM bills in that tier (`_get_cost_per_unit` falls back to it).
  const standardAudio = standard.schedule("audio_input_tokens");
  const audioFacts = (prices: TierPrices, tier: LiteLLMServiceTier): CachedAudioFacts => {
    const text = prices.schedule("input_tokens");
    return {
      cachedAudioPriced,
      audioInput: audioPricedOtherwise
        ? "unreadable"
        : (prices.schedule("audio_input_tokens") ?? (tier === "standard" ? undefined : standardAudio)),
      textInput: text === "unreadable" ? undefined : text,
    };
  };

  const out: PriceSnapshot[] = [];
  let standardMeters: StandardMeters = new Map();
  let standardThresholds: readonly number[] = [];
  let reportedWhole = false;
  for (const tier of TIER_ORDER) {
    const prices = tiers.get(tier) as TierPrices;
    if (tier !== "standard" && prices.isEmpty()) continue;
    const facts = audioFacts(prices, tier);
    const built = buildSnapshot(
      model,
      entry,
      tier,
      prices,
      facts,
      standardMeters,
      standardThresholds,
      skip,
      ctx,
    );
    if (tier === "standard") {
      standardMeters = built.meters;
      standardThresholds = [...prices.above.keys()];
    }
    if (built.snapshot) out.push(built.snapshot);
    if (built.reportedWhole) reportedWhole = true;
  }
  if (out.length === 0 && !reportedWhole) skip("*", "noPrice");
  return out;
}

interface Built {
  snapshot?: PriceSnapshot;
  /** Meter → the first field that priced it (for the service-tier gap report). */
  meters: Map<MeterKind, string>;
  /** True when the whole snapshot was reported (`field: "*"`). */
  reportedWhole: boolean;
}

/** Applies the consistency rules to one tier's prices and builds its snapshot. */
function buildSnapshot(
  model: string,
  entry: JsonObject,
  tier: LiteLLMServiceTier,
  prices: TierPrices,
  cachedAudio: CachedAudioFacts,
  standardMeters: StandardMeters,
  standardThresholds: readonly number[],
  skip: Skip,
  ctx: EntryContext,
): Built {
  // Two fields pricing one meter must agree (cache_read_input_token_cost vs
  // input_cost_per_token_cache_hit, or a flat price beside tiered_pricing).
  const tables = [prices.base, ...prices.above.values()];
  for (const table of tables) {
    for (const [meter, list] of [...table]) {
      if (list.every((c) => samePrice(c.price, (list[0] as Candidate).price))) continue;
      prices.drop(meter, "conflictingPrices", skip, tier);
    }
  }
  // A meter whose threshold price is bad is left unpriced (rating reports no_price_for_meter
  // and the usage stays re-ratable) rather than billed at the lower tier's price above the threshold.
  for (const meter of prices.badAbove) prices.drop(meter, "tierPriceInvalid", skip, tier);
  // A threshold price needs a base price for the same meter, or the lower tier is unpriced.
  for (const table of prices.above.values()) {
    for (const meter of [...table.keys()]) {
      if (prices.base.has(meter)) continue;
      prices.drop(meter, "tierWithoutBase", skip, tier);
    }
  }
  for (const [threshold, table] of [...prices.above]) if (table.size === 0) prices.above.delete(threshold);
  // Long context: every per-token meter must be priced above every threshold — the tier's own
  // and, for a service tier, the standard snapshot's (a flex call past 272k prompt tokens is a
  // long-context call too) — else it is left unpriced (its base price above the threshold would
  // be a guess, usually too low).
  const thresholds = new Set([...prices.above.keys(), ...standardThresholds]);
  const incomplete = new Set<MeterKind>();
  if (thresholds.size > 0) {
    for (const [meter, list] of [...prices.base]) {
      if (!("perMillion" in (list[0] as Candidate).price)) continue;
      if ([...thresholds].every((t) => prices.above.get(t)?.has(meter))) continue;
      prices.drop(meter, "tierIncomplete", skip, tier);
      incomplete.add(meter);
    }
  }

  const meters = new Map<MeterKind, string>();
  const table: Record<string, Price> = {};
  for (const [meter, list] of prices.base) {
    table[meter] = (list[0] as Candidate).price;
    meters.set(meter, (list[0] as Candidate).field);
  }
  if (table.reasoning_tokens === undefined && table.output_tokens !== undefined) {
    // Reasoning is billed as output, unless the standard entry prices it apart: then a tier
    // without its own reasoning price leaves it unpriced rather than guessing.
    if (tier === "standard" || !standardMeters.has("reasoning_tokens"))
      table.reasoning_tokens = { as: "output_tokens" };
  }
  // LiteLLM bills every cache hit, audio included, at the cached text price: so does the snapshot
  // where that is also the provider's price (the rule and why: `cachedAudioAsCachedText`). Where
  // cached text is tiered, the alias follows its tier price.
  if (cachedAudioAsCachedText({ ...cachedAudio, cachedTextPriced: table.cached_input_tokens !== undefined }))
    table.cached_audio_input_tokens = { as: "cached_input_tokens" };
  if (tier !== "standard") {
    for (const [meter, field] of standardMeters) {
      if (table[meter] === undefined && !incomplete.has(meter)) skip(field, "serviceTierMissing", tier);
    }
  }
  if (Object.keys(table).length === 0) return { meters, reportedWhole: false };

  const tierConfigs = buildTiers(prices);
  if (!ctx.includeFree && isAllZero(table, tierConfigs)) {
    skip("*", "allZero", tier);
    return { meters, reportedWhole: true };
  }
  const vendor = entry.litellm_provider;
  const modelRef: { billableModel: string; vendor?: string; tier?: string } = { billableModel: model };
  if (typeof vendor === "string" && vendor.length > 0) modelRef.vendor = vendor;
  if (tier !== "standard") modelRef.tier = tier;
  const candidate = {
    snapshotId:
      tier === "standard"
        ? `${ctx.prefix}:${model}:${ctx.effectiveFrom}`
        : `${ctx.prefix}:${model}:${tier}:${ctx.effectiveFrom}`,
    model: modelRef,
    currency: ctx.currency,
    effectiveFrom: ctx.effectiveFrom,
    prices: table,
    ...(tierConfigs ? { tiers: tierConfigs } : {}),
  };
  const parsed = PriceSnapshotSchema.safeParse(candidate);
  if (!parsed.success) {
    skip("*", "invalidSnapshot", tier);
    return { meters, reportedWhole: true };
  }
  return { snapshot: parsed.data, meters, reportedWhole: false };
}

/** What `cachedAudioAsCachedText` needs from the map for one snapshot, but the snapshot's own cached text price. */
type CachedAudioFacts = Omit<CachedAudioSourceFacts, "cachedTextPriced">;

/** True when a `tiered_pricing` value has a cached-audio price in some range (read or not). */
function rangesPriceCachedAudio(value: unknown): boolean {
  return (
    Array.isArray(value) &&
    value.some((item) => isJsonObject(item) && Object.hasOwn(item, "cache_read_input_audio_token_cost"))
  );
}

function samePrice(a: Price, b: Price): boolean {
  if ("perMillion" in a) return "perMillion" in b && a.perMillion === b.perMillion;
  if ("perUnit" in a) return "perUnit" in b && a.perUnit === b.perUnit;
  return "as" in b && a.as === b.as;
}

/** True when no price of the snapshot is above 0 (aliases price nothing themselves). */
function isAllZero(table: Record<string, Price>, tiers: TierConfig[] | undefined): boolean {
  const zero = (p: Price | undefined) =>
    p === undefined
      ? true
      : "perMillion" in p
        ? p.perMillion === "0"
        : "perUnit" in p
          ? p.perUnit === "0"
          : true;
  if (!Object.values(table).every(zero)) return false;
  return (tiers ?? []).every((t) => t.boundaries.every((b) => Object.values(b.prices).every(zero)));
}

/**
 * One request-scoped volume tier on prompt tokens: boundaries at each threshold (ascending)
 * and an open last one. Every tiered meter is priced at every threshold (the rules above
 * drop a meter that is not); the first boundary holds its base price.
 */
function buildTiers(prices: TierPrices): TierConfig[] | undefined {
  if (prices.above.size === 0) return undefined;
  const thresholds = [...prices.above.keys()].sort((a, b) => a - b);
  const meters = new Set<MeterKind>();
  for (const table of prices.above.values()) for (const meter of table.keys()) meters.add(meter);

  const first: Record<string, Price> = {};
  for (const meter of meters) first[meter] = (prices.base.get(meter)?.[0] as Candidate).price;
  const boundaries: TierConfig["boundaries"] = [{ upTo: thresholds[0] as number, prices: first }];
  let current = first;
  for (let i = 0; i < thresholds.length; i++) {
    const table = prices.above.get(thresholds[i] as number) as Map<MeterKind, Candidate[]>;
    current = { ...current };
    for (const [meter, list] of table) current[meter] = (list[0] as Candidate).price;
    boundaries.push({ upTo: thresholds[i + 1] ?? null, prices: current });
  }
  return [{ scope: "request", mode: "volume", baseline: "prompt_tokens", boundaries }];
}
