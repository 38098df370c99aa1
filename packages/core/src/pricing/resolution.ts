import { LatchValidationError } from "../errors/index.js";
import type { ModelRef } from "../schemas/model.js";
import type { PriceSnapshot } from "../schemas/pricing.js";
import type { ModelMatch } from "../schemas/rating.js";
import { canonicalServiceTier, serviceTierOf } from "../schemas/service-tier.js";
import { type ModelMatchRule, matchModel } from "./model-match.js";
import type { PricingSource } from "./pricing-source.js";

/** What a price is resolved for: the call's model (its service tier and region included), time and provider. */
export interface PriceRequest {
  model: ModelRef;
  /** ISO 8601 UTC: the call's `timing.completedAt`. */
  at: string;
  /** The provider that served the call (`observation.provider.providerId`), for `provider_prefix` matching. */
  providerId?: string | undefined;
}

/**
 * The answer to a {@link PriceRequest}: the snapshot that prices the call and how it was found,
 * or why nothing does.
 *
 * - `no_snapshot`: no rule of `pricing/model-match.ts` finds a model priced at that time.
 * - `no_snapshot_for_tier`: the model is priced then, but no snapshot prices the call's service
 *   tier, directly or by `fallbackTiers`. Never priced at another tier's price.
 * - `ambiguous_model`: one matching rule found several models; `candidates` lists them.
 */
export type PriceResolution =
  | {
      status: "priced";
      snapshot: PriceSnapshot;
      /** The rule that matched and the snapshot's billableModel. */
      match: { rule: ModelMatchRule; matchedModel: string };
      /** The call's service tier (canonical name). */
      tier: string;
      /** True when the snapshot prices the tier through its `fallbackTiers`, not as its own tier. */
      tierFallback: boolean;
    }
  | { status: "unpriced"; reason: "no_snapshot" }
  | {
      status: "unpriced";
      reason: "no_snapshot_for_tier";
      match: { rule: ModelMatchRule; matchedModel: string };
      tier: string;
      /** The tiers the matched model is priced in at that time (own tiers and declared fallbacks), sorted. */
      pricedTiers: readonly string[];
    }
  | { status: "unpriced"; reason: "ambiguous_model"; rule: ModelMatchRule; candidates: readonly string[] };

/** Why a resolution found no price. */
export type PriceUnpricedReason = Extract<PriceResolution, { status: "unpriced" }>["reason"];

/**
 * What a rated record stores about the match: nothing for an exact one (so records of exact
 * matches are unchanged), else the rule and the matched id. Pass it as `context.modelMatch`.
 */
export function modelMatchOf(
  resolution: Extract<PriceResolution, { status: "priced" }>,
): ModelMatch | undefined {
  const { rule, matchedModel } = resolution.match;
  return rule === "exact" ? undefined : { rule, matchedModel };
}

/** Whether `snapshot` prices service tier `tier` (canonical): as its own tier, or listed in `fallbackTiers`. */
export function snapshotPricesTier(snapshot: PriceSnapshot, tier: string): "own" | "fallback" | undefined {
  if (serviceTierOf(snapshot.model) === tier) return "own";
  for (const name of snapshot.fallbackTiers ?? []) if (canonicalServiceTier(name) === tier) return "fallback";
  return undefined;
}

/**
 * Resolves a price through any {@link PricingSource}. Sources with `resolvePrice` answer in
 * full; for one with only `resolve`, the snapshot it returns is checked here: it must price
 * the call's service tier (else `no_snapshot_for_tier`) and be linked to the call's model by a
 * matching rule (else `no_snapshot`: a snapshot for an unrelated model is never used).
 */
export async function resolvePriceFrom(
  source: PricingSource,
  request: PriceRequest,
  signal?: AbortSignal,
): Promise<PriceResolution> {
  if (typeof source.resolvePrice === "function") return source.resolvePrice(request, signal);
  const snapshot = await source.resolve(request.model, request.at, signal);
  if (snapshot === undefined) return { status: "unpriced", reason: "no_snapshot" };
  if (typeof snapshot !== "object" || snapshot === null || typeof snapshot.model !== "object") {
    throw LatchValidationError.at("PricingSource", "resolve", "expected a PriceSnapshot or undefined");
  }
  const own = snapshot.model.billableModel;
  const found = matchModel(request.model.billableModel, request.providerId, {
    hasModel: (id) => id === own,
    modelsAliasedAs: (alias) => (snapshot.aliases?.includes(alias) ? [own] : []),
  });
  if (found.kind !== "matched") return { status: "unpriced", reason: "no_snapshot" };
  const match = { rule: found.rule, matchedModel: own };
  const tier = serviceTierOf(request.model);
  const how = snapshotPricesTier(snapshot, tier);
  if (how === undefined) {
    const pricedTiers = [
      serviceTierOf(snapshot.model),
      ...(snapshot.fallbackTiers ?? []).map(canonicalServiceTier),
    ];
    return {
      status: "unpriced",
      reason: "no_snapshot_for_tier",
      match,
      tier,
      pricedTiers: pricedTiers.sort(),
    };
  }
  return { status: "priced", snapshot, match, tier, tierFallback: how === "fallback" };
}
