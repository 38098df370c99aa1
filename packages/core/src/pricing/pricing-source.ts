import {
  AmbiguousModelError,
  LatchValidationError,
  NoSnapshotForTierError,
  NoSnapshotInEffectError,
} from "../errors/index.js";
import { parsedFacts } from "../observation/parse.js";
import { type ModelRef, ModelRefSchema, ProviderRefSchema } from "../schemas/model.js";
import type { UsageObservation } from "../schemas/observation.js";
import { parseWith } from "../schemas/parse.js";
import { type PriceSnapshot, PriceSnapshotSchema } from "../schemas/pricing.js";
import { canonicalServiceTier, serviceTierOf } from "../schemas/service-tier.js";
import { IsoTimestampSchema, isoTimestampMs, usualTimestamp } from "../schemas/time.js";
import { type ModelCatalog, matchModel } from "./model-match.js";
import type { PriceRequest, PriceResolution } from "./resolution.js";

/** Where the rating path gets the snapshot in effect for a model at a time. */
export interface PricingSource {
  /**
   * The snapshot that prices `model` (its service tier included) at `at` (ISO UTC), or
   * undefined when none does.
   */
  resolve(model: ModelRef, at: string, signal?: AbortSignal): Promise<PriceSnapshot | undefined>;
  /**
   * Optional: the full resolution — the snapshot with the model-matching rule that found it,
   * or why nothing prices the call. Sources without it are resolved through `resolve` (see
   * `resolvePriceFrom`), which cannot match by provider.
   */
  resolvePrice?(request: PriceRequest, signal?: AbortSignal): Promise<PriceResolution>;
}

interface Entry {
  snapshot: PriceSnapshot;
  index: number;
  from: number;
  until: number;
  region: string | undefined;
  /** The service tier the snapshot prices (canonical). */
  tier: string;
  /** Tiers it also prices when no snapshot names them (canonical). */
  fallback: ReadonlySet<string>;
}

/** Snapshots of one model variant: same billableModel, region and service tier. */
const variantKey = (m: string, region: string | undefined, tier: string) =>
  JSON.stringify([m, region ?? null, tier]);

const overlaps = (a: Entry, b: Entry) => a.from < b.until && b.from < a.until;

// Set by the class's static block (which alone can check its private brand); see inlinePricingSource.
let inlineSource: (source: unknown) => InMemoryPricingSource | undefined;
let resolveChecked: (
  source: InMemoryPricingSource,
  ref: ModelRef,
  time: number,
  providerId: string | undefined,
) => PriceResolution;

/**
 * An in-memory {@link PricingSource} over a fixed list of snapshots.
 *
 * - Snapshots are effective on half-open intervals `[effectiveFrom, effectiveUntil)`.
 * - Model matching (exact id, declared `aliases`, provider/region prefixes, dated suffixes)
 *   follows `pricing/model-match.ts` over the snapshots in effect at the call's time; the
 *   rule is reported by {@link resolvePrice}. Ambiguity is `unpriced`, never a guess.
 * - Service tiers: a call in tier T (`model.tier`, absent = `standard`) is priced only by a
 *   snapshot whose `model.tier` is T (absent = `standard`), or, when the model has none for T
 *   then, by one that lists T in `fallbackTiers`. Otherwise it is `no_snapshot_for_tier`.
 * - Regions: a snapshot without `region` applies to every region of its model; one that names
 *   the call's region is preferred (after the tier: an own-tier snapshot beats a fallback).
 *
 * Rejected at load (nothing added): invalid snapshots, duplicate ids, two snapshots of one
 * variant (billableModel, region, service tier) with overlapping intervals, and two of one
 * billableModel and region declaring the same fallback tier over overlapping intervals.
 * Lookups go through maps keyed by model id and alias, so resolving stays O(snapshots of the
 * candidate models), whatever the sheet's size.
 *
 * @example
 * const pricing = new InMemoryPricingSource([gpt4o, gpt4oPriority]);
 * const r = await pricing.resolvePrice({
 *   model: { billableModel: "gpt-4o-2024-08-06", tier: "priority" },
 *   at: "2026-02-01T00:00:00Z",
 *   providerId: "openai",
 * });
 * // { status: "priced", snapshot: gpt4oPriority, match: { rule: "dated_suffix", matchedModel: "gpt-4o" }, … }
 */
