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
   * Start reading and writing the next batch while the current one is still being written
   * (two batches in flight; cursors are still saved strictly in order, each only after its
   * batch's manifest). Only for exporters whose `export` may run twice at once; a crash then
   * may leave the next batch started, which the rerun finishes through its intent. Default false.
   */
  pipeline?: boolean;
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
  const pipeline = options.pipeline ?? false;
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
  /** Where the next page starts (ahead of the saved cursor while a batch is in flight). */
  let cursor = await store.getCursor(consumer, signal);
  /** The batch being written while the next one is read and planned (pipeline only). */
  let inFlight: { exporting: Promise<ExportResult>; next: string; batchId: string } | undefined;

  /** Waits for a batch, then saves its cursor: cursors are saved in batch order, never ahead. */
  const finish = async (batch: NonNullable<typeof inFlight>): Promise<void> => {
    const exported = await batch.exporting;
    await store.saveCursor(consumer, batch.next, signal);
    result.batches++;
    result.rows += exported.rows;
    result.bytes += exported.bytes ?? 0;
    for (const key of exported.keys) result.keys.push(key);
    options.onBatch?.({ ...exported, batchId: batch.batchId }, result);
  };

  try {
    for (;;) {
      signal?.throwIfAborted();
      let page = await store.listSince(cursor, batchSize, signal);
      const first = page.items[0];
      if (first === undefined) break;
      const batchId = batchIdFor(first.seq);

      // An earlier attempt's intent, if any; with beginBatch, recording ours in the same request.
      const lastEntry = page.items[page.items.length - 1];
      const intent = exporter.beginBatch
        ? await exporter.beginBatch(
            { batchId, rows: page.items.length, firstSeq: first.seq, lastSeq: lastEntry?.seq ?? first.seq },
            signal,
          )
        : await exporter.startedBatch?.(batchId, signal);
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
        throw invalid(
          `the change log returned rows after cursor ${cursor ?? "(start)"} without advancing it`,
        );
      }

      const batch = {
        exporting: exporter.export(
          page.items,
          {
            batchId,
            previousVersion,
            intentRecorded: exporter.beginBatch !== undefined,
            // A batch an earlier attempt started is finished in the formats it pinned.
            ...(intent?.formats !== undefined ? { formats: intent.formats } : {}),
          },
          signal,
        ),
        next,
        batchId,
      };
      cursor = next;
      if (!pipeline) {
        await finish(batch);
        continue;
      }
      // Pipelined: this batch starts while the previous one is still being written; the
      // previous one's cursor is saved (after it finishes) before anything waits on this one.
      batch.exporting.catch(() => undefined);
      const previous = inFlight;
      inFlight = batch;
      if (previous !== undefined) await finish(previous);
    }
    if (inFlight !== undefined) {
      const last = inFlight;
      inFlight = undefined;
      await finish(last);
    }
  } catch (error) {
    // Never leave a batch writing in the background after we return.
    await inFlight?.exporting.catch(() => undefined);
    throw error;
  }
  return result;
}
