import { constants, gunzipSync, gzip, gzipSync } from "node:zlib";
import { LatchValidationError } from "../errors/index.js";
import { csvRow } from "../reports/csv.js";
import {
  BILLING_COLUMN_TYPES,
  BILLING_COLUMNS,
  type BillingColumn,
  type BillingRecord,
} from "./billing-record.js";
import type { CsvCellKind } from "./csv-cell.js";

/**
 * The object formats a billing export writes. `parquet` has no built-in encoder in
 * `@latch/core` (it would add a dependency): pass one through `encoders` (e.g. `toParquet`
 * from `@latch/s3`, which the S3 exporter uses by default).
 */
export type ExportFormat = "jsonl.gz" | "csv" | "csv.gz" | "parquet";

/** Every format, in the canonical order exporters write (and manifests list) them. */
export const EXPORT_FORMATS: readonly ExportFormat[] = ["jsonl.gz", "csv", "csv.gz", "parquet"];

/** Encodes the rows of one part into the bytes of one object. Must be deterministic. */
export type RowEncoder = (rows: readonly BillingRecord[]) => Uint8Array;

/** Encoders for formats `@latch/core` cannot write itself (today: `parquet`). */
export type RowEncoders = Partial<Record<ExportFormat, RowEncoder>>;

/**
 * One row as a JSON object, keys in {@link BILLING_COLUMNS} order; integers as numbers, amounts
 * as strings. The object literal lists the columns in that order (`JSON.stringify` keeps
 * insertion order; a test checks the two stay in step), and V8 serialises such an object much
 * faster than a hand-built string.
 */
function jsonLine(r: BillingRecord): string {
  return JSON.stringify({
    schema: r.schema,
    rated_record_id: r.rated_record_id,
    event_id: r.event_id,
    version: r.version,
    supersedes: r.supersedes,
    tenant_id: r.tenant_id,
    org_id: r.org_id,
    project_id: r.project_id,
    api_key_id: r.api_key_id,
    end_user_id: r.end_user_id,
    feature: r.feature,
    provider: r.provider,
    model: r.model,
    model_tier: r.model_tier,
    vendor: r.vendor,
    region: r.region,
    input_tokens: r.input_tokens,
    cached_input_tokens: r.cached_input_tokens,
    cache_write_tokens: r.cache_write_tokens,
    cache_write_1h_tokens: r.cache_write_1h_tokens,
    output_tokens: r.output_tokens,
    reasoning_tokens: r.reasoning_tokens,
    audio_input_tokens: r.audio_input_tokens,
    audio_output_tokens: r.audio_output_tokens,
    image_count: r.image_count,
    image_input_tokens: r.image_input_tokens,
    image_output_tokens: r.image_output_tokens,
    web_search_requests: r.web_search_requests,
    web_fetch_requests: r.web_fetch_requests,
    cached_audio_input_tokens: r.cached_audio_input_tokens,
    custom_meters: r.custom_meters,
    cost: r.cost,
    cost_delta: r.cost_delta,
    cost_minor_units: r.cost_minor_units,
    currency: r.currency,
    snapshot_id: r.snapshot_id,
    source: r.source,
    outcome: r.outcome,
    started_at: r.started_at,
    completed_at: r.completed_at,
    rated_at: r.rated_at,
    seq: r.seq,
    attributes: r.attributes,
  } satisfies Record<BillingColumn, string | number>);
}

