import type {
  QuotaAuthorizer,
  QuotaBalance,
  QuotaReservator,
  ReserveRequest,
  ReserveResult,
  SetLimitOptions,
} from "@latch/core/adapter";
import type { RedisQuota } from "../../src/index.js";

/**
 * Two `RedisQuota` objects acting as one, the way two processes share a Redis: one reserves,
 * the other commits and voids. The resolving side has never seen the hold, so every commit and
 * void finds the account through the holdId locator, not through an in-process cache.
 */
export function splitQuota(reserving: RedisQuota, resolving: RedisQuota): QuotaReservator & QuotaAuthorizer {
  return {
    setLimit: (account: string, limit: number, options?: SetLimitOptions | AbortSignal) =>
      reserving.setLimit(account, limit, options),
    balance: (account: string, signal?: AbortSignal): Promise<QuotaBalance> =>
      resolving.balance(account, signal),
    check: (account: string, amount: number, signal?: AbortSignal) =>
      reserving.check(account, amount, signal),
    reserve: (request: ReserveRequest, signal?: AbortSignal): Promise<ReserveResult> =>
      reserving.reserve(request, signal),
    commit: (holdId: string, actual: number, signal?: AbortSignal) =>
      resolving.commit(holdId, actual, signal),
    void: (holdId: string, signal?: AbortSignal) => resolving.void(holdId, signal),
  };
}
