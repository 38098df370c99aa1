import {
  canonicalHash,
  HoldAlreadyResolvedError,
  IdempotencyConflictError,
  LatchError,
  LatchValidationError,
  OverflowError,
  parseWith,
  type QuotaAuthorizer,
  type QuotaBalance,
  type QuotaReservator,
  type ReserveRequest,
  type ReserveResult,
} from "@latch/core";
import { z } from "zod";
import { type RedisClient, toQuotaError, withTimeout } from "./client.js";
import { KeySpace } from "./keys.js";
import { defineScripts, luaStatus, replyInteger, replyString, runScript } from "./scripts.js";

const Name = z.string({ error: "expected a string" }).min(1, { error: "must not be empty" }).max(256, {
  error: "at most 256 characters",
});
const positiveUnits = (what: string) =>
  z
    .number({ error: `expected ${what}` })
    .int({ error: `expected ${what}` })
    .min(1, { error: `expected ${what}` })
    .max(Number.MAX_SAFE_INTEGER, { error: `expected ${what}` });
const nonNegativeUnits = (what: string) =>
  z
    .number({ error: `expected ${what}` })
    .int({ error: `expected ${what}` })
    .min(0, { error: `expected ${what}` })
    .max(Number.MAX_SAFE_INTEGER, { error: `expected ${what}` });

const AmountSchema = positiveUnits("a safe integer > 0");
const ActualSchema = nonNegativeUnits("a safe integer ≥ 0");
const LimitSchema = nonNegativeUnits("a safe integer ≥ 0");
const ReserveRequestSchema = z.strictObject({
  holdId: Name,
  account: Name,
  amount: AmountSchema,
  ttlMs: positiveUnits("a whole number of milliseconds > 0"),
});

const DAY_MS = 24 * 60 * 60 * 1_000;

// The identities a conflict reports, hashed like the in-memory reference. Redis stores the
// amounts themselves (the account is implied by the key), so hashes are only computed on conflict.
const requestHash = (account: string, amount: number) => canonicalHash({ account, amount });
const commitHash = (holdId: string, actual: number) => canonicalHash({ holdId, actual });
const OWNER_CACHE_LIMIT = 100_000;

interface Settled<T> {
  value?: T;
  error?: unknown;
}

/** Awaits both promises, whatever each does (no rejection is left unobserved). */
async function settleBoth<A, B>(a: Promise<A>, b: Promise<B>): Promise<[Settled<A>, Settled<B>]> {
  const settle = <T>(p: Promise<T>): Promise<Settled<T>> =>
    p.then(
      (value) => ({ value }),
      (error: unknown) => ({ error: error ?? new Error("rejected with nothing") }),
    );
  return Promise.all([settle(a), settle(b)]);
}

interface GrantedHold {
  account: string;
  /** Local time (ms) after which this entry is not trusted (the hold's records may be gone). */
  trustUntil: number;
  /**
   * Local time (ms) up to which a resolution needs no locator refresh: the locator this
   * object wrote at reserve lives `ttlMs + retention` from then.
   */
  locatorCoversUntil: number;
}

export interface RedisQuotaOptions {
  /** Prefix of every key (no `{` or `}`). Default `latch`. */
  keyPrefix?: string;
  /**
   * How long a resolved (committed or voided) hold's record, and the holdId → account
   * locator, are kept so that retries of `reserve`, `commit` and `void` stay idempotent.
   * An unresolved hold's record lives `ttlMs + holdRetentionMs`. After that the holdId is
   * unknown again. Default 7 days.
   */
  holdRetentionMs?: number;
  /**
   * Upper bound on one operation (all its round trips). Past it `reserve` denies with reason
   * `unavailable` and the other methods throw `quota_unavailable`. Default 1,000 ms. Also
   * configure the client with {@link failFastRedisOptions} so it never queues commands
   * behind a dead connection.
   */
  timeoutMs?: number;
}

