import { LatchDecimal, LatchValidationError, type PriceSnapshot } from "@latch/core";
import {
  cachedAudioAsCachedText,
  type ImportedPriceSchedule,
  PriceSnapshotSchema,
} from "@latch/core/adapter";
import { PRICE_CATALOG_FORMAT, type PriceCatalog, type PriceCatalogSource } from "../catalog.js";

/**
 * The shapes of `@pydantic/genai-prices` (its `Provider`, `ModelInfo`, `MatchLogic`, …), written
 * out here so the converter also reads hand-written data and any version of the package.
 */
export type GenaiMatch =
  | { equals: string }
  | { starts_with: string }
  | { ends_with: string }
  | { contains: string }
  | { regex: string }
  | { or: GenaiMatch[] }
  | { and: GenaiMatch[] };
export interface GenaiTieredPrice {
  base: number;
  tiers: Array<{ start: number; price: number }>;
}
export type GenaiModelPrice = Record<string, number | GenaiTieredPrice | undefined>;
export interface GenaiConditionalPrice {
  constraint?:
    | { type: "start_date"; start_date: string }
    | { type: "time_of_date"; start_time: string; end_time: string };
  prices: GenaiModelPrice;
}
export interface GenaiModel {
  id: string;
  match: GenaiMatch;
  prices: GenaiModelPrice | GenaiConditionalPrice[];
}
export interface GenaiProvider {
  id: string;
  models: GenaiModel[];
}

/** The genai-prices providers Latch has usage parsers for (OpenAI, Anthropic, Gemini, OpenRouter). */
export const GENAI_PRICES_PROVIDERS: readonly string[] = Object.freeze([
  "openai",
  "anthropic",
  "google",
  "openrouter",
]);

/** Providers whose model ids are used as they are; any other provider's are `<provider>/<id>`. */
export const GENAI_PRICES_BARE_PROVIDERS: readonly string[] = Object.freeze([
  "openai",
  "anthropic",
  "google",
]);

/** Options of {@link convertGenaiPrices}. */
export interface GenaiConvertOptions {
  /** Where the data came from: recorded beside every snapshot. */
  source: PriceCatalogSource;
  /** Which providers to convert, in priority order (an id taken by an earlier one is skipped later). Default {@link GENAI_PRICES_PROVIDERS}. */
  providers?: readonly string[];
  /**
   * Start of the undated prices (ISO 8601 UTC). Default `1970-01-01T00:00:00Z`: genai-prices
   * applies a model's first price to every call before its first `start_date`.
   */
  effectiveFrom?: string;
  /**
   * Convert only the prices in effect at this instant (ISO 8601 UTC), every snapshot dated from
   * it — what `updatePriceCatalog` expects. Prices that start later are skipped (`futurePrice`).
   * Default: the whole history, one snapshot per dated price.
   */
  asOf?: string;
  /** Also convert models whose every price is 0 (`…:free` routes). Default `false`. */
  includeFree?: boolean;
}

export type GenaiSkipCode =
  | "unknownProvider"
  | "unsupportedUnit"
  | "badPrice"
  | "tierInvalid"
  | "unsupportedMatch"
  | "prefixMatch"
  | "shadowedMatch"
  | "aliasTaken"
  | "idTaken"
  | "noExactId"
  | "timeOfDayPrice"
  | "conditionalOrder"
  | "futurePrice"
  | "allZero"
  | "conflictingPrice"
  | "noPrice"
  | "invalidSnapshot";

