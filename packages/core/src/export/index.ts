export { csvRow } from "../reports/csv.js";
export {
  BILLING_COLUMN_TYPES,
  BILLING_COLUMNS,
  BILLING_EXPORT_SCHEMA,
  type BillingColumn,
  type BillingExport,
  type BillingRecord,
  buildBillingExport,
  buildBillingRows,
  type PreviousVersion,
  resolvePreviousVersions,
  toBillingRecord,
  totalsByCurrency,
} from "./billing-record.js";
export { type CsvCellKind, csvCell, csvCellValue } from "./csv-cell.js";
export { type ExportFileSystem, FileExporter, type FileExporterOptions } from "./file-exporter.js";
export {
  batchIdFor,
  exportRoot,
  intentKey,
  manifestKey,
  normalizePrefix,
  type Partition,
  padSeq,
  partitionDay,
  partitionRows,
  partKey,
  validateBatchId,
} from "./layout.js";
export {
  type BatchIntentMarker,
  type BatchPlan,
  type BillingManifest,
  buildManifest,
  type ExportObject,
  intentObject,
  latestRatedAt,
  type ManifestObject,
  manifestFor,
  normalizeFormats,
  type PlanBatchInput,
  type PlannedPart,
  parseIntent,
  pinnedFormats,
  planBatch,
  planBatchAsync,
  planIntent,
  sha256Hex,
  startPlanBatch,
} from "./manifest.js";
export {
  type ExportPendingOptions,
  type ExportPendingResult,
  exportPending,
} from "./run-export.js";
export { type PutIfAbsent, type WriteBatchOptions, writeBatch } from "./write-batch.js";
export {
  checkEncoders,
  EXPORT_FORMATS,
  type ExportFormat,
  encodeBuiltRowsUncompressed,
  encodeRows,
  gzipDeterministic,
  gzipDeterministicAsync,
  type RowEncoder,
  type RowEncoders,
  sameContent,
  toCsv,
  toJsonl,
  toJsonlGz,
} from "./writers.js";
