import {
  QuotaActualSchema as ActualSchema,
  QuotaAmountSchema as AmountSchema,
  canonicalHash,
  HoldAlreadyResolvedError,
  IdempotencyConflictError,
  LatchError,
  LatchValidationError,
  QuotaLimitSchema as LimitSchema,
  QuotaNameSchema as Name,
  OverflowError,
  parseWith,
  type QuotaAuthorizer,
  type QuotaBalance,
  type QuotaReservator,
  type ReserveRequest,
  ReserveRequestSchema,
  type ReserveResult,
} from "@latch/core";
import { type RedisClient, toQuotaError, withTimeout } from "./client.js";
import { KeySpace } from "./keys.js";
import { defineScripts, luaStatus, replyInteger, replyString, runScript } from "./scripts.js";

/** Option durations: whole milliseconds > 0 (the same rule as a hold's ttlMs). */
const MillisecondsSchema = ReserveRequestSchema.shape.ttlMs;

const DAY_MS = 24 * 60 * 60 * 1_000;

// Hot-path pre-checks. Each accepts only values its schema above accepts unchanged, so a
// valid call skips zod; anything else goes through the schema, which owns every message.
const isName = (value: unknown): value is string =>
  typeof value === "string" && value.length >= 1 && value.length <= 256;
const isUnits = (value: unknown, min: number): value is number =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= min;
/** A plain object with exactly the four fields of a reserve request, each valid. */
function isReserveRequest(value: unknown): value is ReserveRequest {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  const r = value as Record<string, unknown>;
  let fields = 0;
  for (const key in r) {
    if (key !== "holdId" && key !== "account" && key !== "amount" && key !== "ttlMs") return false;
    fields++;
  }
  return fields === 4 && isName(r.holdId) && isName(r.account) && isUnits(r.amount, 1) && isUnits(r.ttlMs, 1);
}

