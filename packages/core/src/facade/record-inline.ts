import { appendInline, inlineObservationStore, markPricedInline } from "../memory/observation-store.js";
import { currentInline, inlineRatedStore, putInline } from "../memory/rated-record-store.js";
import { isParsedObservation } from "../observation/parse.js";
import { compileSnapshot } from "../pricing/compiled-snapshot.js";
import { inlinePricingSource, resolveObservationInline } from "../pricing/pricing-source.js";
import type { PriceResolution } from "../pricing/resolution.js";
import type { UsageObservation } from "../schemas/observation.js";
import { type RatingStepDeps, rateResolvedNow } from "./rating-step.js";
import type { RecordResult } from "./types.js";

export interface InlineRecordDeps extends RatingStepDeps {
  observations: unknown;
  rated: unknown;
  /** Whether credits are configured: a burn is a ledger call, so such a call takes the async path. */
  burnsCredits: boolean;
}

/**
 * The record path of the embedded default — `MemoryObservationStore`, `MemoryRatedRecordStore`
 * and `InMemoryPricingSource`, each the class's own (see `inlineObservationStore`) — run
 * synchronously: the same steps as the step-by-step path in `record.ts` (append, the stored
 * rated record if any, else rate, put and mark priced), each the store's own method without its
 * promise, so a call costs one promise instead of a dozen async hops. Nothing awaits between
 * the steps, so no other call interleaves (the memory stores' methods are atomic each; here the
 * whole call is).
 *
 * Only a parsed observation (`parseObservation`'s own, as `record()` makes) is taken: its
 * values are not validated again (the pricing request, the eventId looked up).
 *
 * Answers `undefined` — the caller takes the step-by-step path, which decides — whenever that
 * path could answer otherwise: an observation that is not parsed, a part that is not the
 * embedded one (a wrapper, a subclass, a Postgres store), credits to burn, a snapshot with
 * period tiers (the usage counter is async), and any error before the observation is stored
 * (a conflict: the stored call may differ only in its hold; nothing is written by then). After the observation is stored, an error is
 * thrown; the caller handles it as the step-by-step path does an error of `rateStored`.
 */
export function createInlineRecord(
  deps: InlineRecordDeps,
): (obs: UsageObservation) => RecordResult | undefined {
  if (deps.burnsCredits) return () => undefined;
  return (obs) => {
    const observations = inlineObservationStore(deps.observations);
    const rated = inlineRatedStore(deps.rated);
    const pricing = inlinePricingSource(deps.pricing);
    if (observations === undefined || rated === undefined || pricing === undefined) return undefined;
    if (!isParsedObservation(obs)) return undefined;
    let resolution: PriceResolution;
    try {
      resolution = resolveObservationInline(pricing, obs);
      if (resolution.status === "priced" && compileSnapshot(resolution.snapshot).tiers.some(isPeriodTier)) {
        return undefined;
      }
      appendInline(observations, obs);
    } catch {
      return undefined;
    }
    const existing = currentInline(rated, obs.eventId);
    if (existing !== undefined) {
      markPricedInline(observations, obs.eventId);
      return { status: "rated", record: existing };
    }
    const rating = rateResolvedNow(obs, resolution, deps);
    if (rating.status === "unpriced") return rating;
    // No other call ran since `current` found no record: no conflicting version can be stored.
    putInline(rated, rating.record);
    markPricedInline(observations, obs.eventId);
    return rating; // { status: "rated", record }
  };
}

const isPeriodTier = (tier: { scope: string }) => tier.scope === "period";
