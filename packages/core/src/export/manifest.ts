import { createHash } from "node:crypto";
import type { BatchIntent } from "../contracts/exporter.js";
import { canonicalJson } from "../contracts/hashing.js";
import type { ChangeLogEntry } from "../contracts/rated-record-store.js";
import { ExportError, LatchValidationError } from "../errors/index.js";
import {
  BILLING_EXPORT_SCHEMA,
  type BillingRecord,
  buildBillingRows,
  type PreviousVersion,
  totalsByCurrency,
} from "./billing-record.js";
import {
  intentKey,
  manifestKey,
  normalizePrefix,
  partitionRows,
  partKey,
  validateBatchId,
} from "./layout.js";
import {
  EXPORT_FORMATS,
  type ExportFormat,
  encodeBuiltRowsUncompressed,
  gzipDeterministic,
  gzipDeterministicAsync,
  type RowEncoders,
} from "./writers.js";

const utf8 = new TextEncoder();

/** One object a manifest lists. */
export interface ManifestObject {
  key: string;
  format: ExportFormat;
  /** The `dt=` partition (UTC day of `completedAt`). */
  dt: string;
  rows: number;
  /** Size of the stored object in bytes. */
  bytes: number;
  /** Lower-case hex SHA-256 of the stored object's bytes. */
  sha256: string;
}

/** The manifest of one export batch (`_manifests/<batchId>.json`). */
export interface BillingManifest {
  schema: typeof BILLING_EXPORT_SCHEMA;
  batchId: string;
  /** Deterministic: supplied by the caller; exporters use the batch's latest `rated_at`. */
  createdAt: string;
  formats: ExportFormat[];
  /** Seqs of the batch's first and last row in cursor order. */
  cursor: { firstSeq: string; lastSeq: string };
  /** Rows in the batch (each format holds every row once). */
  rows: number;
  /** Every data object of the batch, by `dt`, then format in {@link EXPORT_FORMATS} order. */
  objects: ManifestObject[];
  /**
   * Per currency, the sums of the batch's `cost_delta`: `costDeltaExact` (exact decimal
   * string) and `costDeltaMinorUnits`, that exact sum rounded ONCE half-even to the
   * currency's minor units (decimal integer string) — not the sum of the rows' rounded costs.
   * Never summed across currencies. Summing `costDeltaExact` over every manifest gives the
   * store's current totals exactly; round that sum, not the sum of `costDeltaMinorUnits`.
   */
  totalsByCurrency: Record<string, { costDeltaExact: string; costDeltaMinorUnits: string }>;
}

/** An object to write: key and exact bytes. */
export interface ExportObject {
  key: string;
  bytes: Uint8Array;
}

/**
 * Lower-case hex SHA-256, as manifests list it.
 *
 * @example
 * sha256Hex(new Uint8Array()); // "e3b0c442…b855"
 */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * Builds a batch's manifest and its canonical JSON bytes (keys sorted, no whitespace; see
 * `canonicalJson`), so the same batch always gives the same manifest bytes. `createdAt` is
 * passed in, never read from a clock; `objects` describe the objects as stored.
 *
 * @example
 * const { key, bytes } = buildManifest({
 *   prefix: "billing", batchId: "b-0000000000000000000000000000000000000001", createdAt: latestRatedAt(rows),
 *   formats: ["jsonl.gz"], rows, objects,
 * });
 */
export function buildManifest(input: {
  prefix: string;
  batchId: string;
  createdAt: string;
  formats: readonly ExportFormat[];
  rows: readonly BillingRecord[];
  objects: readonly ManifestObject[];
}): ExportObject & { manifest: BillingManifest } {
  const prefix = normalizePrefix(input.prefix);
  const batchId = validateBatchId(input.batchId);
  const first = input.rows[0];
  const last = input.rows[input.rows.length - 1];
  if (first === undefined || last === undefined) {
    throw LatchValidationError.at("export manifest", "rows", "a manifest describes at least one row");
  }
  const totals: BillingManifest["totalsByCurrency"] = {};
  for (const [currency, t] of Object.entries(totalsByCurrency(input.rows))) {
    totals[currency] = { costDeltaExact: t.exact, costDeltaMinorUnits: t.minorUnits.toString() };
  }
  const manifest: BillingManifest = {
    schema: BILLING_EXPORT_SCHEMA,
    batchId,
    createdAt: input.createdAt,
    formats: [...input.formats],
    cursor: { firstSeq: first.seq, lastSeq: last.seq },
    rows: input.rows.length,
    objects: input.objects.map((o) => ({ ...o })),
    totalsByCurrency: totals,
  };
  return { key: manifestKey(prefix, batchId), bytes: utf8.encode(canonicalJson(manifest)), manifest };
}

