import { canonicalHash } from "../contracts/hashing.js";
import { DEFAULT_MEMORY_HOLD_RETENTION_MS, parseHoldRetentionMs } from "../contracts/hold-retention.js";
import {
  QuotaActualSchema as ActualSchema,
  QuotaAmountSchema as AmountSchema,
  isQuotaName,
  isQuotaUnits,
  QuotaLimitSchema as LimitSchema,
  QuotaNameSchema as Name,
} from "../contracts/inputs.js";
import type {
  QuotaAuthorizer,
  QuotaBalance,
  QuotaReservator,
  ReserveRequest,
  ReserveResult,
  SetLimitOptions,
} from "../contracts/quota.js";
import {
  parseSetLimitOptions,
  quotaPeriodBounds,
  quotaRollingEntryAt,
  type StoredQuotaPeriod,
  samePeriod,
} from "../contracts/quota-period.js";
import { parseReserveRequest } from "../contracts/reserve-request.js";
import {
  HoldAlreadyResolvedError,
  IdempotencyConflictError,
  LatchValidationError,
  OverflowError,
} from "../errors/index.js";
import { parseWith } from "../schemas/parse.js";
import { HoldPurger } from "./hold-purger.js";

type HoldStatus = "held" | "committed" | "voided" | "expired";

interface Hold {
  readonly holdId: string;
  readonly account: string;
  readonly amount: number;
  /** Identity of the reserve request (account and amount) for retry-vs-conflict checks. */
  readonly requestHash: string;
  expiresAt: number;
  status: HoldStatus;
  /** When it last resolved (commit, void, or its expiry), by the store's clock. */
  resolvedAt?: number;
  committed?: number;
  commitHash?: string;
}

interface Account {
  limit: number;
  /** Committed usage of the current period (all time without one). */
  spent: number;
  period?: StoredQuotaPeriod;
  /** A calendar period's current bounds (epoch ms): `spent` restarts at 0 from `periodEnd` on. */
  periodStart?: number;
  periodEnd?: number;
  /**
   * A rolling window's buckets, oldest first (from index `usageHead`): `at` is the bucket's
   * last ms (`quotaRollingEntryAt`), `amount` the sum of its commits; their sum is `spent`.
   * At most 101 are live (see `contracts/quota-period.ts`).
   */
  usage?: { at: number; amount: number }[];
  usageHead?: number;
  /** Sum of the amounts of `active` holds. */
  held: number;
  /** Unexpired, unresolved holds of this account. */
  readonly active: Map<string, Hold>;
  /** Earliest `expiresAt` among `active` holds (Infinity when none): lets reads skip the sweep. */
  nextExpiry: number;
}

export interface MemoryQuotaReservatorOptions {
  /** The store's clock in epoch milliseconds, for hold expiry and budget periods. Default `Date.now`. */
  clock?: () => number;
  /**
   * How long a resolved hold (committed, voided, or expired: from its expiry) is kept so that
   * retries stay idempotent; after it, the holdId is unknown (`commit` and `void` throw
   * `invalid_input`, never charging twice). Default one hour. See `contracts/hold-retention.ts`.
   */
  holdRetentionMs?: number;
}

/**
 * The embedded {@link QuotaReservator} and {@link QuotaAuthorizer}: two-phase quota in process
 * memory, with exactly the contract's semantics (see `contracts/quota.ts`):
 * the limit is checked at reserve; reserves are retry-safe by holdId; each hold resolves once;
 * commit above the hold charges the actual amount in full; expired holds free their amount
 * (swept lazily, on the next operation that touches the account) and a late commit still
 * charges. A void that arrives after the hold expired changes nothing, so a later commit of
 * that hold still charges (late usage is never lost). Budget periods (`setLimit`'s `period`)
 * roll lazily by the same clock: a calendar period starts `spent` at 0 at its boundary (open
 * holds stay counted; a commit charges the period it is committed in), a rolling window keeps
 * its commits summed per bucket (at most 101 buckets, see `contracts/quota-period.ts`) and
 * drops the buckets it has wholly passed.
 *
 * Every method is a synchronous critical section behind an async signature (no `await`
 * between read and write), so 1,000 concurrent reserves never overspend a limit. Resolved
 * holds are kept `holdRetentionMs` (default one hour) after they resolve, so retries stay
 * idempotent, then purged lazily (a pass over the holds every `max(1,000, holds / 2)`
 * reserves, so memory stays bounded whatever the traffic); `purgeResolvedHolds()` purges now.
 * A commit or void of a purged hold throws `invalid_input` naming `holdId`: never a second
 * charge.
 *
 * @example
 * const quota = new MemoryQuotaReservator();
 * await quota.setLimit("acme", 10_000, { period: { every: "day", timeZone: "Europe/Berlin" } });
 * const r = await quota.reserve({ holdId: "req-1", account: "acme", amount: 2_000, ttlMs: 60_000 });
 * if (r.granted) await quota.commit("req-1", 1_234);
 */