/**
 * Two-phase quota ({@link QuotaReservator} and {@link QuotaAuthorizer}) on Redis or Redis
 * Cluster, with the contract's semantics exactly (see `@latch/core`'s `contracts/quota.ts`).
 * Each operation on an account is one atomic Lua script on the account's hash slot: the limit
 * is checked at reserve, holds expire by the Redis server's clock (`TIME`) and are released
 * lazily by the next script that touches the account, and a commit above the hold charges the
 * actual amount in full. Amounts are integer quota units; they travel to Redis as integer
 * strings and never pass through a Lua double above 2^53.
 *
 * Fails closed: when Redis does not answer within `timeoutMs`, `reserve` returns
 * `{ granted: false, reason: "unavailable" }` and the other methods throw `quota_unavailable`.
 *
 * @example
 * const redis = new Redis(process.env.REDIS_URL, failFastRedisOptions(500));
 * const quota = new RedisQuota(redis, { keyPrefix: "myapp", timeoutMs: 500 });
 * await quota.setLimit("acme", 10_000);
 * const r = await quota.reserve({ holdId: "req-1", account: "acme", amount: 2_000, ttlMs: 60_000 });
 * if (r.granted) await quota.commit("req-1", 1_234);
 */
export class RedisQuota implements QuotaReservator, QuotaAuthorizer {
  readonly #client: RedisClient;
  readonly #keys: KeySpace;
  readonly #retentionMs: number;
  readonly #timeoutMs: number;
  /** Holds this object granted (bounded): commit and void skip the locator read. */
  readonly #owners = new Map<string, GrantedHold>();