/**
 * The latest `rated_at` of the rows (by instant; ties by text), the deterministic `createdAt`
 * exporters put in manifests: a rerun of the batch gets the same value.
 *
 * @example
 * latestRatedAt(rows); // "2026-03-01T12:00:05Z"
 */
export function latestRatedAt(rows: readonly BillingRecord[]): string {
  let best = "";
  let bestMs = Number.NEGATIVE_INFINITY;
  for (const row of rows) {
    const ms = Date.parse(row.rated_at);
    if (ms > bestMs || (ms === bestMs && row.rated_at > best)) {
      best = row.rated_at;
      bestMs = ms;
    }
  }
  return best;
}

/** What a batch's intent marker records: enough to cut a retried page to the first attempt's rows. */
export interface BatchIntentMarker extends BatchIntent {
  schema: typeof BILLING_EXPORT_SCHEMA;
}

/**
 * Parses an intent marker's bytes; anything else is `ExportError` `invalid_data`.
 *
 * @example
 * parseIntent(bytes, "b-0000000000000000000000000000000000000001").rows; // 1000
 */
export function parseIntent(bytes: Uint8Array, batchId: string): BatchIntentMarker {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    throw new ExportError({
      kind: "invalid_data",
      reason: `intent of batch ${batchId} is not JSON`,
      cause: e,
    });
  }
  const v = (typeof value === "object" && value !== null ? value : {}) as Partial<Record<string, unknown>>;
  const ok =
    v.schema === BILLING_EXPORT_SCHEMA &&
    v.batchId === batchId &&
    typeof v.rows === "number" &&
    Number.isSafeInteger(v.rows) &&
    v.rows > 0 &&
    typeof v.firstSeq === "string" &&
    typeof v.lastSeq === "string" &&
    (v.formats === undefined ||
      (Array.isArray(v.formats) &&
        v.formats.length > 0 &&
        v.formats.every((f) => (EXPORT_FORMATS as readonly unknown[]).includes(f))));
  if (!ok) throw new ExportError({ kind: "invalid_data", reason: `intent of batch ${batchId} is malformed` });
  return v as unknown as BatchIntentMarker;
}

/**
 * Checks and orders the configured formats: default `["jsonl.gz"]`; duplicates dropped;
 * written (and listed) in {@link EXPORT_FORMATS} order whatever order they were given in, so
 * the manifest does not depend on it. Anything else is `LatchValidationError` naming `formats`.
 *
 * @example
 * normalizeFormats(["csv", "jsonl.gz"]); // ["jsonl.gz", "csv"]
 */
export function normalizeFormats(formats: readonly string[] | undefined): ExportFormat[] {
  if (formats === undefined) return ["jsonl.gz"];
  if (!Array.isArray(formats) || formats.length === 0) {
    throw LatchValidationError.at(
      "export options",
      "formats",
      `expected a non-empty list of ${EXPORT_FORMATS.join(", ")}`,
    );
  }
  for (const [i, f] of formats.entries()) {
    if (!(EXPORT_FORMATS as readonly string[]).includes(f)) {
      throw LatchValidationError.at(
        "export options",
        `formats.${i}`,
        `expected one of ${EXPORT_FORMATS.join(", ")}`,
      );
    }
  }
  return EXPORT_FORMATS.filter((f) => formats.includes(f));
}