export const GENAI_SKIP_REASONS: Readonly<Record<GenaiSkipCode, string>> = Object.freeze({
  unknownProvider: "the data has no provider with this id",
  unsupportedUnit: "no Latch meter bills this unit (left unpriced, never billed at $0)",
  badPrice: "not a finite non-negative number",
  tierInvalid: "tier starts must be distinct positive integers: the model variant is left out",
  unsupportedMatch:
    "a contains/ends_with/regex/and rule: Latch matches ids exactly (plus its own prefix and date rules), so ids this rule alone matches are left unpriced",
  prefixMatch:
    "a starts_with rule: the prefix itself is an alias (and `<prefix>-<date>` ids reach it by Latch's dated-suffix rule); longer ids are left unpriced",
  shadowedMatch: "genai-prices prices this id with an earlier model of the provider: not an alias here",
  aliasTaken: "an earlier provider already prices this id: not an alias here",
  idTaken: "an earlier provider already prices this id: the model is left out",
  noExactId: "no id this model is matched by can be matched exactly: the model is left out",
  timeOfDayPrice: "time-of-day prices (off-peak discounts) cannot be expressed: the model is left out",
  conditionalOrder:
    "conditional prices must be an undated price then start dates in increasing order: the model is left out",
  futurePrice: "a price that starts after asOf: convert again once it applies",
  allZero: "every price is 0 (a placeholder or a free route; pass includeFree to import it)",
  conflictingPrice:
    "Latch counts these tokens in another meter (named in value), which the model prices differently: that meter is left unpriced, so a call using it is reported unpriced, never billed at the wrong rate",
  noPrice: "no unit of the model maps to a Latch meter",
  invalidSnapshot: "the snapshot does not validate (e.g. an id over 256 characters)",
});

/** A provider, model, price or match rule left out of the catalog, and why (never silently dropped). */
export interface GenaiPricesSkip {
  provider: string;
  /** The genai-prices model id (`*` for the whole provider). */
  model: string;
  /** The unit (`cache_image_read_mtok`), `match` (with `value`), `prices` or `*` for the whole model. */
  field: string;
  code: GenaiSkipCode;
  reason: string;
  /** The match value or alias concerned, for match codes; the meter left unpriced, for `conflictingPrice`. */
  value?: string;
}

/** What {@link convertGenaiPrices} returns. */
export interface GenaiConvertResult {
  catalog: PriceCatalog;
  skipped: GenaiPricesSkip[];
}

type Per = "million" | "thousand";
/** genai-prices unit → Latch meter, and what the price is per. */
const UNITS: Readonly<Record<string, readonly [string, Per]>> = {
  input_mtok: ["input_tokens", "million"],
  output_mtok: ["output_tokens", "million"],
  cache_read_mtok: ["cached_input_tokens", "million"],
  cache_audio_read_mtok: ["cached_audio_input_tokens", "million"],
  cache_write_mtok: ["cache_write_tokens", "million"],
  cache_write_1h_mtok: ["cache_write_1h_tokens", "million"],
  input_audio_mtok: ["audio_input_tokens", "million"],
  output_audio_mtok: ["audio_output_tokens", "million"],
  input_image_mtok: ["image_input_tokens", "million"],
  output_image_mtok: ["image_output_tokens", "million"],
  output_reasoning_mtok: ["reasoning_tokens", "million"],
  web_searches_kcount: ["web_search_requests", "thousand"],
};

/**
 * Units whose tokens Latch's usage parsers count inside another meter, for want of a meter of
 * their own: cached image tokens are `cached_input_tokens` (no parser splits them out: Gemini
 * bills cached images at its cached text rate, and the APIs that price them apart, OpenAI's
 * Realtime and gpt-image caching, report no cached image split Latch reads), video tokens are
 * `input_tokens` / `output_tokens` (Gemini), and Gemini's image input tokens are
 * `input_tokens`. When the model prices such a unit differently from that meter, the meter
 * cannot be priced exactly: it is left unpriced (`conflictingPrice`). Cached audio has its own
 * meter (`cache_audio_read_mtok` → `cached_audio_input_tokens`), so it conflicts with nothing.
 */
const ABSORBED: ReadonlyArray<{ unit: string; meter: string; providers?: readonly string[] }> = [
  { unit: "cache_image_read_mtok", meter: "cached_input_tokens" },
  { unit: "input_video_mtok", meter: "input_tokens" },
  { unit: "output_video_mtok", meter: "output_tokens" },
  { unit: "input_image_mtok", meter: "input_tokens", providers: ["google"] },
];

const EPOCH = "1970-01-01T00:00:00Z";
const SUBJECT = "genai-prices data";

/**
 * A JS number of the data as an exact decimal string: its shortest round-trip text
 * (`String(0.075)` is `"0.075"`) read by decimal.js at Latch's precision, never float arithmetic.
 * Prices per thousand (web searches) become per unit by a decimal division by 1,000.
 */
