import type { RecordWriter } from "../contracts/record-writer.js";
import { compileSnapshot } from "../pricing/compiled-snapshot.js";
import type { UsageObservation } from "../schemas/observation.js";
import type { CreditBurns } from "./credit-burns.js";
import { isCode } from "./error-code.js";
import { type RatingOutcome, type RatingStepDeps, rateResolvedNow, resolvePrice } from "./rating-step.js";
import { mayPassLater, withRetry } from "./retry.js";
import type { RecordResult } from "./types.js";

export interface OneTripDeps extends RatingStepDeps {
  /** The observation store's writer for the rated store (`ObservationStore.recordWriter`). */
  writer: RecordWriter;
  burns: CreditBurns;
  /** Keeps an observation the store could not take (see `spoolingTo`). */
  spool: (obs: UsageObservation) => Promise<void>;
}

/**
 * The record path through a store's {@link RecordWriter}: price and rate first (no store is
 * touched), then the observation, its rated record and the priced mark in one transaction, so
 * a call costs one round trip instead of four. Same answers as the step-by-step path: a stored
 * rated record wins over this rating; a store error is retried, then spooled (or thrown when
 * not `mayspool`); `schema_not_migrated` and the caller's faults are thrown.
 *
 * Answers `undefined` — the caller takes the step-by-step path — whenever that path decides
 * something this one cannot: pricing failed (the observation must be stored before the error
 * is reported), a snapshot with period tiers (the usage counter is moved only for a stored
 * observation), and the errors in `STEP_BY_STEP`.
 */
export function createOneTripRecord(
  deps: OneTripDeps,
): (obs: UsageObservation, mayspool: boolean) => Promise<RecordResult | undefined> {
  const { writer, retry, burns } = deps;
  return async (obs, mayspool) => {
    let rating: RatingOutcome;
    try {
      const resolution = await resolvePrice(obs, deps);
      if (resolution.status === "priced" && compileSnapshot(resolution.snapshot).tiers.some(isPeriodTier)) {
        return undefined;
      }
      // No period tier, so no usage counter to add to: `rateResolved`'s answer without its promise.
      rating = rateResolvedNow(obs, resolution, deps);
    } catch {
      return undefined;
    }
    const record = rating.status === "rated" ? rating.record : undefined;
    let current: RecordResult | undefined;
    try {
      const written = await withRetry(() => writer.write(obs, record), retry);
      current = written.current === undefined ? undefined : { status: "rated", record: written.current };
    } catch (error) {
      if (STEP_BY_STEP.some((code) => isCode(error, code))) return undefined;
      if (!mayPassLater(error) || !mayspool) throw error;
      deps.warn({
        code: "store_retry_exhausted",
        message: `recording ${obs.eventId} failed; spooling`,
        eventId: obs.eventId,
        cause: error,
      });
      await deps.spool(obs);
      return { status: "spooled", eventId: obs.eventId, observation: obs };
    }
    const result: RecordResult = current ?? rating;
    // Not `mayspool`: a spool replay or an ingest worker, whose burn comes after the caller's
    // settle() and so commits the credit hold the call links (a caller's record() leaves it to settle).
    await burns.burnRecorded(obs, result, mayspool, !mayspool);
    return result;
  };
}

/**
 * Errors the step-by-step path answers itself: a conflict (the stored call may differ only in
 * its hold), a stored record that does not parse (the call stays unpriced), and a writer that
 * refuses what the engine produced (the observation was parsed already, so not the caller's).
 */
const STEP_BY_STEP = ["idempotency_conflict", "corrupt_record", "invalid_input"] as const;

const isPeriodTier = (tier: { scope: string }) => tier.scope === "period";