/**
 * The formats to write a batch in: those its first attempt pinned in the intent (a rerun after
 * a crash writes exactly what that attempt started, whatever the configuration says now), else
 * the configured ones. A pinned format with no encoder configured fails with `invalid_data`
 * naming the batch, before anything is written.
 *
 * @example
 * const formats = pinnedFormats(options.formats, this.formats, this.encoders, options.batchId);
 */
export function pinnedFormats(
  pinned: readonly ExportFormat[] | undefined,
  configured: readonly ExportFormat[],
  encoders: RowEncoders | undefined,
  batchId: string,
): ExportFormat[] {
  if (pinned === undefined) return [...configured];
  const formats = normalizeFormats(pinned);
  for (const format of formats) {
    if (format === "parquet" && encoders?.parquet === undefined) {
      throw new ExportError({
        kind: "invalid_data",
        reason: `batch ${batchId} was started in ${formats.join(", ")}, and no parquet encoder is configured to finish it`,
      });
    }
  }
  return formats;
}

/**
 * The intent marker of a batch: its row count and first and last seq, from the entries alone
 * (so an exporter can send it before encoding the parts). `planBatch` returns the same object.
 *
 * @example
 * const intent = planIntent({ entries: page.items, prefix: "billing", batchId });
 * await put(intent.key, intent.bytes); // before any part
 */
export function planIntent(input: {
  entries: readonly ChangeLogEntry[];
  prefix?: string;
  batchId: string;
  /** The batch's formats, pinned in the intent (see `BatchIntent.formats`). */
  formats?: readonly ExportFormat[];
}): ExportObject {
  const entries = input.entries;
  return intentObject(input.prefix, {
    batchId: input.batchId,
    rows: entries.length,
    firstSeq: entries[0]?.seq ?? "",
    lastSeq: entries[entries.length - 1]?.seq ?? "",
    ...(input.formats !== undefined ? { formats: [...input.formats] } : {}),
  });
}

/**
 * The intent marker object (key and canonical bytes) of a batch intent; {@link planIntent}
 * builds the same from entries.
 *
 * @example
 * const { key, bytes } = intentObject("billing", { batchId, rows: 1000, firstSeq: "1", lastSeq: "1000" });
 */
export function intentObject(prefix: string | undefined, intent: BatchIntent): ExportObject {
  const normalized = normalizePrefix(prefix);
  const batchId = validateBatchId(intent.batchId);
  const marker: BatchIntentMarker = {
    schema: BILLING_EXPORT_SCHEMA,
    batchId,
    rows: intent.rows,
    firstSeq: intent.firstSeq,
    lastSeq: intent.lastSeq,
    ...(intent.formats !== undefined ? { formats: normalizeFormats(intent.formats) } : {}),
  };
  return { key: intentKey(normalized, batchId), bytes: utf8.encode(canonicalJson(marker)) };
}

/** One data object of a planned batch. */
export interface PlannedPart extends ExportObject {
  format: ExportFormat;
  dt: string;
  rows: number;
}

/** Everything an exporter writes for one batch, except the manifest (built from what was stored). */
export interface BatchPlan {
  prefix: string;
  batchId: string;
  formats: ExportFormat[];
  rows: BillingRecord[];
  /** Deterministic manifest `createdAt`: the latest `rated_at` of the batch. */
  createdAt: string;
  /** Written first, before any part. */
  intent: ExportObject;
  /** By `dt`, then format. */
  parts: PlannedPart[];
}

/**
 * Plans one batch: flattens the entries (`previous` holds the superseded versions, see
 * `resolvePreviousVersions`), partitions them by day and encodes every part. Pure and
 * deterministic; shared by every exporter (files, S3). Write `intent`, then `parts`, then
 * `manifestFor(plan, stored)`.
 *
 * @example
 * const plan = planBatch({ entries: page.items, previous, prefix: "billing", formats: ["jsonl.gz"], batchId });
 * for (const part of plan.parts) await put(part.key, part.bytes);
 */
export function planBatch(input: PlanBatchInput): BatchPlan {
  const { plan, gzip } = planUncompressed(input);
  for (const i of gzip) {
    const part = plan.parts[i] as PlannedPart;
    part.bytes = gzipDeterministic(part.bytes);
  }
  return plan;
}