export function genaiPriceText(value: unknown, per: Per = "million"): string | undefined {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) return undefined;
  let d = new LatchDecimal(String(value));
  if (per === "thousand") d = d.div(1000);
  return d.toFixed();
}

/**
 * Converts `@pydantic/genai-prices` provider data (MIT, © Pydantic Services Inc.) into a Latch
 * price catalog, exactly.
 *
 * - **Prices**: each number per million tokens is read as its shortest decimal text
 *   (`0.075`, `1.1`, `0.0375`), never through float arithmetic. Units map to meters as the
 *   LiteLLM importer maps its fields: `input_mtok` → `input_tokens`, `cache_read_mtok` →
 *   `cached_input_tokens`, `cache_audio_read_mtok` → `cached_audio_input_tokens` (absent, on a
 *   model with a cache-read price that prices audio input as text: `{ as: "cached_input_tokens" }`,
 *   as genai-prices bills cached audio at `cache_read_mtok` then), `cache_write_mtok` / `cache_write_1h_mtok` → the cache-write meters,
 *   `input_audio_mtok`, `output_audio_mtok`, `input_image_mtok`, `output_image_mtok`,
 *   `output_reasoning_mtok` (absent: reasoning is billed `as` output), `web_searches_kcount` →
 *   `web_search_requests` per unit (÷ 1,000). Any other unit is skipped (`unsupportedUnit`):
 *   its usage stays unpriced, never billed at $0. A unit whose tokens Latch's usage parsers
 *   count inside another meter (cached image tokens in `cached_input_tokens`, video in
 *   `input_tokens` / `output_tokens`, Gemini image input in `input_tokens`), priced differently
 *   from that meter, leaves that meter unpriced for the model (`conflictingPrice`): such calls
 *   are reported unpriced, never billed at the other rate.
 * - **Tiers** (`{ base, tiers: [{ start, price }] }`) become one request-scoped volume tier on
 *   prompt tokens (genai-prices compares its total input tokens, strictly above `start`).
 * - **Dated prices** (`start_date`) become dated snapshots (`effectiveFrom`/`effectiveUntil`);
 *   time-of-day prices cannot be expressed and leave the model out (`timeOfDayPrice`).
 * - **Matching**: the model's `id` is the `billableModel`, and every `equals` value (and every
 *   `starts_with` prefix) that genai-prices resolves to this model becomes an alias; the rest of a
 *   starts_with rule (`prefixMatch`) and contains/ends_with/regex/and rules (`unsupportedMatch`)
 *   are reported. `openai`, `anthropic` and `google` ids are used as they are, other providers'
 *   as `<provider>/<id>` (`openrouter/openai/gpt-4o`).
 *
 * @throws LatchValidationError (`invalid_input`) naming the option (`options.asOf`, …) or
 *   `providers` when the data is not an array of providers.
 *
 * @example
 * const { catalog } = convertGenaiPrices(
 *   [{ id: "openai", models: [{ id: "gpt-4o", match: { or: [{ equals: "gpt-4o" }, { equals: "gpt-4o-2024-08-06" }] },
 *      prices: { input_mtok: 2.5, cache_read_mtok: 1.25, output_mtok: 10 } }] }],
 *   { source },
 * );
 * // catalog.entries[0].snapshot → { billableModel "gpt-4o", aliases ["gpt-4o-2024-08-06"],
 * //   prices: { input_tokens: { perMillion: "2.5" }, cached_input_tokens: { perMillion: "1.25" }, … } }
 */