/** Lines joined once and encoded once (appending to one string builds a rope that is slow to flatten). */
function encodeLines(lines: string[], terminator = ""): Uint8Array {
  if (lines.length === 0) return new Uint8Array();
  const buffer = Buffer.from(lines.join(terminator) + terminator, "utf8");
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/**
 * JSON Lines, UTF-8: one object per row, each line ended by `\n`, object keys in
 * {@link BILLING_COLUMNS} order, `version` and the meter columns as JSON numbers, every other
 * value (amounts included) a JSON string. No rows ⇒ no bytes.
 *
 * @example
 * new TextDecoder().decode(toJsonl(rows)); // '{"schema":"latch.billing-export.v1","rated_record_id":…}\n'
 */
export function toJsonl(rows: readonly BillingRecord[]): Uint8Array {
  const lines = new Array<string>(rows.length);
  for (let i = 0; i < rows.length; i++) lines[i] = jsonLine(rows[i] as BillingRecord);
  return encodeLines(lines, "\n");
}

/**
 * {@link toJsonl} for rows built by `toBillingRecord`, whose own keys are exactly the columns in
 * column order (a test checks it): they are serialised as they are, without a copy.
 */
function builtRowsToJsonl(rows: readonly BillingRecord[]): Uint8Array {
  const lines = new Array<string>(rows.length);
  for (let i = 0; i < rows.length; i++) lines[i] = JSON.stringify(rows[i]);
  return encodeLines(lines, "\n");
}

/** The gzip header's OS byte (offset 9): fixed to 255 ("unknown"), since zlib sets it per build platform. */
const GZIP_OS_OFFSET = 9;
const GZIP_OPTIONS = { level: 6, windowBits: 15, memLevel: 8, strategy: constants.Z_DEFAULT_STRATEGY };

/**
 * {@link toJsonl}, gzipped with fixed settings (level 6, window 15, memLevel 8, default
 * strategy, header mtime 0, no file name, OS byte 255), so the same rows give the same bytes.
 * zlib builds may still compress differently; exporters therefore accept an existing object
 * whose decompressed content is equal (see {@link sameContent}).
 *
 * @example
 * gunzipSync(toJsonlGz(rows)); // the bytes of toJsonl(rows)
 */
export function toJsonlGz(rows: readonly BillingRecord[]): Uint8Array {
  return gzipDeterministic(toJsonl(rows));
}

/**
 * Gzips with the fixed settings of {@link toJsonlGz}.
 *
 * @example
 * gzipDeterministic(bytes); // same bytes in ⇒ same bytes out
 */
export function gzipDeterministic(bytes: Uint8Array): Uint8Array {
  return fixGzipHeader(gzipSync(bytes, GZIP_OPTIONS));
}

/**
 * {@link gzipDeterministic} on libuv's thread pool: the same bytes, without blocking the event loop.
 *
 * @example
 * await gzipDeterministicAsync(bytes); // equals gzipDeterministic(bytes)
 */
export function gzipDeterministicAsync(bytes: Uint8Array): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    gzip(bytes, GZIP_OPTIONS, (error, out) => (error ? reject(error) : resolve(fixGzipHeader(out))));
  });
}

function fixGzipHeader(out: Buffer): Uint8Array {
  out[GZIP_OS_OFFSET] = 255;
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** How each billing column is written to CSV: numbers Latch produces, or (neutralised) text. */
const BILLING_CSV_KINDS: readonly CsvCellKind[] = BILLING_COLUMNS.map((c) =>
  BILLING_COLUMN_TYPES[c] === "integer" ||
  c === "cost" ||
  c === "cost_delta" ||
  c === "cost_minor_units" ||
  c === "seq"
    ? "number"
    : "text",
);

/**
 * RFC 4180 CSV, UTF-8: a header row of {@link BILLING_COLUMNS}, then one record per row, every
 * line ended by CRLF, each field written by `csvCell`: quoted when it contains `,`, `"`, CR or
 * LF; a text field starting with `=`, `+`, `-`, `@`, TAB, CR or `'` prefixed with `'` and
 * quoted (formula injection). The number columns (`version`, the
 * meters, `cost`, `cost_delta`, `cost_minor_units`, `seq`) are written as they are, so a
 * negative `cost_delta` stays `-0.001`.
 *
 * @example
 * new TextDecoder().decode(toCsv([])); // "schema,rated_record_id,event_id,…,seq\r\n"
 */
export function toCsv(rows: readonly BillingRecord[]): Uint8Array {
  const kinds = BILLING_CSV_KINDS;
  const lines = new Array<string>(rows.length + 1);
  lines[0] = csvRow(BILLING_COLUMNS);
  const fields = new Array<string>(BILLING_COLUMNS.length);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i] as BillingRecord;
    for (let c = 0; c < BILLING_COLUMNS.length; c++)
      fields[c] = String(row[BILLING_COLUMNS[c] as BillingColumn]);
    lines[i + 1] = csvRow(fields, kinds);
  }
  return encodeLines(lines);
}

