import { ExportError } from "@latch/core/errors";
import {
  BILLING_COLUMN_TYPES,
  BILLING_COLUMNS,
  type BillingColumn,
  type BillingRecord,
} from "@latch/core/export";
import {
  ByteWriter,
  type ColumnSource as ColumnData,
  parquetWrite,
  type SchemaElement,
} from "hyparquet-writer";

/** `version` and the meters (integers in every format), and `cost_minor_units` (a decimal integer string). */
const INTEGER_COLUMNS = new Set<BillingColumn>([
  ...BILLING_COLUMNS.filter((c) => BILLING_COLUMN_TYPES[c] === "integer"),
  "cost_minor_units",
]);
const TIMESTAMP_COLUMNS = new Set<BillingColumn>(["started_at", "completed_at", "rated_at"]);

/** How each `latch.billing-export.v1` column is typed in Parquet. */
function schemaElement(column: BillingColumn): SchemaElement {
  if (INTEGER_COLUMNS.has(column)) return { name: column, type: "INT64", repetition_type: "REQUIRED" };
  if (TIMESTAMP_COLUMNS.has(column)) {
    return {
      name: column,
      type: "INT64",
      logical_type: { type: "TIMESTAMP", isAdjustedToUTC: true, unit: "MICROS" },
      repetition_type: "REQUIRED",
    };
  }
  return {
    name: column,
    type: "BYTE_ARRAY",
    converted_type: "UTF8",
    logical_type: { type: "STRING" },
    repetition_type: "REQUIRED",
  };
}

const SCHEMA: SchemaElement[] = [
  { name: "latch_billing_export_v1", num_children: BILLING_COLUMNS.length },
  ...BILLING_COLUMNS.map(schemaElement),
];

const INT64_MAX = (1n << 63n) - 1n;
const UTC = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$/;

/**
 * Microseconds since the epoch of an ISO 8601 UTC timestamp (up to 9 fraction digits; digits
 * past the microsecond are dropped, i.e. truncated towards the past).
 */
export function epochMicros(value: string, column: string, id: string): bigint {
  const m = UTC.exec(value);
  const ms = m === null ? Number.NaN : Date.parse(`${m[1]}Z`);
  if (m === null || Number.isNaN(ms)) {
    throw new ExportError({
      kind: "invalid_data",
      reason: `${id}: ${column} is not an ISO 8601 UTC timestamp`,
    });
  }
  return BigInt(ms) * 1_000n + BigInt((m[2] ?? "").padEnd(9, "0").slice(0, 6));
}

function int64(value: string | number, column: string, id: string): bigint {
  const n = BigInt(value);
  if (n > INT64_MAX || n < -INT64_MAX - 1n) {
    throw new ExportError({ kind: "invalid_data", reason: `${id}: ${column} does not fit in INT64` });
  }
  return n;
}

/**
 * Encodes billing rows as one Parquet file (`latch.billing-export.v1`), deterministic for the
 * same rows. Columns in `BILLING_COLUMNS` order, all REQUIRED:
 * - `version`, the meter columns and `cost_minor_units`: INT64;
 * - `started_at`, `completed_at`, `rated_at`: INT64 TIMESTAMP(MICROS, adjusted to UTC), which
 *   Spark, DuckDB, Trino/Athena and BigQuery all read (Spark rejects NANOS); a timestamp given
 *   with sub-microsecond digits loses them here only (JSONL and CSV keep the text);
 * - `cost` and `cost_delta`: UTF8 strings holding the exact decimal (any scale, so no cost is
 *   ever rounded or refused; cast in SQL, e.g. `CAST(cost_delta AS DECIMAL(38, 18))`);
 * - everything else UTF8 (`custom_meters` and `attributes` are the same JSON text as in JSONL
 *   and CSV).
 *
 * One row group per file (parts are one batch's rows of one day), Snappy compression.
 *
 * @example
 * const exporter = new FileExporter({ directory: "./out", formats: ["parquet"], encoders: { parquet: toParquet } });
 */
export function toParquet(rows: readonly BillingRecord[]): Uint8Array {
  const n = rows.length;
  const columnData: ColumnData[] = BILLING_COLUMNS.map((column): ColumnData => {
    if (INTEGER_COLUMNS.has(column)) {
      const data = new BigInt64Array(n);
      for (let i = 0; i < n; i++) {
        const row = rows[i] as BillingRecord;
        data[i] = int64(row[column] as string | number, column, row.rated_record_id);
      }
      return { name: column, data };
    }
    if (TIMESTAMP_COLUMNS.has(column)) {
      const data = new BigInt64Array(n);
      for (let i = 0; i < n; i++) {
        const row = rows[i] as BillingRecord;
        data[i] = epochMicros(row[column] as string, column, row.rated_record_id);
      }
      return { name: column, data };
    }
    const data = new Array<string>(n);
    for (let i = 0; i < n; i++) data[i] = String((rows[i] as BillingRecord)[column]);
    return { name: column, data };
  });
  const writer = new ByteWriter();
  parquetWrite({
    writer,
    columnData,
    schema: SCHEMA,
    rowGroupSize: Math.max(1, n),
    createdBy: "@latch/s3 (latch.billing-export.v1)",
  });
  return new Uint8Array(writer.getBuffer());
}
