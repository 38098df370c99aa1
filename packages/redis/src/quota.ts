import { randomBytes } from "node:crypto";
import { LatchValidationError } from "@latch/core";
import {
  QuotaActualSchema as ActualSchema,
  QuotaAmountSchema as AmountSchema,
  canonicalHash,
  HoldRetentionMsSchema,
  isQuotaName,
  isQuotaUnits,
  QuotaLimitSchema as LimitSchema,
  QuotaNameSchema as Name,
  parseReserveRequest,
  parseSetLimitOptions,
  parseWith,
  type QuotaAuthorizer,
  type QuotaBalance,
  type QuotaReservator,
  quotaPeriodBounds,
  type ReserveRequest,
  type ReserveResult,
  type SetLimitOptions,
  type StoredQuotaPeriod,
} from "@latch/core/adapter";
import { CorruptRecordError, IdempotencyConflictError } from "@latch/core/errors";
import { Deadlines, type RedisClient, toQuotaError } from "./client.js";
import { type AccountKeys, KeySpace } from "./keys.js";
import type { CommitKeys, CommitReply, LuaScripts, ReserveReply, VoidReply } from "./lua/generated.js";
import { isFailure, scriptError, statusOf } from "./script-errors.js";
import { defineScripts, replyInteger, replyString } from "./scripts.js";
import { checkEvictionPolicy } from "./server-check.js";
import { isTransient, retrying, sendWithin } from "./transient.js";
import { UnsafeServerSettingError } from "./unsafe-server-setting-error.js";

/** Option durations: whole milliseconds > 0 (the rule of `holdRetentionMs`). */
const MillisecondsSchema = HoldRetentionMsSchema;

/** Default `holdRetentionMs`: one hour (see the option). */
const DEFAULT_RETENTION_MS = 60 * 60 * 1_000;

// Hot-path pre-checks (`isQuotaName`, `isQuotaUnits`, core's, shared with the in-memory store):
// each accepts only values its schema accepts unchanged, so a valid call skips zod; anything
// else goes through the schema, which owns every message.

// The identities a conflict reports, hashed like the in-memory reference. Redis stores the
// amounts themselves (the account is implied by the key), so hashes are only computed on conflict.
const requestHash = (account: string, amount: number) => canonicalHash({ account, amount });
const commitHash = (holdId: string, actual: number) => canonicalHash({ holdId, actual });
const OWNER_CACHE_LIMIT = 100_000;
const ACCOUNT_KEYS_CACHE_LIMIT = 10_000;
/** Calls of a resolving script per commit/void: a holdId changes account at most rarely. */
const RESOLVE_ATTEMPTS = 4;
/** Calls of a script whose account's calendar period ended (each rolls it once first). */
const PERIOD_ATTEMPTS = 3;

/** Whether a script's reply says the account's calendar period ended: `{-9, now, every, zone}`. */
const periodEnded = (reply: unknown): reply is readonly [-9, unknown, unknown, unknown] =>
  Array.isArray(reply) && reply.length === 4 && Number(reply[0]) === -9;

/** The calendar period a `{-9, now, every, zone}` reply names, and that server time. */
function endedPeriod(
  reply: readonly unknown[],
  id: string,
): { period: { every: "day" | "week" | "month"; timeZone: string }; now: number } {
  const every = replyString(reply[2], "period.every");
  if (every !== "day" && every !== "week" && every !== "month") {
    throw new CorruptRecordError({ id, reason: "the account's period is malformed" });
  }
  return {
    period: { every, timeZone: replyString(reply[3], "period.zone") },
    now: replyInteger(reply[1], "period.now"),
  };
}

/** The account of a hold record `<state>|<amount>|<actual>|<account>` (the rest after the third `|`). */
function accountOfRecord(record: string, holdId: string): string {
  let at = -1;
  for (let i = 0; i < 3; i++) {
    at = record.indexOf("|", at + 1);
    if (at < 0) throw new CorruptRecordError({ id: holdId, reason: "the hold's record is malformed" });
  }
  return record.slice(at + 1);
}

/**
 * Reserve calls abandoned (answered "unavailable") whose work has not settled, at most this
 * many remembered (see `#abandoned`).
 */
const ABANDONED_LIMIT = 100_000;

// Each reserve call's token (reserve-3.lua ARGV[6]): this process's random prefix and a
// counter, so no two calls anywhere share one (base64url and base 36: never a "|").
const TOKEN_PREFIX = randomBytes(6).toString("base64url");
let tokenCount = 0;
const nextToken = (): string => TOKEN_PREFIX + (++tokenCount).toString(36);

/** Whether a reserve script's reply says it has just created the hold (a plain integer). */
const isNewHold = (reply: ReserveReply | undefined): boolean => typeof reply === "number";

const NO_AMOUNT = "";

/** Fail closed: a store that cannot answer denies, with a reason saying so. */
function failClosed(error: unknown): ReserveResult {
  const latchError = toQuotaError(error);
  if (latchError.code === "quota_unavailable") return { granted: false, reason: "unavailable" };
  throw latchError;
}

/** A rejection's error as a Latch error (`quota_unavailable` unless it is one already), thrown. */
function throwQuotaError(error: unknown): never {
  throw toQuotaError(error);
}

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
  /** The hold's amount (sent with commit and void: see commit-4.lua). */
  amount: number;
  /**
   * Local time (ms) after which this entry is not trusted: until then the hold's record lives
   * (it lives at least `holdRetentionMs` from the reserve), so a record that is gone was lost
   * (evicted, or a failover), never expired, and no other account can have taken the holdId.
   */
  trustUntil: number;
  /**
   * Cluster: local time (ms) up to which a resolution needs no locator refresh: the locator
   * this object wrote at reserve lives `ttlMs + retention` from then.
   */
  locatorCoversUntil: number;
}