export function convertGenaiPrices(
  providers: readonly GenaiProvider[],
  options: GenaiConvertOptions,
): GenaiConvertResult {
  if (!Array.isArray(providers)) throw LatchValidationError.at(SUBJECT, "providers", "expected an array");
  const effectiveFrom = isoOption(options.effectiveFrom, "options.effectiveFrom") ?? EPOCH;
  const asOf = isoOption(options.asOf, "options.asOf");
  const wanted = options.providers ?? GENAI_PRICES_PROVIDERS;
  const skipped: GenaiPricesSkip[] = [];
  const taken = new Set<string>();
  const entries: PriceCatalog["entries"] = [];

  for (const providerId of wanted) {
    const provider = providers.find((p) => p?.id === providerId);
    const skip = (model: string, field: string, code: GenaiSkipCode, value?: string) => {
      const record: GenaiPricesSkip = {
        provider: providerId,
        model,
        field,
        code,
        reason: GENAI_SKIP_REASONS[code],
      };
      if (value !== undefined) record.value = value;
      skipped.push(record);
    };
    if (provider === undefined || !Array.isArray(provider.models)) {
      skip("*", "*", "unknownProvider");
      continue;
    }
    const prefix = GENAI_PRICES_BARE_PROVIDERS.includes(providerId) ? "" : `${providerId}/`;
    const models = provider.models;
    const first = firstMatcher(models);
    for (const model of models) {
      const snapshots = convertModel(model, first, {
        providerId,
        prefix,
        effectiveFrom,
        asOf,
        options,
        taken,
        skip,
      });
      for (const snapshot of snapshots) entries.push({ source: 0, snapshot });
    }
  }
  return { catalog: { format: PRICE_CATALOG_FORMAT, sources: [options.source], entries }, skipped };
}

interface ModelContext {
  providerId: string;
  prefix: string;
  effectiveFrom: string;
  asOf: string | undefined;
  options: GenaiConvertOptions;
  taken: Set<string>;
  skip: (model: string, field: string, code: GenaiSkipCode, value?: string) => void;
}

function convertModel(
  model: GenaiModel,
  first: (id: string) => GenaiModel | undefined,
  ctx: ModelContext,
): PriceSnapshot[] {
  const { skip } = ctx;
  const id = model.id;
  // Match rules: exact ids this model owns by genai-prices' own first-match rule.
  const exact: string[] = [];
  const visit = (m: GenaiMatch, top: boolean) => {
    if ("or" in m && top) for (const inner of m.or) visit(inner, true);
    else if ("equals" in m) exact.push(m.equals);
    else if ("starts_with" in m && top) {
      exact.push(m.starts_with);
      skip(id, "match", "prefixMatch", m.starts_with);
    } else skip(id, "match", "unsupportedMatch", JSON.stringify(m));
  };
  visit(model.match, true);
  const owns = (candidate: string) => first(candidate) === model;
  if (!owns(id)) {
    skip(id, "*", "noExactId");
    return [];
  }
  const billableModel = `${ctx.prefix}${id}`;
  if (ctx.taken.has(billableModel)) {
    skip(id, "*", "idTaken", billableModel);
    return [];
  }
  const aliases: string[] = [];
  for (const value of new Set(exact)) {
    if (value === id) continue;
    if (!owns(value)) {
      skip(id, "match", "shadowedMatch", value);
      continue;
    }
    const alias = `${ctx.prefix}${value}`;
    if (ctx.taken.has(alias) || alias === billableModel) {
      skip(id, "match", "aliasTaken", alias);
      continue;
    }
    aliases.push(alias);
  }

  const periods = pricePeriods(model, ctx);
  if (periods === undefined) return [];
  const out: PriceSnapshot[] = [];
  for (const period of periods) {
    const prices = pricesOf(model.id, period.prices, ctx);
    if (prices === undefined) continue;
    if (!ctx.options.includeFree && prices.allZero) {
      skip(id, "prices", "allZero", period.from);
      continue;
    }
    const candidate = {
      snapshotId: `genai-prices:${billableModel}:${period.from}`,
      model: { billableModel, vendor: ctx.providerId },
      currency: "USD",
      effectiveFrom: period.from,
      ...(period.until !== undefined ? { effectiveUntil: period.until } : {}),
      prices: prices.table,
      ...(prices.tiers !== undefined ? { tiers: prices.tiers } : {}),
      ...(aliases.length > 0 ? { aliases } : {}),
    };
    const parsed = PriceSnapshotSchema.safeParse(candidate);
    if (!parsed.success) {
      skip(id, "*", "invalidSnapshot", period.from);
      continue;
    }
    out.push(parsed.data);
  }
  if (out.length > 0) {
    ctx.taken.add(billableModel);
    for (const alias of aliases) ctx.taken.add(alias);
  }
  return out;
}

