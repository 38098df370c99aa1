import { z } from "zod";
import type { QuotaBalance, QuotaReservator } from "../contracts/quota.js";
import { LatchValidationError, PrivilegeExceededError, QuotaUnavailableError } from "../errors/index.js";
import type { BillingSubject } from "../schemas/identity.js";
import { parseWith } from "../schemas/parse.js";
import type { ApiKeyPage, ApiKeyStore } from "./contract.js";
import { ApiKeyHasher } from "./digest.js";
import { generateApiKey, generateApiKeyId, parseApiKey } from "./format.js";
import { mintExcess, revokeExcess } from "./privilege.js";
import { RecentDigests } from "./recent-digests.js";
import {
  type ApiKeyListOptions,
  type ApiKeyRecord,
  apiKeyQuotaAccount,
  apiKeyQuotaUnits,
  type NewApiKey,
  type NewApiKeyInput,
  NewApiKeySchema,
} from "./schemas.js";
import { isTestModeTenant, TEST_MODE_TENANT_MAX, TEST_MODE_TENANT_PREFIX } from "./test-mode.js";

/** Why a presented key was refused. Tell the client only "401"; log the reason if you like. */
export type ApiKeyRejection = "malformed" | "unknown" | "revoked" | "expired";

/** The outcome of {@link ApiKeys.authenticate}. */
export type ApiKeyAuthResult = { ok: true; key: ApiKeyRecord } | { ok: false; reason: ApiKeyRejection };

export interface ApiKeysOptions {
  store: ApiKeyStore;
  /** The HMAC secret, ≥ 32 bytes. Keep it out of the database the store writes to. */
  secret: string | Uint8Array;
  /** Where key quotas are set and enforced. Required to create keys with a quota. */
  quota?: QuotaReservator;
  /** Epoch milliseconds; default `Date.now`. Decides expiry and `lastUsedAt`. */
  clock?: () => number;
  /** `lastUsedAt` is written at most this often per key. Default 60,000 ms. */
  lastUsedIntervalMs?: number;
  /** Called when a background `lastUsedAt` write fails (it never fails a request). */
  onTouchError?: (error: unknown) => void;
  /**
   * The negative cache of `authenticate`: digests looked up and not found are answered
   * `unknown` without another store lookup for `ttlMs` (default 60,000), at most `size`
   * digests (default 10,000, least recently recorded evicted first; `0` turns it off). A key
   * issued by this `ApiKeys` is removed from it when created.
   */
  negativeCache?: { size?: number; ttlMs?: number };
}

const NegativeCacheSchema = z.strictObject({
  size: z.number().int().min(0).max(1_000_000).default(10_000),
  ttlMs: z.number().int().min(1).max(3_600_000).default(60_000),
});

const SUBJECT = "ApiKeys";

/**
 * A period the quota store refuses although core accepted it (PostgresQuota's database may
 * have older time-zone data than this process's Intl: `period.timeZone`) names the input's
 * field, `quota.period…`, as core's own checks do; any other error is returned as is.
 */
function periodRefusal(error: unknown, at: string): unknown {
  const ofPeriod = (path: string) => path === "period" || path.startsWith("period.");
  if (!LatchValidationError.isInstance(error) || !error.issues.some((i) => ofPeriod(i.path))) return error;
  const issues = error.issues.map((i) => (ofPeriod(i.path) ? { ...i, path: `quota.${i.path}` } : i));
  return new LatchValidationError({ subject: at, issues, cause: error });
}

/**
 * API keys over an {@link ApiKeyStore}: issue, authenticate, list, revoke.
 *
 * - `create` returns the plaintext once; the store keeps only its HMAC-SHA256 digest.
 * - `authenticate` rejects a key whose shape or checksum is wrong with **no store lookup**,
 *   then finds the key by digest, compares the digests in constant time and checks
 *   revocation and expiry.
 * - `lastUsedAt` is written after the answer, never awaited by `authenticate`, at most once
 *   per `lastUsedIntervalMs` per key (skipped in process when recently written, and the
 *   store's conditional `touch` keeps it so across processes). {@link ApiKeys.flush} awaits
 *   the pending writes (shutdown, tests).
 *
 * @example
 * const keys = new ApiKeys({ store: new MemoryApiKeyStore(), secret: process.env.KEY_SECRET!, quota });
 * const { key, plaintext } = await keys.create({
 *   owner: { tenantId: "acme" }, name: "ci", scopes: ["billing:read"],
 *   quota: { unit: "tokens", limit: 1_000_000 },
 * });
 * const auth = await keys.authenticate(plaintext); // { ok: true, key }
 */
