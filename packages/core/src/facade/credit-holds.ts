import { randomUUID } from "node:crypto";
import { creditUsageOf } from "../credits/features.js";
import { LatchValidationError } from "../errors/index.js";
import type { UsageObservation } from "../schemas/observation.js";
import { parseWith } from "../schemas/parse.js";
import { type CreditBurns, claimUnknown } from "./credit-burns.js";
import { isFinalReserveError, isFinalSettleError, namesField } from "./error-code.js";
import { type RetryPolicy, withRetry } from "./retry.js";
import { CreditReserveRequestSchema } from "./schemas.js";
import type { CreditHold, LatchCreditsConfig, RecordResult, Warn } from "./types.js";

export interface CreditHoldDeps {
  /** `undefined`: every use is `invalid_input` naming `LatchConfig.credits`. */
  credits: LatchCreditsConfig | undefined;
  burns: CreditBurns;
  retry: RetryPolicy;
  warn: Warn;
  holdTtlMs: number;
}

/** Credit holds (`credits.enforce`): `reserve()` holds credits of a ledger, `settle()` commits what the call used. */
export interface CreditHolds {
  /** A ledger error denies with reason `unavailable` (fails closed); bad input and conflicts throw. */
  reserve(request: unknown): Promise<CreditHold>;
  /**
   * Commits what the call used as its usage event (the same event `record` burned, so it burns
   * once), or voids the hold for a failed call, or when the feature counts nothing of the call
   * yet (a money feature before the call is rated: it burns when rated). A money hold of a call
   * not rated yet (`accepted`, `spooled`) stays held: the call's later burn (ingest worker,
   * spool replay) commits it when the call was recorded with it (`record(input, { hold })`);
   * recorded without it, it is released at its TTL and `credit_hold_unresolved` reported. So
   * does the money hold of an `unpriced` call recorded with it when its feature is hold-only
   * (not one of the call's routes): `rerateUnpriced()` commits it once the call is priced. A
   * `hold` whose `featureId` is not its hold's feature in the ledger (changed after `reserve()`)
   * throws `invalid_input` naming `hold.featureId` and commits nothing (the ledger checks it:
   * `commitHold`'s `featureId`). The commit also names `hold.account` (`commitHold`'s
   * `ledgerId`): a `hold` whose `account` is not its hold's ledger throws `invalid_input` naming
   * `hold.account` and commits nothing (a ledger that does not know the field, an older strict
   * schema, gets the commit without it). The commit is what burns a hold-only feature (one
   * none of the call's routes burns on the hold's ledger) for a call `record()` rated inline:
   * the caller's own `record()` burn does not (see `CreditBurns.burn`). A call recorded under
   * another credit hold of this feature (a handler re-run after a crash between record and
   * settle: the stored call keeps the first run's hold) voids this hold, whatever its result,
   * and, rated, gets the stored call's burn, which commits the hold it links: the call is
   * burned once, on that hold's ledger. A ledger error is reported and answers
   * `{ settled: false }`.
   */
  settle(
    hold: Extract<CreditHold, { granted: true }>,
    result: RecordResult | { status: "failed" },
  ): Promise<{ settled: boolean }>;
}

