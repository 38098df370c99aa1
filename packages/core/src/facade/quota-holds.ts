import { randomUUID } from "node:crypto";
import type { QuotaAuthorizer, QuotaReservator } from "../contracts/quota.js";
import type { RatedRecordStore } from "../contracts/rated-record-store.js";
import { LatchValidationError } from "../errors/index.js";
import { parseWith } from "../schemas/parse.js";
import { isFinalReserveError, isFinalSettleError } from "./error-code.js";
import { fastParseReserve } from "./fast-reserve.js";
import { type QuotaUnits, quotaUnitsOf, reconcileQuota } from "./quota-reconcile.js";
import { type RetryPolicy, withRetry } from "./retry.js";
import { ReserveSchema } from "./schemas.js";
import type { QuotaHold, RecordResult, Warn } from "./types.js";

export interface QuotaHoldDeps {
  /** `undefined`: every use is `invalid_input` naming `LatchConfig.quota`. */
  quota: (QuotaReservator & QuotaAuthorizer) | undefined;
  rated: RatedRecordStore;
  retry: RetryPolicy;
  warn: Warn;
  quotaUnits: QuotaUnits;
  holdTtlMs: number;
}

/** Quota holds: reserve before a call (fails closed), settle after it, reconcile lost settles. */
export interface QuotaHolds {
  /** A store error denies with reason `unavailable`; bad input and conflicts throw. */
  reserve(request: unknown): Promise<QuotaHold>;
  /**
   * Commits the call's units (rated, unpriced, spooled or accepted: the call happened) or voids
   * the hold (a failed call, or a call recorded under another hold, which is charged through
   * that one). A call without a rated record (unpriced, spooled, accepted) whose `quotaUnits`
   * answers `undefined` (its units need the record) leaves the hold open, still holding its
   * amount, and answers `{ settled: true }`: `reconcile` commits it from the record once stored.
   * A store error is reported and answers `{ settled: false }`; `reconcile` commits it later.
   * Units `quotaUnits` cannot give (see `quotaUnitsOf`) throw `invalid_input`.
   */
  settle(
    hold: Extract<QuotaHold, { granted: true }>,
    result: RecordResult | { status: "failed" },
  ): Promise<{ settled: boolean }>;
  /** See `reconcileQuota`; a hold that cannot be committed is reported (`quota_reconcile_skipped`). */
  reconcile(): Promise<{ versions: number; holds: number }>;
}

export function createQuotaHolds(deps: QuotaHoldDeps): QuotaHolds {
  const { retry, warn, quotaUnits } = deps;

  function configured(): QuotaReservator & QuotaAuthorizer {
    if (!deps.quota) throw LatchValidationError.at("LatchConfig", "quota", "no QuotaReservator configured");
    return deps.quota;
  }

  async function reserve(request: unknown): Promise<QuotaHold> {
    // Zod only for what the pre-check does not take as plainly valid (it owns every message).
    const r = fastParseReserve(request) ?? parseWith(ReserveSchema, request, "reserve request");
    const quota = configured();
    const holdId = r.holdId ?? randomUUID();
    const base = { kind: "quota" as const, holdId, account: r.account, amount: r.amount };
    try {
      const answer = await quota.reserve({
        holdId,
        account: r.account,
        amount: r.amount,
        ttlMs: r.ttlMs ?? deps.holdTtlMs,
      });
      if (answer.granted) return { granted: true, ...base, remaining: answer.remaining };
      return {
        granted: false,
        ...base,
        reason: answer.reason,
        ...(answer.remaining === undefined ? {} : { remaining: answer.remaining }),
        message:
          answer.reason === "insufficient"
            ? `quota exceeded for ${r.account}: ${answer.remaining ?? 0} units left, ${r.amount} requested`
            : "quota store unavailable: denied (quota fails closed)",
      };
    } catch (error) {
      if (isFinalReserveError(error)) throw error;
      return {
        granted: false,
        ...base,
        reason: "unavailable",
        message: "quota store unavailable: denied (quota fails closed)",
      };
    }
  }

  async function settle(
    hold: Extract<QuotaHold, { granted: true }>,
    result: RecordResult | { status: "failed" },
  ): Promise<{ settled: boolean }> {
    const quota = configured();
    // A call recorded under another hold (a retried handler) is charged through that hold:
    // this one is voided, never charged a second time.
    const observation =
      result.status === "failed"
        ? undefined
        : result.status === "rated"
          ? result.record.observation
          : result.observation;
    const recordedHold = observation?.correlation?.holdId;
    const chargedElsewhere = recordedHold !== undefined && recordedHold !== hold.holdId;
    const voids = result.status === "failed" || chargedElsewhere;
    let units: number | undefined;
    if (!voids) {
      // Rated, unpriced, spooled or accepted: the call happened, so its usage counts against
      // the quota. A bad quotaUnits throws here (invalid_input naming LatchConfig.quotaUnits).
      units =
        result.status === "rated"
          ? quotaUnitsOf(quotaUnits, result.record.observation, result.record)
          : quotaUnitsOf(quotaUnits, result.observation);
      if (units === undefined) {
        // Only reconcileQuota() can charge it then, and it finds the hold through the record:
        // an observation that does not name this hold would leave it to expire uncharged.
        if (recordedHold === undefined) {
          throw LatchValidationError.at(
            "settle",
            "result.observation.correlation.holdId",
            `quotaUnits needs the rated record of ${observation?.eventId}, which only reconcileQuota() can charge, and it finds the hold through the record: pass the hold to record(input, { hold })`,
          );
        }
        // The units need the rated record, which an ingest worker (accepted), the spool replay
        // (spooled) or rerateUnpriced() (unpriced) stores later. Committing a guess now would
        // make reconcile's commit from the record an idempotency_conflict, and voiding would let
        // other reserves spend that money meanwhile: the hold stays open (early denial, never
        // overspend) and reconcileQuota() commits it from the record, even after it expired
        // (within the quota store's hold retention). As for a money credit hold.
        return { settled: true };
      }
    }
    try {
      if (units === undefined) {
        await withRetry(() => quota.void(hold.holdId), retry);
      } else {
        await withRetry(() => quota.commit(hold.holdId, units), retry);
      }
      return { settled: true };
    } catch (error) {
      if (isFinalSettleError(error)) throw error;
      warn({
        code: "settle_failed",
        message: `settling hold ${hold.holdId} failed; reconcileQuota() commits it from the record when record() was given the hold`,
        cause: error,
      });
      return { settled: false };
    }
  }

  async function reconcile(): Promise<{ versions: number; holds: number }> {
    return reconcileQuota({
      rated: deps.rated,
      quota: configured(),
      retry,
      quotaUnits,
      skipped: (record, error) =>
        warn({
          code: "quota_reconcile_skipped",
          message: `the hold of ${record.eventId} cannot be committed: ${(error as Error).message}`,
          eventId: record.eventId,
          cause: error,
        }),
    });
  }

  return { reserve, settle, reconcile };
}
