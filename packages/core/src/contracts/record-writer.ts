import type { UsageObservation } from "../schemas/observation.js";
import type { RatedUsageRecord } from "../schemas/rating.js";
import type { AppendResult } from "./observation-store.js";

/** What {@link RecordWriter.write} answers. */
export interface RecordWriteResult {
  /** `appended` when this call stored the observation; `already_exists` when it was stored before (same payload). */
  observation: AppendResult;
  /**
   * The event's current rated record once the write committed: the `record` passed in when it
   * was stored, the stored version when the event already had one (which then wins, as
   * `RatedRecordStore.current` would answer), `undefined` when the event stays unpriced.
   */
  current: RatedUsageRecord | undefined;
}

/**
 * Optional capability of an `ObservationStore` (see `ObservationStore.recordWriter`): the
 * facade's whole write of one call — the observation, its first rated record and the priced
 * mark — in one transaction, instead of an append, a lookup, a put and a mark.
 *
 * `write(observation, record)` must be equivalent to, in one transaction:
 * `append(observation)` (`IdempotencyConflictError` on another payload for the eventId, and
 * nothing written); then, when the event already has a rated record, `markPriced` and answer
 * it; else, when `record` is given (version 1 of this observation), `put(record)` and
 * `markPriced`. A thrown error other than a conflict means nothing was written, or (a lost
 * reply) everything was: the call is safe to retry with the same arguments.
 *
 * A store may share one transaction between concurrent calls (group commit); each call still
 * resolves only after the commit that holds it, and one call's conflict never fails another's.
 */
export interface RecordWriter {
  write(
    observation: UsageObservation,
    record: RatedUsageRecord | undefined,
    signal?: AbortSignal,
  ): Promise<RecordWriteResult>;
}