/**
 * {@link planBatch}, with the gzip of `.gz` parts done on libuv's thread pool (in parallel, off
 * the event loop): the same bytes, while the event loop encodes other work (the next batch,
 * other parts). Used by exporters that keep several batches in flight.
 *
 * @example
 * const plan = await planBatchAsync({ entries: page.items, previous, batchId });
 */
export async function planBatchAsync(input: PlanBatchInput): Promise<BatchPlan> {
  return startPlanBatch(input).finish();
}

/**
 * The first, synchronous half of {@link planBatchAsync}: checks and encodes the rows now (so
 * invalid data throws here, before anything is written), and returns the intent marker and
 * `finish()`, which compresses the `.gz` parts on the thread pool.
 *
 * @example
 * const started = startPlanBatch(input);       // throws on invalid data
 * const intentWrite = put(started.intent);      // travels while the parts are compressed
 * const plan = await started.finish();
 */
export function startPlanBatch(input: PlanBatchInput): {
  intent: ExportObject;
  finish: () => Promise<BatchPlan>;
} {
  const { plan, gzip } = planUncompressed(input);
  return {
    intent: plan.intent,
    finish: async () => {
      await Promise.all(
        gzip.map(async (i) => {
          const part = plan.parts[i] as PlannedPart;
          part.bytes = await gzipDeterministicAsync(part.bytes);
        }),
      );
      return plan;
    },
  };
}

/** What {@link planBatch} plans from. */
export interface PlanBatchInput {
  entries: readonly ChangeLogEntry[];
  previous: ReadonlyMap<string, PreviousVersion>;
  prefix?: string;
  formats?: readonly ExportFormat[];
  batchId: string;
  /** Encoders for formats core cannot write itself (`parquet`); see `encodeRows`. */
  encoders?: RowEncoders;
}

/** The plan with built-in `.gz` parts not compressed yet, and the indexes of those parts. */
function planUncompressed(input: PlanBatchInput): { plan: BatchPlan; gzip: number[] } {
  const prefix = normalizePrefix(input.prefix);
  const batchId = validateBatchId(input.batchId);
  const formats = normalizeFormats(input.formats);
  const rows = buildBillingRows(input.entries, input.previous);
  const parts: PlannedPart[] = [];
  const gzip: number[] = [];
  for (const p of partitionRows(rows)) {
    for (const format of formats) {
      const raw = encodeBuiltRowsUncompressed(p.rows, format, input.encoders);
      if (raw.gzip) gzip.push(parts.length);
      parts.push({
        key: partKey(prefix, p.dt, p.firstSeq, p.lastSeq, format),
        bytes: raw.bytes,
        format,
        dt: p.dt,
        rows: p.rows.length,
      });
    }
  }
  const plan: BatchPlan = {
    prefix,
    batchId,
    formats,
    rows,
    createdAt: latestRatedAt(rows),
    intent: planIntent({ entries: input.entries, prefix, batchId, formats }),
    parts,
  };
  return { plan, gzip };
}

/**
 * The manifest of a planned batch, describing each part by the bytes actually stored under its
 * key (`stored[i]` for `plan.parts[i]`; the planned bytes when omitted).
 *
 * @example
 * const manifest = manifestFor(plan, storedBytes);
 * await put(manifest.key, manifest.bytes);
 */
export function manifestFor(
  plan: BatchPlan,
  stored?: readonly Uint8Array[],
): ExportObject & { manifest: BillingManifest } {
  const objects = plan.parts.map((part, i): ManifestObject => {
    const bytes = stored?.[i] ?? part.bytes;
    return {
      key: part.key,
      format: part.format,
      dt: part.dt,
      rows: part.rows,
      bytes: bytes.byteLength,
      sha256: sha256Hex(bytes),
    };
  });
  return buildManifest({
    prefix: plan.prefix,
    batchId: plan.batchId,
    createdAt: plan.createdAt,
    formats: plan.formats,
    rows: plan.rows,
    objects,
  });
}