export class InMemoryPricingSource implements PricingSource {
  readonly #byModel = new Map<string, Entry[]>();
  readonly #byAlias = new Map<string, Entry[]>();
  readonly #ids = new Map<string, number>();
  readonly #variants = new Map<string, Entry[]>();
  readonly #fallbacks = new Map<string, Entry[]>();
  readonly #catalog = new SheetAt(this.#byModel, this.#byAlias);
  #count = 0;

  constructor(snapshots: Iterable<PriceSnapshot> = []) {
    for (const snapshot of snapshots) this.#insert(snapshot, "snapshots");
  }

  /**
   * Adds a snapshot (a new price sheet, a model priced for the first time), with the same
   * checks as the constructor: a duplicate id or an interval overlapping the same variant's
   * snapshots is rejected and nothing is added.
   */
  add(snapshot: PriceSnapshot): void {
    this.#insert(snapshot, "snapshot");
  }

  #insert(input: PriceSnapshot, where: "snapshots" | "snapshot"): void {
    const index = this.#count;
    const at = where === "snapshots" ? `snapshots.${index}` : "snapshot";
    const snapshot = parseWith(PriceSnapshotSchema, input, "PriceSnapshot", at);
    const seen = this.#ids.get(snapshot.snapshotId);
    if (seen !== undefined) {
      throw LatchValidationError.at("pricing", `${at}.snapshotId`, `duplicates snapshots.${seen}`);
    }
    const { billableModel, region } = snapshot.model;
    const entry: Entry = {
      snapshot,
      index,
      from: Date.parse(snapshot.effectiveFrom),
      until:
        snapshot.effectiveUntil === undefined
          ? Number.POSITIVE_INFINITY
          : Date.parse(snapshot.effectiveUntil),
      region,
      tier: serviceTierOf(snapshot.model),
      fallback: new Set((snapshot.fallbackTiers ?? []).map(canonicalServiceTier)),
    };
    const key = variantKey(billableModel, region, entry.tier);
    for (const other of this.#variants.get(key) ?? []) {
      if (overlaps(entry, other)) {
        throw LatchValidationError.at(
          "pricing",
          `${at}.effectiveFrom`,
          `interval overlaps snapshots.${other.index} (${other.snapshot.snapshotId}) for the same model`,
        );
      }
    }
    // Two fallbacks for one tier at once would leave the choice to load order: refuse it.
    const fallbackKeys = [...entry.fallback].map((tier) => variantKey(billableModel, region, tier));
    for (const [i, fallbackKey] of fallbackKeys.entries()) {
      for (const other of this.#fallbacks.get(fallbackKey) ?? []) {
        if (overlaps(entry, other)) {
          throw LatchValidationError.at(
            "pricing",
            `${at}.fallbackTiers.${i}`,
            `snapshots.${other.index} (${other.snapshot.snapshotId}) already falls back to this tier over an overlapping interval`,
          );
        }
      }
    }
    this.#ids.set(snapshot.snapshotId, index);
    push(this.#variants, key, entry);
    for (const fallbackKey of fallbackKeys) push(this.#fallbacks, fallbackKey, entry);
    push(this.#byModel, billableModel, entry);
    for (const alias of snapshot.aliases ?? []) push(this.#byAlias, alias, entry);
    this.#count++;
  }

  async resolve(model: ModelRef, at: string, signal?: AbortSignal): Promise<PriceSnapshot | undefined> {
    signal?.throwIfAborted();
    return this.resolveSync(model, at);
  }

  /** Synchronous {@link resolve}, for callers already on a hot path. */
  resolveSync(model: ModelRef, at: string): PriceSnapshot | undefined {
    const resolution = this.resolvePriceSync({ model, at });
    return resolution.status === "priced" ? resolution.snapshot : undefined;
  }

  async resolvePrice(request: PriceRequest, signal?: AbortSignal): Promise<PriceResolution> {
    signal?.throwIfAborted();
    return this.resolvePriceSync(request);
  }

  /**
   * Synchronous {@link resolvePrice}: the snapshot pricing the call with the matching rule, or
   * the reason nothing does (`no_snapshot`, `no_snapshot_for_tier`, `ambiguous_model`).
   */
  resolvePriceSync(request: PriceRequest): PriceResolution {
    const { ref, time, providerId } = checkRequest(request);
    return this.#resolve(ref, time, providerId);
  }

  /** {@link resolvePriceSync} of a request already checked: `time` is `Date.parse(at)`. */
  #resolve(ref: ModelRef, time: number, providerId: string | undefined): PriceResolution {
    // One catalog per source, aimed at this call (no closures per call: resolving is on the record path).
    const catalog = this.#catalog;
    catalog.time = time;
    catalog.region = ref.region;
    const found = matchModel(ref.billableModel, providerId, catalog);
    if (found.kind === "none") return { status: "unpriced", reason: "no_snapshot" };
    if (found.kind === "ambiguous") {
      return {
        status: "unpriced",
        reason: "ambiguous_model",
        rule: found.rule,
        candidates: found.candidates,
      };
    }
    const match = { rule: found.rule, matchedModel: found.matchedModel };
    const tier = serviceTierOf(ref);
    // One pass: the tier's own snapshot beats a fallback; within each, the call's region beats none.
    let own: Entry | undefined;
    let fallback: Entry | undefined;
    const entries = this.#byModel.get(found.matchedModel) ?? [];
    for (const e of entries) {
      if (!catalog.applies(e)) continue;
      if (e.tier === tier) {
        if (own === undefined || e.region !== undefined) own = e;
      } else if (e.fallback.has(tier) && (fallback === undefined || e.region !== undefined)) {
        fallback = e;
      }
    }
    if (own !== undefined)
      return { status: "priced", snapshot: own.snapshot, match, tier, tierFallback: false };
    if (fallback !== undefined) {
      return { status: "priced", snapshot: fallback.snapshot, match, tier, tierFallback: true };
    }
    const priced = new Set<string>();
    for (const e of entries) {
      if (!catalog.applies(e)) continue;
      priced.add(e.tier);
      for (const t of e.fallback) priced.add(t);
    }
    return {
      status: "unpriced",
      reason: "no_snapshot_for_tier",
      match,
      tier,
      pricedTiers: [...priced].sort(),
    };
  }

  /**
   * Like {@link resolveSync}, but throws instead of returning undefined:
   * `no_snapshot_in_effect`, `no_snapshot_for_tier` or `ambiguous_model`.
   */
  require(model: ModelRef, at: string): PriceSnapshot {
    const resolution = this.resolvePriceSync({ model, at });
    if (resolution.status === "priced") return resolution.snapshot;
    const billableModel = model.billableModel;
    switch (resolution.reason) {
      case "no_snapshot":
        throw new NoSnapshotInEffectError({ billableModel, at });
      case "no_snapshot_for_tier":
        throw new NoSnapshotForTierError({ billableModel, tier: resolution.tier });
      case "ambiguous_model":
        throw new AmbiguousModelError({
          billableModel,
          rule: resolution.rule,
          candidates: resolution.candidates,
        });
    }
  }

  static {
    const { resolvePrice, resolvePriceSync } = InMemoryPricingSource.prototype;
    inlineSource = (source) =>
      typeof source === "object" &&
      source !== null &&
      #catalog in source &&
      source.resolvePrice === resolvePrice &&
      source.resolvePriceSync === resolvePriceSync
        ? source
        : undefined;
    resolveChecked = (source, ref, time, providerId) => source.#resolve(ref, time, providerId);
  }
}

/**
 * `source` itself when it is an `InMemoryPricingSource` (not a Proxy of one) whose
 * `resolvePrice` and `resolvePriceSync` are the class's own, so that
 * `source.resolvePriceSync(request)` answers exactly what `resolvePrice` would, without its
 * promise; `undefined` otherwise. For the facade's inline
 * record path; not exported from the package.
 */
export function inlinePricingSource(source: unknown): InMemoryPricingSource | undefined {
  return inlineSource(source);
}

/**
 * `source.resolvePriceSync({ model, at: timing.completedAt, providerId })` for an observation,
 * without checking the request again when `obs` came out of `parseObservation` (its model and
 * providerId passed the same schemas, and its completion time is known in epoch ms): the same
 * answer. Any other value is checked as `resolvePriceSync` checks it. `source` must be one
 * {@link inlinePricingSource} returned. For the facade's inline record path; not exported
 * from the package.
 */
export function resolveObservationInline(
  source: InMemoryPricingSource,
  obs: UsageObservation,
): PriceResolution {
  const facts = parsedFacts(obs);
  if (facts === undefined) {
    return source.resolvePriceSync({
      model: obs.model,
      at: obs.timing.completedAt,
      providerId: obs.provider?.providerId,
    });
  }
  const parsed = facts.observation;
  return resolveChecked(source, parsed.model, facts.completedAtMs, parsed.provider?.providerId);
}

/** The sheet as the matcher sees it for one call: snapshots in effect at `time` that apply in `region`. */
class SheetAt implements ModelCatalog {
  time = 0;
  region: string | undefined;
  readonly #byModel: ReadonlyMap<string, readonly Entry[]>;
  readonly #byAlias: ReadonlyMap<string, readonly Entry[]>;

  constructor(
    byModel: ReadonlyMap<string, readonly Entry[]>,
    byAlias: ReadonlyMap<string, readonly Entry[]>,
  ) {
    this.#byModel = byModel;
    this.#byAlias = byAlias;
  }

  applies(e: Entry): boolean {
    return this.time >= e.from && this.time < e.until && (e.region === undefined || e.region === this.region);
  }

  hasModel(id: string): boolean {
    const entries = this.#byModel.get(id);
    if (entries === undefined) return false;
    for (const e of entries) if (this.applies(e)) return true;
    return false;
  }

  modelsAliasedAs(alias: string): readonly string[] {
    const entries = this.#byAlias.get(alias);
    if (entries === undefined) return [];
    const models = new Set<string>();
    for (const e of entries) if (this.applies(e)) models.add(e.snapshot.model.billableModel);
    return [...models];
  }
}

const isName = (v: unknown): v is string => typeof v === "string" && v.length >= 1 && v.length <= 256;
const MODEL_REF_KEYS: ReadonlySet<string> = new Set(["billableModel", "vendor", "region", "tier"]);

/**
 * A model reference that needs no parsing (the common case, checked without zod on the hot
 * path), as a copy of the fields it checked, each read once: a getter cannot answer one value
 * to the check and another to the lookup. `undefined` when zod must decide.
 */
function plainModelRef(m: unknown): ModelRef | undefined {
  if (typeof m !== "object" || m === null) return undefined;
  const given = m as Record<string, unknown>;
  for (const key in given) if (!MODEL_REF_KEYS.has(key)) return undefined;
  const { billableModel, vendor, region, tier } = given;
  if (
    !isName(billableModel) ||
    (vendor !== undefined && !isName(vendor)) ||
    (region !== undefined && !isName(region)) ||
    (tier !== undefined && !isName(tier))
  ) {
    return undefined;
  }
  const ref: ModelRef = { billableModel };
  if (vendor !== undefined) ref.vendor = vendor;
  if (region !== undefined) ref.region = region;
  if (tier !== undefined) ref.tier = tier;
  return ref;
}

// Strings are immutable: a time already checked need not be checked again (requests repeat in batches).
let lastValidAt: string | undefined;
let lastValidTime = 0;

/** Validates a request (zod only when the quick checks fail, for its messages). */
function checkRequest(request: PriceRequest): {
  ref: ModelRef;
  time: number;
  providerId: string | undefined;
} {
  if (typeof request !== "object" || request === null) {
    throw LatchValidationError.at("PriceRequest", "", "expected { model, at, providerId? }");
  }
  // Each field read once: a getter cannot answer one value to the check and another to the lookup.
  const model = request.model;
  const ref = plainModelRef(model) ?? parseWith(ModelRefSchema, model, "PriceRequest", "model");
  const at = request.at;
  let time = lastValidTime;
  // (Before the first valid one, lastValidAt is undefined: a missing `at` is not it.)
  if (typeof at !== "string" || at !== lastValidAt) {
    const checked =
      typeof at === "string" && usualTimestamp(at)
        ? at
        : parseWith(IsoTimestampSchema, at, "PriceRequest", "at");
    time = isoTimestampMs(checked);
    lastValidAt = at;
    lastValidTime = time;
  }
  const providerId = request.providerId;
  if (providerId !== undefined && !isName(providerId)) {
    parseWith(ProviderRefSchema.shape.providerId, providerId, "PriceRequest", "providerId");
  }
  return { ref, time, providerId };
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}