export class ApiKeys {
  readonly store: ApiKeyStore;
  readonly quota: QuotaReservator | undefined;
  readonly #hasher: ApiKeyHasher;
  readonly #clock: () => number;
  readonly #interval: number;
  readonly #onTouchError: (error: unknown) => void;
  /** When this process last wrote (or tried to write) `lastUsedAt`, per key id. */
  readonly #touched = new Map<string, number>();
  readonly #pending = new Set<Promise<void>>();
  readonly #absent: RecentDigests;
  /** Digests that authenticated recently (see `authenticate`'s `knownOnly`). */
  readonly #valid = new RecentDigests(10_000, 24 * 60 * 60 * 1000);

  constructor(options: ApiKeysOptions) {
    this.store = options.store;
    this.quota = options.quota;
    this.#hasher = new ApiKeyHasher(options.secret);
    this.#clock = options.clock ?? Date.now;
    this.#interval = options.lastUsedIntervalMs ?? 60_000;
    this.#onTouchError = options.onTouchError ?? (() => undefined);
    const cache = parseWith(NegativeCacheSchema, options.negativeCache ?? {}, SUBJECT, "negativeCache");
    this.#absent = new RecentDigests(cache.size, cache.ttlMs);
  }

  /**
   * Issues a key. The plaintext is in the result and nowhere else: show it once. With a
   * quota, the key's quota account gets its limit (and the quota's `period`, if any: the
   * limit then starts again each day, week, month or rolling window) before the key exists. No key may be issued
   * for a tenant id starting with `latch-test:` (the test-mode namespace, see
   * {@link testModeSubject}), nor a test-mode key for a tenant id over 245 characters.
   *
   * @throws LatchValidationError naming the bad field (e.g. `quota.limit`, `scopes.0`).
   */
  async create(
    input: NewApiKeyInput,
    signal?: AbortSignal,
  ): Promise<{ key: ApiKeyRecord; plaintext: string }> {
    signal?.throwIfAborted();
    return this.#issue(parseWith(NewApiKeySchema, input, `${SUBJECT}.create`), undefined, "create", signal);
  }

  /**
   * Issues a key on behalf of `minter` (an authenticated key, e.g. `POST /api/billing/keys`),
   * least privilege: the new key's scopes are among the minter's; with a minter quota it has a
   * quota in the same unit (and currency) no larger; with a minter expiry it expires no later;
   * a test-mode minter mints test-mode keys only (`mode` defaults to the minter's); its owner
   * lies within the minter's. The key records `createdBy: minter.id`, so revoking the minter
   * revokes it (and what it mints in turn).
   *
   * A minter with a quota gives the new key's limit out of what it has left: the limit is
   * reserved on the minter's quota account and committed once the key is stored, so the keys
   * a minter issues never hold more than it had (a minter that spent its quota cannot mint a
   * fresh one). A quota given away is not returned when the minted key is revoked.
   *
   * Such a key's quota has no `period`: its limit is charged to the minter once, so a limit
   * that started again every day (or rolling window) would hand out more than the minter was
   * charged for, without bound. A minter without a quota (its own budget is unlimited) may mint
   * a key with any period, as may `create` (code, an admin path).
   *
   * @throws PrivilegeExceededError naming the first field beyond the minter's (`scopes.1`,
   *   `quota`, `quota.unit`, `quota.currency`, `quota.period`, `quota.limit`, `expiresAt`, `mode`,
   *   `owner.<field>`);
   *   `quota.limit` also when it exceeds what is left of the minter's quota.
   * @throws QuotaUnavailableError when the quota store does not answer (fails closed).
   * @throws LatchValidationError naming a bad field, as `create`.
   *
   * @example
   * const { key, plaintext } = await keys.mint(caller, { owner: caller.owner, name: "ci", scopes: ["billing:read"] });
   */
  async mint(
    minter: ApiKeyRecord,
    input: NewApiKeyInput,
    signal?: AbortSignal,
  ): Promise<{ key: ApiKeyRecord; plaintext: string }> {
    signal?.throwIfAborted();
    const parsed = parseWith(
      NewApiKeySchema,
      { ...input, mode: input.mode ?? minter.mode },
      `${SUBJECT}.mint`,
    );
    const excess = mintExcess(minter, parsed);
    if (excess !== undefined) throw new PrivilegeExceededError(excess);
    return this.#issue(parsed, minter, "mint", signal);
  }

