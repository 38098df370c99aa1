import { LatchError, LatchValidationError } from "../errors/index.js";
import { isDeploymentFault } from "./retry.js";

/** Whether `error` is a Latch error with this code (for the outcomes the facade hands back as they are). */
export function isCode(error: unknown, code: string): boolean {
  return LatchError.isInstance(error) && error.code === code;
}

/** Whether `error` is `invalid_input` naming `field` (an issue at exactly that path). */
export function namesField(error: unknown, field: string): boolean {
  return LatchValidationError.isInstance(error) && error.issues.some((i) => i.path === field);
}

/**
 * Settle errors the caller must see (bad input, a conflict, a hold already committed or
 * voided, an unmigrated or incompatible schema): settling again cannot change them. Any other error is reported and the settle
 * answers `{ settled: false }`.
 */
export function isFinalSettleError(error: unknown): boolean {
  return (
    isCode(error, "invalid_input") ||
    isCode(error, "idempotency_conflict") ||
    isCode(error, "hold_already_resolved") ||
    isDeploymentFault(error)
  );
}

/**
 * Reserve errors the caller must see rather than a denial: bad input, a conflict, and a
 * deployment fault (an unmigrated schema is not an outage; "quota store unavailable" would
 * hide the fix).
 */
export function isFinalReserveError(error: unknown): boolean {
  return isCode(error, "invalid_input") || isCode(error, "idempotency_conflict") || isDeploymentFault(error);
}
