import { LatchError } from "../errors/index.js";

/** Whether `error` is a Latch error with this code (for the outcomes the facade hands back as they are). */
export function isCode(error: unknown, code: string): boolean {
  return LatchError.isInstance(error) && error.code === code;
}

/**
 * Settle errors the caller must see (bad input, a conflict, a hold already committed or
 * voided): settling again cannot change them. Any other error is reported and the settle
 * answers `{ settled: false }`.
 */
export function isFinalSettleError(error: unknown): boolean {
  return (
    isCode(error, "invalid_input") ||
    isCode(error, "idempotency_conflict") ||
    isCode(error, "hold_already_resolved")
  );
}
