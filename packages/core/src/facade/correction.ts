import { canonicalJson } from "../contracts/hashing.js";
import type { RatedRecordStore } from "../contracts/rated-record-store.js";
import { LatchValidationError } from "../errors/index.js";
import { parseObservation } from "../observation/parse.js";
import type { PricingSource } from "../pricing/pricing-source.js";
import { modelMatchOf, resolvePriceFrom } from "../pricing/resolution.js";
import type { RatingEngine } from "../rating/engine.js";
import { MeterSetSchema } from "../schemas/meters.js";
import { parseWith } from "../schemas/parse.js";
import type { RatedUsageRecord, RatingContext } from "../schemas/rating.js";
import type { CreditBurns } from "./credit-burns.js";
import { priceRequestOf } from "./record.js";
import { type RetryPolicy, withRetry } from "./retry.js";

export interface CorrectionDeps {
  rated: RatedRecordStore;
  pricing: PricingSource;
  engine: RatingEngine;
  clock: () => Date;
  retry: RetryPolicy;
  burns: CreditBurns;
}

/**
 * `correct()`: rates an event's corrected meters as version n+1, superseding version n, and
 * replaces its credit burn. Correcting to the meters the current version already has (a retry
 * whose response was lost) adds no version: it finishes the burn and returns the current one.
 */
export function createCorrection({
  rated,
  pricing,
  engine,
  clock,
  retry,
  burns,
}: CorrectionDeps): (eventId: string, meters: unknown) => Promise<RatedUsageRecord> {
  return async function correct(eventId, meters) {
    if (typeof eventId !== "string" || eventId.length === 0)
      throw LatchValidationError.at("correct", "eventId", "expected an eventId");
    // zod's record drops an own `__proto__` key (JSON.parse makes one) unread: refused as unknown.
    if (typeof meters === "object" && meters !== null && Object.hasOwn(meters, "__proto__"))
      throw LatchValidationError.at(
        "correct",
        "meters.__proto__",
        "unknown meter: expected a built-in meter or custom:<name>",
      );
    const corrected = parseWith(MeterSetSchema, meters, "correct", "meters");
    const current = await withRetry(() => rated.current(eventId), retry);
    if (!current)
      throw LatchValidationError.at(
        "correct",
        "eventId",
        "no rated record for this event; nothing to correct",
      );
    if (current.version > 1 && canonicalJson(current.observation.meters) === canonicalJson(corrected)) {
      await burns.burnStored(current); // finishes a burn the first try lost
      return current;
    }
    const obs = parseObservation({
      ...current.observation,
      meters: corrected,
      source: { kind: "corrected", correctionOf: eventId },
    });
    const resolution = await withRetry(() => resolvePriceFrom(pricing, priceRequestOf(obs)), retry);
    if (resolution.status === "unpriced")
      throw new LatchValidationError({
        subject: "correct",
        issues: [{ path: "eventId", message: `no price snapshot for the event (${resolution.reason})` }],
      });
    const context: RatingContext = {
      ratedAt: clock().toISOString(),
      version: current.version + 1,
      supersedes: current.ratedRecordId,
    };
    const modelMatch = modelMatchOf(resolution);
    if (modelMatch) context.modelMatch = modelMatch;
    const record = engine.rate(obs, resolution.snapshot, context);
    await withRetry(() => rated.put(record), retry);
    // The event's next usage version replaces its burn. A store error throws: the record is
    // stored, and a retried correct() (same meters) burns again, idempotently.
    await burns.burnStored(record);
    return record;
  };
}