/** The dated periods of a model's prices: `[from, until)`, oldest first. */
function pricePeriods(
  model: GenaiModel,
  ctx: ModelContext,
): Array<{ from: string; until?: string; prices: GenaiModelPrice }> | undefined {
  const list: GenaiConditionalPrice[] = Array.isArray(model.prices)
    ? model.prices
    : [{ prices: model.prices }];
  if (list.length === 0) {
    ctx.skip(model.id, "*", "noPrice");
    return undefined;
  }
  const starts: string[] = [];
  for (const [i, item] of list.entries()) {
    const c = item?.constraint;
    if (c?.type === "time_of_date") {
      ctx.skip(model.id, "*", "timeOfDayPrice");
      return undefined;
    }
    if (i === 0) continue; // before any later start, genai-prices applies the first price
    const start = c?.type === "start_date" ? startInstant(c.start_date) : undefined;
    if (
      start === undefined ||
      (starts.length > 0 && Date.parse(start) <= Date.parse(starts.at(-1) as string))
    ) {
      ctx.skip(model.id, "*", "conditionalOrder");
      return undefined;
    }
    starts.push(start);
  }
  const periods = list.map((item, i) => ({
    from: i === 0 ? ctx.effectiveFrom : (starts[i - 1] as string),
    until: starts[i],
    prices: item.prices,
  }));
  if (ctx.asOf !== undefined) {
    const at = Date.parse(ctx.asOf);
    const current = periods.filter((p) => Date.parse(p.from) <= at || p === periods[0]).at(-1);
    for (const p of periods) {
      if (Date.parse(p.from) > at && p !== periods[0]) ctx.skip(model.id, "prices", "futurePrice", p.from);
    }
    return current === undefined ? [] : [{ from: ctx.asOf, prices: current.prices }];
  }
  // Periods that end before the catalog starts are history it does not hold.
  const start = Date.parse(ctx.effectiveFrom);
  return periods
    .filter((p) => p.until === undefined || Date.parse(p.until) > start)
    .map((p) => {
      const from = Date.parse(p.from) < start ? ctx.effectiveFrom : p.from;
      return p.until === undefined ? { from, prices: p.prices } : { from, until: p.until, prices: p.prices };
    });
}

/**
 * A per-million price as the data states it (flat, or tiered by `start`), for the shared
 * cached-audio rule: undefined when absent, `"unreadable"` when it cannot be read.
 */
function scheduleOf(value: unknown): ImportedPriceSchedule | "unreadable" | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "object" && value !== null) {
    const tiered = value as { base?: unknown; tiers?: unknown };
    const base = genaiPriceText(tiered.base);
    if (base === undefined || !Array.isArray(tiered.tiers)) return "unreadable";
    const above: Array<readonly [number, string]> = [];
    for (const t of tiered.tiers as Array<{ start?: unknown; price?: unknown } | null>) {
      const price = genaiPriceText(t?.price);
      if (price === undefined || !Number.isSafeInteger(t?.start)) return "unreadable";
      above.push([t?.start as number, price]);
    }
    return { base, above };
  }
  const text = genaiPriceText(value);
  return text === undefined ? "unreadable" : { base: text };
}

interface Converted {
  table: Record<string, { perMillion: string } | { perUnit: string } | { as: string }>;
  tiers?: PriceSnapshot["tiers"];
  allZero: boolean;
}

