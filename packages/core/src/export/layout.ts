/**
 * Object layout of `latch.billing-export.v1` (keys use `/`; a file exporter maps them to
 * directories):
 *
 * ```
 * <prefix>/latch.billing-export.v1/dt=YYYY-MM-DD/part-<firstSeq>-<lastSeq>.<jsonl.gz|csv>
 * <prefix>/latch.billing-export.v1/_intents/<batchId>.json      written first (bookkeeping)
 * <prefix>/latch.billing-export.v1/_manifests/<batchId>.json    written last
 * ```
 *
 * `dt` is the UTC day of the usage's `completedAt`; a batch writes one part per `dt` present
 * in it (per format), first/last being the smallest and largest seq of the rows in that part,
 * zero-padded to 40 digits so keys sort by seq. A batch is exported once its manifest exists;
 * read data through manifests: a part that no manifest lists is left over from an interrupted
 * batch and is rewritten identically when that batch is retried.
 */
import { ExportError, LatchValidationError } from "../errors/index.js";
import { BILLING_EXPORT_SCHEMA, type BillingRecord } from "./billing-record.js";
import type { ExportFormat } from "./writers.js";

const SEGMENT = /^[A-Za-z0-9._=+-]+$/;
const BATCH_ID = /^[A-Za-z0-9._-]{1,128}$/;
const SEQ = /^[0-9]+$/;

/**
 * Normalises an object-key prefix: leading and trailing `/` removed; `""` (or undefined) is
 * allowed. Each segment must be non-empty, not `.` or `..`, and use only `A-Z a-z 0-9 . _ = + -`,
 * else `LatchValidationError` naming `prefix`.
 *
 * @example
 * normalizePrefix("/billing/prod/"); // "billing/prod"
 */
export function normalizePrefix(prefix: string | undefined): string {
  if (prefix === undefined) return "";
  if (typeof prefix !== "string")
    throw LatchValidationError.at("export layout", "prefix", "expected a string");
  const trimmed = prefix.replace(/^\/+/, "").replace(/\/+$/, "");
  if (trimmed === "") return "";
  if (trimmed.length > 512)
    throw LatchValidationError.at("export layout", "prefix", "at most 512 characters");
  for (const segment of trimmed.split("/")) {
    if (segment === "" || segment === "." || segment === ".." || !SEGMENT.test(segment)) {
      throw LatchValidationError.at(
        "export layout",
        "prefix",
        "segments must be non-empty, not . or .., and use only A-Z a-z 0-9 . _ = + -",
      );
    }
  }
  return trimmed;
}

/**
 * Checks a batch id: 1–128 of `A-Z a-z 0-9 . _ -`, else `LatchValidationError` naming `batchId`.
 *
 * @example
 * validateBatchId("b-0000000000000000000000000000000000000001"); // returns it unchanged
 */
export function validateBatchId(batchId: string): string {
  if (typeof batchId !== "string" || !BATCH_ID.test(batchId) || batchId === "." || batchId === "..") {
    throw LatchValidationError.at(
      "export batch",
      "batchId",
      "expected 1–128 characters of A-Z a-z 0-9 . _ -",
    );
  }
  return batchId;
}

/**
 * The root of the export under a (normalised) prefix.
 *
 * @example
 * exportRoot("billing"); // "billing/latch.billing-export.v1"
 * exportRoot("");        // "latch.billing-export.v1"
 */
export function exportRoot(prefix: string): string {
  return prefix === "" ? BILLING_EXPORT_SCHEMA : `${prefix}/${BILLING_EXPORT_SCHEMA}`;
}

/**
 * A seq zero-padded to 40 digits (leading zeros of the input dropped first), so keys sort by
 * seq. A seq that is not a decimal integer string is `ExportError` `invalid_data`.
 *
 * @example
 * padSeq("42"); // "0000000000000000000000000000000000000042"
 */
export function padSeq(seq: string): string {
  if (typeof seq !== "string" || !SEQ.test(seq)) {
    throw new ExportError({ kind: "invalid_data", reason: "seq is not a decimal integer string" });
  }
  const digits = seq.replace(/^0+(?=[0-9])/, "");
  return digits.length >= 40 ? digits : digits.padStart(40, "0");
}