export interface RedisQuotaOptions {
  /** Prefix of every key (no `{` or `}`). Default `latch`. */
  keyPrefix?: string;
  /**
   * How long a resolved (committed or voided) hold's record, and the holdId → account
   * locator, are kept so that retries of `reserve`, `commit` and `void` stay idempotent.
   * An unresolved hold's record lives `ttlMs + holdRetentionMs` (a commit after expiry still
   * charges within that window). After that the holdId is unknown again. Default 1 hour:
   * storage is about 200 bytes × resolutions per second × retention (≈ 0.7 GiB at 1,000
   * commits/s); raise it only if retries or a reconciliation may come later than that.
   */
  holdRetentionMs?: number;
  /**
   * Upper bound on one operation (all its round trips). Past it `reserve` denies with reason
   * `unavailable` and the other methods throw `quota_unavailable`. Default 1,000 ms. Also
   * configure the client with {@link failFastRedisOptions} so it never queues commands
   * behind a dead connection.
   */
  timeoutMs?: number;
  /**
   * Start on a server whose `maxmemory-policy` can evict keys (`allkeys-*`, `volatile-*`), or
   * whose policy cannot be read. Default false: the first call (or {@link RedisQuota.ready})
   * checks every node and throws {@link UnsafeServerSettingError} unless it is `noeviction`.
   * With true, no check runs and the scripts keep a settled marker (no TTL) for each resolved
   * hold, so an evicted hold record is neither charged twice nor granted twice; see the README
   * for what stays unsafe (`allkeys-*` can evict limits and spend).
   */
  allowEvictingPolicy?: boolean;
}

/**
 * Two-phase quota ({@link QuotaReservator} and {@link QuotaAuthorizer}) on Redis or Redis
 * Cluster, with the contract's semantics exactly (see `@latch/core`'s `contracts/quota.ts`).
 * Each operation on an account is one atomic Lua script on the account's hash slot: the limit
 * is checked at reserve, holds expire by the Redis server's clock (`TIME`) and are released
 * lazily by the next script that touches the account, and a commit above the hold charges the
 * actual amount in full. Amounts are integer quota units; they travel to Redis as integer
 * strings and never pass through a Lua double above 2^53. Budget periods (`setLimit`'s
 * `period`) roll by the server's clock too; a calendar period's bounds are computed here
 * (Intl) for the server's time when a script reports the period ended (see the README).
 *
 * Fails closed: when Redis does not answer within `timeoutMs`, `reserve` returns
 * `{ granted: false, reason: "unavailable" }` and the other methods throw `quota_unavailable`.
 * Within `timeoutMs` a call waits for a client that is not ready yet, and sends again after a
 * refusal that passes by itself (`TRYAGAIN`, `CLUSTERDOWN`, `LOADING`, …) or a lost connection
 * (every operation is idempotent).
 *
 * Refuses to start (throws {@link UnsafeServerSettingError}) on a server whose
 * `maxmemory-policy` can evict its keys, unless `allowEvictingPolicy` is set.
 *
 * @example
 * const redis = new Redis(process.env.REDIS_URL, failFastRedisOptions(500));
 * const quota = new RedisQuota(redis, { keyPrefix: "myapp", timeoutMs: 500 });
 * await quota.ready(); // throws UnsafeServerSettingError on maxmemory-policy volatile-lru
 * await quota.setLimit("acme", 10_000);
 * const r = await quota.reserve({ holdId: "req-1", account: "acme", amount: 2_000, ttlMs: 60_000 });
 * if (r.granted) await quota.commit("req-1", 1_234);
 */
export class RedisQuota implements QuotaReservator, QuotaAuthorizer {
  readonly #client: RedisClient;
  /** The Lua scripts, one typed method each (see src/lua/generated.ts). */
  readonly #scripts: LuaScripts;
  readonly #keys: KeySpace;
  readonly #retentionMs: number;
  /** `holdRetentionMs` as the script argument. */
  readonly #retentionArg: string;
  readonly #timeoutMs: number;
  /** `allowEvictingPolicy`: no server check, and the scripts keep settled markers. */
  readonly #tolerant: boolean;
  /** True once the server check has passed (or was skipped): the hot path tests only this. */
  #checked: boolean;
  /** The server check in progress, shared by the calls that wait for it. */
  #checking: Promise<void> | undefined;
  /** The check's refusal: every later call throws it. */
  #refused: UnsafeServerSettingError | undefined;
  /** One timer for every pending operation's `timeoutMs` (not one per call). */
  readonly #deadlines: Deadlines;
  /** A standalone server: one record key per holdId, which also names its account. */
  readonly #standalone: boolean;
  /**
   * Unresolved holds this object granted (bounded), so its commit and void skip the account
   * lookup and can still charge a hold whose record was lost. Trusted only for a while (see
   * {@link GrantedHold}); on a standalone server the scripts also check the account against
   * the record (a stale one costs a second script call, never a wrong answer).
   */
  readonly #owners = new Map<string, GrantedHold>();
  /** The keys of recently used accounts (bounded), so the hot path does not rebuild them. */
  readonly #accountKeys = new Map<string, AccountKeys>();
  /**
   * Tokens of reserve calls answered "unavailable" whose work has not settled yet: a late grant
   * of one is not remembered in `#owners` (see `#abandon`). Bounded by ABANDONED_LIMIT.
   */
  readonly #abandoned = new Set<string>();
  /** The last ttlMs seen by reserve and its record TTL (`ttlMs + retention`) as an argument. */
  #lastTtl = { ttlMs: "", recordTtlMs: "" };

