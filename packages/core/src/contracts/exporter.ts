import type { ExportFormat } from "../export/writers.js";
import type { RatedUsageRecord } from "../schemas/rating.js";
import type { ChangeLogEntry } from "./rated-record-store.js";

/** Finds a stored version by ratedRecordId: how an exporter learns a superseded version's cost. */
export type PreviousVersionLookup = (
  ratedRecordId: string,
  signal?: AbortSignal,
) => Promise<Pick<RatedUsageRecord, "total" | "currency"> | undefined>;

/** Where an earlier attempt at a batch stopped: written before any part of the batch. */
export interface BatchIntent {
  batchId: string;
  rows: number;
  firstSeq: string;
  lastSeq: string;
  /**
   * The formats the batch is written in, pinned by its first attempt: a rerun writes the batch
   * in these whatever the exporter is configured with now (a format set changed between a
   * crash and its rerun would otherwise write other objects beside a manifest that cannot
   * change). Absent in intents written before formats were pinned.
   */
  formats?: ExportFormat[];
}

/** What one export batch wrote. */
export interface ExportResult {
  /** Every object key of the batch, the manifest last. */
  keys: string[];
  rows: number;
  /** Bytes of the batch's data objects as stored (parts only, not the manifest). */
  bytes?: number;
  /** True when every object already existed with the same content (a rerun after a crash). */
  alreadyExported: boolean;
}

/**
 * Writes rated-record versions for downstream billing (`latch.billing-export.v1`).
 *
 * Guarantees (checked by `@latch/testkit`'s `describeExporter`):
 * - Deterministic: the same batch always produces the same object keys and bytes, so a rerun
 *   after a crash writes nothing new (objects are created only if absent; an existing object
 *   with different content is an `ExportError` of kind `invalid_data`).
 * - The manifest (`_manifests/<batchId>.json`) is written last; a batch counts as exported
 *   only once its manifest exists. Callers advance their cursor only after `export` resolves.
 * - Failures throw `ExportError` with kind `connection | auth | invalid_data | rate_limited`.
 */
export interface RatedRecordExporter {
  /**
   * Writes one batch. `previousVersion` finds a superseded version outside the batch (for
   * `cost_delta`); the export loop passes one backed by the store.
   */
  export(
    batch: readonly ChangeLogEntry[],
    options: {
      batchId: string;
      previousVersion?: PreviousVersionLookup;
      /** The batch's intent marker was already recorded by `beginBatch` (skip writing it). */
      intentRecorded?: boolean;
      /** The formats an earlier attempt pinned in the batch's intent: write these, not the configured ones. */
      formats?: readonly ExportFormat[];
    },
    signal?: AbortSignal,
  ): Promise<ExportResult>;
  /**
   * The intent of an earlier attempt at `batchId`, or undefined if none started. With it, the
   * export loop retries a batch with exactly the first attempt's rows (no duplicates even when
   * the store has grown since); exporters without it only get that guarantee for full pages.
   */
  startedBatch?(batchId: string, signal?: AbortSignal): Promise<BatchIntent | undefined>;
  /**
   * Records that batch `intent.batchId` starts with these rows, unless an earlier attempt
   * already recorded it (create-if-absent): resolves to undefined when this call recorded it,
   * else to the earlier attempt's intent, whose rows the caller must export instead. One request
   * where `startedBatch` + writing the marker take two; the export loop prefers it.
   */
  beginBatch?(intent: BatchIntent, signal?: AbortSignal): Promise<BatchIntent | undefined>;
}
