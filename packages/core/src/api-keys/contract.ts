import type { BillingSubject } from "../schemas/identity.js";
import type { ApiKeyListOptions, ApiKeyRecord } from "./schemas.js";

/** A stored key: its record and the digest it is found by. */
export interface StoredApiKey {
  record: ApiKeyRecord;
  /** HMAC-SHA256 of the plaintext under the server's secret, 64 lowercase hex characters. */
  digest: string;
}

/** A page of keys in id order; `next` (the last id) is present when more may follow. */
export interface ApiKeyPage {
  items: ApiKeyRecord[];
  next?: string;
}

/**
 * Storage of API keys by digest. Stores never see a plaintext key: `ApiKeys` (which checks
 * the key's checksum, computes the digest under the server secret and compares it in
 * constant time) is the only caller that needs one.
 *
 * Owner scoping: `get`, `list` and `revoke` take the caller's `owner` and see only keys whose
 * owner lies within it (every field set in `owner` is equal in the key's owner). A key of
 * another tenant is indistinguishable from a key that does not exist.
 *
 * Guarantees (checked by `@latch/testkit`'s `describeApiKeyStore`):
 * - `insert` is idempotent by id: the same record and digest again returns `already_exists`;
 *   another record or digest under the same id, or the same digest under another id, throws
 *   `IdempotencyConflictError` and changes nothing.
 * - `revoke` sets `revokedAt` once; revoking again keeps the first time.
 * - Revocation cascades along `createdBy`: revoking a key revokes every key it minted,
 *   transitively, at the same time (a key already revoked keeps its own time); a key inserted
 *   with a `createdBy` that is already revoked is stored revoked at its minter's time. Atomic
 *   against a concurrent mint: once both have returned, no key minted by a revoked key is live.
 * - `touch(id, at, minIntervalMs)` writes `lastUsedAt = at` only when the key has none or its
 *   `lastUsedAt` is at least `minIntervalMs` before `at`, atomically: of any number of
 *   concurrent touches of one key within the interval, exactly one writes. It returns whether
 *   it wrote.
 * - Inputs are validated with the shared schemas (`invalid_input` naming the field).
 */
export interface ApiKeyStore {
  insert(record: ApiKeyRecord, digest: string, signal?: AbortSignal): Promise<"created" | "already_exists">;
  /** The key with this digest, or undefined. The hot path's only read. */
  findByDigest(digest: string, signal?: AbortSignal): Promise<StoredApiKey | undefined>;
  get(owner: BillingSubject, id: string, signal?: AbortSignal): Promise<ApiKeyRecord | undefined>;
  list(owner: BillingSubject, options: ApiKeyListOptions, signal?: AbortSignal): Promise<ApiKeyPage>;
  /**
   * Revokes a key within `owner`, and every key it minted (transitively), and returns it, or
   * undefined when there is no such key.
   */
  revoke(
    owner: BillingSubject,
    id: string,
    at: string,
    signal?: AbortSignal,
  ): Promise<ApiKeyRecord | undefined>;
  touch(id: string, at: string, minIntervalMs: number, signal?: AbortSignal): Promise<boolean>;
}

/** True when every field set in `scope` has the same value in `owner`. */
export function ownerWithin(owner: BillingSubject, scope: BillingSubject): boolean {
  for (const [field, value] of Object.entries(scope)) {
    if (value !== undefined && owner[field as keyof BillingSubject] !== value) return false;
  }
  return true;
}
