import {
  LatchValidationError,
  NoPriceForMeterError,
  NoSnapshotForTierError,
  NoSnapshotInEffectError,
  OverflowError,
} from "../errors/index.js";
import { formatFixed } from "../money/decimal.js";
import { observationFacts, type ParsedFacts } from "../observation/parse.js";
import {
  type BaselineKey,
  type CompiledPrice,
  type CompiledSnapshot,
  type CompiledTier,
  compileSnapshot,
  tierIndexFor,
} from "../pricing/compiled-snapshot.js";
import { compareMeters, type MeterKind } from "../schemas/meters.js";
import type { UsageObservation } from "../schemas/observation.js";
import type { PriceSnapshot } from "../schemas/pricing.js";
import type { ModelMatch, RatedLineItem, RatedUsageRecord, RatingContext } from "../schemas/rating.js";
import { serviceTierOf } from "../schemas/service-tier.js";
import { IsoTimestampSchema, usualTimestamp } from "../schemas/time.js";

/** Prices one observation against one snapshot. Implementations must be pure. */
export interface RatingEngine {
  rate(observation: UsageObservation, snapshot: PriceSnapshot, context: RatingContext): RatedUsageRecord;
}

/** A subtotal in units of 10^-scale: a JS number while provably exact, a bigint past that. */
type Units = number | bigint;

function times(quantity: number, price: CompiledPrice): Units {
  const fast = quantity * price.factorSafe; // NaN when the factor itself is not safe
  if (Number.isSafeInteger(fast)) return fast;
  return BigInt(quantity) * price.factor;
}

function plus(a: Units, b: Units): Units {
  if (typeof a === "number" && typeof b === "number") {
    const sum = a + b;
    if (Number.isSafeInteger(sum)) return sum;
  }
  return BigInt(a) + BigInt(b);
}

/**
 * Where tier lines go: straight into the record's line items, with the running total kept
 * beside them (no intermediate objects on the hot path).
 */
interface LineSink {
  items: RatedLineItem[];
  total: Units;
  scale: number;
}

function emit(sink: LineSink, meter: MeterKind, quantity: number, price: CompiledPrice, tier: number): void {
  const units = times(quantity, price);
  sink.total = plus(sink.total, units);
  sink.items.push({
    meter,
    quantity,
    unitPrice: price.unitPrice,
    per: price.per,
    subtotal: formatFixed(units, sink.scale),
    tier,
  });
}

function contextError(path: string, message: string): LatchValidationError {
  return LatchValidationError.at("RatingContext", path, message);
}

const MATCH_RULES: ReadonlySet<unknown> = new Set<ModelMatch["rule"]>([
  "alias",
  "provider_prefix",
  "dated_suffix",
]);

// Strings are immutable: a ratedAt already checked need not be checked again (contexts repeat in batches).
let lastValidRatedAt: string | undefined;

/**
 * Validates the context (cheaply: it is checked on every call) and returns what it checked: each
 * field is read once, so a context whose getters answer differently on a second read cannot put
 * into the record a value that was not checked.
 */
