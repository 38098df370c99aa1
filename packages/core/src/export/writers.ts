import { constants, gunzipSync, gzipSync } from "node:zlib";
import { LatchValidationError } from "../errors/index.js";
import { csvRow } from "../reports/csv.js";
import { BILLING_COLUMNS, type BillingRecord } from "./billing-record.js";

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

const utf8 = new TextEncoder();

/** One row as a JSON object, keys in {@link BILLING_COLUMNS} order; integers as numbers, amounts as strings. */
function jsonLine(row: BillingRecord): string {
  let line = "{";
  for (let i = 0; i < BILLING_COLUMNS.length; i++) {
    const column = BILLING_COLUMNS[i] as (typeof BILLING_COLUMNS)[number];
    if (i > 0) line += ",";
    line += `${JSON.stringify(column)}:${JSON.stringify(row[column])}`;
  }
  return `${line}}\n`;
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
  let text = "";
  for (const row of rows) text += jsonLine(row);
  return utf8.encode(text);
}

/** The gzip header's OS byte (offset 9): fixed to 255 ("unknown"), since zlib sets it per build platform. */
const GZIP_OS_OFFSET = 9;

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
  const out = gzipSync(bytes, {
    level: 6,
    windowBits: 15,
    memLevel: 8,
    strategy: constants.Z_DEFAULT_STRATEGY,
  });
  out[GZIP_OS_OFFSET] = 255;
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * RFC 4180 CSV, UTF-8: a header row of {@link BILLING_COLUMNS}, then one record per row, every
 * line ended by CRLF, fields quoted only when they contain `,`, `"`, CR or LF. Values are
 * written verbatim (a negative `cost_delta` stays `-0.001`: this is data, not a spreadsheet).
 *
 * @example
 * new TextDecoder().decode(toCsv([])); // "schema,rated_record_id,event_id,…,seq\r\n"
 */
export function toCsv(rows: readonly BillingRecord[]): Uint8Array {
  let text = csvRow(BILLING_COLUMNS);
  for (const row of rows) text += csvRow(BILLING_COLUMNS.map((c) => String(row[c])));
  return utf8.encode(text);
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