/** A seq's digits without leading zeros (validated by `padSeq` when it is empty or has some). */
function seqDigits(seq: string): string {
  if (seq.length > 0 && seq.charCodeAt(0) !== 48) return seq;
  return padSeq(seq).replace(/^0+(?=[0-9])/, "");
}

/** Numeric order of two seqs (decimal integer strings; leading zeros allowed). */
function compareSeq(a: string, b: string): number {
  const x = seqDigits(a);
  const y = seqDigits(b);
  if (x.length !== y.length) return x.length - y.length;
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * The deterministic id of the batch that starts at `firstSeq` (its first entry in cursor
 * order). It depends on the start only, so a retried batch keeps its id even when the store
 * has more rows by then.
 *
 * @example
 * batchIdFor("7"); // "b-0000000000000000000000000000000000000007"
 */
export function batchIdFor(firstSeq: string): string {
  return `b-${padSeq(firstSeq)}`;
}

/**
 * The UTC day (`YYYY-MM-DD`) of an ISO 8601 UTC timestamp: the `dt=` partition.
 *
 * @example
 * partitionDay("2026-02-28T23:59:59.999Z"); // "2026-02-28"
 */
export function partitionDay(completedAt: string): string {
  const day = completedAt.slice(0, 10);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || !completedAt.endsWith("Z")) {
    throw new ExportError({ kind: "invalid_data", reason: "completedAt is not an ISO 8601 UTC timestamp" });
  }
  return day;
}

/**
 * The key of one data part.
 *
 * @example
 * partKey("billing", "2026-03-01", "1", "42", "csv");
 * // "billing/latch.billing-export.v1/dt=2026-03-01/part-0000000000000000000000000000000000000001-0000000000000000000000000000000000000042.csv"
 */
export function partKey(
  prefix: string,
  dt: string,
  firstSeq: string,
  lastSeq: string,
  format: ExportFormat,
): string {
  return `${exportRoot(prefix)}/dt=${dt}/part-${padSeq(firstSeq)}-${padSeq(lastSeq)}.${format}`;
}

/**
 * The key of a batch's manifest.
 *
 * @example
 * manifestKey("", "b-0000000000000000000000000000000000000001");
 * // "latch.billing-export.v1/_manifests/b-0000000000000000000000000000000000000001.json"
 */
export function manifestKey(prefix: string, batchId: string): string {
  return `${exportRoot(prefix)}/_manifests/${validateBatchId(batchId)}.json`;
}

/**
 * The key of a batch's intent marker, written before any part so that a retried batch can be
 * cut to exactly the rows of the first attempt (see `exportPending`).
 *
 * @example
 * intentKey("", "b-0000000000000000000000000000000000000001");
 * // "latch.billing-export.v1/_intents/b-0000000000000000000000000000000000000001.json"
 */
export function intentKey(prefix: string, batchId: string): string {
  return `${exportRoot(prefix)}/_intents/${validateBatchId(batchId)}.json`;
}

/** The rows of one `dt` partition of a batch. */
export interface Partition {
  dt: string;
  /** Smallest and largest seq among the rows (numerically). */
  firstSeq: string;
  lastSeq: string;
  /** In batch (cursor) order. */
  rows: BillingRecord[];
}

/**
 * Splits a batch's rows by the UTC day of `completed_at`, partitions sorted by day, rows
 * kept in batch order. Every row needs a seq.
 *
 * @example
 * partitionRows(rows).map((p) => p.dt); // ["2026-02-28", "2026-03-01"]
 */
export function partitionRows(rows: readonly BillingRecord[]): Partition[] {
  const byDay = new Map<string, Partition>();
  for (const row of rows) {
    const dt = partitionDay(row.completed_at);
    const p = byDay.get(dt);
    if (p === undefined) {
      padSeq(row.seq);
      byDay.set(dt, { dt, firstSeq: row.seq, lastSeq: row.seq, rows: [row] });
      continue;
    }
    p.rows.push(row);
    if (compareSeq(row.seq, p.firstSeq) < 0) p.firstSeq = row.seq;
    if (compareSeq(row.seq, p.lastSeq) > 0) p.lastSeq = row.seq;
  }
  return [...byDay.values()].sort((a, b) => (a.dt < b.dt ? -1 : a.dt > b.dt ? 1 : 0));
}