function checkContext(ctx: RatingContext): CheckedContext {
  if (typeof ctx !== "object" || ctx === null) throw contextError("", "expected an object");
  const ratedAt = ctx.ratedAt;
  // (Before the first valid one, lastValidRatedAt is undefined: a missing ratedAt is not it.)
  if (typeof ratedAt !== "string" || ratedAt !== lastValidRatedAt) {
    // The clock's own form (`toISOString`) is read digit by digit; any other goes to the schema.
    const valid =
      (typeof ratedAt === "string" && usualTimestamp(ratedAt)) ||
      IsoTimestampSchema.safeParse(ratedAt).success;
    if (!valid) {
      throw contextError("ratedAt", "expected an ISO 8601 UTC timestamp such as 2026-01-01T00:00:00Z");
    }
    lastValidRatedAt = ratedAt;
  }
  const version = ctx.version ?? 1;
  if (!Number.isSafeInteger(version) || version < 1) throw contextError("version", "expected an integer ≥ 1");
  const supersedes = ctx.supersedes;
  if (supersedes !== undefined) {
    if (typeof supersedes !== "string" || supersedes.length === 0) {
      throw contextError("supersedes", "expected a ratedRecordId");
    }
    if (version === 1) throw contextError("supersedes", "a first version supersedes nothing");
  }
  const given = ctx.modelMatch;
  let modelMatch: ModelMatch | undefined;
  if (given !== undefined) {
    if (typeof given !== "object" || given === null) throw contextError("modelMatch", "expected an object");
    const rule = given.rule;
    if (!MATCH_RULES.has(rule)) {
      throw contextError("modelMatch.rule", "expected alias, provider_prefix or dated_suffix");
    }
    const id = given.matchedModel;
    if (typeof id !== "string" || id.length === 0 || id.length > 256) {
      throw contextError("modelMatch.matchedModel", "expected a billableModel");
    }
    modelMatch = { rule, matchedModel: id };
  }
  const baseline = ctx.periodBaseline;
  let periodBaseline: Partial<Record<BaselineKey, number>> | undefined;
  if (baseline !== undefined) {
    if (typeof baseline !== "object" || baseline === null)
      throw contextError("periodBaseline", "expected an object");
    periodBaseline = Object.create(null) as Partial<Record<BaselineKey, number>>;
    for (const key in baseline) {
      const value = baseline[key as BaselineKey];
      if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
        throw contextError(`periodBaseline.${key}`, "expected a non-negative integer ≤ 2^53-1");
      }
      periodBaseline[key as BaselineKey] = value;
    }
  }
  return { ratedAt: ratedAt as string, version, supersedes, modelMatch, periodBaseline };
}

/** A {@link RatingContext} as {@link checkContext} read and checked it. */
interface CheckedContext {
  readonly ratedAt: string;
  readonly version: number;
  readonly supersedes: string | undefined;
  readonly modelMatch: ModelMatch | undefined;
  readonly periodBaseline: Readonly<Partial<Record<BaselineKey, number>>> | undefined;
}

function periodBaseline(ctx: CheckedContext, key: BaselineKey, tier: CompiledTier): number {
  const value = ctx.periodBaseline?.[key];
  if (value === undefined) {
    throw contextError(
      `periodBaseline.${key}`,
      `required: tiers.${tier.index} is priced over the billing period`,
    );
  }
  return value;
}

/** Quantity of one meter in an observation (few meters: a linear scan beats a Map). */
function quantityOf(facts: ParsedFacts, meter: MeterKind): number {
  const i = facts.meters.indexOf(meter);
  return i === -1 ? 0 : (facts.quantities[i] as number);
}

