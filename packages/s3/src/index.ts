export { classifyS3Error, type S3Failure } from "./errors.js";
export { toParquet } from "./parquet.js";
export { formatProgress } from "./progress.js";
export type { S3RetryOptions } from "./retry.js";
export {
  type ExportProgress,
  type ExportSinceOptions,
  S3Exporter,
  type S3ExporterOptions,
} from "./s3-exporter.js";
