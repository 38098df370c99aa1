import type { UsageCounter } from "../contracts/quota.js";
import type { NoPriceForMeterError } from "../errors/index.js";
import type { PricingSource } from "../pricing/pricing-source.js";
import {
  modelMatchOf,
  type PriceRequest,
  type PriceResolution,
  resolvePriceFrom,
} from "../pricing/resolution.js";
import type { RatingEngine } from "../rating/engine.js";
import { rateSealed } from "../rating/sealed-record.js";
import type { MeterKind } from "../schemas/meters.js";
import type { UsageObservation } from "../schemas/observation.js";
import type { RatedUsageRecord, RatingContext } from "../schemas/rating.js";
import { isCode } from "./error-code.js";
import { periodBaseline } from "./period-baselines.js";
import { type RetryPolicy, withRetry } from "./retry.js";
import type { RecordResult, Warn } from "./types.js";

/** What the rating step needs: pricing, the engine, the clock, and the counter period tiers read. */
export interface RatingStepDeps {
  pricing: PricingSource;
  engine: RatingEngine;
  clock: () => Date;
  retry: RetryPolicy;
  warn: Warn;
  counter: UsageCounter | undefined;
}

/** The rating of an observation: its first rated record, or why it stays unpriced. */
export type RatingOutcome =
  | { status: "rated"; record: RatedUsageRecord }
  | Extract<RecordResult, { status: "unpriced" }>;

/** What the pricing source is asked for an observation: its model and tier, when it completed, who served it. */
export function priceRequestOf(obs: UsageObservation): PriceRequest {
  return { model: obs.model, at: obs.timing.completedAt, providerId: obs.provider?.providerId };
}

/** The snapshot in effect for the observation (the pricing source retried as a store). */
export function resolvePrice(obs: UsageObservation, deps: RatingStepDeps): Promise<PriceResolution> {
  return withRetry(() => resolvePriceFrom(deps.pricing, priceRequestOf(obs)), deps.retry);
}

/**
 * Rates an observation against its resolved price: the record, or `unpriced` with the reason
 * (the resolution's, a meter without a price, a tier without a snapshot, or a rating that
 * failed, which is also warned). Period tiers add the call to the usage counter first.
 */
export async function rateResolved(
  obs: UsageObservation,
  resolution: PriceResolution,
  deps: RatingStepDeps,
): Promise<RatingOutcome> {
  if (resolution.status === "unpriced") return unpricedBy(obs, resolution);
  const snapshot = resolution.snapshot;
  try {
    const context = contextOf(resolution, deps);
    const baseline = await periodBaseline(obs, snapshot, deps);
    if (baseline) context.periodBaseline = baseline;
    return { status: "rated", record: rateSealed(deps.engine, obs, snapshot, context) };
  } catch (error) {
    return ratingFailed(obs, error, deps);
  }
}

/**
 * {@link rateResolved} without its promise, for a snapshot without period tiers (no usage
 * counter to add to): the same answers, warnings included. The inline record path's rating.
 */
export function rateResolvedNow(
  obs: UsageObservation,
  resolution: PriceResolution,
  deps: RatingStepDeps,
): RatingOutcome {
  if (resolution.status === "unpriced") return unpricedBy(obs, resolution);
  const snapshot = resolution.snapshot;
  try {
    return { status: "rated", record: rateSealed(deps.engine, obs, snapshot, contextOf(resolution, deps)) };
  } catch (error) {
    return ratingFailed(obs, error, deps);
  }
}

function unpricedBy(
  obs: UsageObservation,
  resolution: Extract<PriceResolution, { status: "unpriced" }>,
): RatingOutcome {
  const unpriced = {
    status: "unpriced",
    eventId: obs.eventId,
    reason: resolution.reason,
    observation: obs,
  } as const;
  return resolution.reason === "ambiguous_model"
    ? { ...unpriced, candidates: resolution.candidates }
    : unpriced;
}

function contextOf(
  resolution: Extract<PriceResolution, { status: "priced" }>,
  deps: RatingStepDeps,
): RatingContext {
  const context: RatingContext = { ratedAt: isoString(deps.clock()) };
  const modelMatch = modelMatchOf(resolution);
  if (modelMatch) context.modelMatch = modelMatch;
  return context;
}

// The last instant formatted: calls rated within the same millisecond share its string.
let lastMs = Number.NaN;
let lastIso = "";

/**
 * `date.toISOString()`, remembered for the last instant: a `Date`'s ISO string is a function of
 * its time alone, and a busy recorder rates many calls per millisecond. Anything but a plain
 * `Date` (a subclass, a look-alike) is asked each time; an invalid date throws as before.
 */
function isoString(date: Date): string {
  if (Object.getPrototypeOf(date) !== Date.prototype) return date.toISOString();
  const ms = date.getTime();
  if (ms === lastMs) return lastIso;
  const iso = date.toISOString();
  lastMs = ms;
  lastIso = iso;
  return iso;
}

/** A rating that threw: `unpriced` with the reason, warned unless it is a missing price. */
function ratingFailed(obs: UsageObservation, error: unknown, deps: RatingStepDeps): RatingOutcome {
  if (isCode(error, "no_price_for_meter")) {
    const meter = (error as NoPriceForMeterError).meter as MeterKind;
    return { status: "unpriced", eventId: obs.eventId, reason: "no_price", observation: obs, meter };
  }
  if (isCode(error, "no_snapshot_for_tier"))
    return { status: "unpriced", eventId: obs.eventId, reason: "no_snapshot_for_tier", observation: obs };
  deps.warn({
    code: "rating_failed",
    message: `rating ${obs.eventId} failed: ${(error as Error).message}`,
    eventId: obs.eventId,
    cause: error,
  });
  return { status: "unpriced", eventId: obs.eventId, reason: "no_price", observation: obs };
}
