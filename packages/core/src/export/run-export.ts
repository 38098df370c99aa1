import type { ExportResult, PreviousVersionLookup, RatedRecordExporter } from "../contracts/exporter.js";
import type { RatedRecordStore } from "../contracts/rated-record-store.js";
import { ExportError, LatchValidationError } from "../errors/index.js";
import { batchIdFor } from "./layout.js";

/** Options of {@link exportPending}. */
export interface ExportPendingOptions {
  store: Pick<RatedRecordStore, "listSince" | "getCursor" | "saveCursor" | "get">;
  exporter: RatedRecordExporter;
  /** The change-log consumer whose cursor is read and saved. Default `"default"`. */
  consumer?: string;
  /** Change-log entries per batch, 1–10,000 (the most one `listSince` page holds). Default 1,000. */
  batchSize?: number;
  signal?: AbortSignal;
  /**
   * Called after each batch is exported and its cursor saved, with the batch's result and the
   * running totals (for progress output). An exception thrown here stops the run; the batch
   * stays exported.
   */
  onBatch?: (batch: ExportResult & { batchId: string }, totals: ExportPendingResult) => void;
}

/** What one {@link exportPending} run exported. */
export interface ExportPendingResult {
  batches: number;
  rows: number;
  /** Bytes of the data objects written (as the exporter reports them; 0 when it does not). */
  bytes: number;
  /** Every key the batches returned, in order (each batch's manifest last). */
  keys: string[];
}

function invalid(reason: string): ExportError {
  return new ExportError({ kind: "invalid_data", reason });
}

/**
 * Exports every rated-record version not exported yet, batch by batch, in cursor order:
 * read the consumer's saved cursor once; then repeatedly `listSince(cursor, batchSize)`, stop on
 * an empty page, `exporter.export(page, { batchId })`, and only after it resolves
 * `saveCursor(consumer, page.cursor)`.
 *
 * Exactly once: `batchId` is `b-<seq of the batch's first entry, 40 digits>`, which depends only
 * on where the batch starts. When the exporter implements `startedBatch` and an earlier
 * attempt at that batch left an intent (a crash before the cursor was saved), the page is cut
 * (or re-read) to exactly that attempt's rows, even if the store has more rows by now or
 * `batchSize` changed — so the retry writes the same keys and bytes and nothing new. With a
 * plain exporter a retry is only identical when the page is (a full page with the same
 * `batchSize`).
 *
 * @example
 * const exporter = new FileExporter({ directory: "./billing" });
 * const { batches, rows } = await exportPending({ store, exporter });
 */
export async function exportPending(options: ExportPendingOptions): Promise<ExportPendingResult> {
  const { store, exporter, signal } = options;
  const consumer = options.consumer ?? "default";
  const batchSize = options.batchSize ?? 1000;
  if (typeof consumer !== "string" || consumer.length === 0 || consumer.length > 256) {
    throw LatchValidationError.at("exportPending options", "consumer", "expected 1–256 characters");
  }
  if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
    throw LatchValidationError.at(
      "exportPending options",
      "batchSize",
      "expected an integer from 1 to 10000",
    );
  }
  // Superseded versions outside a batch are looked up in the store (for cost_delta).
  const previousVersion: PreviousVersionLookup = (id, s) => store.get(id, s);
  const result: ExportPendingResult = { batches: 0, rows: 0, bytes: 0, keys: [] };

  signal?.throwIfAborted();
  let cursor = await store.getCursor(consumer, signal);
  for (;;) {
    signal?.throwIfAborted();
    let page = await store.listSince(cursor, batchSize, signal);
    const first = page.items[0];
    if (first === undefined) break;
    const batchId = batchIdFor(first.seq);

    const intent = await exporter.startedBatch?.(batchId, signal);
    if (intent !== undefined) {
      if (intent.rows !== page.items.length) page = await store.listSince(cursor, intent.rows, signal);
      const last = page.items[page.items.length - 1];
      if (
        page.items.length !== intent.rows ||
        page.items[0]?.seq !== intent.firstSeq ||
        last?.seq !== intent.lastSeq
      ) {
        throw invalid(`batch ${batchId} was started with other rows: the change log order is not stable`);
      }
    }
    const next = page.cursor;
    if (next === undefined || next === cursor) {
      throw invalid(`the change log returned rows after cursor ${cursor ?? "(start)"} without advancing it`);
    }

    const exported = await exporter.export(page.items, { batchId, previousVersion }, signal);
    await store.saveCursor(consumer, next, signal);
    cursor = next;
    result.batches++;
    result.rows += exported.rows;
    result.bytes += exported.bytes ?? 0;
    for (const key of exported.keys) result.keys.push(key);
    options.onBatch?.({ ...exported, batchId }, result);
  }
  return result;
}
