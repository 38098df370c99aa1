import { InvalidTierConfigError, LatchValidationError } from "../errors/index.js";
import { type Fixed, formatFixed, parseFixed, pow10 } from "../money/decimal.js";
import { type MeterKind, PROMPT_METERS, TOKEN_METERS } from "../schemas/meters.js";
import { parseWith } from "../schemas/parse.js";
import { type Price, type PriceSnapshot, PriceSnapshotSchema, type PriceTable } from "../schemas/pricing.js";
import { canonicalServiceTier, serviceTierOf } from "../schemas/service-tier.js";

/**
 * A price ready for exact integer arithmetic: `quantity × factor` is the subtotal in units of
 * 10^-scale (the snapshot's common scale). `factorSafe` is the same factor as a JS number
 * when it is a safe integer, for the fast path; every result is checked and falls back to
 * bigint when a product could leave the safe range, so both paths give identical results.
 */
export interface CompiledPrice {
  /** Canonical decimal string of the price as written (per million or per unit). */
  readonly unitPrice: string;
  readonly per: "million" | "unit";
  readonly factor: bigint;
  readonly factorSafe: number;
}

export type BaselineKey = MeterKind | "prompt_tokens" | "total_tokens";

export interface CompiledTier {
  readonly index: number;
  readonly scope: "request" | "period";
  readonly mode: "graduated" | "volume";
  readonly baselineKey: BaselineKey;
  /** Meters whose quantities make up the baseline, in the order they occupy it. */
  readonly baselineMeters: readonly MeterKind[];
  /** The same meters as a set, for membership tests on the hot path. */
  readonly baselineSet: ReadonlySet<MeterKind>;
  /** Meters this tier prices. */
  readonly meters: ReadonlySet<MeterKind>;
  /** Inclusive upper bounds; the last is +Infinity. */
  readonly upTo: readonly number[];
  /** Per boundary: meter → price. Every boundary prices every meter of the tier. */
  readonly prices: ReadonlyArray<ReadonlyMap<MeterKind, CompiledPrice>>;
}

export interface CompiledSnapshot {
  readonly snapshot: PriceSnapshot;
  /** Decimal places of every internal amount for this snapshot. */
  readonly scale: number;
  readonly effectiveFromMs: number;
  readonly effectiveUntilMs: number;
  /** Untiered meters → price (aliases resolved). */
  readonly flat: ReadonlyMap<MeterKind, CompiledPrice>;
  /** Tiered meters → their tier. */
  readonly tierOf: ReadonlyMap<MeterKind, CompiledTier>;
  readonly tiers: readonly CompiledTier[];
  /** The service tier the snapshot prices (canonical; absent = `standard`). */
  readonly serviceTier: string;
  /** Service tiers it also prices through `fallbackTiers` (canonical). */
  readonly fallbackServiceTiers: ReadonlySet<string>;
}

const cache = new WeakMap<object, CompiledSnapshot>();
const MAX_ALIAS_DEPTH = 8;

interface RawPrice {
  value: Fixed;
  text: string;
  per: "million" | "unit";
}

/**
 * Validates a snapshot and prepares it for rating. Cached per snapshot object: treat
 * snapshots as immutable values (a changed price is a new snapshot with a new id).
 */
