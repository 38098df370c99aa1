import type { LinesPage, LinesQuery, SummaryQuery, SummaryRow } from "../reports/query.js";
import type { RatedUsageRecord } from "../schemas/rating.js";
import type { ChangeLogStatus, ChangeLogStatusQuery } from "./change-log-status.js";

/** Result of storing one rated record. */
export type PutResult = "stored" | "already_exists";

/** One rated-record version in the store's change log, with its position in it. */
export interface ChangeLogEntry {
  /**
   * A unique, stable identifier of this version's place in the change log: a decimal integer
   * string. Exporters name objects after it (`part-<firstSeq>-<lastSeq>`).
   */
  seq: string;
  record: RatedUsageRecord;
}

/**
 * Rated records, versioned: a correction is a new version that supersedes the previous one,
 * and both are kept.
 *
 * Guarantees (checked by `@latch/testkit`'s `describeRatedRecordStore`):
 * - `put` is idempotent by `ratedRecordId`: the same record again returns `already_exists`
 *   (records are compared by {@link ratedRecordHash}, which ignores `ratedAt`, so re-rating the
 *   same observation against the same snapshot after a crash is a duplicate, not a conflict);
 *   a different record under the same id throws `IdempotencyConflictError`, nothing overwritten.
 * - Versions: version 1 supersedes nothing; version n > 1 must supersede `eventId:v<n-1>`,
 *   which must already be stored (else `invalid_input` naming `supersedes`), in the same
 *   `currency`: one event is billed in one currency, so a correction in another currency throws
 *   `CurrencyMismatchError` (`currency_mismatch`, naming the eventId and the `currency` field)
 *   and nothing is written. `current(eventId)` returns the highest stored version.
 * - `putMany` is all-or-nothing, like `ObservationStore.appendMany`: one refused record (a
 *   conflict, a broken chain, a currency mismatch) writes nothing of the batch.
 * - `listSince(cursor, limit)` walks the change log of every stored version in one total,
 *   stable order; following the returned cursor visits every version exactly once, even while
 *   other writers are storing records concurrently (a version is handed out only once no
 *   earlier position can still appear). `undefined` starts at the beginning; an empty page
 *   returns the same cursor.
 * - Reports (`summary`, `lines`) count only the current version of each event, by
 *   `observation.timing.completedAt` in `[start, end)`.
 */
export interface RatedRecordStore {
  put(record: RatedUsageRecord, signal?: AbortSignal): Promise<PutResult>;
  putMany(records: readonly RatedUsageRecord[], signal?: AbortSignal): Promise<PutResult[]>;
  current(eventId: string, signal?: AbortSignal): Promise<RatedUsageRecord | undefined>;
  /** One stored version by its ratedRecordId (`eventId:v<n>`), e.g. the version a correction superseded. */
  get(ratedRecordId: string, signal?: AbortSignal): Promise<RatedUsageRecord | undefined>;
  listSince(
    cursor: string | undefined,
    limit: number,
    signal?: AbortSignal,
  ): Promise<{ items: ChangeLogEntry[]; cursor: string | undefined }>;
  summary(query: SummaryQuery, signal?: AbortSignal): Promise<SummaryRow[]>;
  lines(query: LinesQuery, signal?: AbortSignal): Promise<LinesPage>;
  /** The saved position of a named change-log consumer (an exporter), or undefined. */
  getCursor(name: string, signal?: AbortSignal): Promise<string | undefined>;
  /** Saves a consumer's position. Only ever moves forward: an older cursor is ignored. */
  saveCursor(name: string, cursor: string, signal?: AbortSignal): Promise<void>;
  /**
   * Where a consumer stands in the change log, and what holds the log back: how many versions
   * after its cursor `listSince` hands out now (`ready`), how many are stored but held back
   * (`waiting`), and, when the log waits behind something, what (`heldBack`: on PostgreSQL the
   * oldest transaction still running anywhere on the server, with its pid and age). Read-only.
   * See {@link ChangeLogStatus}.
   *
   * Optional in the type so that stores written before it still compile; every Latch store
   * has it, and `@latch/testkit`'s `describeRatedRecordStore` requires it.
   *
   * @example
   * const status = await store.changeLogStatus?.({ consumer: "s3-billing" });
   * if (status?.heldBack?.by === "transaction") {
   *   log.warn(`export waits behind pid ${status.heldBack.pid} (${status.heldBack.ageMs} ms)`);
   * }
   */
  changeLogStatus?(query?: ChangeLogStatusQuery, signal?: AbortSignal): Promise<ChangeLogStatus>;
}