function pricesOf(modelId: string, prices: GenaiModelPrice, ctx: ModelContext): Converted | undefined {
  const table: Converted["table"] = {};
  const tiered = new Map<string, { base: string; tiers: Array<{ start: number; price: string }> }>();
  let allZero = true;
  const zero = (text: string) => new LatchDecimal(text).isZero();
  for (const [unit, value] of Object.entries(prices ?? {})) {
    if (value === undefined) continue;
    const target = UNITS[unit];
    if (target === undefined) {
      ctx.skip(modelId, unit, "unsupportedUnit");
      continue;
    }
    const [meter, per] = target;
    if (typeof value === "object" && value !== null) {
      if (per !== "million") {
        ctx.skip(modelId, unit, "tierInvalid");
        return undefined;
      }
      const base = genaiPriceText(value.base);
      const tiers = Array.isArray(value.tiers)
        ? value.tiers.map((t) => ({ start: t?.start, price: genaiPriceText(t?.price) }))
        : [];
      const startsOk =
        tiers.length > 0 &&
        tiers.every(
          (t, i) =>
            Number.isSafeInteger(t.start) &&
            (t.start as number) > 0 &&
            (i === 0 || (t.start as number) > (tiers[i - 1]?.start as number)),
        );
      if (base === undefined || tiers.some((t) => t.price === undefined)) {
        ctx.skip(modelId, unit, "badPrice");
        return undefined;
      }
      if (!startsOk) {
        ctx.skip(modelId, unit, "tierInvalid");
        return undefined;
      }
      const read = tiers as Array<{ start: number; price: string }>;
      if (!zero(base) || read.some((t) => !zero(t.price))) allZero = false;
      tiered.set(meter, { base, tiers: read });
      continue;
    }
    const text = genaiPriceText(value, per);
    if (text === undefined) {
      ctx.skip(modelId, unit, "badPrice");
      continue; // the meter stays unpriced: a call using it is reported, never billed at $0
    }
    if (!zero(text)) allZero = false;
    table[meter] = per === "million" ? { perMillion: text } : { perUnit: text };
  }
  // Compared with the prices as read (before any removal), so every conflicting unit is reported.
  const conflicting = new Set<string>();
  for (const { unit, meter, providers } of ABSORBED) {
    const value = prices?.[unit];
    if (value === undefined || (providers !== undefined && !providers.includes(ctx.providerId))) continue;
    const own = table[meter];
    if (own === undefined && !tiered.has(meter)) continue; // the meter is unpriced already
    const text = genaiPriceText(value);
    const same =
      own !== undefined &&
      "perMillion" in own &&
      text !== undefined &&
      new LatchDecimal(text).eq(new LatchDecimal(own.perMillion));
    if (same) continue;
    conflicting.add(meter);
    ctx.skip(modelId, unit, "conflictingPrice", meter);
  }
  for (const meter of conflicting) {
    delete table[meter];
    tiered.delete(meter);
  }
  if (Object.keys(table).length === 0 && tiered.size === 0) {
    ctx.skip(modelId, "prices", "noPrice");
    return undefined;
  }
  if (table.reasoning_tokens === undefined && !tiered.has("reasoning_tokens")) {
    if (table.output_tokens !== undefined || tiered.has("output_tokens"))
      table.reasoning_tokens = { as: "output_tokens" };
  }
  // genai-prices prices cache_audio_read_tokens at cache_read_mtok when the model has no
  // cache_audio_read_mtok (ModelPrice.calc_price: "priced as cache read"): gemini-2.5-pro and the
  // other models that price audio like text (no input_audio_mtok, or the input_mtok price at every
  // tier), whose cached audio Google bills at the cached text rate. Not when the unit is there but
  // unreadable, nor when the model prices audio input apart (its cached-audio price is then
  // missing, not the cached text one): the meter stays unpriced. The same rule as the LiteLLM
  // importer's (`cachedAudioAsCachedText`, @latch/core/adapter).
  const text = scheduleOf(prices?.input_mtok);
  if (
    cachedAudioAsCachedText({
      cachedAudioPriced: prices?.cache_audio_read_mtok !== undefined,
      cachedTextPriced: table.cached_input_tokens !== undefined || tiered.has("cached_input_tokens"),
      audioInput: scheduleOf(prices?.input_audio_mtok),
      textInput: text === "unreadable" ? undefined : text,
    })
  ) {
    table.cached_audio_input_tokens = { as: "cached_input_tokens" };
  }
  if (tiered.size === 0) return { table, allZero };
  // One volume tier over the union of every tiered meter's starts: in (t_k, t_k+1] a meter costs
  // its last tier with start ≤ t_k (genai-prices: the last tier whose start the input exceeds).
  const bounds = [...new Set([...tiered.values()].flatMap((t) => t.tiers.map((x) => x.start)))].sort(
    (a, b) => a - b,
  );
  const priceAt = (
    t: { base: string; tiers: Array<{ start: number; price: string }> },
    above: number | undefined,
  ) => {
    let price = t.base;
    if (above !== undefined) for (const x of t.tiers) if (x.start <= above) price = x.price;
    return price;
  };
  const boundaries = [undefined, ...bounds].map((above, i) => {
    const row: Record<string, { perMillion: string }> = {};
    for (const [meter, t] of tiered) row[meter] = { perMillion: priceAt(t, above) };
    return { upTo: bounds[i] ?? null, prices: row };
  });
  return {
    table,
    tiers: [
      { scope: "request", mode: "volume", baseline: "prompt_tokens", boundaries },
    ] as PriceSnapshot["tiers"],
    allZero,
  };
}