  async #issue(
    parsed: NewApiKey,
    minter: ApiKeyRecord | undefined,
    method: string,
    signal: AbortSignal | undefined,
  ): Promise<{ key: ApiKeyRecord; plaintext: string }> {
    const at = `${SUBJECT}.${method}`;
    if (isTestModeTenant(parsed.owner.tenantId)) {
      throw LatchValidationError.at(
        at,
        "owner.tenantId",
        `must not start with ${TEST_MODE_TENANT_PREFIX} (test-mode data)`,
      );
    }
    if (parsed.mode === "test" && parsed.owner.tenantId.length > TEST_MODE_TENANT_MAX) {
      throw LatchValidationError.at(
        at,
        "owner.tenantId",
        `at most ${TEST_MODE_TENANT_MAX} characters for a test-mode key`,
      );
    }
    if (parsed.quota !== undefined && this.quota === undefined) {
      throw LatchValidationError.at(at, "quota", "no QuotaReservator is configured");
    }
    const now = this.#clock();
    if (parsed.expiresAt !== undefined && Date.parse(parsed.expiresAt) <= now) {
      throw LatchValidationError.at(at, "expiresAt", "must be in the future");
    }
    const record: ApiKeyRecord = {
      id: generateApiKeyId(),
      owner: parsed.owner,
      name: parsed.name,
      scopes: parsed.scopes,
      mode: parsed.mode,
      createdAt: new Date(now).toISOString(),
      ...(parsed.quota === undefined ? {} : { quota: parsed.quota }),
      ...(parsed.expiresAt === undefined ? {} : { expiresAt: parsed.expiresAt }),
      ...(minter === undefined ? {} : { createdBy: minter.id }),
    };
    // A minter with a quota gives the new key's limit out of what it has left (see `mint`):
    // held on its account now, committed once the key is stored, voided if it is not.
    const quota = this.quota;
    const given =
      minter?.quota !== undefined && parsed.quota !== undefined ? apiKeyQuotaUnits(parsed.quota) : 0;
    const holdId = `latch:mint:${record.id}`;
    if (minter !== undefined && given > 0 && quota !== undefined) {
      const held = await quota.reserve(
        { holdId, account: apiKeyQuotaAccount(minter.id), amount: given, ttlMs: 300_000 },
        signal,
      );
      if (!held.granted) {
        if (held.reason === "unavailable") {
          throw new QuotaUnavailableError({ reason: "the minter's quota could not be reserved" });
        }
        throw new PrivilegeExceededError({
          field: "quota.limit",
          reason: "must not exceed what is left of this API key's quota",
        });
      }
    }
    const plaintext = generateApiKey(parsed.mode);
    const digest = this.#hasher.digest(plaintext);
    try {
      if (parsed.quota !== undefined && quota !== undefined) {
        const { period } = parsed.quota;
        const account = apiKeyQuotaAccount(record.id);
        const units = apiKeyQuotaUnits(parsed.quota);
        // Without a period, the signal alone (the older signature every reservator takes).
        if (period === undefined) await quota.setLimit(account, units, signal);
        else
          await quota
            .setLimit(account, units, { period, ...(signal === undefined ? {} : { signal }) })
            .catch((error: unknown) => {
              throw periodRefusal(error, at);
            });
      }
      this.#absent.delete(digest);
      await this.store.insert(record, digest, signal);
    } catch (error) {
      if (given > 0) await quota?.void(holdId).catch(() => undefined);
      throw error;
    }
    // If this commit fails the plaintext is never handed out, and the hold lapses back to the minter.
    if (given > 0) await quota?.commit(holdId, given, signal);
    return { key: record, plaintext };
  }

  /**
   * Resolves a presented key (the `Bearer` token) to its record, or says why not. A
   * malformed key or a bad checksum costs no I/O; a well-formed key whose digest was looked
   * up and not found within the negative cache's TTL costs an HMAC and no store lookup.
   *
   * `knownOnly: true` looks up only a key that authenticated in this process within the last
   * 24 hours (at most 10,000 such keys are remembered); any other key is answered `unknown`
   * without a lookup. For a caller that must not cost lookups (a client over the failed-auth
   * limit) but whose real keys should keep working: a made-up key is never known, and a known
   * key is still read from the store, so a revoked or expired one is refused as always.
   */
  async authenticate(
    presented: string,
    signal?: AbortSignal,
    options: { knownOnly?: boolean } = {},
  ): Promise<ApiKeyAuthResult> {
    if (parseApiKey(presented) === undefined) return { ok: false, reason: "malformed" };
    const digest = this.#hasher.digest(presented);
    if (this.#absent.has(digest, this.#clock())) return { ok: false, reason: "unknown" };
    if (options.knownOnly === true && !this.#valid.has(digest, this.#clock()))
      return { ok: false, reason: "unknown" };
    const found = await this.store.findByDigest(digest, signal);
    if (found === undefined || !ApiKeyHasher.equal(found.digest, digest)) {
      this.#absent.add(digest, this.#clock());
      return { ok: false, reason: "unknown" };
    }
    const key = found.record;
    const now = this.#clock();
    const refused = this.#refusal(key, now);
    if (refused !== undefined) return { ok: false, reason: refused };
    this.#valid.add(digest, now);
    this.#touchLater(key, now);
    return { ok: true, key };
  }

  /**
   * Re-reads an authenticated key from the store and checks it again (revoked, expired, or
   * gone), without the plaintext: for long operations (a streamed export) that must stop
   * when their key stops being valid. Costs one store read; writes nothing.
   *
   * @example
   * const again = await keys.recheck(key); // { ok: false, reason: "revoked" } once revoked
   */
  async recheck(key: ApiKeyRecord, signal?: AbortSignal): Promise<ApiKeyAuthResult> {
    const current = await this.store.get(key.owner, key.id, signal);
    if (current === undefined) return { ok: false, reason: "unknown" };
    const refused = this.#refusal(current, this.#clock());
    return refused === undefined ? { ok: true, key: current } : { ok: false, reason: refused };
  }

  /** Why a stored key is no longer accepted at `now`, or undefined when it is. */
  #refusal(key: ApiKeyRecord, now: number): "revoked" | "expired" | undefined {
    if (key.revokedAt !== undefined) return "revoked";
    if (key.expiresAt !== undefined && now >= Date.parse(key.expiresAt)) return "expired";
    return undefined;
  }

  /** A key within `owner`, or undefined (also when it belongs to someone else). */
  get(owner: BillingSubject, id: string, signal?: AbortSignal): Promise<ApiKeyRecord | undefined> {
    return this.store.get(owner, id, signal);
  }

  /** Keys within `owner`, in id order. */
  list(owner: BillingSubject, options: ApiKeyListOptions, signal?: AbortSignal): Promise<ApiKeyPage> {
    return this.store.list(owner, options, signal);
  }

  /**
   * Revokes a key within `owner` (idempotent), and every key it minted, transitively; undefined
   * when there is no such key.
   */
  revoke(owner: BillingSubject, id: string, signal?: AbortSignal): Promise<ApiKeyRecord | undefined> {
    return this.store.revoke(owner, id, new Date(this.#clock()).toISOString(), signal);
  }

  /**
   * Revokes a key within `caller`'s owner on behalf of `caller` (an authenticated key), like
   * {@link ApiKeys.revoke}, but only a key `caller` holds every scope of (and, for a test-mode
   * caller, only a test-mode key): a `keys:write`-only key cannot revoke an admin key.
   * Undefined when there is no such key within the caller's owner.
   *
   * @throws PrivilegeExceededError naming `scopes` or `mode`.
   */
  async revokeAs(caller: ApiKeyRecord, id: string, signal?: AbortSignal): Promise<ApiKeyRecord | undefined> {
    const target = await this.store.get(caller.owner, id, signal);
    if (target === undefined) return undefined;
    const excess = revokeExcess(caller, target);
    if (excess !== undefined) throw new PrivilegeExceededError(excess);
    return this.revoke(caller.owner, id, signal);
  }

  /** The key's quota balance in reservator units, or undefined when it has no quota. */
  async quotaBalance(key: ApiKeyRecord, signal?: AbortSignal): Promise<QuotaBalance | undefined> {
    if (key.quota === undefined || this.quota === undefined) return undefined;
    return this.quota.balance(apiKeyQuotaAccount(key.id), signal);
  }

  /** Waits for the `lastUsedAt` writes started so far. */
  async flush(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  #touchLater(key: ApiKeyRecord, now: number): void {
    if (key.lastUsedAt !== undefined && now - Date.parse(key.lastUsedAt) < this.#interval) return;
    const last = this.#touched.get(key.id);
    if (last !== undefined && now - last < this.#interval) return;
    if (this.#touched.size >= 10_000) {
      for (const [id, at] of this.#touched) if (now - at >= this.#interval) this.#touched.delete(id);
    }
    this.#touched.set(key.id, now);
    const write = this.store
      .touch(key.id, new Date(now).toISOString(), this.#interval)
      .then(
        () => undefined,
        (error: unknown) => this.#onTouchError(error),
      )
      .finally(() => this.#pending.delete(write));
    this.#pending.add(write);
  }
}
