import { LatchValidationError } from "@latch/core";
import { CorruptRecordError, IdempotencyConflictError } from "@latch/core/errors";
import { sqlState } from "./schema.js";

/** SQLSTATEs our migration's functions raise (class `LT`, unused by PostgreSQL). */
export const CONFLICT_STATE = "LT409";
export const MISSING_SUPERSEDED_STATE = "LT422";
/** A rated-record version in another currency than the one it supersedes (migration 0008). */
export const CURRENCY_MISMATCH_STATE = "LT412";
/** A new row of a month before the retention horizon (migration 0016; class 22, a row's refusal). */
export const BEFORE_HORIZON_STATE = "22L10";

function detail(error: unknown): Record<string, unknown> {
  const text = (error as { detail?: unknown } | null)?.detail;
  if (typeof text !== "string") return {};
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === "object" && parsed !== null ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** The id named in the DETAIL of one of our raised errors. */
export function detailId(error: unknown): string {
  return String(detail(error).id ?? "");
}

/** A string field of the DETAIL of one of our raised errors ("" when absent). */
export function detailField(error: unknown, field: string): string {
  return String(detail(error)[field] ?? "");
}

/**
 * The refusal of a write older than the retention horizon as `invalid_input` naming
 * `timing.completedAt`; `undefined` for any other error.
 */
export function beforeHorizon(error: unknown): LatchValidationError | undefined {
  if (sqlState(error) !== BEFORE_HORIZON_STATE) return undefined;
  const d = detail(error);
  return LatchValidationError.at(
    `event ${String(d.id ?? "")}`,
    "timing.completedAt",
    `is in ${String(d.month ?? "")}, before this store's retention horizon ${String(d.horizon ?? "")} (that month's partitions were removed; see latch retention)`,
  );
}

/**
 * Turns the conflict our SQL functions raise into `IdempotencyConflictError` (and a write
 * before the retention horizon into `invalid_input`); anything else is rethrown.
 */
export function rethrowConflict(error: unknown): never {
  const refused = beforeHorizon(error);
  if (refused !== undefined) throw refused;
  if (sqlState(error) === CONFLICT_STATE) {
    const d = detail(error);
    throw new IdempotencyConflictError({
      id: String(d.id ?? ""),
      existingHash: String(d.existingHash ?? ""),
      incomingHash: String(d.incomingHash ?? ""),
    });
  }
  throw error;
}

/** Reads a jsonb payload back through `parse`; data that no longer parses is `corrupt_record`. */
export function parseStored<T>(id: string, payload: unknown, parse: (value: unknown) => T): T {
  try {
    return parse(payload);
  } catch (cause) {
    throw new CorruptRecordError({ id, reason: "the stored payload does not parse", cause });
  }
}