  constructor(client: RedisClient, options: RedisQuotaOptions = {}) {
    this.#client = client;
    this.#standalone = !client.isCluster;
    this.#keys = new KeySpace(options.keyPrefix ?? "latch");
    this.#retentionMs = parseWith(
      MillisecondsSchema,
      options.holdRetentionMs ?? DEFAULT_RETENTION_MS,
      "RedisQuota options",
      "holdRetentionMs",
    );
    this.#retentionArg = String(this.#retentionMs);
    this.#timeoutMs = parseWith(
      MillisecondsSchema,
      options.timeoutMs ?? 1_000,
      "RedisQuota options",
      "timeoutMs",
    );
    this.#deadlines = new Deadlines(this.#timeoutMs);
    if (options.allowEvictingPolicy !== undefined && typeof options.allowEvictingPolicy !== "boolean") {
      throw LatchValidationError.at("RedisQuota options", "allowEvictingPolicy", "must be a boolean");
    }
    this.#tolerant = options.allowEvictingPolicy === true;
    this.#checked = this.#tolerant;
    this.#scripts = defineScripts(client);
  }

  /**
   * Waits (within `timeoutMs`) until the client is ready and the server has passed the
   * start-up check: every node's `maxmemory-policy` is `noeviction` (read with `CONFIG GET`,
   * else from `INFO memory`). Throws {@link UnsafeServerSettingError} when it is not (or
   * cannot be read), unless `allowEvictingPolicy` is set; `quota_unavailable` when the server
   * does not answer (call again). Optional: the first call of any other method runs the same
   * check and throws the same error; call it at start-up to fail there instead.
   *
   * @example
   * const quota = new RedisQuota(redis, { keyPrefix: "myapp" });
   * await quota.ready();
   */
  async ready(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    await this.#guard(this.#verified(Date.now() + this.#timeoutMs));
  }

  /** Resolves once the server check has passed; joins a check in progress. */
  #verified(until: number): Promise<void> {
    if (this.#checked) return Promise.resolve();
    if (this.#refused !== undefined) return Promise.reject(this.#refused);
    if (this.#checking === undefined) {
      const checking = checkEvictionPolicy(this.#client, until).then(
        () => {
          this.#checked = true;
        },
        (error: unknown) => {
          if (error instanceof UnsafeServerSettingError) this.#refused = error;
          throw error;
        },
      );
      this.#checking = checking;
      // A transient failure (no answer) is not remembered: the next call checks again.
      checking.then(
        () => undefined,
        () => {
          if (this.#checking === checking) this.#checking = undefined;
        },
      );
    }
    return this.#checking;
  }

  /** `work()` once the server check has passed (the check first, on the first calls only). */
  #afterCheck<T>(until: number, work: () => Promise<T>): Promise<T> {
    return this.#checked ? work() : this.#verified(until).then(work);
  }

  /** Sends `send()` when the client is ready, again after transient errors, until `until`. */
  #send<T>(until: number, send: () => Promise<T>): Promise<T> {
    return sendWithin(this.#client, until, isTransient, send);
  }

  /**
   * Sets the limit and, with `options.period`, the budget period (setLimit-1.lua). A calendar
   * period's bounds are computed here with Intl's time-zone data for the server's time: the
   * script checks that they contain its `TIME` and answers that time otherwise.
   */
  async setLimit(account: string, limit: number, options?: SetLimitOptions | AbortSignal): Promise<void> {
    const { period, signal } = parseSetLimitOptions(options, "QuotaReservator.setLimit");
    signal?.throwIfAborted();
    const name = parseWith(Name, account, "QuotaReservator.setLimit", "account");
    const units = parseWith(LimitSchema, limit, "QuotaReservator.setLimit", "limit");
    const until = Date.now() + this.#timeoutMs;
    const key = this.#keys.accountKeys(name).account;
    // Without a period nothing but the limit changes: one HSET, as before periods existed.
    const write =
      period === undefined
        ? () => this.#client.hset(key, "limit", String(units))
        : () => this.#setLimit(key, units, period);
    await this.#guard(this.#afterCheck(until, () => this.#send<unknown>(until, write)));
  }

  async #setLimit(key: string, limit: number, period: StoredQuotaPeriod | null): Promise<void> {
    let at = Date.now();
    for (let attempt = 1; ; attempt++) {
      let args = { limit: String(limit), mode: "none", zone: "", start: "", end: "" };
      if (period !== null && "rollingMs" in period) {
        args = { ...args, mode: "rolling", zone: String(period.rollingMs) };
      } else if (period !== null) {
        const { start, end } = quotaPeriodBounds(period, at);
        args = { ...args, mode: period.every, zone: period.timeZone, start: String(start), end: String(end) };
      }
      const reply = await this.#scripts.setLimit({ account: key }, args);
      if (!isFailure(reply)) return;
      if (!periodEnded(reply) || attempt >= PERIOD_ATTEMPTS) {
        throw scriptError("setLimit", reply, { subject: "QuotaReservator.setLimit", id: key });
      }
      at = replyInteger(reply[1], "setLimit.now"); // our clock and the server's disagree: use its
    }
  }

  /**
   * `send()`, and when its script answers that the account's calendar period ended
   * (`{-9, now, every, zone}`), rolls the period (rollPeriod-1.lua, bounds for the server's
   * `now`) and sends again, a few times at most; then the last reply stands.
   */
  #rolled<R>(accountKey: string, send: () => Promise<R>, attempt = 1): Promise<R> {
    // Not async: the common reply goes straight through (one promise layer, as before periods).
    return send().then((reply) => this.#afterReply(accountKey, send, reply, attempt));
  }

  /** {@link #rolled} once `send()`'s `attempt`-th reply is there. */
  #afterReply<R>(accountKey: string, send: () => Promise<R>, reply: R, attempt: number): R | Promise<R> {
    return !periodEnded(reply) || attempt >= PERIOD_ATTEMPTS
      ? reply
      : this.#roll(accountKey, endedPeriod(reply, accountKey)).then(() =>
          this.#rolled(accountKey, send, attempt + 1),
        );
  }

  /** Runs rollPeriod-1.lua with the bounds of `ended` (again, for the server's later time, if they missed it). */
  async #roll(
    accountKey: string,
    ended: { period: { every: "day" | "week" | "month"; timeZone: string }; now: number },
  ): Promise<void> {
    let current = ended;
    for (let roll = 1; roll <= PERIOD_ATTEMPTS; roll++) {
      const { start, end } = quotaPeriodBounds(current.period, current.now);
      const rolled = await this.#scripts.rollPeriod(
        { account: accountKey },
        {
          every: current.period.every,
          zone: current.period.timeZone,
          start: String(start),
          end: String(end),
        },
      );
      if (!periodEnded(rolled)) return;
      current = endedPeriod(rolled, accountKey);
    }
  }

  async balance(account: string, signal?: AbortSignal): Promise<QuotaBalance> {
    signal?.throwIfAborted();
    const name = parseWith(Name, account, "QuotaReservator.balance", "account");
    const until = Date.now() + this.#timeoutMs;
    return this.#guard(this.#afterCheck(until, () => this.#balance(name, until)));
  }

  async check(
    account: string,
    amount: number,
    signal?: AbortSignal,
  ): Promise<{ allowed: boolean; remaining: number }> {
    signal?.throwIfAborted();
    const name = parseWith(Name, account, "QuotaAuthorizer.check", "account");
    const units = parseWith(AmountSchema, amount, "QuotaAuthorizer.check", "amount");
    const until = Date.now() + this.#timeoutMs;
    const { available } = await this.#guard(this.#afterCheck(until, () => this.#balance(name, until)));
    return { allowed: units <= available, remaining: available };
  }

  /**
   * A reserve answered "unavailable" leaves no hold behind: each call sends its own token to the
   * script, which the hold's record keeps until another call answers that hold; the call
   * answered "unavailable" then takes back the hold only if its record still carries that
   * token, or leaves a tombstone that refuses its late send (see `#abandon`, reserve-3.lua and
   * unreserve-3.lua). A hold that any other call answered (and so may have granted) is never
   * taken back.
   */
  reserve(request: ReserveRequest, signal?: AbortSignal): Promise<ReserveResult> {
    // Not async (one promise layer fewer on the hot path): every throw becomes a rejection.
    let work: Promise<ReserveResult>;
    let parsed: ReturnType<typeof parseReserveRequest>;
    const token = nextToken();
    try {
      signal?.throwIfAborted();
      parsed = parseReserveRequest(request);
      const { holdId, account, amount, ttlMs } = parsed;
      const startedAt = Date.now();
      work = this.#checked
        ? this.#reserve(holdId, account, amount, ttlMs, startedAt, token)
        : this.#verified(startedAt + this.#timeoutMs).then(() =>
            this.#reserve(holdId, account, amount, ttlMs, startedAt, token),
          );
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#deadlines.run(work, (error) => this.#unavailable(error, work, parsed, token));
  }

  /**
   * A reserve call that failed or passed its deadline: fails closed, and when that answers
   * "unavailable" (the script may have run, or may still run), abandons the call's hold.
   */
  #unavailable(
    error: unknown,
    work: Promise<ReserveResult>,
    request: { holdId: string; account: string; amount: number; ttlMs: number },
    token: string,
  ): ReserveResult {
    const result = failClosed(error); // throws the errors the script answered (nothing held)
    this.#abandon(work, request.holdId, request.account, request.amount, request.ttlMs, token);
    return result;
  }

  /**
   * Takes back the hold of a reserve call answered "unavailable" (unreserve-3.lua, sent at once:
   * on the same connection it runs after the call's own reserve script, and if it arrives
   * first its tombstone refuses that script). Only while the record still carries the call's
   * token: a hold another call has answered since (a retry of the holdId, here or in another
   * process, told "granted") keeps it. Best effort within another `timeoutMs`: if Redis does
   * not take it, the hold expires after `ttlMs` as before. Until the call's work settles, a late
   * grant is not remembered (so a commit here cannot charge a hold taken back).
   */
  #abandon(
    work: Promise<ReserveResult>,
    holdId: string,
    account: string,
    amount: number,
    ttlMs: number,
    token: string,
  ): void {
    if (this.#abandoned.size >= ABANDONED_LIMIT) this.#abandoned.clear();
    this.#abandoned.add(token);
    const forget = () => {
      this.#abandoned.delete(token);
    };
    work.then(forget, forget);
    const sum = ttlMs + this.#retentionMs;
    const recordTtlMs = Number.isSafeInteger(sum)
      ? String(sum)
      : String(BigInt(ttlMs) + BigInt(this.#retentionMs));
    sendWithin(this.#client, Date.now() + this.#timeoutMs, isTransient, () =>
      this.#unreserve(holdId, account, amount, token, recordTtlMs),
    ).catch(() => undefined);
  }

  commit(holdId: string, actual: number, signal?: AbortSignal): Promise<{ committed: number }> {
    // Not async (one promise layer fewer on the hot path): every throw becomes a rejection.
    let work: Promise<{ committed: number }>;
    try {
      signal?.throwIfAborted();
      const id = isQuotaName(holdId) ? holdId : parseWith(Name, holdId, "QuotaReservator.commit", "holdId");
      const units = isQuotaUnits(actual, 0)
        ? actual
        : parseWith(ActualSchema, actual, "QuotaReservator.commit", "actual");
      const until = Date.now() + this.#timeoutMs;
      work = this.#checked
        ? this.#commit(id, units, until)
        : this.#verified(until).then(() => this.#commit(id, units, until));
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#deadlines.run(work, throwQuotaError);
  }

  async void(holdId: string, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const id = isQuotaName(holdId) ? holdId : parseWith(Name, holdId, "QuotaReservator.void", "holdId");
    const until = Date.now() + this.#timeoutMs;
    await this.#guard(this.#afterCheck(until, () => this.#void(id, until)));
  }

  /** Runs `work` within the timeout; anything but a Latch error becomes `quota_unavailable`. */
  #guard<T>(work: Promise<T>): Promise<T> {
    return this.#deadlines.run(work, throwQuotaError);
  }

  async #balance(account: string, until: number): Promise<QuotaBalance> {
    const keys = this.#keys.accountKeys(account);
    const reply = await this.#send(until, () =>
      this.#rolled(keys.account, () => this.#scripts.balance(keys)),
    );
    if (isFailure(reply))
      throw scriptError("balance", reply, { subject: "QuotaReservator.balance", id: account });
    const limit = replyInteger(reply[0], "balance.limit");
    const spent = replyInteger(reply[1], "balance.spent");
    const held = replyInteger(reply[2], "balance.held");
    const balance: QuotaBalance = { limit, spent, held, available: Math.max(0, limit - spent - held) };
    if (reply[3] !== "" && reply[4] !== "") {
      balance.periodStart = replyInteger(reply[3], "balance.periodStart");
      balance.periodEnd = replyInteger(reply[4], "balance.periodEnd");
    }
    return balance;
  }

  #reserve(
    holdId: string,
    account: string,
    amount: number,
    ttlMs: number,
    startedAt: number,
    token: string,
  ): Promise<ReserveResult> {
    const ttl = String(ttlMs);
    let recordTtlMs = this.#lastTtl.recordTtlMs;
    if (this.#lastTtl.ttlMs !== ttl) {
      // Each is ≤ 2^53-1 but their sum may not be: then add exactly, as BigInt.
      const sum = ttlMs + this.#retentionMs;
      recordTtlMs = Number.isSafeInteger(sum)
        ? String(sum)
        : String(BigInt(ttlMs) + BigInt(this.#retentionMs));
      this.#lastTtl = { ttlMs: ttl, recordTtlMs };
    }
    const until = startedAt + this.#timeoutMs;
    if (!this.#standalone) {
      // Retried as a whole: the locator claim and the script are both retry-safe.
      return this.#send(until, () =>
        this.#reserveBeside(holdId, account, amount, ttlMs, recordTtlMs, token),
      ).then(({ reply, wroteLocator }) =>
        this.#reserved(reply, holdId, account, amount, wroteLocator, startedAt, ttlMs, token),
      );
    }
    // One script: the holdId's one record key tells whether another account holds it.
    // The first attempt inline (the common case: a ready client that answers), retries apart.
    // No named closures here: a dev-source run (tsx, vitest) wraps each in a name-setting helper.
    if (this.#client.status !== "ready") {
      return this.#reserveAgain(undefined, until, holdId, account, amount, ttl, recordTtlMs, token).then(
        (reply) => this.#reserved(reply, holdId, account, amount, true, startedAt, ttlMs, token),
      );
    }
    // The reply is read in the same callback that checks for an ended period (#sendReserve's
    // roll, one promise layer fewer): only an ended period takes the rolling path.
    return this.#reserveOnce(holdId, account, amount, ttl, recordTtlMs, token).then(
      (reply) =>
        periodEnded(reply)
          ? this.#rollThenReserved(reply, until, holdId, account, amount, ttl, recordTtlMs, startedAt, token)
          : this.#reserved(reply, holdId, account, amount, true, startedAt, ttlMs, token),
      (error: unknown) =>
        this.#reserveAgain(error, until, holdId, account, amount, ttl, recordTtlMs, token).then((reply) =>
          this.#reserved(reply, holdId, account, amount, true, startedAt, ttlMs, token),
        ),
    );
  }

  /**
   * The standalone hot path's reply said the account's calendar period ended: rolls it and
   * sends again as {@link #sendReserve} does (a transient error on the way is retried as
   * any other, see {@link #reserveAgain}).
   */
  #rollThenReserved(
    reply: ReserveReply,
    until: number,
    holdId: string,
    account: string,
    amount: number,
    ttl: string,
    recordTtlMs: string,
    startedAt: number,
    token: string,
  ): Promise<ReserveResult> {
    const ttlMs = Number(ttl);
    const send = () => this.#reserveOnce(holdId, account, amount, ttl, recordTtlMs, token);
    return Promise.resolve()
      .then(() => this.#afterReply(this.#keysOf(account).account, send, reply, 1))
      .then(undefined, (error: unknown) =>
        this.#reserveAgain(error, until, holdId, account, amount, ttl, recordTtlMs, token),
      )
      .then((rolled) => this.#reserved(rolled, holdId, account, amount, true, startedAt, ttlMs, token));
  }

  /**
   * Sends reserve-3.lua for one request (see {@link #reserveOnce}), and again after rolling
   * the account's calendar period when the reply says it ended (see {@link #rolled}).
   */
  #sendReserve(
    holdId: string,
    account: string,
    amount: number,
    ttlMs: string,
    recordTtlMs: string,
    token: string,
  ): Promise<ReserveReply> {
    return this.#rolled(this.#keysOf(account).account, () =>
      this.#reserveOnce(holdId, account, amount, ttlMs, recordTtlMs, token),
    );
  }

  /**
   * One call of reserve-3.lua (an ended period not rolled): the one place its KEYS and ARGV are
   * built. KEYS[3] is the holdId's one record key on a standalone server, the account's record
   * of it on a Cluster.
   */
  #reserveOnce(
    holdId: string,
    account: string,
    amount: number,
    ttlMs: string,
    recordTtlMs: string,
    token: string,
  ): Promise<ReserveReply> {
    const keys = this.#keysOf(account);
    return this.#scripts.reserve(
      { account: keys.account, expiry: keys.expiry, record: this.#holdKey(account, holdId) },
      {
        holdId,
        amount: String(amount),
        ttlMs,
        recordTtlMs,
        account,
        token,
        retentionMs: this.#tolerant ? this.#retentionArg : undefined,
      },
    );
  }

  /** The standalone reserve script sent again after `error` (or first, when not ready). */
  #reserveAgain(
    error: unknown,
    until: number,
    holdId: string,
    account: string,
    amount: number,
    ttlMs: string,
    recordTtlMs: string,
    token: string,
  ): Promise<ReserveReply> {
    if (error !== undefined && !isTransient(error)) return Promise.reject(error);
    return retrying(
      this.#client,
      until,
      isTransient,
      () => this.#sendReserve(holdId, account, amount, ttlMs, recordTtlMs, token),
      error,
    );
  }

  /**
   * The answer to a reserve from the script's reply (a plain integer: granted, a new hold;
   * else an array); remembers a granted hold. `wroteLocator` (Cluster): this call wrote the
   * holdId's locator, so it lives `ttlMs + retention` from `startedAt`. A call abandoned already
   * (`token` in `#abandoned`: its caller was answered "unavailable") remembers nothing.
   */
  #reserved(
    reply: ReserveReply,
    holdId: string,
    account: string,
    amount: number,
    wroteLocator: boolean,
    startedAt: number,
    ttlMs: number,
    token: string,
  ): ReserveResult {
    const abandoned = this.#abandoned.size !== 0 && this.#abandoned.has(token);
    if (!Array.isArray(reply)) {
      const remaining = replyInteger(reply, "reserve.remaining");
      if (!abandoned) this.#remember(holdId, account, amount, startedAt, wroteLocator ? ttlMs : 0);
      return { granted: true, remaining };
    }
    if (isFailure(reply)) {
      throw scriptError("reserve", reply, {
        subject: "ReserveRequest",
        id: holdId,
        // {-1, stored} on this account, or {-1, stored, owner} when another account holds it.
        conflict: (conflict) =>
          new IdempotencyConflictError({
            id: holdId,
            existingHash: requestHash(
              conflict.length > 2 ? replyString(conflict[2], "reserve.owner") : account,
              replyInteger(conflict[1], "reserve.storedAmount"),
            ),
            incomingHash: requestHash(account, amount),
          }),
      });
    }
    const code = replyInteger(reply[0], "reserve.status");
    if (code !== 0 && code !== 2 && code !== 3 && code !== 4) {
      throw scriptError("reserve", reply, { subject: "ReserveRequest", id: holdId });
    }
    // 4: a late send of a call abandoned already (its caller was answered "unavailable").
    if (code === 4) return { granted: false, reason: "unavailable" };
    const remaining = replyInteger(reply[1], "reserve.remaining");
    if (code === 0) return { granted: false, reason: "insufficient", remaining };
    // A hold resolved since is not remembered: its record may expire within the trust window.
    if (code === 2 && !abandoned)
      this.#remember(holdId, account, amount, startedAt, wroteLocator ? ttlMs : 0);
    return { granted: true, remaining };
  }

  /**
   * Remembers a hold this object granted (see `#owners`). `locatorTtlMs` (Cluster): `ttlMs`
   * when this call wrote the holdId's locator (so a resolution within it needs no locator
   * refresh), else 0.
   */
  #remember(holdId: string, account: string, amount: number, startedAt: number, locatorTtlMs: number): void {
    if (this.#owners.size >= OWNER_CACHE_LIMIT) this.#owners.clear();
    // The record lives at least `retention` from `startedAt` (`ttlMs + retention` unresolved,
    // `retention` from a resolution after `startedAt`), so until then no other account can
    // have taken the holdId over, and a record that is gone was lost, not expired.
    this.#owners.set(holdId, {
      account,
      amount,
      trustUntil: startedAt + this.#retentionMs,
      locatorCoversUntil: startedAt + locatorTtlMs,
    });
  }

  /** An account's keys, from a small cache. */
  #keysOf(account: string): AccountKeys {
    let keys = this.#accountKeys.get(account);
    if (keys === undefined) {
      if (this.#accountKeys.size >= ACCOUNT_KEYS_CACHE_LIMIT) this.#accountKeys.clear();
      keys = this.#keys.accountKeys(account);
      this.#accountKeys.set(account, keys);
    }
    return keys;
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
    token: string,
  ): Promise<{ reply: ReserveReply; wroteLocator: boolean }> {
    const ttl = String(ttlMs);
    const runReserve = () => this.#sendReserve(holdId, account, amount, ttl, recordTtlMs, token);
    const locator = this.#keys.holdLocator(holdId);

    if (this.#granted(holdId)?.account === account) {
      // A retry of a hold this object granted: its locator exists. A retry after the hold
      // expired holds it again: then the locator must live as long as the record.
      const reply = await runReserve();
      if (isNewHold(reply)) await this.#client.pexpire(locator, recordTtlMs, "GT");
      return { reply, wroteLocator: false };
    }
    // The locator claim and the reserve script go out together (one round trip); the rare
    // conflict they can reveal only afterwards is undone below.
    const [claim, reserved] = await settleBoth(
      this.#client.set(locator, account, "PX", recordTtlMs, "NX", "GET"),
      runReserve(),
    );
    const previous = claim.value;
    if (previous !== undefined && previous !== null && previous !== account && reserved.value !== undefined) {
      await this.#resolveClaimConflict(holdId, account, amount, previous, reserved.value, recordTtlMs, token);
    }
    if (claim.error !== undefined) {
      // No locator, so nobody could resolve a hold granted here: take it back (best effort;
      // if that fails too, the hold expires after ttlMs) and fail closed. Not after a transient
      // error: the call is sent again (same token), and its tombstone would refuse that retry
      // ({4}); if no retry is granted in time, the call's own take-back (#abandon) releases it.
      if (isNewHold(reserved.value) && !isTransient(claim.error)) {
        await this.#unreserve(holdId, account, amount, token, recordTtlMs).catch(() => undefined);
      }
      throw claim.error;
    }
    if (reserved.error !== undefined) throw reserved.error;
    const reply = reserved.value as ReserveReply;
    // The locator named this account already (an earlier attempt, or an expired hold held
    // again): make it live as long as the record.
    if (previous === account && isNewHold(reply)) await this.#client.pexpire(locator, recordTtlMs, "GT");
    return {
      reply,
      wroteLocator: previous === null || (previous !== undefined && previous !== account),
    };
  }

  /**
   * The holdId's locator already names another account. When that account holds this holdId,
   * the request is an idempotency conflict: a hold the reserve script has just created here is
   * taken back, and the conflict thrown. Otherwise (a denied, long-gone or taken-back reserve
   * there: no record, or a tombstone) this account takes the locator over.
   */
  async #resolveClaimConflict(
    holdId: string,
    account: string,
    amount: number,
    previous: string,
    reply: ReserveReply,
    recordTtlMs: string,
    token: string,
  ): Promise<void> {
    const stored = await this.#client.get(this.#keys.holdRecord(previous, holdId));
    if (stored === null || stored.startsWith("abandoned|")) {
      await this.#client.set(this.#keys.holdLocator(holdId), account, "PX", recordTtlMs);
      return;
    }
    // Also a replay ({2}): an earlier attempt of this call may have created the hold (its take-back
    // or this check failed transiently); unreserve-3.lua releases it only while it carries this
    // call's token (so never a hold another call was granted).
    if (isNewHold(reply) || (Array.isArray(reply) && reply[0] === 2)) {
      await this.#unreserve(holdId, account, amount, token, recordTtlMs);
    }
    throw new IdempotencyConflictError({
      id: holdId,
      existingHash: requestHash(previous, replyInteger(stored.split("|")[1], "hold.amount")),
      incomingHash: requestHash(account, amount),
    });
  }

  /**
   * Takes back the hold reserve call `token` created, if no other call has answered it since;
   * with no record yet, leaves a tombstone that refuses that call's late send (unreserve-3.lua).
   */
  async #unreserve(
    holdId: string,
    account: string,
    amount: number,
    token: string,
    recordTtlMs: string,
  ): Promise<void> {
    const keys = this.#keysOf(account);
    await this.#scripts.unreserve(
      { account: keys.account, expiry: keys.expiry, record: this.#holdKey(account, holdId) },
      {
        holdId,
        amount: String(amount),
        account,
        token,
        recordTtlMs,
        keepSettled: this.#tolerant ? "1" : undefined,
      },
    );
  }

  /** The hold this object granted as `holdId`, if it remembers it (see `#owners`). */
  #granted(holdId: string): GrantedHold | undefined {
    const granted = this.#owners.get(holdId);
    if (granted === undefined) return undefined;
    if (Date.now() > granted.trustUntil) {
      this.#owners.delete(holdId);
      return undefined;
    }
    return granted;
  }

  /** The hold's record key: the holdId's own on a standalone server, the account's on a Cluster. */
  #holdKey(account: string, holdId: string): string {
    return this.#standalone ? this.#keys.hold(holdId) : this.#keys.holdRecord(account, holdId);
  }

  /**
   * The account of a hold this object did not grant, read from Redis (one `GET`): the holdId's
   * record on a standalone server, its locator on a Cluster.
   */
  async #lookUp(holdId: string, subject: string, until: number): Promise<string> {
    if (this.#standalone) {
      const key = this.#keys.hold(holdId);
      const record = await this.#send(until, () => this.#client.get(key));
      if (record === null) throw LatchValidationError.at(subject, "holdId", "no hold with this id");
      return accountOfRecord(record, holdId);
    }
    const key = this.#keys.holdLocator(holdId);
    const account = await this.#send(until, () => this.#client.get(key));
    if (account === null) throw LatchValidationError.at(subject, "holdId", "no hold with this id");
    return account;
  }

  /**
   * Runs a resolving script (commit, void) on the hold's account; when the record names
   * another account (`{-7, owner}`: the account this object knew is stale), runs it again there.
   * On a standalone server the script itself keeps the resolved record for the retention.
   * On a Cluster the locator must outlive the resolved record's retention so that retries
   * still find it: a locator this object wrote at reserve already lives `ttlMs + retention`,
   * which covers a resolution within `ttlMs`; otherwise a `PEXPIRE … GT` goes out beside the
   * script (same round trip). GT only ever lengthens the locator's life, so it is harmless when
   * the script then fails.
   *
   * A hold this object granted (and still trusts) is resolved with its amount, so the script
   * can resolve it even when its record was lost (see commit-4.lua); any other is looked up.
   * Each round trip is sent again after a transient error, until `until` (the scripts are
   * idempotent).
   */
  async #resolve(
    name: "commit" | "void",
    holdId: string,
    subject: string,
    until: number,
    /** Commit: the actual amount (integer string); void: undefined. */
    actual: string | undefined,
  ): Promise<CommitReply | VoidReply> {
    // This object's own grant needs no lookup (and no await).
    let known = this.#granted(holdId);
    let account = known !== undefined ? known.account : await this.#lookUp(holdId, subject, until);
    for (let attempt = 1; ; attempt++) {
      const keys = this.#keysOf(account);
      const scriptKeys = {
        account: keys.account,
        expiry: keys.expiry,
        record: this.#holdKey(account, holdId),
        settled: keys.settled,
      };
      const owner = account;
      const amount = known !== undefined ? String(known.amount) : NO_AMOUNT;
      let reply: CommitReply | VoidReply;
      const covered = known?.locatorCoversUntil;
      if (this.#standalone || (covered !== undefined && Date.now() <= covered)) {
        // The first attempt inline (no wrapper promise, no named closure on the common path).
        try {
          reply = await (this.#client.status === "ready"
            ? this.#sendResolve(scriptKeys, holdId, owner, amount, actual)
            : this.#send(until, () => this.#sendResolve(scriptKeys, holdId, owner, amount, actual)));
        } catch (error) {
          if (!isTransient(error)) throw error;
          reply = await retrying(
            this.#client,
            until,
            isTransient,
            () => this.#sendResolve(scriptKeys, holdId, owner, amount, actual),
            error,
          );
        }
      } else {
        const locator = this.#keys.holdLocator(holdId);
        reply = await this.#send(until, async () => {
          const [ran, kept] = await settleBoth(
            this.#sendResolve(scriptKeys, holdId, owner, amount, actual),
            this.#client.pexpire(locator, this.#retentionMs, "GT"),
          );
          if (ran.error !== undefined) throw ran.error;
          if (kept.error !== undefined) throw kept.error;
          return ran.value as CommitReply | VoidReply;
        });
      }
      if (known !== undefined) this.#owners.delete(holdId); // resolved, or the account moved
      if (!isFailure(reply) || statusOf(name, reply) !== "hold_of_other_account") return reply;
      if (attempt >= RESOLVE_ATTEMPTS) throw scriptError(name, reply, { subject, id: holdId });
      account = replyString(reply[1], `${name}.owner`);
      known = undefined;
    }
  }

  /** Sends commit-4.lua (with `actual`) or void-4.lua: their KEYS and ARGV, built in one place. */
  #sendResolve(
    keys: CommitKeys,
    holdId: string,
    account: string,
    grantedAmount: string,
    actual: string | undefined,
  ): Promise<CommitReply | VoidReply> {
    const retentionMs = this.#retentionArg;
    const keepSettled = this.#tolerant ? "1" : undefined;
    return actual === undefined
      ? this.#scripts.void(keys, { holdId, retentionMs, account, grantedAmount, keepSettled })
      : this.#rolled(keys.account, () =>
          this.#scripts.commit(keys, { holdId, actual, retentionMs, account, grantedAmount, keepSettled }),
        );
  }

  async #commit(holdId: string, actual: number, until: number): Promise<{ committed: number }> {
    const subject = "QuotaReservator.commit";
    const reply = await this.#resolve("commit", holdId, subject, until, String(actual));
    // The actual amount as stored (a plain string reply): committed now or before.
    if (!Array.isArray(reply)) return { committed: replyInteger(reply, "commit.committed") };
    throw scriptError("commit", reply, {
      subject,
      id: holdId,
      conflict: (conflict) =>
        new IdempotencyConflictError({
          id: holdId,
          existingHash: commitHash(holdId, replyInteger(conflict[1], "commit.storedActual")),
          incomingHash: commitHash(holdId, actual),
        }),
    });
  }

  async #void(holdId: string, until: number): Promise<void> {
    const subject = "QuotaReservator.void";
    const reply = await this.#resolve("void", holdId, subject, until, undefined);
    if (!Array.isArray(reply)) {
      throw new CorruptRecordError({ id: holdId, reason: "the void script did not reply an array" });
    }
    if (isFailure(reply)) throw scriptError("void", reply, { subject, id: holdId });
  }
}
