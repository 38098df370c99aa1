import type { ChangeLogEntry } from "./rated-record-store.js";

/** What one export batch wrote. */
export interface ExportResult {
  /** Every object key of the batch, the manifest last. */
  keys: string[];
  rows: number;
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
  export(
    batch: readonly ChangeLogEntry[],
    options: { batchId: string },
    signal?: AbortSignal,
  ): Promise<ExportResult>;
}