export class MemoryQuotaReservator implements QuotaReservator, QuotaAuthorizer {
  readonly #clock: () => number;
  readonly #accounts = new Map<string, Account>();
  readonly #holds = new Map<string, Hold>();
  readonly #retentionMs: number;
  readonly #purger: HoldPurger<Hold>;

  constructor(options: MemoryQuotaReservatorOptions = {}) {
    this.#clock = options.clock ?? Date.now;
    this.#retentionMs = parseHoldRetentionMs(
      options.holdRetentionMs,
      DEFAULT_MEMORY_HOLD_RETENTION_MS,
      "MemoryQuotaReservator options",
    );
    this.#purger = new HoldPurger(
      this.#holds,
      // Unresolved: it resolves by expiring at expiresAt.
      (hold) =>
        (hold.status === "held" ? hold.expiresAt : (hold.resolvedAt ?? hold.expiresAt)) + this.#retentionMs,
      (hold) => {
        if (hold.status === "held") this.#swept(hold.account); // releases it from its account first
        this.#holds.delete(hold.holdId);
      },
    );
  }

  async setLimit(account: string, limit: number, options?: SetLimitOptions | AbortSignal): Promise<void> {
    const { period, signal } = parseSetLimitOptions(options, "QuotaReservator.setLimit");
    signal?.throwIfAborted();
    const name = parseWith(Name, account, "QuotaReservator.setLimit", "account");
    const units = parseWith(LimitSchema, limit, "QuotaReservator.setLimit", "limit");
    const state = this.#swept(name);
    state.limit = units;
    if (period === undefined || samePeriod(period ?? undefined, state.period)) return;
    // A new period keeps `spent` until its first reset; a rolling window counts it from now.
    delete state.period;
    delete state.periodStart;
    delete state.periodEnd;
    delete state.usage;
    delete state.usageHead;
    if (period === null) return;
    state.period = period;
    const now = this.#clock();
    if ("rollingMs" in period) {
      state.usage =
        state.spent > 0 ? [{ at: quotaRollingEntryAt(period.rollingMs, now), amount: state.spent }] : [];
      state.usageHead = 0;
    } else {
      const { start, end } = quotaPeriodBounds(period, now);
      state.periodStart = start;
      state.periodEnd = end;
    }
  }

  async balance(account: string, signal?: AbortSignal): Promise<QuotaBalance> {
    signal?.throwIfAborted();
    const state = this.#swept(
      isQuotaName(account) ? account : parseWith(Name, account, "QuotaReservator.balance", "account"),
    );
    const balance: QuotaBalance = {
      limit: state.limit,
      spent: state.spent,
      held: state.held,
      available: available(state),
    };
    if (state.period !== undefined) {
      const { start, end } =
        "rollingMs" in state.period
          ? quotaPeriodBounds(state.period, this.#clock())
          : { start: state.periodStart as number, end: state.periodEnd as number };
      balance.periodStart = start;
      balance.periodEnd = end;
    }
    return balance;
  }

  async check(
    account: string,
    amount: number,
    signal?: AbortSignal,
  ): Promise<{ allowed: boolean; remaining: number }> {
    signal?.throwIfAborted();
    const name = isQuotaName(account)
      ? account
      : parseWith(Name, account, "QuotaAuthorizer.check", "account");
    const units = isQuotaUnits(amount, 1)
      ? amount
      : parseWith(AmountSchema, amount, "QuotaAuthorizer.check", "amount");
    const remaining = available(this.#swept(name));
    return { allowed: units <= remaining, remaining };
  }

  async reserve(request: ReserveRequest, signal?: AbortSignal): Promise<ReserveResult> {
    signal?.throwIfAborted();
    const { holdId, account, amount, ttlMs } = parseReserveRequest(request);
    const requestHash = canonicalHash({ account, amount });
    const state = this.#swept(account);
    this.#purger.tick(this.#clock());
    const existing = this.#holds.get(holdId);
    if (existing !== undefined) {
      if (existing.requestHash !== requestHash) {
        throw new IdempotencyConflictError({
          id: holdId,
          existingHash: existing.requestHash,
          incomingHash: requestHash,
        });
      }
      if (existing.status !== "expired") {
        // A retry: the hold was granted once; answer the same without holding again.
        return { granted: true, remaining: available(state) };
      }
      // A retry after the hold expired unresolved: it is not counted any more, so "granted"
      // alone would let the call run with nothing held. Hold it again (a fresh ttlMs) when
      // there is room, else deny, as a new reserve would.
      const room = available(state);
      if (amount > room) return { granted: false, reason: "insufficient", remaining: room };
      this.#count(existing, state, ttlMs);
      return { granted: true, remaining: room - amount };
    }
    const room = available(state);
    if (amount > room) return { granted: false, reason: "insufficient", remaining: room };
    const hold: Hold = { holdId, account, amount, requestHash, expiresAt: 0, status: "held" };
    this.#holds.set(holdId, hold);
    this.#count(hold, state, ttlMs);
    return { granted: true, remaining: room - amount };
  }

  /** Counts `hold` on its account until now + ttlMs (a new hold, or an expired one held again). */
  #count(hold: Hold, state: Account, ttlMs: number): void {
    hold.status = "held";
    hold.expiresAt = this.#clock() + ttlMs;
    delete hold.resolvedAt;
    state.active.set(hold.holdId, hold);
    state.held += hold.amount;
    state.nextExpiry = Math.min(state.nextExpiry, hold.expiresAt);
  }

  async commit(holdId: string, actual: number, signal?: AbortSignal): Promise<{ committed: number }> {
    signal?.throwIfAborted();
    const hold = this.#hold(holdId, "QuotaReservator.commit");
    const units = isQuotaUnits(actual, 0)
      ? actual
      : parseWith(ActualSchema, actual, "QuotaReservator.commit", "actual");
    const commitHash = canonicalHash({ holdId: hold.holdId, actual: units });
    const state = this.#swept(hold.account);
    switch (hold.status) {
      case "committed":
        if (hold.commitHash !== commitHash) {
          throw new IdempotencyConflictError({
            id: hold.holdId,
            existingHash: hold.commitHash as string,
            incomingHash: commitHash,
          });
        }
        return { committed: hold.committed as number };
      case "voided":
        throw new HoldAlreadyResolvedError({ holdId: hold.holdId, state: "voided" });
      case "held":
      case "expired": {
        // The call already happened: charge what it used in full, even above the hold or after
        // expiry, so real usage is never hidden. `spent` may then exceed the limit.
        if (state.spent + units > Number.MAX_SAFE_INTEGER) {
          throw new OverflowError({ path: "actual", reason: "the account's spend would exceed 2^53-1" });
        }
        if (hold.status === "held") this.#release(state, hold);
        state.spent += units;
        // Charged to the period it is committed in; a rolling window counts it in now's bucket.
        if (state.usage !== undefined && units > 0) this.#record(state, units);
        hold.status = "committed";
        hold.resolvedAt = this.#clock();
        hold.committed = units;
        hold.commitHash = commitHash;
        return { committed: units };
      }
    }
  }

  async void(holdId: string, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const hold = this.#hold(holdId, "QuotaReservator.void");
    const state = this.#swept(hold.account);
    switch (hold.status) {
      case "committed":
        throw new HoldAlreadyResolvedError({ holdId: hold.holdId, state: "committed" });
      case "held":
        this.#release(state, hold);
        hold.status = "voided";
        hold.resolvedAt = this.#clock();
        return;
      case "voided":
      case "expired":
        return;
    }
  }

  /**
   * Purges now every hold resolved at least `holdRetentionMs` ago (an unresolved one past its
   * expiry is released first), instead of waiting for the lazy pass; returns how many.
   *
   * @example
   * const quota = new MemoryQuotaReservator({ holdRetentionMs: 10 * 60_000 });
   * await quota.purgeResolvedHolds(); // { purged: 0 }
   */
  async purgeResolvedHolds(signal?: AbortSignal): Promise<{ purged: number }> {
    signal?.throwIfAborted();
    return { purged: this.#purger.purge(this.#clock()) };
  }

  /** How many hold records are kept now, resolved ones within their retention included (monitoring, tests). */
  get storedHolds(): number {
    return this.#holds.size;
  }

  #hold(holdId: unknown, subject: string): Hold {
    // Zod only for a bad id (the schema owns the message): every commit and void comes here.
    const id = isQuotaName(holdId) ? holdId : parseWith(Name, holdId, subject, "holdId");
    const hold = this.#holds.get(id);
    if (hold === undefined) throw LatchValidationError.at(subject, "holdId", "no hold with this id");
    return hold;
  }

  #account(name: string): Account {
    let state = this.#accounts.get(name);
    if (state === undefined) {
      state = { limit: 0, spent: 0, held: 0, active: new Map(), nextExpiry: Number.POSITIVE_INFINITY };
      this.#accounts.set(name, state);
    }
    return state;
  }

  /**
   * The account with its expired holds released and its period rolled to now (both lazy, by
   * this store's clock).
   */
  #swept(name: string): Account {
    const state = this.#account(name);
    const now = this.#clock();
    if (state.period !== undefined) this.#roll(state, now);
    if (now < state.nextExpiry) return state;
    let next = Number.POSITIVE_INFINITY;
    for (const hold of state.active.values()) {
      if (hold.expiresAt <= now) {
        this.#release(state, hold);
        hold.status = "expired";
        hold.resolvedAt = hold.expiresAt;
      } else {
        next = Math.min(next, hold.expiresAt);
      }
    }
    state.nextExpiry = next;
    return state;
  }

  /** Starts `spent` at 0 when a calendar period has ended; drops commits a rolling window has passed. */
  #roll(state: Account, now: number): void {
    const period = state.period as StoredQuotaPeriod;
    if ("rollingMs" in period) {
      const usage = state.usage as { at: number; amount: number }[];
      let head = state.usageHead ?? 0;
      const cutoff = now - period.rollingMs;
      while (head < usage.length && (usage[head] as { at: number }).at <= cutoff) {
        state.spent -= (usage[head] as { amount: number }).amount;
        head++;
      }
      if (head > 128 && head * 2 > usage.length) {
        usage.splice(0, head);
        head = 0;
      }
      state.usageHead = head;
    } else if (now >= (state.periodEnd as number)) {
      const { start, end } = quotaPeriodBounds(period, now);
      state.spent = 0;
      state.periodStart = start;
      state.periodEnd = end;
    }
  }

  /** Adds a commit to its bucket of the account's rolling window (the last one, or a new one). */
  #record(state: Account, units: number): void {
    const usage = state.usage as { at: number; amount: number }[];
    const at = quotaRollingEntryAt((state.period as { rollingMs: number }).rollingMs, this.#clock());
    const last = usage[usage.length - 1];
    if (last !== undefined && last.at === at && usage.length > (state.usageHead ?? 0)) last.amount += units;
    else usage.push({ at, amount: units });
  }

  /**
   * How many rolling-window buckets the account keeps now (monitoring, tests): at most 101
   * after any call on it, whatever its traffic; 0 without a rolling window.
   */
  storedWindowEntries(account: string): number {
    const state = this.#accounts.get(account);
    if (state?.usage === undefined) return 0;
    return state.usage.length - (state.usageHead ?? 0);
  }

  #release(state: Account, hold: Hold): void {
    state.active.delete(hold.holdId);
    state.held -= hold.amount;
  }
}

function available(state: Account): number {
  return Math.max(0, state.limit - state.spent - state.held);
}