  constructor(client: RedisClient, options: RedisQuotaOptions = {}) {
    this.#client = client;
    this.#keys = new KeySpace(options.keyPrefix ?? "latch");
    this.#retentionMs = parseWith(
      positiveUnits("a whole number of milliseconds > 0"),
      options.holdRetentionMs ?? 7 * DAY_MS,
      "RedisQuota options",
      "holdRetentionMs",
    );
    this.#timeoutMs = parseWith(
      positiveUnits("a whole number of milliseconds > 0"),
      options.timeoutMs ?? 1_000,
      "RedisQuota options",
      "timeoutMs",
    );
    defineScripts(client);
  }

  async setLimit(account: string, limit: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const name = parseWith(Name, account, "QuotaReservator.setLimit", "account");
    const units = parseWith(LimitSchema, limit, "QuotaReservator.setLimit", "limit");
    await this.#guard(this.#client.hset(this.#keys.accountKeys(name).account, "limit", String(units)));
  }

  async balance(account: string, signal?: AbortSignal): Promise<QuotaBalance> {
    signal?.throwIfAborted();
    const name = parseWith(Name, account, "QuotaReservator.balance", "account");
    return this.#guard(this.#balance(name));
  }

  async check(
    account: string,
    amount: number,
    signal?: AbortSignal,
  ): Promise<{ allowed: boolean; remaining: number }> {
    signal?.throwIfAborted();
    const name = parseWith(Name, account, "QuotaAuthorizer.check", "account");
    const units = parseWith(AmountSchema, amount, "QuotaAuthorizer.check", "amount");
    const { available } = await this.#guard(this.#balance(name));
    return { allowed: units <= available, remaining: available };
  }

  async reserve(request: ReserveRequest, signal?: AbortSignal): Promise<ReserveResult> {
    signal?.throwIfAborted();
    const { holdId, account, amount, ttlMs } = parseWith(ReserveRequestSchema, request, "ReserveRequest");
    try {
      return await withTimeout(this.#reserve(holdId, account, amount, ttlMs), this.#timeoutMs);
    } catch (error) {
      const latchError = toQuotaError(error);
      // Fail closed: a store that cannot answer denies, with a reason saying so.
      if (latchError.code === "quota_unavailable") return { granted: false, reason: "unavailable" };
      throw latchError;
    }
  }

  async commit(holdId: string, actual: number, signal?: AbortSignal): Promise<{ committed: number }> {
    signal?.throwIfAborted();
    const id = parseWith(Name, holdId, "QuotaReservator.commit", "holdId");
    const units = parseWith(ActualSchema, actual, "QuotaReservator.commit", "actual");
    return this.#guard(this.#commit(id, units));
  }

  async void(holdId: string, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const id = parseWith(Name, holdId, "QuotaReservator.void", "holdId");
    await this.#guard(this.#void(id));
  }

  /** Runs `work` within the timeout; anything but a Latch error becomes `quota_unavailable`. */
  async #guard<T>(work: Promise<T>): Promise<T> {
    try {
      return await withTimeout(work, this.#timeoutMs);
    } catch (error) {
      throw toQuotaError(error);
    }
  }

  async #balance(account: string): Promise<QuotaBalance> {
    const keys = this.#keys.accountKeys(account);
    const reply = await runScript(this.#client, "balance", [keys.account, keys.expiry], []);
    const limit = replyInteger(reply[0], "balance.limit");
    const spent = replyInteger(reply[1], "balance.spent");
    const held = replyInteger(reply[2], "balance.held");
    return { limit, spent, held, available: Math.max(0, limit - spent - held) };
  }

  async #reserve(holdId: string, account: string, amount: number, ttlMs: number): Promise<ReserveResult> {
    const startedAt = Date.now();
    const recordTtlMs = String(BigInt(ttlMs) + BigInt(this.#retentionMs));
    const keys = this.#keys.accountKeys(account);
    const holdKeys = [keys.account, keys.expiry, this.#keys.holdRecord(account, holdId)];
    const runReserve = () =>
      runScript(this.#client, "reserve", holdKeys, [holdId, String(amount), String(ttlMs), recordTtlMs]);

    let reply: unknown[];
    let wroteLocator = false;
    if (this.#granted(holdId)?.account === account) {
      reply = await runReserve(); // a retry of a hold this object granted: its locator exists
    } else {
      // The locator claim and the reserve script go out together (one round trip); the rare
      // conflict they can reveal only afterwards is undone below.
      const locator = this.#keys.holdLocator(holdId);
      const [claim, reserved] = await settleBoth(
        this.#client.set(locator, account, "PX", recordTtlMs, "NX", "GET"),
        runReserve(),
      );
      const previous = claim.value;
      if (
        previous !== undefined &&
        previous !== null &&
        previous !== account &&
        reserved.value !== undefined
      ) {
        await this.#resolveClaimConflict(holdId, account, amount, previous, reserved.value, recordTtlMs);
      }
      if (claim.error !== undefined) {
        // No locator, so nobody could resolve a hold granted here: take it back (best effort;
        // if that fails too, the hold expires after ttlMs) and fail closed.
        if (reserved.value?.[0] === 1) await this.#unreserve(holdId, account, amount).catch(() => undefined);
        throw claim.error;
      }
      if (reserved.error !== undefined) throw reserved.error;
      reply = reserved.value as unknown[];
      wroteLocator = previous === null || (previous !== undefined && previous !== account);
    }

    const code = replyInteger(reply[0], "reserve.status");
    if (luaStatus(code) === "idempotency_conflict") {
      throw new IdempotencyConflictError({
        id: holdId,
        existingHash: requestHash(account, replyInteger(reply[1], "reserve.storedAmount")),
        incomingHash: requestHash(account, amount),
      });
    }
    const remaining = replyInteger(reply[1], "reserve.remaining");
    const granted = code === 1 || code === 2;
    // Remember holds whose locator this call wrote: it lives at least `ttlMs + retention`
    // from `startedAt`, so the entry can be trusted as long as the locator exists.
    if (granted && wroteLocator) {
      if (this.#owners.size >= OWNER_CACHE_LIMIT) this.#owners.clear();
      this.#owners.set(holdId, {
        account,
        trustUntil: startedAt + ttlMs + this.#retentionMs,
        locatorCoversUntil: startedAt + ttlMs,
      });
    }
    return granted ? { granted: true, remaining } : { granted: false, reason: "insufficient", remaining };
  }

  /**
   * The holdId's locator already names another account. When that account holds this holdId,
   * the request is an idempotency conflict: a hold the reserve script has just created here is
   * taken back, and the conflict thrown. Otherwise (a denied or long-gone reserve there) this
   * account takes the locator over.
   */
  async #resolveClaimConflict(
    holdId: string,
    account: string,
    amount: number,
    previous: string,
    reply: unknown[],
    recordTtlMs: string,
  ): Promise<void> {
    const stored = await this.#client.get(this.#keys.holdRecord(previous, holdId));
    if (stored === null) {
      await this.#client.set(this.#keys.holdLocator(holdId), account, "PX", recordTtlMs);
      return;
    }
    if (reply[0] === 1) await this.#unreserve(holdId, account, amount);
    throw new IdempotencyConflictError({
      id: holdId,
      existingHash: requestHash(previous, replyInteger(stored.split("|")[1], "hold.amount")),
      incomingHash: requestHash(account, amount),
    });
  }

  /** Takes back a hold the reserve script has just created (see unreserve-3.lua). */
  async #unreserve(holdId: string, account: string, amount: number): Promise<void> {
    const keys = this.#keys.accountKeys(account);
    await runScript(
      this.#client,
      "unreserve",
      [keys.account, keys.expiry, this.#keys.holdRecord(account, holdId)],
      [holdId, String(amount)],
    );
  }

  #granted(holdId: string): GrantedHold | undefined {
    const granted = this.#owners.get(holdId);
    if (granted !== undefined && Date.now() > granted.trustUntil) {
      this.#owners.delete(holdId);
      return undefined;
    }
    return granted;
  }

  async #accountOf(holdId: string, subject: string): Promise<{ account: string; cached: boolean }> {
    const known = this.#granted(holdId);
    if (known !== undefined) return { account: known.account, cached: true };
    const account = await this.#client.get(this.#keys.holdLocator(holdId));
    if (account === null) throw LatchValidationError.at(subject, "holdId", "no hold with this id");
    return { account, cached: false };
  }

  /**
   * After a hold resolves, its locator must outlive the resolved record's retention so that
   * retries still find it. A locator set by this process at reserve already lives
   * `ttlMs + retention`, which covers a resolution within `ttlMs`; otherwise extend it.
   */
  async #keepLocator(holdId: string, cached: boolean): Promise<void> {
    if (cached && Date.now() <= (this.#granted(holdId)?.locatorCoversUntil ?? 0)) return;
    await this.#client.pexpire(this.#keys.holdLocator(holdId), this.#retentionMs);
  }

  async #commit(holdId: string, actual: number): Promise<{ committed: number }> {
    const subject = "QuotaReservator.commit";
    const { account, cached } = await this.#accountOf(holdId, subject);
    const keys = this.#keys.accountKeys(account);
    const reply = await runScript(
      this.#client,
      "commit",
      [keys.account, keys.expiry, this.#keys.holdRecord(account, holdId)],
      [holdId, String(actual), String(this.#retentionMs)],
    );
    const status = luaStatus(replyInteger(reply[0], "commit.status"));
    switch (status) {
      case undefined:
        await this.#keepLocator(holdId, cached);
        return { committed: replyInteger(reply[1], "commit.committed") };
      case "idempotency_conflict":
        throw new IdempotencyConflictError({
          id: holdId,
          existingHash: commitHash(holdId, replyInteger(reply[1], "commit.storedActual")),
          incomingHash: commitHash(holdId, actual),
        });
      case "unknown_hold":
        throw LatchValidationError.at(subject, "holdId", "no hold with this id");
      case "hold_already_resolved":
        throw new HoldAlreadyResolvedError({ holdId, state: replyString(reply[1], "commit.state") });
      case "overflow":
        throw new OverflowError({ path: "actual", reason: "the account's spend would exceed 2^53-1" });
      default:
        throw new LatchError({
          code: "corrupt_record",
          message: `commit of hold ${holdId} returned ${status}`,
        });
    }
  }

  async #void(holdId: string): Promise<void> {
    const subject = "QuotaReservator.void";
    const { account, cached } = await this.#accountOf(holdId, subject);
    const keys = this.#keys.accountKeys(account);
    const reply = await runScript(
      this.#client,
      "void",
      [keys.account, keys.expiry, this.#keys.holdRecord(account, holdId)],
      [holdId, String(this.#retentionMs)],
    );
    const code = replyInteger(reply[0], "void.status");
    switch (luaStatus(code)) {
      case undefined:
        if (code === 1) await this.#keepLocator(holdId, cached);
        return;
      case "unknown_hold":
        throw LatchValidationError.at(subject, "holdId", "no hold with this id");
      case "hold_already_resolved":
        throw new HoldAlreadyResolvedError({ holdId, state: replyString(reply[1], "void.state") });
      default:
        throw new LatchError({
          code: "corrupt_record",
          message: `void of hold ${holdId} returned status ${code}`,
        });
    }
  }
}
