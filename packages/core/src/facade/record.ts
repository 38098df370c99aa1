import { canonicalJson } from "../contracts/hashing.js";
import type { ObservationStore } from "../contracts/observation-store.js";
import type { UsageCounter } from "../contracts/quota.js";
import type { RatedRecordStore } from "../contracts/rated-record-store.js";
import type { PricingSource } from "../pricing/pricing-source.js";
import type { RatingEngine } from "../rating/engine.js";
import type { UsageObservation } from "../schemas/observation.js";
import type { CreditBurns } from "./credit-burns.js";
import { isCode } from "./error-code.js";
import { rateResolved, resolvePrice } from "./rating-step.js";
import { createInlineRecord } from "./record-inline.js";
import { createOneTripRecord } from "./record-one-trip.js";
import { isCallerFault, isDeploymentFault, mayPassLater, type RetryPolicy, withRetry } from "./retry.js";
import type { RecordResult, Warn } from "./types.js";

export interface RecorderDeps {
  observations: ObservationStore;
  rated: RatedRecordStore;
  pricing: PricingSource;
  engine: RatingEngine;
  clock: () => Date;
  retry: RetryPolicy;
  warn: Warn;
  /** The usage counter period tiers need (see `periodBaseline`). */
  counter: UsageCounter | undefined;
  burns: CreditBurns;
  /** Keeps an observation the store could not take (see `spoolingTo`). */
  spool: (obs: UsageObservation) => Promise<void>;
  /**
   * An ingest worker's recorder: a stored rated record that does not parse (`corrupt_record`)
   * is thrown once the observation is stored, so the worker dead-letters the message, instead of
   * leaving the call `unpriced` (`store_error`), which a worker redelivers for as long as the
   * message lives (every delivery fails the same way). A caller's `record()` keeps the call
   * unpriced: it can still be settled, and the record repaired and re-rated.
   */
  corruptIsFinal?: boolean;
}

/** The record path: store the raw observation, price and rate it, store the rated record, burn its credits. */
export interface Recorder {
  /**
   * Records a parsed observation. Fails open: an error a retry could fix (the store is down)
   * spools the observation when `mayspool` (a caller's `record()`), and throws when not (a spool
   * replay, which keeps the entry spooled); an error no retry can fix (`invalid_input`,
   * `idempotency_conflict`, `corrupt_record`, `schema_not_migrated`, …) is thrown. Rating that fails on a store error
   * leaves the stored observation `unpriced` (`store_error`) for `rerateUnpriced()`.
   */
  record(obs: UsageObservation, mayspool: boolean): Promise<RecordResult>;
  /**
   * `record(obs, true)` without a promise when the embedded default can answer at once (see
   * `createInlineRecord`): the result, or an error thrown; `undefined` when `record` must run.
   */
  recordInline(obs: UsageObservation): RecordResult | undefined;
  /** Rates every stored observation without a rated record; a money feature burns once rated. */
  rerateUnpriced(): Promise<{ rated: number; stillUnpriced: number }>;
}

export { priceRequestOf } from "./rating-step.js";

/**
 * Two recordings of one call that differ only in the hold they name (and a credit hold's
 * feature and ledger), or, under one hold, only in that one of them names the hold's ledger
 * (`holdLedgerId`) and the other does not: the same call linked by an older release and by
 * this one (a retry across a rolling deploy, a message or spool entry of the older release).
 */
function sameCallOtherHold(stored: UsageObservation, incoming: UsageObservation): boolean {
  const holdA = stored.correlation?.holdId;
  const holdB = incoming.correlation?.holdId;
  if (holdA === undefined || holdB === undefined) return false;
  if (holdA === holdB) {
    const ledgerA = stored.correlation?.holdLedgerId;
    const ledgerB = incoming.correlation?.holdLedgerId;
    if ((ledgerA === undefined) === (ledgerB === undefined)) return false; // both or neither
    const strip = (o: UsageObservation) => {
      const { holdLedgerId: _ledger, ...correlation } = o.correlation ?? {};
      return canonicalJson({ ...o, correlation });
    };
    return strip(stored) === strip(incoming);
  }
  const strip = (o: UsageObservation) => {
    const {
      holdId: _hold,
      holdFeatureId: _feature,
      holdLedgerId: _ledger,
      ...correlation
    } = o.correlation ?? {};
    return canonicalJson({ ...o, correlation });
  };
  return strip(stored) === strip(incoming);
}

