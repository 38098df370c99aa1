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
  latestRatedAt,
  type ManifestObject,
  manifestFor,
  normalizeFormats,
  type PlannedPart,
  parseIntent,
  planBatch,
  sha256Hex,
} from "./manifest.js";
export {
  type ExportPendingOptions,
  type ExportPendingResult,
  exportPending,
} from "./run-export.js";
export {
  EXPORT_FORMATS,
  type ExportFormat,
  encodeRows,
  gzipDeterministic,
  sameContent,
  toCsv,
  toJsonl,
  toJsonlGz,
} from "./writers.js";
