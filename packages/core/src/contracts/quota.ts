import type { QuotaPeriod } from "./quota-period.js";

/** Balance of a quota account, in integer quota units. */
export interface QuotaBalance {
  limit: number;
  /**
   * Committed usage (of the current period, when the account has one). May exceed the limit
   * after a commit above its hold (see `commit`).
   */
  spent: number;
  /** Reserved by unexpired, unresolved holds. */
  held: number;
  /** `max(0, limit − spent − held)`. */
  available: number;
  /**
   * Only for an account with a period: the period `spent` counts, `[periodStart, periodEnd)`
   * in epoch ms by the store's clock. A calendar period resets `spent` to 0 at `periodEnd`;
   * a rolling window is `[now − rollingMs, now]` and a commit stops counting `rollingMs` after it.
   */
  periodStart?: number;
  periodEnd?: number;
}

/** Options of {@link QuotaReservator.setLimit}. */
export interface SetLimitOptions {
  /**
   * The budget period of the limit: `{ every: "day" | "week" | "month", timeZone? }` (calendar,
   * weeks start on Monday, default zone `UTC`) or `{ rollingMs }` (a rolling window). `null`
   * removes it (the limit is then for all time); omitted, the account keeps the period it has.
   * Changing the period keeps `spent` until the new period's first reset (a rolling window
   * counts it as committed at the change). See `contracts/quota-period.ts`.
   */
  period?: QuotaPeriod | null;
  signal?: AbortSignal;
}

export interface ReserveRequest {
  /** Idempotency key of the hold; retry a reserve with the same holdId, never a new one. */
  holdId: string;
  account: string;
  /** Integer quota units, > 0. */
  amount: number;
  /**
   * The hold expires this long after it was granted, by the store's clock: 1 to
   * `HOLD_TTL_MAX_MS` (2,147,483,647 ms, about 24.8 days), as for a credit hold.
   */
  ttlMs: number;
}

export type ReserveResult =
  | { granted: true; remaining: number }
  | { granted: false; reason: "insufficient" | "unavailable"; remaining?: number };

/**
 * Read-only quota check (no hold). Use {@link QuotaReservator.reserve} to enforce a limit
 * under concurrency; `check` alone cannot.
 */
export interface QuotaAuthorizer {
  check(
    account: string,
    amount: number,
    signal?: AbortSignal,
  ): Promise<{ allowed: boolean; remaining: number }>;
}

/**
 * Two-phase quota: reserve before the model call, commit the actual usage (or void) after.
 * Amounts are integer quota units (safe integers); the limit is checked at reserve, atomically,
 * so concurrent reserves never overspend it.
 *
 * Guarantees (checked by `@latch/testkit`'s `describeQuotaReservator`):
 * - `reserve` is retry-safe: the same holdId and amount returns the same answer and holds once;
 *   the same holdId with another amount or account throws `idempotency_conflict`. A denied
 *   reserve creates no hold (a retry is evaluated afresh). An account without a limit has a
 *   limit of 0.
 * - Each hold resolves once. `commit(holdId, actual)` twice charges once and returns the same
 *   result; a second commit with another amount throws `idempotency_conflict`. Commit below the
 *   hold frees the rest. **Commit above the hold charges the actual amount in full** (the call
 *   has already happened; under-recording it would hide real usage): `spent` may then exceed
 *   the limit and later reserves are denied until there is room again. Commit after the hold
 *   expired also charges the actual amount (late usage is never lost). Commit after void throws
 *   `hold_already_resolved`.
 * - `void` twice is a no-op; void after expiry is a no-op; void after commit throws
 *   `hold_already_resolved`. Unknown holds: commit and void throw `invalid_input` naming `holdId`.
 * - A hold not resolved within `ttlMs` expires by the store's clock and frees its amount.
 * - Retention: a resolved hold (committed, voided, or expired — at its expiry) is remembered
 *   for the store's `holdRetentionMs` after it resolved, and only so long; then its holdId is
 *   unknown again: a commit or void that comes later throws `invalid_input` naming `holdId`
 *   (loud, never a second charge), and a reserve with that holdId is a new hold. See
 *   `contracts/hold-retention.ts`.
 * - A store that cannot answer makes `reserve` deny with reason `unavailable` (fail closed);
 *   the other methods throw `quota_unavailable`.
 * - Periods (`setLimit(account, limit, { period })`): by the store's clock, a calendar period
 *   starts `spent` at 0 at each boundary, and a rolling window counts only the commits of its
 *   last `rollingMs`. Holds are never lost by a reset: an open hold keeps counting in `held`
 *   (against the new period's availability) until it resolves, and **a commit charges the
 *   period in which it is committed** (a hold reserved before a boundary and committed after
 *   it charges the new period). Without a period nothing ever resets.
 */
export interface QuotaReservator {
  /**
   * Sets an account's limit (integer units ≥ 0), and with `options.period` its budget period.
   * Existing spend and holds are kept. `options` may also be an AbortSignal alone.
   *
   * @example
   * await quota.setLimit("acme", 1_000_000, { period: { every: "month", timeZone: "Europe/Berlin" } });
   * await quota.setLimit("acme", 50_000, { period: { rollingMs: 3_600_000 } }); // last hour
   */
  setLimit(account: string, limit: number, options?: SetLimitOptions | AbortSignal): Promise<void>;
  balance(account: string, signal?: AbortSignal): Promise<QuotaBalance>;
  reserve(request: ReserveRequest, signal?: AbortSignal): Promise<ReserveResult>;
  commit(holdId: string, actual: number, signal?: AbortSignal): Promise<{ committed: number }>;
  void(holdId: string, signal?: AbortSignal): Promise<void>;
}

/** Options of {@link UsageCounter.add}. */
export interface CounterAddOptions {
  /**
   * Makes the add idempotent (the facade passes the event id): the first add with this
   * opId for a key and period applies and its answer (the total before it) is stored with it,
   * atomically; every later add with the same opId — a retry, a re-rating, a second worker
   * racing the first — changes nothing and returns that first answer. The same opId with
   * another quantity throws `idempotency_conflict`. Operation records are kept for the store's
   * `opRetentionMs` after the add (default 100 days); a replay after that adds again.
   */
  opId?: string;
  signal?: AbortSignal;
}

/**
 * Cumulative usage per key and billing period, for period-scoped tiers.
 *
 * `add` is atomic and returns the total *before* this add, so concurrent events each see a
 * distinct previous total and split a tier boundary exactly once. With an `opId` it is also
 * idempotent (see {@link CounterAddOptions.opId}): an event counted once however often it is
 * recorded, retried or re-rated. Quantities are safe integers ≥ 0; a total past 2^53-1 throws
 * `overflow`. `get` reads the current total (0 when unknown).
 *
 * @example
 * await counter.add("acme|gpt-4o|input_tokens", "2026-02", 1_500, { opId: "evt-1" }); // 0
 * await counter.add("acme|gpt-4o|input_tokens", "2026-02", 1_500, { opId: "evt-1" }); // 0 again, counted once
 */
export interface UsageCounter {
  /** `options` may also be an AbortSignal alone (the signature before opIds). */
  add(
    key: string,
    period: string,
    quantity: number,
    options?: CounterAddOptions | AbortSignal,
  ): Promise<number>;
  get(key: string, period: string, signal?: AbortSignal): Promise<number>;
}

/** How long counter operation records are kept by default: 100 days. */
export const DEFAULT_COUNTER_OP_RETENTION_MS = 100 * 24 * 60 * 60 * 1000;
