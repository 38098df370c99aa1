import type { BillingSubject } from "../schemas/identity.js";
import { type ApiKeyRecord, apiKeyQuotaUnits, type NewApiKey } from "./schemas.js";

/** A field of a request that goes beyond the caller key's own, and why (never its value). */
export interface PrivilegeExcess {
  /**
   * The input's path: `scopes.1`, `quota`, `quota.period`, `quota.limit`, `expiresAt`, `mode`,
   * `owner.projectId`.
   */
  field: string;
  reason: string;
}

const OWNER_FIELDS = ["tenantId", "orgId", "projectId", "apiKeyId", "endUserId", "feature"] as const;

/**
 * Least privilege for minting: the first field of `key` that goes beyond `minter`, or
 * undefined when `key` is within it. Within means: every scope is one of the minter's; with a
 * minter quota, a quota in the same unit (and currency) with no period whose limit is no larger
 * (the minter pays it once, so it must not start again each period); with a minter
 * expiry, an expiry no later; a test-mode minter mints test-mode keys only; the owner lies
 * within the minter's (every field the minter's owner sets is equal).
 */
export function mintExcess(minter: ApiKeyRecord, key: NewApiKey): PrivilegeExcess | undefined {
  const extra = key.scopes.findIndex((scope) => !minter.scopes.includes(scope));
  if (extra !== -1) return { field: `scopes.${extra}`, reason: "not a scope of this API key" };
  const mine = minter.quota;
  if (mine !== undefined) {
    const asked = key.quota;
    if (asked === undefined) return { field: "quota", reason: "required: this API key has a quota" };
    if (asked.unit !== mine.unit) return { field: "quota.unit", reason: "must be this API key's quota unit" };
    if (asked.unit === "money" && mine.unit === "money" && asked.currency !== mine.currency) {
      return { field: "quota.currency", reason: "must be this API key's quota currency" };
    }
    // The minter is charged the new key's limit once (ApiKeys.mint): a limit that started again
    // each period would give away more than it was charged for, period after period.
    if (asked.period !== undefined) {
      return {
        field: "quota.period",
        reason: "not allowed: this API key has a quota, which pays a minted key's limit once",
      };
    }
    if (apiKeyQuotaUnits(asked) > apiKeyQuotaUnits(mine)) {
      return { field: "quota.limit", reason: "must not exceed this API key's quota limit" };
    }
  }
  if (minter.expiresAt !== undefined) {
    if (key.expiresAt === undefined) return { field: "expiresAt", reason: "required: this API key expires" };
    if (Date.parse(key.expiresAt) > Date.parse(minter.expiresAt)) {
      return { field: "expiresAt", reason: "must not be after this API key's expiry" };
    }
  }
  if (minter.mode === "test" && key.mode !== "test") {
    return { field: "mode", reason: "a test-mode API key mints test-mode keys only" };
  }
  const outside = ownerExcess(minter.owner, key.owner);
  if (outside !== undefined) return { field: `owner.${outside}`, reason: "outside this API key's owner" };
  return undefined;
}

/**
 * Least privilege for revoking: a key may revoke `target` only when it has every scope of it
 * and, when it is a test-mode key, only a test-mode one. The first excess, or undefined.
 */
export function revokeExcess(caller: ApiKeyRecord, target: ApiKeyRecord): PrivilegeExcess | undefined {
  if (target.scopes.some((scope) => !caller.scopes.includes(scope))) {
    return { field: "scopes", reason: "the key has a scope this API key lacks" };
  }
  if (caller.mode === "test" && target.mode !== "test") {
    return { field: "mode", reason: "a test-mode API key cannot revoke a live key" };
  }
  return undefined;
}

/** The first field that `scope` sets and `owner` does not equal, or undefined. */
function ownerExcess(scope: BillingSubject, owner: BillingSubject): string | undefined {
  return OWNER_FIELDS.find((field) => scope[field] !== undefined && owner[field] !== scope[field]);
}
