import type { ExportResult, PreviousVersionLookup } from "../contracts/exporter.js";
import type { ChangeLogEntry } from "../contracts/rated-record-store.js";
import { resolvePreviousVersions } from "./billing-record.js";
import { validateBatchId } from "./layout.js";
import { type BatchPlan, manifestFor, startPlanBatch } from "./manifest.js";
import type { ExportFormat, RowEncoders } from "./writers.js";

/**
 * Creates `key` with `bytes` unless it exists; resolves to the bytes now stored under the key
 * (the existing ones when they hold the same content) and whether this call created it. Throws
 * when other content is there. What each exporter implements for its storage.
 */
export type PutIfAbsent = (
  key: string,
  bytes: Uint8Array,
  signal: AbortSignal | undefined,
) => Promise<{ bytes: Uint8Array; created: boolean }>;

/** What {@link writeBatch} needs besides the entries. */
export interface WriteBatchOptions {
  batchId: string;
  /** Normalised prefix (see `normalizePrefix`). */
  prefix: string;
  formats: readonly ExportFormat[];
  encoders?: RowEncoders;
  /** Finds superseded versions outside the batch (for `cost_delta`). */
  previousVersion?: PreviousVersionLookup;
  put: PutIfAbsent;
  /** The intent marker was recorded already (`beginBatch`): do not write it again. */
  intentRecorded?: boolean;
  /** Parts written at the same time. Default 4. */
  partConcurrency?: number;
  signal?: AbortSignal;
}

/**
 * Writes one `latch.billing-export.v1` batch through `put`, in the order that makes a crash at
 * any point recoverable by a rerun: the rows are checked and encoded (invalid data writes
 * nothing), the intent marker goes first (while the parts are compressed), then every part (a few at a time; gzip
 * on the thread pool), then the manifest, describing the bytes actually stored, last. Shared by
 * every exporter (files, S3); each supplies its own create-if-absent `put`.
 *
 * @example
 * return writeBatch(page.items, { batchId, prefix, formats: ["jsonl.gz"], put: (k, b, s) => myPut(k, b, s) });
 */
export async function writeBatch(
  batch: readonly ChangeLogEntry[],
  options: WriteBatchOptions,
): Promise<ExportResult> {
  const { prefix, put, signal } = options;
  const batchId = validateBatchId(options.batchId);
  if (batch.length === 0) return { keys: [], rows: 0, bytes: 0, alreadyExported: false };
  signal?.throwIfAborted();
  const previous = await resolvePreviousVersions(batch, options.previousVersion, signal);
  // Rows are checked and encoded first (invalid data writes nothing); the intent then travels
  // while the parts are compressed on the thread pool.
  const started = startPlanBatch({
    entries: batch,
    previous,
    prefix,
    formats: options.formats,
    batchId,
    ...(options.encoders !== undefined ? { encoders: options.encoders } : {}),
  });
  signal?.throwIfAborted();
  const intentWrite = options.intentRecorded
    ? Promise.resolve({ bytes: started.intent.bytes, created: false })
    : put(started.intent.key, started.intent.bytes, signal);
  // Observed now: it may fail while the parts are still being compressed (awaited below).
  intentWrite.catch(() => undefined);
  let plan: BatchPlan;
  try {
    plan = await started.finish();
  } catch (error) {
    await intentWrite.catch(() => undefined);
    throw error;
  }
  let created = (await intentWrite).created ? 1 : 0;

  // Parts in any order, a few at a time; no new part once one has failed.
  const stored = new Array<Uint8Array>(plan.parts.length);
  let next = 0;
  let stop = false;
  const worker = async () => {
    while (!stop && next < plan.parts.length) {
      const i = next++;
      const part = plan.parts[i] as (typeof plan.parts)[number];
      try {
        signal?.throwIfAborted();
        const r = await put(part.key, part.bytes, signal);
        if (r.created) created++;
        stored[i] = r.bytes;
      } catch (error) {
        stop = true;
        throw error;
      }
    }
  };
  const concurrency = Math.max(1, Math.min(options.partConcurrency ?? 4, plan.parts.length));
  const settled = await Promise.allSettled(Array.from({ length: concurrency }, worker));
  const failed = settled.find((r) => r.status === "rejected");
  if (failed !== undefined) throw failed.reason;

  signal?.throwIfAborted();
  const manifest = manifestFor(plan, stored);
  if ((await put(manifest.key, manifest.bytes, signal)).created) created++;
  return {
    keys: [...plan.parts.map((p) => p.key), manifest.key],
    rows: plan.rows.length,
    bytes: stored.reduce((sum, b) => sum + b.byteLength, 0),
    alreadyExported: created === 0,
  };
}