/**
 * Encodes rows in one format: `encoders[format]` when given, else the built-in writer
 * (`jsonl.gz`, `csv`, `csv.gz` = {@link toCsv} gzipped like {@link toJsonlGz}). A format
 * without either is `LatchValidationError` naming `formats`.
 *
 * @example
 * encodeRows(rows, "csv"); // same as toCsv(rows)
 * encodeRows(rows, "parquet", { parquet: toParquet });
 */
export function encodeRows(
  rows: readonly BillingRecord[],
  format: ExportFormat,
  encoders?: RowEncoders,
): Uint8Array {
  const custom = encoders?.[format];
  if (custom !== undefined) return custom(rows);
  switch (format) {
    case "jsonl.gz":
      return toJsonlGz(rows);
    case "csv":
      return toCsv(rows);
    case "csv.gz":
      return gzipDeterministic(toCsv(rows));
    default:
      throw missingEncoder(format);
  }
}

/**
 * {@link encodeRows} for rows straight from `buildBillingRows` (the export planner's path),
 * with the gzip of the built-in `.gz` formats left to the caller (`gzip: true`): the caller
 * compresses with {@link gzipDeterministic} or {@link gzipDeterministicAsync} for the same
 * bytes as `encodeRows`. JSONL rows are serialised as they are (no copy; see `toJsonl`).
 *
 * @internal
 */
export function encodeBuiltRowsUncompressed(
  rows: readonly BillingRecord[],
  format: ExportFormat,
  encoders?: RowEncoders,
): { bytes: Uint8Array; gzip: boolean } {
  if (encoders?.[format] === undefined) {
    if (format === "jsonl.gz") return { bytes: builtRowsToJsonl(rows), gzip: true };
    if (format === "csv.gz") return { bytes: toCsv(rows), gzip: true };
  }
  return { bytes: encodeRows(rows, format, encoders), gzip: false };
}

function missingEncoder(format: string): LatchValidationError {
  return LatchValidationError.at(
    "export options",
    "formats",
    `${format} needs an encoder: pass encoders: { ${format}: … } (toParquet from @latch/s3 writes parquet)`,
  );
}

/**
 * Checks that every format can be encoded (built in, or in `encoders`), else
 * `LatchValidationError` naming `formats`. Exporters call it in their constructor.
 *
 * @example
 * checkEncoders(["jsonl.gz", "parquet"], { parquet: toParquet });
 */
export function checkEncoders(formats: readonly ExportFormat[], encoders?: RowEncoders): void {
  for (const format of formats) {
    if (format === "parquet" && encoders?.parquet === undefined) throw missingEncoder(format);
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Whether an object already stored under a key holds the same content as the bytes about to
 * be written: byte-equal, or, for gzip (`.gz` keys), equal once decompressed (another zlib
 * build may compress the same rows differently). A corrupt stored gzip is not the same.
 *
 * @example
 * sameContent("a/part-1-2.jsonl.gz", existing, toJsonlGz(rows)); // true on a rerun
 */
export function sameContent(key: string, existing: Uint8Array, incoming: Uint8Array): boolean {
  if (bytesEqual(existing, incoming)) return true;
  if (!key.endsWith(".gz")) return false;
  try {
    return bytesEqual(gunzipSync(existing), gunzipSync(incoming));
  } catch {
    return false;
  }
}
