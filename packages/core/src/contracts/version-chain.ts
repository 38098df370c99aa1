import { LatchValidationError } from "../errors/index.js";
import type { RatedUsageRecord } from "../schemas/rating.js";
import { supersededCurrencyMismatch } from "./currency-chain.js";

/**
 * The version chain of rated records, decided the same way by every `RatedRecordStore`:
 * `ratedRecordId` is `<eventId>:v<version>`, the observation belongs to the event, version 1
 * supersedes nothing, version n supersedes `<eventId>:v<n-1>`, which must be stored (or come
 * earlier in the same batch) and be in the same currency. Backends that look the superseded
 * version up in SQL or Lua run {@link checkVersionShape} first and build their answer for
 * what the lookup found with {@link supersededNotStored} / `supersededCurrencyMismatch`.
 *
 * `prefix` is the record's position in a batch (`"2"`), or `""` for a single put: error paths
 * are then `2.supersedes` or `supersedes`.
 *
 * @packageDocumentation
 */

function fieldPath(prefix: string, field: string): string {
  return prefix === "" ? field : `${prefix}.${field}`;
}

function invalid(prefix: string, field: string, message: string): LatchValidationError {
  return LatchValidationError.at("RatedUsageRecord", fieldPath(prefix, field), message);
}

/**
 * The `ratedRecordId` that `record` must supersede (`<eventId>:v<version - 1>`), or undefined
 * for version 1.
 */
export function supersededId(record: Pick<RatedUsageRecord, "eventId" | "version">): string | undefined {
  return record.version === 1 ? undefined : `${record.eventId}:v${record.version - 1}`;
}

/**
 * Checks what a record says about its place in the chain, without reading the store: its id,
 * its observation's event and what it supersedes. Throws `invalid_input` naming the field.
 *
 * @example
 * records.forEach((record, index) => checkVersionShape(record, String(index)));
 */
export function checkVersionShape(record: RatedUsageRecord, prefix: string): void {
  if (record.ratedRecordId !== `${record.eventId}:v${record.version}`) {
    throw invalid(prefix, "ratedRecordId", "must be <eventId>:v<version>");
  }
  if (record.observation.eventId !== record.eventId) {
    throw invalid(prefix, "observation.eventId", "must equal eventId");
  }
  const previous = supersededId(record);
  if (previous === undefined) {
    if (record.supersedes !== undefined) throw invalid(prefix, "supersedes", "version 1 supersedes nothing");
    return;
  }
  if (record.supersedes !== previous) throw invalid(prefix, "supersedes", "must be <eventId>:v<version - 1>");
}

/**
 * The error for a correction whose superseded version is not stored (`invalid_input` naming
 * `supersedes`), for backends that learn it from a lookup in SQL or Lua.
 */
export function supersededNotStored(prefix: string): LatchValidationError {
  return invalid(prefix, "supersedes", "the superseded version is not stored");
}

/**
 * The whole chain check of one record: {@link checkVersionShape}, then the stored version it
 * supersedes (`stored(id)`: stored, or earlier in the batch) must exist and be in its currency.
 *
 * @throws LatchValidationError naming the field; `CurrencyMismatchError` for another currency.
 * @example
 * checkVersionChain(record, "", (id) => byId.get(id));
 */
export function checkVersionChain(
  record: RatedUsageRecord,
  prefix: string,
  stored: (ratedRecordId: string) => Pick<RatedUsageRecord, "currency"> | undefined,
): void {
  checkVersionShape(record, prefix);
  const previous = supersededId(record);
  if (previous === undefined) return;
  const superseded = stored(previous);
  if (superseded === undefined) throw supersededNotStored(prefix);
  if (superseded.currency !== record.currency) {
    throw supersededCurrencyMismatch(record, superseded.currency, prefix);
  }
}