export function createCreditHolds({ credits, burns, retry, warn, holdTtlMs }: CreditHoldDeps): CreditHolds {
  function configured(): LatchCreditsConfig {
    if (credits === undefined)
      throw LatchValidationError.at("LatchConfig", "credits", "no credit ledger configured");
    return credits;
  }

  async function reserve(request: unknown): Promise<CreditHold> {
    const r = parseWith(CreditReserveRequestSchema, request, "reserve request");
    const { ledger } = configured();
    const featureId = r.featureId ?? credits?.featureId;
    if (featureId === undefined)
      throw LatchValidationError.at("reserve request", "featureId", "no featureId and no credits.featureId");
    const holdId = r.holdId ?? randomUUID();
    const base = { kind: "credits" as const, holdId, account: r.account, featureId, amount: r.amount };
    try {
      const answer = await ledger.reserve({
        holdId,
        ledgerId: r.account,
        featureId,
        amount: r.amount,
        ttlMs: r.ttlMs ?? holdTtlMs,
      });
      if (answer.granted) return { granted: true, ...base, available: answer.available };
      return {
        granted: false,
        ...base,
        reason: "insufficient",
        available: answer.available,
        message: `credits exhausted for ${r.account}: ${answer.available} ${featureId} available, ${r.amount} requested`,
      };
    } catch (error) {
      if (isFinalReserveError(error)) throw error;
      return {
        granted: false,
        ...base,
        reason: "unavailable",
        message: "credit ledger unavailable: denied (credits fail closed)",
      };
    }
  }

  async function settle(
    hold: Extract<CreditHold, { granted: true }>,
    result: RecordResult | { status: "failed" },
  ): Promise<{ settled: boolean }> {
    const { ledger } = configured();
    try {
      if (result.status === "failed") {
        await withRetry(() => ledger.voidHold(hold.holdId), retry);
        return { settled: true };
      }
      const record = result.status === "rated" ? result.record : undefined;
      const obs = record?.observation ?? (result as { observation: UsageObservation }).observation;
      burns.assertHoldLedger(obs, hold, "settle", "hold.account");
      // The call was stored under another credit hold of this feature (a handler re-run after a
      // crash between record and settle: `record()` answered the stored call, a duplicate). The
      // call's burn commits the hold it links (see `commitLinkedHold`); committing this one too
      // would burn the call again, on this hold's ledger when it is another. Released instead,
      // and a rated call gets that burn now (the crashed run never settled the linked hold; the
      // burn is idempotent, so a later worker or reconcileCredits() adds nothing).
      const linkedHold = obs.correlation?.holdId;
      if (
        linkedHold !== undefined &&
        linkedHold !== hold.holdId &&
        obs.correlation?.holdFeatureId === hold.featureId
      ) {
        await withRetry(() => ledger.voidHold(hold.holdId), retry);
        if (record !== undefined) await burns.burnStored(record);
        return { settled: true };
      }
      const feature = await burns.feature(hold.featureId);
      let amount: string | undefined;
      let mismatchError: unknown;
      try {
        amount = creditUsageOf(feature, obs, record);
      } catch (error) {
        mismatchError = error;
        // Rated in another currency than the feature's: nothing burns here. Reported, hold released.
        warn({
          code: "credit_burn_failed",
          message: (error as Error).message,
          eventId: obs.eventId,
          cause: error,
        });
      }
      if (amount === undefined) {
        // A money feature counts the call only once it is rated. An accepted call (an ingest
        // worker rates it) or a spooled one (the replay rates it) will burn later: releasing the
        // hold now would let other reserves spend that money meanwhile, so it stays (early
        // denial, never overspend). The call recorded with this hold (`record(input, { hold })`
        // links it) commits it as that burn (see `commitLinkedHold`): it counts as held until
        // the worker or replay stores it, never twice after. Recorded without it, the hold is
        // released only at its TTL, the call counting twice (held and burned) until then:
        // reported, not thrown (nothing is lost; the early denial is the cost). Recorded under
        // another hold (a retried handler), that one is committed by the burn: this one is
        // voided. An unpriced call recorded with this hold of a hold-only feature (held, not
        // routed) keeps it too: rerateUnpriced() burns the call once priced, and committing this
        // hold is then the only burn of that feature (voided, it would never be burned). Of a
        // routed feature the hold is released: the route's burn counts the call there. Any
        // other result never burns here, and the hold is released.
        const linked = obs.correlation?.holdId;
        if (
          result.status === "unpriced" &&
          mismatchError === undefined &&
          linked === hold.holdId &&
          !burns.routesFeature(obs, hold.featureId, hold.account)
        )
          return { settled: true };
        if (pending(result) && mismatchError === undefined) {
          if (linked === hold.holdId) return { settled: true };
          if (linked === undefined) {
            warn({
              code: "credit_hold_unresolved",
              message: `credit hold ${hold.holdId} stays held until its TTL: ${obs.eventId} is not rated yet and was recorded without it, so its burn cannot release it (pass the hold to record(input, { hold }))`,
              eventId: obs.eventId,
            });
            return { settled: true };
          }
        }
        await withRetry(() => ledger.voidHold(hold.holdId), retry);
        return { settled: true };
      }
      const commit = (claimLedger: boolean) =>
        withRetry(
          () =>
            ledger.commitHold({
              holdId: hold.holdId,
              // The ledger refuses the commit when the hold is of another feature (a Hold
              // tampered with, or rebuilt with another featureId): `amount` is what
              // `hold.featureId` counts, which must never be committed to a hold of another.
              featureId: hold.featureId,
              // And when it is on another ledger than `hold.account` (see below).
              ...(claimLedger ? { ledgerId: hold.account } : {}),
              eventId: obs.eventId,
              amount,
              at: obs.timing.completedAt,
              version: record?.version ?? 1,
            }),
          retry,
        );
      try {
        try {
          await commit(true);
        } catch (error) {
          // A ledger that does not know the claim (an older third-party ledger's strict schema):
          // the same commit without it (the hold's feature is still checked).
          if (!claimUnknown(error, hold.account)) throw error;
          await commit(false);
        }
      } catch (error) {
        // The ledger refused the Hold as passed (changed after `reserve()`, or made up from
        // another's hold id): of another feature, or on another ledger. Nothing is committed.
        const field = namesField(error, "featureId")
          ? "featureId"
          : namesField(error, "ledgerId")
            ? "account"
            : undefined;
        if (field === undefined) throw error;
        const value = field === "featureId" ? hold.featureId : hold.account;
        throw new LatchValidationError({
          subject: "settle",
          issues: [
            {
              path: `hold.${field}`,
              message: `is ${JSON.stringify(value)}, not the ${field === "featureId" ? "feature" : "ledger"} of credit hold ${JSON.stringify(hold.holdId)} in the ledger (pass the Hold reserve() returned, unchanged): nothing committed, the hold stays held`,
            },
          ],
          cause: error,
        });
      }
      return { settled: true };
    } catch (error) {
      if (isFinalSettleError(error)) throw error;
      warn({ code: "settle_failed", message: `settling credit hold ${hold.holdId} failed`, cause: error });
      return { settled: false };
    }
  }

  return { reserve, settle };
}

/** A call stored or published but not rated yet: its burn comes later (worker, spool replay). */
function pending(result: RecordResult): boolean {
  return result.status === "accepted" || result.status === "spooled";
}