// The identities a conflict reports, hashed like the in-memory reference. Redis stores the
// amounts themselves (the account is implied by the key), so hashes are only computed on conflict.
const requestHash = (account: string, amount: number) => canonicalHash({ account, amount });
const commitHash = (holdId: string, actual: number) => canonicalHash({ holdId, actual });
const OWNER_CACHE_LIMIT = 100_000;
/** Calls of reserveLocated-5 per reserve: a locator moves at most once or twice (see there). */
const LOCATOR_ATTEMPTS = 4;

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
  /** A standalone server: the locator is written inside the reserve script (one command). */
  readonly #standalone: boolean;
  /** Holds this object granted (bounded): commit and void skip the locator read. */
  readonly #owners = new Map<string, GrantedHold>();

  constructor(client: RedisClient, options: RedisQuotaOptions = {}) {
    this.#client = client;
    this.#standalone = !client.isCluster;
    this.#keys = new KeySpace(options.keyPrefix ?? "latch");
    this.#retentionMs = parseWith(
      MillisecondsSchema,
      options.holdRetentionMs ?? 7 * DAY_MS,
      "RedisQuota options",
      "holdRetentionMs",
    );
    this.#timeoutMs = parseWith(
      MillisecondsSchema,
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
    const { holdId, account, amount, ttlMs } = isReserveRequest(request)
      ? request
      : parseWith(ReserveRequestSchema, request, "ReserveRequest");
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
    const id = isName(holdId) ? holdId : parseWith(Name, holdId, "QuotaReservator.commit", "holdId");
    const units = isUnits(actual, 0)
      ? actual
      : parseWith(ActualSchema, actual, "QuotaReservator.commit", "actual");
    return this.#guard(this.#commit(id, units));
  }

  async void(holdId: string, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const id = isName(holdId) ? holdId : parseWith(Name, holdId, "QuotaReservator.void", "holdId");
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
    // Each is ≤ 2^53-1 but their sum may not be: then add exactly, as BigInt.
    const sum = ttlMs + this.#retentionMs;
    const recordTtlMs = Number.isSafeInteger(sum)
      ? String(sum)
      : String(BigInt(ttlMs) + BigInt(this.#retentionMs));
    const { reply, wroteLocator } = this.#standalone
      ? await this.#reserveLocated(holdId, account, amount, ttlMs, recordTtlMs)
      : await this.#reserveBeside(holdId, account, amount, ttlMs, recordTtlMs);

    const code = replyInteger(reply[0], "reserve.status");
    if (code === -1) {
      // {-1, stored} on this account, or {-1, stored, owner} when another account holds it.
      const owner = reply.length > 2 ? replyString(reply[2], "reserve.owner") : account;
      throw new IdempotencyConflictError({
        id: holdId,
        existingHash: requestHash(owner, replyInteger(reply[1], "reserve.storedAmount")),
        incomingHash: requestHash(account, amount),
      });
    }
    if (code < 0 || code > 2) {
      throw new LatchError({ code: "corrupt_record", message: `reserve of hold ${holdId} returned ${code}` });
    }
    const remaining = replyInteger(reply[1], "reserve.remaining");
    if (code === 0) return { granted: false, reason: "insufficient", remaining };
    // Remember holds whose locator this call wrote: it lives at least `ttlMs + retention`
    // from `startedAt`, so the entry can be trusted as long as the locator exists.
    if (wroteLocator) {
      if (this.#owners.size >= OWNER_CACHE_LIMIT) this.#owners.clear();
      this.#owners.set(holdId, {
        account,
        trustUntil: startedAt + ttlMs + this.#retentionMs,
        locatorCoversUntil: startedAt + ttlMs,
      });
    }
    return { granted: true, remaining };
  }

  /**
   * A standalone server (no hash slots): one script checks and writes the locator and
   * reserves (`reserveLocated-5.lua`). When the locator names another account, the script
   * answers {-7, owner} without writing, and is called again with that account's record of
   * the holdId in KEYS, which it checks atomically (conflict, or take the locator over).
   */
  async #reserveLocated(
    holdId: string,
    account: string,
    amount: number,
    ttlMs: number,
    recordTtlMs: string,
  ): Promise<{ reply: unknown[]; wroteLocator: boolean }> {
    const keys = this.#keys.accountKeys(account);
    const record = this.#keys.holdRecord(account, holdId);
    const locator = this.#keys.holdLocator(holdId);
    const args = [holdId, String(amount), String(ttlMs), recordTtlMs, account, ""];
    let ownerRecord = record;
    for (let attempt = 0; attempt < LOCATOR_ATTEMPTS; attempt++) {
      const reply = await runScript(
        this.#client,
        "reserveLocated",
        [keys.account, keys.expiry, record, locator, ownerRecord],
        args,
      );
      // The script writes the locator exactly when it grants (1 new, 2 retry).
      if (reply[0] !== -7) return { reply, wroteLocator: reply[0] === 1 || reply[0] === 2 };
      const owner = replyString(reply[1], "reserve.owner");
      args[5] = owner;
      ownerRecord = this.#keys.holdRecord(owner, holdId);
    }
    // Only concurrent reserves of one holdId for several accounts (a caller bug) get here.
    throw new Error(`the locator of hold ${holdId} kept naming other accounts`);
  }

  /**
   * A Cluster: the locator lives in the holdId's slot, so it is claimed with `SET … NX GET`
   * sent beside the reserve script (one round trip, two commands).
   */
  async #reserveBeside(
    holdId: string,
    account: string,
    amount: number,
    ttlMs: number,
    recordTtlMs: string,
  ): Promise<{ reply: unknown[]; wroteLocator: boolean }> {
    const keys = this.#keys.accountKeys(account);
    const holdKeys = [keys.account, keys.expiry, this.#keys.holdRecord(account, holdId)];
    const runReserve = () =>
      runScript(this.#client, "reserve", holdKeys, [holdId, String(amount), String(ttlMs), recordTtlMs]);

    if (this.#granted(holdId)?.account === account) {
      // A retry of a hold this object granted: its locator exists.
      return { reply: await runReserve(), wroteLocator: false };
    }
    // The locator claim and the reserve script go out together (one round trip); the rare
    // conflict they can reveal only afterwards is undone below.
    const locator = this.#keys.holdLocator(holdId);
    const [claim, reserved] = await settleBoth(
      this.#client.set(locator, account, "PX", recordTtlMs, "NX", "GET"),
      runReserve(),
    );
    const previous = claim.value;
    if (previous !== undefined && previous !== null && previous !== account && reserved.value !== undefined) {
      await this.#resolveClaimConflict(holdId, account, amount, previous, reserved.value, recordTtlMs);
    }
    if (claim.error !== undefined) {
      // No locator, so nobody could resolve a hold granted here: take it back (best effort;
      // if that fails too, the hold expires after ttlMs) and fail closed.
      if (reserved.value?.[0] === 1) await this.#unreserve(holdId, account, amount).catch(() => undefined);
      throw claim.error;
    }
    if (reserved.error !== undefined) throw reserved.error;
    return {
      reply: reserved.value as unknown[],
      wroteLocator: previous === null || (previous !== undefined && previous !== account),
    };
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

  async #accountOf(holdId: string, subject: string): Promise<{ account: string; known?: GrantedHold }> {
    const known = this.#granted(holdId);
    if (known !== undefined) return { account: known.account, known };
    const account = await this.#client.get(this.#keys.holdLocator(holdId));
    if (account === null) throw LatchValidationError.at(subject, "holdId", "no hold with this id");
    return { account };
  }

  /**
   * Runs a resolving script (commit, void). After a hold resolves, its locator must outlive
   * the resolved record's retention so that retries still find it. A locator this object
   * wrote at reserve already lives `ttlMs + retention`, which covers a resolution within
   * `ttlMs`; otherwise a `PEXPIRE … GT` goes out beside the script (same round trip). GT only
   * ever lengthens the locator's life, so it is harmless when the script then fails.
   */
  async #resolving(
    holdId: string,
    known: GrantedHold | undefined,
    script: Promise<unknown[]>,
  ): Promise<unknown[]> {
    if (known !== undefined && Date.now() <= known.locatorCoversUntil) return script;
    const [reply, kept] = await settleBoth(
      script,
      this.#client.pexpire(this.#keys.holdLocator(holdId), this.#retentionMs, "GT"),
    );
    if (reply.error !== undefined) throw reply.error;
    if (kept.error !== undefined) throw kept.error;
    return reply.value as unknown[];
  }

  async #commit(holdId: string, actual: number): Promise<{ committed: number }> {
    const subject = "QuotaReservator.commit";
    const { account, known } = await this.#accountOf(holdId, subject);
    const keys = this.#keys.accountKeys(account);
    const reply = await this.#resolving(
      holdId,
      known,
      runScript(
        this.#client,
        "commit",
        [keys.account, keys.expiry, this.#keys.holdRecord(account, holdId)],
        [holdId, String(actual), String(this.#retentionMs)],
      ),
    );
    const status = luaStatus(replyInteger(reply[0], "commit.status"));
    switch (status) {
      case undefined:
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
    const { account, known } = await this.#accountOf(holdId, subject);
    const keys = this.#keys.accountKeys(account);
    const reply = await this.#resolving(
      holdId,
      known,
      runScript(
        this.#client,
        "void",
        [keys.account, keys.expiry, this.#keys.holdRecord(account, holdId)],
        [holdId, String(this.#retentionMs)],
      ),
    );
    const code = replyInteger(reply[0], "void.status");
    switch (luaStatus(code)) {
      case undefined:
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
