import type { UsageObservation } from "../schemas/observation.js";
import type { RatedRecordStore } from "./rated-record-store.js";
import type { RecordWriter } from "./record-writer.js";

/** Result of appending one observation. */
export type AppendResult = "appended" | "already_exists";

/**
 * The raw record of usage: observations are stored before they are rated, so nothing is lost
 * when pricing fails, and usage without a price is kept as *unpriced* and re-rated later.
 *
 * Guarantees every implementation must give (checked by `@latch/testkit`'s
 * `describeObservationStore`):
 * - `append` is idempotent by `eventId`: the same observation again returns
 *   `already_exists` and stores nothing new; the same id with a different payload (compared
 *   by {@link observationHash}) throws `IdempotencyConflictError` and overwrites nothing. A
 *   retried append after a lost response is therefore always safe.
 * - `appendMany` is all-or-nothing: any conflict (with the store or inside the batch) throws
 *   `idempotency_conflict` and writes nothing; the same payload twice in one batch gives one
 *   `appended` and one `already_exists`, in input order.
 * - A new observation is *unpriced* until `markPriced` names it; `listUnpriced` pages through
 *   unpriced observations in a stable order (by eventId), each exactly once.
 * - Input is validated (`invalid_input` naming the field); stored data that no longer parses
 *   raises `corrupt_record`. Every method accepts an `AbortSignal`.
 */
export interface ObservationStore {
  append(observation: UsageObservation, signal?: AbortSignal): Promise<AppendResult>;
  appendMany(observations: readonly UsageObservation[], signal?: AbortSignal): Promise<AppendResult[]>;
  get(eventId: string, signal?: AbortSignal): Promise<UsageObservation | undefined>;
  /** Unpriced observations with `eventId > after`, ordered by eventId; `next` is set when more remain. */
  listUnpriced(
    options: { after?: string; limit: number },
    signal?: AbortSignal,
  ): Promise<{ items: UsageObservation[]; next?: string }>;
  /** Marks observations as priced (idempotent; unknown ids are ignored). */
  markPriced(eventIds: readonly string[], signal?: AbortSignal): Promise<void>;
  /**
   * Optional capability: a {@link RecordWriter} that stores an observation, its rated record
   * and the priced mark in one transaction, when `rated` keeps its records in the same
   * database as this store; `undefined` when it does not. The facade asks once, at creation,
   * and records through the writer when it gets one (`@latch/postgres` offers it, with group
   * commit on a pool); a store without it is recorded with `append`, `current`, `put` and
   * `markPriced`, with the same results.
   *
   * @example
   * const writer = observations.recordWriter?.(rated);
   * const { current } = await writer.write(observation, record); // one transaction
   */
  recordWriter?(rated: RatedRecordStore): RecordWriter | undefined;
}