export function compileSnapshot(input: PriceSnapshot): CompiledSnapshot {
  const hit = typeof input === "object" && input !== null ? cache.get(input) : undefined;
  if (hit) return hit;
  const snapshot = parseWith(PriceSnapshotSchema, input, "PriceSnapshot");
  const id = snapshot.snapshotId;
  const tierError = (path: string, reason: string) =>
    new InvalidTierConfigError({ snapshotId: id, path, reason });

  // Resolve `as` aliases inside one table, falling back to `fallback` for the target.
  const resolveIn = (
    table: PriceTable,
    meter: MeterKind,
    path: string,
    fallback: (m: MeterKind) => RawPrice | undefined,
    isTiered: (m: MeterKind) => boolean = () => false,
  ): RawPrice | undefined => {
    let price: Price | undefined = table[meter];
    let current = meter;
    for (let depth = 0; price !== undefined && "as" in price; depth++) {
      if (depth >= MAX_ALIAS_DEPTH || price.as === meter) {
        throw LatchValidationError.at("PriceSnapshot", `${path}.${meter}.as`, "alias cycle");
      }
      current = price.as;
      if (isTiered(current)) return fallback(current);
      const next: Price | undefined = table[current];
      if (next === undefined) return fallback(current);
      price = next;
    }
    if (price === undefined) return undefined;
    return "perMillion" in price
      ? { value: parseFixed(price.perMillion), text: price.perMillion, per: "million" }
      : { value: parseFixed(price.perUnit), text: price.perUnit, per: "unit" };
  };

  // 1. Tier membership and shape.
  const tierConfigs = snapshot.tiers ?? [];
  const memberOf = new Map<MeterKind, number>();
  for (const [t, config] of tierConfigs.entries()) {
    const bounds = config.boundaries;
    for (const [b, boundary] of bounds.entries()) {
      const last = b === bounds.length - 1;
      if (last && boundary.upTo !== null) {
        throw tierError(`tiers.${t}.boundaries.${b}.upTo`, "the last boundary must be open (upTo: null)");
      }
      if (!last && boundary.upTo === null) {
        throw tierError(`tiers.${t}.boundaries.${b}.upTo`, "only the last boundary may be open");
      }
      const prev = b > 0 ? bounds[b - 1]?.upTo : 0;
      if (!last && prev !== null && prev !== undefined && (boundary.upTo as number) <= prev) {
        throw tierError(`tiers.${t}.boundaries.${b}.upTo`, "boundaries must strictly increase");
      }
      for (const meter of Object.keys(boundary.prices) as MeterKind[]) {
        const owner = memberOf.get(meter);
        if (owner !== undefined && owner !== t) {
          throw tierError(
            `tiers.${t}.boundaries.${b}.prices.${meter}`,
            `meter is already tiered by tiers.${owner}`,
          );
        }
        memberOf.set(meter, t);
      }
    }
  }

  // 2. Flat prices (aliases resolved against the base table).
  const raw = new Map<MeterKind, RawPrice>();
  const aliasToTier = new Map<MeterKind, MeterKind>();
  const basePrices = snapshot.prices;
  for (const meter of Object.keys(basePrices) as MeterKind[]) {
    if (memberOf.has(meter)) continue; // the tier prices it
    const resolved = resolveIn(
      basePrices,
      meter,
      "prices",
      (target) => {
        if (memberOf.has(target)) {
          aliasToTier.set(meter, target);
          return undefined;
        }
        throw LatchValidationError.at(
          "PriceSnapshot",
          `prices.${meter}.as`,
          `alias target ${target} has no price`,
        );
      },
      (m) => memberOf.has(m),
    );
    if (resolved) raw.set(meter, resolved);
  }
  // An alias to a tiered meter joins that tier at the target's prices.
  for (const [meter, target] of aliasToTier) memberOf.set(meter, memberOf.get(target) as number);

  // 3. Tier prices, boundary by boundary.
  const tierRaw: Array<Array<Map<MeterKind, RawPrice>>> = tierConfigs.map((config, t) => {
    const members = [...memberOf].filter(([, owner]) => owner === t).map(([m]) => m);
    return config.boundaries.map((boundary, b) => {
      const path = `tiers.${t}.boundaries.${b}.prices`;
      const out = new Map<MeterKind, RawPrice>();
      for (const meter of members) {
        const target = aliasToTier.get(meter) ?? meter;
        const resolved = resolveIn(boundary.prices, target, path, (m) => raw.get(m));
        if (!resolved)
          throw tierError(`${path}.${target}`, "every boundary must price every meter of its tier");
        out.set(meter, resolved);
      }
      return out;
    });
  });

  // 4. One scale for the whole snapshot: every subtotal is an integer number of 10^-scale.
  let scale = 0;
  const consider = (p: RawPrice) => {
    scale = Math.max(scale, p.value.scale + (p.per === "million" ? 6 : 0));
  };
  for (const p of raw.values()) consider(p);
  for (const boundaries of tierRaw)
    for (const table of boundaries) for (const p of table.values()) consider(p);
  const compilePrice = (p: RawPrice): CompiledPrice => {
    const shift = scale - p.value.scale - (p.per === "million" ? 6 : 0);
    const factor = p.value.units * pow10(shift);
    const asNumber = Number(factor);
    return {
      unitPrice: formatFixed(p.value.units, p.value.scale),
      per: p.per,
      factor,
      factorSafe: Number.isSafeInteger(asNumber) ? asNumber : Number.NaN,
    };
  };

  const flat = new Map<MeterKind, CompiledPrice>();
  for (const [m, p] of raw) flat.set(m, compilePrice(p));

  const tierOf = new Map<MeterKind, CompiledTier>();
  const tiers: CompiledTier[] = tierConfigs.map((config, t) => {
    const members = new Set([...memberOf].filter(([, owner]) => owner === t).map(([m]) => m));
    const baselineKey: BaselineKey =
      typeof config.baseline === "string" ? config.baseline : config.baseline.meter;
    const baselineMeters =
      baselineKey === "prompt_tokens"
        ? PROMPT_METERS
        : baselineKey === "total_tokens"
          ? TOKEN_METERS
          : [baselineKey];
    if (config.mode === "graduated") {
      for (const m of members) {
        if (!baselineMeters.includes(m)) {
          throw tierError(
            `tiers.${t}.baseline`,
            `graduated tiers can only price meters that make up the baseline; ${m} does not`,
          );
        }
      }
    }
    const tier: CompiledTier = {
      index: t,
      scope: config.scope,
      mode: config.mode,
      baselineKey,
      baselineMeters,
      baselineSet: new Set(baselineMeters),
      meters: members,
      upTo: config.boundaries.map((b) => (b.upTo === null ? Number.POSITIVE_INFINITY : b.upTo)),
      prices: (tierRaw[t] ?? []).map((table) => {
        const out = new Map<MeterKind, CompiledPrice>();
        for (const [m, p] of table) out.set(m, compilePrice(p));
        return out;
      }),
    };
    for (const m of members) tierOf.set(m, tier);
    return tier;
  });

  const compiled: CompiledSnapshot = {
    snapshot,
    scale,
    effectiveFromMs: Date.parse(snapshot.effectiveFrom),
    effectiveUntilMs:
      snapshot.effectiveUntil === undefined ? Number.POSITIVE_INFINITY : Date.parse(snapshot.effectiveUntil),
    flat,
    tierOf,
    tiers,
    serviceTier: serviceTierOf(snapshot.model),
    fallbackServiceTiers: new Set((snapshot.fallbackTiers ?? []).map(canonicalServiceTier)),
  };
  if (typeof input === "object" && input !== null) cache.set(input, compiled);
  return compiled;
}

/** Index of the tier a baseline quantity lands in (`upTo` inclusive: 200,000 is in the ≤ 200k tier). */
export function tierIndexFor(upTo: readonly number[], quantity: number): number {
  for (let i = 0; i < upTo.length; i++) if (quantity <= (upTo[i] as number)) return i;
  return upTo.length - 1;
}
