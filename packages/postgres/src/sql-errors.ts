import { CorruptRecordError, IdempotencyConflictError } from "@latch/core/errors";
import { sqlState } from "./schema.js";

/** SQLSTATEs our migration's functions raise (class `LT`, unused by PostgreSQL). */
export const CONFLICT_STATE = "LT409";
export const MISSING_SUPERSEDED_STATE = "LT422";
/** A rated-record version in another currency than the one it supersedes (migration 0008). */
export const CURRENCY_MISMATCH_STATE = "LT412";

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

/** Turns the conflict our SQL functions raise into `IdempotencyConflictError`; anything else is rethrown. */
export function rethrowConflict(error: unknown): never {
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