export function createRecorder(deps: RecorderDeps): Recorder {
  const { observations, rated, retry, warn, burns } = deps;
  // One transaction per call (and group commit) when the store offers it for this rated store.
  const writer = observations.recordWriter?.(rated);
  const oneTrip = writer === undefined ? undefined : createOneTripRecord({ ...deps, writer });
  // Only where the step-by-step path would not take the store's writer: a store that offers
  // one (a subclass of the memory store adding `recordWriter`) is written through it.
  const inline =
    writer === undefined ? createInlineRecord({ ...deps, burnsCredits: !burns.none }) : () => undefined;
  /** Event ids of calls running step by step now, with how many of each (see `recordInline`). */
  const stepwise = new Map<string, number>();

  /**
   * The embedded default's answer (see `createInlineRecord`), an error after the observation
   * was stored handled as `record` handles one from `rateStored`.
   */
  function recordInline(obs: UsageObservation): RecordResult | undefined {
    // A call of this eventId is on its way step by step (it awaits its store): a call inline now
    // would store first and overtake it, so it queues behind it as the step-by-step path would.
    if (stepwise.size > 0 && stepwise.has(obs.eventId)) return undefined;
    try {
      return inline(obs);
    } catch (error) {
      return deferredRating(obs, error);
    }
  }

  /**
   * The observation is stored but rating it threw: only the caller's own fault, or the
   * deployment's (a rated store on an unmigrated schema), is thrown. Anything else (a store
   * outage, a corrupt stored record) leaves it unpriced, so the call can still be settled,
   * and rerateUnpriced() completes it.
   */
  function deferredRating(obs: UsageObservation, error: unknown): RecordResult {
    if (isCallerFault(error) || isDeploymentFault(error)) throw error;
    if (deps.corruptIsFinal === true && isCode(error, "corrupt_record")) throw error;
    warn({
      code: "store_retry_exhausted",
      message: `rating ${obs.eventId} deferred: store error`,
      eventId: obs.eventId,
      cause: error,
    });
    return { status: "unpriced", eventId: obs.eventId, reason: "store_error", observation: obs };
  }

  /** Rates a stored observation and stores the record; marks it priced. */
  async function rateStored(obs: UsageObservation): Promise<RecordResult> {
    const existing = await withRetry(() => rated.current(obs.eventId), retry);
    if (existing) {
      await withRetry(() => observations.markPriced([obs.eventId]), retry);
      return { status: "rated", record: existing };
    }
    const rating = await rateResolved(obs, await resolvePrice(obs, deps), deps);
    if (rating.status === "unpriced") return rating;
    let record = rating.record;
    try {
      await withRetry(() => rated.put(record), retry);
    } catch (error) {
      // Another worker (a concurrent rerate, a retry racing its original) stored v1 first,
      // against another snapshot: theirs stands, and is what this call returns.
      if (!isCode(error, "idempotency_conflict")) throw error;
      const winner = await withRetry(() => rated.current(obs.eventId), retry);
      if (!winner) throw error;
      record = winner;
    }
    await withRetry(() => observations.markPriced([obs.eventId]), retry);
    return { status: "rated", record };
  }

  async function record(obs: UsageObservation, mayspool: boolean): Promise<RecordResult> {
    const now = recordInline(obs);
    if (now !== undefined) return now;
    const id = obs.eventId;
    stepwise.set(id, (stepwise.get(id) ?? 0) + 1);
    try {
      return await recordStepwise(obs, mayspool);
    } finally {
      const left = (stepwise.get(id) as number) - 1;
      if (left === 0) stepwise.delete(id);
      else stepwise.set(id, left);
    }
  }

  async function recordStepwise(obs: UsageObservation, mayspool: boolean): Promise<RecordResult> {
    const done = await oneTrip?.(obs, mayspool);
    if (done !== undefined) return done;
    try {
      await withRetry(() => observations.append(obs), retry);
    } catch (error) {
      if (isCode(error, "idempotency_conflict")) {
        // The same call recorded before under another hold (a handler re-run after a crash
        // between record and settle): a duplicate. The stored call keeps its hold, and
        // settle() voids the new one (see settle), so the call is charged once. Likewise the
        // same call under the same hold linked by an older release (no holdLedgerId) and this
        // one: the stored link stands, and its burn is the one the stored call gets.
        const stored = await withRetry(() => observations.get(obs.eventId), retry);
        if (stored !== undefined && sameCallOtherHold(stored, obs)) return record(stored, mayspool);
        throw error;
      }
      if (!mayPassLater(error) || !mayspool) throw error;
      warn({
        code: "store_retry_exhausted",
        message: `append ${obs.eventId} failed; spooling`,
        eventId: obs.eventId,
        cause: error,
      });
      await deps.spool(obs);
      return { status: "spooled", eventId: obs.eventId, observation: obs };
    }
    let result: RecordResult;
    try {
      result = await rateStored(obs);
    } catch (error) {
      result = deferredRating(obs, error);
    }
    // Not `mayspool`: a spool replay or an ingest worker, whose burn comes after the caller's
    // settle() and so commits the credit hold the call links (a caller's record() leaves it to settle).
    await burns.burnRecorded(obs, result, mayspool, !mayspool);
    return result;
  }

  async function rerateUnpriced(): Promise<{ rated: number; stillUnpriced: number }> {
    let ratedCount = 0;
    let stillUnpriced = 0;
    let after: string | undefined;
    for (;;) {
      const page = await withRetry(
        () => observations.listUnpriced(after === undefined ? { limit: 500 } : { after, limit: 500 }),
        retry,
      );
      for (const obs of page.items) {
        const result = await rateStored(obs);
        if (result.status === "rated") {
          ratedCount++;
          // A money feature burns once rated, and commits the credit hold the call links.
          await burns.burnRecorded(obs, result, true, true);
        } else stillUnpriced++;
      }
      if (page.next === undefined) break;
      after = page.next;
    }
    return { rated: ratedCount, stillUnpriced };
  }

  return { record, recordInline, rerateUnpriced };
}
