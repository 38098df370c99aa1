import { CurrencyMismatchError } from "../errors/index.js";
import type { UsageObservation } from "../schemas/observation.js";
import type { RatedUsageRecord } from "../schemas/rating.js";
import type { CreditFeature } from "./schemas.js";

/**
 * How much of `feature` one observation uses, as a decimal string, or `undefined` when the
 * observation does not count toward the feature: a filter does not match, or the feature
 * counts money and the call is not rated (yet).
 *
 * - quantity features sum their meters (absent meters count 0);
 * - money features take `rated.total` (exact, as rated; negative for an event whose volume
 *   period tier reprices earlier usage lower: a refund, see `CreditLedger.recordUsage`).
 *
 * A money feature met with a record in another currency throws `CurrencyMismatchError`
 * (`currency_mismatch`, naming the eventId): the call's cost cannot be counted in the feature's
 * currency, and reporting it is better than burning 0. Route such calls to a feature of their
 * currency (one money feature per currency).
 *
 * @example
 * const tokens = { featureId: "gpt-tokens", measure: { kind: "quantity", meters: ["input_tokens", "output_tokens"] },
 *   filters: { modelPrefix: "gpt-" } };
 * creditUsageOf(tokens, observation); // "1200" for a gpt-4o call with 1,000 in and 200 out
 * creditUsageOf({ featureId: "usd", measure: { kind: "money", currency: "USD" } }, observation, record); // record.total
 */
export function creditUsageOf(
  feature: CreditFeature,
  observation: UsageObservation,
  rated?: RatedUsageRecord,
): string | undefined {
  const filters = feature.filters;
  if (filters !== undefined) {
    const subject = observation.subject as Record<string, string | undefined>;
    for (const [field, value] of Object.entries(filters.subject ?? {})) {
      if (value !== undefined && subject[field] !== value) return undefined;
    }
    for (const [key, value] of Object.entries(filters.attributes ?? {})) {
      if (observation.attributes?.[key] !== value) return undefined;
    }
    const model = observation.model.billableModel;
    if (filters.models !== undefined && !filters.models.includes(model)) return undefined;
    if (filters.modelPrefix !== undefined && !model.startsWith(filters.modelPrefix)) return undefined;
  }
  if (feature.measure.kind === "money") {
    if (rated === undefined) return undefined;
    if (rated.currency !== feature.measure.currency) {
      throw new CurrencyMismatchError({
        expected: feature.measure.currency,
        actual: rated.currency,
        eventId: rated.eventId,
        path: "currency",
        reason: `credit feature ${feature.featureId} counts ${feature.measure.currency}`,
      });
    }
    return rated.total;
  }
  let total = 0n; // bigint: a sum of safe integers may pass 2^53-1
  for (const meter of feature.measure.meters) total += BigInt(observation.meters[meter] ?? 0);
  return total.toString();
}
