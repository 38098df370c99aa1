import { rememberSealedRecord, sealedRecordOf } from "../observation/parse.js";
import type { UsageObservation } from "../schemas/observation.js";
import type { PriceSnapshot } from "../schemas/pricing.js";
import type { RatedUsageRecord, RatingContext } from "../schemas/rating.js";
import { DefaultRatingEngine, type RatingEngine } from "./engine.js";

/**
 * Sealed records: records the default engine's own `rate` built, frozen as soon as it
 * returned them. Such a record is valid by construction (the engine validates the parsed
 * observation, the snapshot, the context and every amount it derives) and, frozen, unchanged
 * since: the in-memory store keeps it as is, without parsing or copying it again. Any other
 * record (a custom engine's, a copy, one read back from JSON) is parsed in full.
 *
 * The mark is the record itself, kept in its parsed observation's memo (the last record sealed
 * for that observation): recognising it is two property reads and an identity check. A mark on
 * the record (a symbol property, a WeakSet) costs more than the rating itself on V8. An older
 * record of the same observation (sealed again since) is simply parsed in full.
 *
 * @packageDocumentation
 */

const DEFAULT_RATE = DefaultRatingEngine.prototype.rate;

/**
 * `engine.rate(…)`, sealed when the function that ran is the default engine's own `rate` (not
 * a subclass's or a patched one): the record path's way to rate.
 */
export function rateSealed(
  engine: RatingEngine,
  observation: UsageObservation,
  snapshot: PriceSnapshot,
  context: RatingContext,
): RatedUsageRecord {
  const rate = engine.rate;
  const record = rate.call(engine, observation, snapshot, context);
  return rate === DEFAULT_RATE ? sealRecord(record) : record;
}

/** Freezes a record the default engine just built (its observation is frozen already) and marks it. */
function sealRecord(record: RatedUsageRecord): RatedUsageRecord {
  for (const item of record.lineItems) Object.freeze(item);
  Object.freeze(record.lineItems);
  if (record.modelMatch !== undefined) Object.freeze(record.modelMatch);
  // The engine always returns the parsed observation, so this always remembers it.
  rememberSealedRecord(record.observation, Object.freeze(record));
  return record;
}

/** True for the record {@link rateSealed} last sealed for its observation: valid, and unchanged since. */
export function isSealedRecord(value: unknown): value is RatedUsageRecord {
  if (typeof value !== "object" || value === null) return false;
  return sealedRecordOf((value as { observation?: unknown }).observation) === value;
}
