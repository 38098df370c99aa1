import type { RatedUsageRecord } from "../schemas/rating.js";

/**
 * Marks records the default engine built, deep-frozen as they were built. Such a record is
 * valid by construction (the engine validates the parsed observation, the snapshot, the context
 * and every amount it derives) and, frozen, unchanged since: a store may keep it as is, without
 * parsing or copying it again. Any other record (a custom engine's, a copy, one read back from
 * JSON) lacks the mark and is parsed in full.
 *
 * The mark is a module-private symbol, non-enumerable: spreads, `structuredClone` and JSON do
 * not carry it to a copy (a copy may be changed), and a property read is cheaper on the hot
 * path than a WeakSet lookup.
 */
const SEALED = Symbol("latch.sealedRecord");

/** Deep-freezes a record the engine just built (its observation is frozen already) and marks it. */
export function sealRecord(record: RatedUsageRecord): RatedUsageRecord {
  for (const item of record.lineItems) Object.freeze(item);
  Object.freeze(record.lineItems);
  if (record.modelMatch !== undefined) Object.freeze(record.modelMatch);
  Object.defineProperty(record, SEALED, { value: true, enumerable: false });
  return Object.freeze(record);
}

/** True for a record {@link sealRecord} marked: valid, and unchanged since the engine built it. */
export function isSealedRecord(value: unknown): value is RatedUsageRecord {
  return typeof value === "object" && value !== null && (value as { [SEALED]?: true })[SEALED] === true;
}