/** Lines for one tier configuration, given the observation's quantities. */
function rateTier(tier: CompiledTier, facts: ParsedFacts, ctx: CheckedContext, out: LineSink): void {
  // facts.meters holds only the observation's non-zero meters: scan those, not the baseline list.
  let quantityInBaseline = 0;
  const names = facts.meters;
  for (let i = 0; i < names.length; i++) {
    if (tier.baselineSet.has(names[i] as MeterKind)) quantityInBaseline += facts.quantities[i] as number;
  }
  if (!Number.isSafeInteger(quantityInBaseline)) {
    throw new OverflowError({ path: `meters(${tier.baselineKey})`, reason: "baseline exceeds 2^53-1" });
  }
  const start = tier.scope === "period" ? periodBaseline(ctx, tier.baselineKey, tier) : 0;
  const end = start + quantityInBaseline;
  if (!Number.isSafeInteger(end)) {
    throw new OverflowError({
      path: `periodBaseline.${tier.baselineKey}`,
      reason: "period total exceeds 2^53-1",
    });
  }

  if (tier.mode === "graduated") {
    // The event occupies (start, end] on the baseline; each baseline meter takes its own stretch of it.
    let position = start;
    for (const meter of tier.baselineMeters) {
      const quantity = quantityOf(facts, meter);
      if (quantity === 0) continue;
      const from = position;
      const to = position + quantity;
      position = to;
      if (!tier.meters.has(meter)) continue; // occupies the baseline, priced elsewhere
      let lower = 0;
      for (let i = 0; i < tier.upTo.length; i++) {
        const upper = tier.upTo[i] as number;
        const slice = Math.min(to, upper) - Math.max(from, lower);
        if (slice > 0) emit(out, meter, slice, tier.prices[i]?.get(meter) as CompiledPrice, i);
        if (upper >= to) break;
        lower = upper;
      }
    }
    return;
  }

  const after = tierIndexFor(tier.upTo, end);
  if (tier.scope === "request") {
    const prices = tier.prices[after] as ReadonlyMap<MeterKind, CompiledPrice>;
    for (let i = 0; i < names.length; i++) {
      const meter = names[i] as MeterKind;
      const price = prices.get(meter);
      if (price !== undefined) emit(out, meter, facts.quantities[i] as number, price, after);
    }
    return;
  }
  // Volume over a period: charge the period's volume-priced total after this event minus before it.
  const before = tierIndexFor(tier.upTo, start);
  for (const meter of tier.meters) {
    const quantity = quantityOf(facts, meter);
    if (before === after) {
      if (quantity > 0) emit(out, meter, quantity, tier.prices[after]?.get(meter) as CompiledPrice, after);
      continue;
    }
    // The tier changed: reprice the period's earlier usage of this meter (a reversal line) and charge the new total.
    const earlier = meter === tier.baselineKey ? start : periodBaseline(ctx, meter, tier);
    const total = earlier + quantity;
    if (!Number.isSafeInteger(total)) {
      throw new OverflowError({ path: `periodBaseline.${meter}`, reason: "period total exceeds 2^53-1" });
    }
    if (total > 0) emit(out, meter, total, tier.prices[after]?.get(meter) as CompiledPrice, after);
    if (earlier > 0) emit(out, meter, -earlier, tier.prices[before]?.get(meter) as CompiledPrice, before);
  }
}

/**
 * A tier has work when one of its meters is used, or (volume over a period) when this event
 * moves the period's baseline: crossing a boundary reprices earlier usage of its meters.
 */
function tierApplies(tier: CompiledTier, facts: ParsedFacts): boolean {
  const periodVolume = tier.scope === "period" && tier.mode === "volume";
  for (const m of facts.meters) {
    if (tier.meters.has(m) || (periodVolume && tier.baselineSet.has(m))) return true;
  }
  return false;
}

function byMeterThenTier(a: RatedLineItem, b: RatedLineItem): number {
  return compareMeters(a.meter, b.meter) || (a.tier ?? -1) - (b.tier ?? -1);
}

/** Insertion sort: line items are few and mostly in order already, where it beats Array#sort. */
function sortLineItems(items: RatedLineItem[]): void {
  for (let i = 1; i < items.length; i++) {
    const item = items[i] as RatedLineItem;
    let j = i - 1;
    while (j >= 0 && byMeterThenTier(items[j] as RatedLineItem, item) > 0) {
      items[j + 1] = items[j] as RatedLineItem;
      j--;
    }
    items[j + 1] = item;
  }
}

/**
 * The default rating engine: pure, deterministic and exact.
 *
 * - Same inputs ⇒ the same record, byte for byte (`ratedAt` is injected; line items are
 *   sorted by meter, then tier).
 * - Exact: prices are decimal strings; subtotals are computed in integers at the snapshot's
 *   decimal scale (JS numbers while provably exact, bigint beyond), so no float rounding ever
 *   reaches an amount. Amounts are canonical decimal strings; `total` is the sum of subtotals.
 * - A non-zero meter without a price throws `no_price_for_meter`: never billed as zero.
 * - The snapshot must be in effect at `observation.timing.completedAt`, price the
 *   observation's `model.billableModel` (or the model it was matched to: `context.modelMatch`,
 *   from the pricing source's resolution, stored on the record) and price its service tier
 *   (`model.tier`, absent = standard) as its own tier or a declared `fallbackTiers` entry,
 *   else `no_snapshot_for_tier` — the pricing source already refuses such a snapshot; this is
 *   the second line of defence.
 * - The record is a fresh object the caller may change; `record()` freezes the ones it stores
 *   (see `rating/sealed-record.ts`), so the in-memory store need not validate or copy them.
 *
 * @example
 * const engine = new DefaultRatingEngine();
 * const record = engine.rate(observation, snapshot, { ratedAt: new Date().toISOString() });
 * console.log(record.total, record.currency); // "0.0105" "USD"
 */
