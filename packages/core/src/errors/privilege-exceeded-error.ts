import { LatchError } from "./latch-error.js";

const marker = Symbol.for("latch.error.privilege_exceeded");

/**
 * `privilege_exceeded`: an API key asked for more than it has. `ApiKeys.mint` refuses a new key
 * whose scopes, quota, expiry, mode or owner `field` goes beyond the minting key's;
 * `ApiKeys.revokeAs` refuses to revoke a key with a scope (or the live mode) the caller lacks.
 * `field` is the input's path (`scopes.1`, `quota.limit`, `expiresAt`, `mode`,
 * `owner.projectId`); the message never repeats the value.
 */
export class PrivilegeExceededError extends LatchError {
  readonly [marker] = true;
  declare readonly code: "privilege_exceeded";
  /** The field that exceeds the caller key's own, by its path in the input. */
  readonly field: string;
  /** Why, in words that do not repeat the value (e.g. "must not exceed this API key's quota"). */
  readonly reason: string;
  constructor({ field, reason }: { field: string; reason: string }) {
    super({ code: "privilege_exceeded", message: `${field}: ${reason}` });
    this.name = "PrivilegeExceededError";
    this.field = field;
    this.reason = reason;
  }

  static override isInstance(error: unknown): error is PrivilegeExceededError {
    return LatchError.hasMarker(error, marker);
  }
}
