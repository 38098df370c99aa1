import { createHash } from "node:crypto";
import type { UsageCounter } from "../contracts/quota.js";
import { LatchValidationError } from "../errors/index.js";
import { compileSnapshot } from "../pricing/compiled-snapshot.js";
import { type MeterKind, type MeterSet, PROMPT_METERS, TOKEN_METERS } from "../schemas/meters.js";
import type { UsageObservation } from "../schemas/observation.js";
import type { PriceSnapshot } from "../schemas/pricing.js";
import type { BaselineKey, RatingContext } from "../schemas/rating.js";
import { type RetryPolicy, withRetry } from "./retry.js";

function sumMeters(meters: MeterSet, which: readonly MeterKind[]): number {
  let sum = 0;
  for (const meter of which) sum += meters[meter] ?? 0;
  return sum;
}

/** Every token meter of a call: what quota charges by default. */
export function totalTokens(observation: UsageObservation): number {
  return sumMeters(observation.meters, TOKEN_METERS);
}

/**
 * The counter of one tenant, model and baseline meter: `tenant|model|meter`, as before, when
 * that names one pair (the meter has no `|`, so a model without `|` splits it at the last
 * one) and fits a counter key; otherwise a digest of the three ids. `a|b` on `c` and `a` on
 * `b|c` would share `a|b|c|…`; 256-character ids would pass the key's 512 characters and never
 * price. Existing counters keep their keys.
 */
export function periodCounterKey(tenantId: string, billableModel: string, meter: string): string {
  const plain = `${tenantId}|${billableModel}|${meter}`;
  if (!billableModel.includes("|") && plain.length <= 512) return plain;
  return `sha256:${createHash("sha256")
    .update(JSON.stringify([tenantId, billableModel, meter]))
    .digest("hex")}`;
}

/** UTC month of a timestamp: the billing period of period-scoped tiers. */
export function periodOf(iso: string): string {
  return iso.slice(0, 7);
}

export interface PeriodBaselineDeps {
  /** Required as soon as a snapshot has a period tier (`invalid_input` otherwise). */
  counter: UsageCounter | undefined;
  retry: RetryPolicy;
}

/**
 * The period baselines a snapshot's period tiers rate against: for each baseline key, the
 * tenant's usage of the priced model this month before this call, read by adding the call's
 * quantity to the usage counter (one atomic add per key). `undefined` when the snapshot has no
 * period tier. The add is idempotent by eventId, so a retried, re-rated or concurrently
 * recorded event counts once and gets the first add's answer.
 */
export async function periodBaseline(
  obs: UsageObservation,
  snapshot: PriceSnapshot,
  { counter, retry }: PeriodBaselineDeps,
): Promise<RatingContext["periodBaseline"]> {
  const compiled = compileSnapshot(snapshot);
  const periodTiers = compiled.tiers.filter((t) => t.scope === "period");
  if (periodTiers.length === 0) return undefined;
  if (!counter) {
    throw LatchValidationError.at(
      "LatchConfig",
      "counter",
      `snapshot ${snapshot.snapshotId} has period tiers: a UsageCounter is required`,
    );
  }
  const keys = new Set<BaselineKey>();
  for (const tier of periodTiers) {
    keys.add(tier.baselineKey);
    for (const m of tier.meters) keys.add(m);
  }
  const baseline: Partial<Record<BaselineKey, number>> = {};
  const period = periodOf(obs.timing.completedAt);
  for (const key of keys) {
    const quantity =
      key === "prompt_tokens"
        ? sumMeters(obs.meters, PROMPT_METERS)
        : key === "total_tokens"
          ? sumMeters(obs.meters, TOKEN_METERS)
          : (obs.meters[key] ?? 0);
    // Keyed by the priced model, not the call's spelling of it: `gpt-5` and `gpt-5-2025-08-07`
    // matched to one snapshot move one period baseline.
    const counterKey = periodCounterKey(obs.subject.tenantId, snapshot.model.billableModel, key);
    baseline[key] = await withRetry(
      () => counter.add(counterKey, period, quantity, { opId: obs.eventId }),
      retry,
    );
  }
  return baseline;
}