/**
 * genai-prices' first-match rule over a provider's models (`models.find(m => matches(m.match, id))`),
 * indexed: rules made only of `equals` (and `or`) are looked up in a map, the others tried in order.
 */
function firstMatcher(models: readonly GenaiModel[]): (id: string) => GenaiModel | undefined {
  const byEquals = new Map<string, number>();
  const complex: number[] = [];
  const equalsOnly = (m: GenaiMatch, out: string[]): boolean => {
    if ("equals" in m) {
      out.push(m.equals.toLowerCase());
      return true;
    }
    if ("or" in m) return m.or.every((x) => equalsOnly(x, out));
    return false;
  };
  for (const [i, model] of models.entries()) {
    const values: string[] = [];
    if (model?.match !== undefined && equalsOnly(model.match, values)) {
      for (const v of values) if (!byEquals.has(v)) byEquals.set(v, i);
    } else complex.push(i);
  }
  return (id) => {
    const best = byEquals.get(id.toLowerCase()) ?? Number.POSITIVE_INFINITY;
    for (const i of complex) {
      if (i > best) break;
      if (matches((models[i] as GenaiModel).match, id)) return models[i];
    }
    return Number.isFinite(best) ? models[best] : undefined;
  };
}

/** genai-prices' own match rule (case-insensitive equals/starts_with/ends_with/contains, regex as written). */
export function matches(m: GenaiMatch, id: string): boolean {
  const lower = id.toLowerCase();
  if ("or" in m) return m.or.some((x) => matches(x, id));
  if ("and" in m) return m.and.every((x) => matches(x, id));
  if ("equals" in m) return lower === m.equals.toLowerCase();
  if ("starts_with" in m) return lower.startsWith(m.starts_with.toLowerCase());
  if ("ends_with" in m) return lower.endsWith(m.ends_with.toLowerCase());
  if ("contains" in m) return lower.includes(m.contains.toLowerCase());
  if ("regex" in m) return regexOf(m.regex)?.test(id) ?? false;
  return false;
}

const REGEXES = new Map<string, RegExp | null>();
/** A rule's regex, compiled once (`null`: not a valid pattern, matches nothing). */
function regexOf(source: string): RegExp | null {
  let re = REGEXES.get(source);
  if (re === undefined) {
    try {
      re = new RegExp(source);
    } catch {
      re = null;
    }
    if (REGEXES.size < 10_000) REGEXES.set(source, re);
  }
  return re;
}

/** A `start_date` as an instant: a date alone is UTC midnight (as `new Date("2026-03-13")`). */
function startInstant(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  if (/^\d{4}-\d{2}-\d{2}$/.test(value) && !Number.isNaN(Date.parse(value))) return `${value}T00:00:00Z`;
  const ms = Date.parse(value);
  if (Number.isNaN(ms) || !/^\d{4}-\d{2}-\d{2}T/.test(value)) return undefined;
  return new Date(ms).toISOString().replace(".000Z", "Z");
}

function isoOption(value: unknown, path: string): string | undefined {
  if (value === undefined) return undefined;
  if (
    typeof value !== "string" ||
    !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/.test(value) ||
    Number.isNaN(Date.parse(value))
  ) {
    throw LatchValidationError.at(SUBJECT, path, "expected an ISO 8601 UTC timestamp");
  }
  return value;
}
