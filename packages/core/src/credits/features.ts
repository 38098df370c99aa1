import type { UsageObservation } from "../schemas/observation.js";
import type { RatedUsageRecord } from "../schemas/rating.js";
import type { CreditFeature } from "./schemas.js";

/**
 * How much of `feature` one observation uses, as a decimal string, or `undefined` when the
 * observation does not count toward the feature: a filter does not match, or the feature
 * counts money and `rated` is absent or in another currency.
 *
 * - quantity features sum their meters (absent meters count 0);
 * - money features take `rated.total` (exact, as rated).
 *
 * @example
 * const tokens = { featureId: "gpt-tokens", measure: { kind: "quantity", meters: ["input_tokens", "output_tokens"] },
 *   filters: { modelPrefix: "gpt-" } };
 * creditUsageOf(tokens, observation); // "1200" for a gpt-4o call with 1,000 in and 200 out
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
    if (rated === undefined || rated.currency !== feature.measure.currency) return undefined;
    return rated.total;
  }
  let total = 0n; // bigint: a sum of safe integers may pass 2^53-1
  for (const meter of feature.measure.meters) total += BigInt(observation.meters[meter] ?? 0);
  return total.toString();
}