export class DefaultRatingEngine implements RatingEngine {
  rate(observation: UsageObservation, snapshot: PriceSnapshot, context: RatingContext): RatedUsageRecord {
    const facts = observationFacts(observation);
    const obs = facts.observation;
    const compiled: CompiledSnapshot = compileSnapshot(snapshot);
    const checked = checkContext(context);
    const version = checked.version;
    const { snapshotId, currency, model } = compiled.snapshot;

    const match = checked.modelMatch;
    if (obs.model.billableModel !== model.billableModel) {
      if (match?.matchedModel !== model.billableModel) {
        throw LatchValidationError.at(
          "UsageObservation",
          "model.billableModel",
          `snapshot ${snapshotId} prices a different model${match === undefined ? "" : " than context.modelMatch names"}`,
        );
      }
    } else if (match !== undefined) {
      throw contextError(
        "modelMatch",
        "the snapshot names the observation's model exactly: there is no match to record",
      );
    }
    const tier = serviceTierOf(obs.model);
    if (tier !== compiled.serviceTier && !compiled.fallbackServiceTiers.has(tier)) {
      throw new NoSnapshotForTierError({ billableModel: obs.model.billableModel, tier, snapshotId });
    }
    const at = facts.completedAtMs;
    if (at < compiled.effectiveFromMs || at >= compiled.effectiveUntilMs) {
      throw new NoSnapshotInEffectError({
        billableModel: obs.model.billableModel,
        at: obs.timing.completedAt,
      });
    }

    const scale = compiled.scale;
    const names = facts.meters;
    const quantities = facts.quantities;
    const lineItems: RatedLineItem[] = [];
    let total: Units = 0;
    // Flat meters first, straight into line items: facts.meters is in canonical order, so
    // they come out sorted.
    for (let i = 0; i < names.length; i++) {
      const meter = names[i] as MeterKind;
      if (compiled.tierOf.has(meter)) continue;
      const price = compiled.flat.get(meter);
      if (price === undefined) throw new NoPriceForMeterError({ meter, snapshotId });
      const quantity = quantities[i] as number;
      const units = times(quantity, price);
      total = plus(total, units);
      lineItems.push({
        meter,
        quantity,
        unitPrice: price.unitPrice,
        per: price.per,
        subtotal: formatFixed(units, scale),
      });
    }
    if (compiled.tiers.length > 0) {
      // Baselines count every meter of the observation, tiered or not.
      const sink: LineSink = { items: lineItems, total, scale };
      for (const tier of compiled.tiers) if (tierApplies(tier, facts)) rateTier(tier, facts, checked, sink);
      if (lineItems.length > 1) sortLineItems(lineItems);
      total = sink.total;
    }

    // Literal shapes rather than a spread: spreading into a record is far slower on V8.
    const ratedRecordId = `${obs.eventId}:v${version}`;
    const totalText = formatFixed(total, scale);
    if (match !== undefined) {
      const record: RatedUsageRecord = {
        ratedRecordId,
        eventId: obs.eventId,
        version,
        snapshotId,
        modelMatch: { rule: match.rule, matchedModel: match.matchedModel },
        currency,
        lineItems,
        total: totalText,
        ratedAt: checked.ratedAt,
        observation: obs,
      };
      if (version > 1) record.supersedes = checked.supersedes ?? `${obs.eventId}:v${version - 1}`;
      return record;
    }
    if (version === 1) {
      return {
        ratedRecordId,
        eventId: obs.eventId,
        version,
        snapshotId,
        currency,
        lineItems,
        total: totalText,
        ratedAt: checked.ratedAt,
        observation: obs,
      };
    }
    return {
      ratedRecordId,
      eventId: obs.eventId,
      version,
      supersedes: checked.supersedes ?? `${obs.eventId}:v${version - 1}`,
      snapshotId,
      currency,
      lineItems,
      total: totalText,
      ratedAt: checked.ratedAt,
      observation: obs,
    };
  }
}
