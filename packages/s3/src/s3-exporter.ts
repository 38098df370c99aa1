import { createHash } from "node:crypto";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { LatchValidationError } from "@latch/core";
import type {
  BatchIntent,
  ChangeLogEntry,
  ExportResult,
  PreviousVersionLookup,
  RatedRecordExporter,
  RatedRecordStore,
} from "@latch/core/adapter";
import { ExportError } from "@latch/core/errors";
import {
  checkEncoders,
  type ExportFormat,
  type ExportPendingResult,
  exportPending,
  intentKey,
  intentObject,
  normalizeFormats,
  normalizePrefix,
  parseIntent,
  pinnedFormats,
  type RowEncoders,
  sameContent,
  validateBatchId,
  writeBatch,
} from "@latch/core/export";
import { toParquet } from "./parquet.js";
import { callbackReporter, type ProgressReporter, statusLineReporter } from "./progress.js";
import { type RetryPolicy, retryPolicy, type S3RetryOptions, withRetries } from "./retry.js";

const MiB = 1024 * 1024;
/** S3's smallest multipart part (all but the last). */
const MIN_PART_BYTES = 5 * MiB;
const SHA256_METADATA = "latch-sha256";
/** Parts of one batch uploaded at the same time. */
const PART_CONCURRENCY = 4;

/** Options of {@link S3Exporter}. */
export interface S3ExporterOptions {
  /** The bucket written to (it must exist). */
  bucket: string;
  /** Key prefix inside the bucket, e.g. `billing/prod`; see `normalizePrefix`. Default `""`. */
  prefix?: string;
  /**
   * A client of your own. Configure it with `maxAttempts: 1` (this exporter retries itself)
   * and `forcePathStyle` for S3-compatible servers. When omitted, one is built from
   * `endpoint`, `region`, `credentials` and `forcePathStyle`; credentials then come from the
   * AWS default provider chain (environment, shared config, SSO, instance/task role).
   */
  client?: S3Client;
  /** e.g. `http://127.0.0.1:9000` for MinIO. Default: AWS S3 for `region`. */
  endpoint?: string;
  /** Default `AWS_REGION`, else `us-east-1`. */
  region?: string;
  /** Explicit credentials; default the AWS default provider chain. */
  credentials?: S3ClientConfig["credentials"];
  /** Path-style URLs (`endpoint/bucket/key`), needed by most S3-compatible servers. Default false. */
  forcePathStyle?: boolean;
  /** Per-request timeout of the built client, ms. Default 30,000. */
  requestTimeoutMs?: number;
  /**
   * Default `["jsonl.gz"]`; also `csv`, `csv.gz`, `parquet` (see `toParquet`). Written in that
   * canonical order whatever the order given.
   */
  formats?: ReadonlyArray<ExportFormat>;
  /** Encoders replacing or adding formats. Default `{ parquet: toParquet }`. */
  encoders?: RowEncoders;
  /** Objects larger than this go up in a multipart upload. Default 16 MiB, at least 5 MiB. */
  multipartThresholdBytes?: number;
  /** Size of each multipart part. Default 8 MiB, at least 5 MiB (S3's minimum). */
  partSizeBytes?: number;
  /** Retries of throttled, 5xx, reset and timed-out requests (exponential backoff, full jitter). */
  retry?: S3RetryOptions;
  /** Finds a superseded version exported in an earlier batch; `exportSince` passes one backed by the store. */
  previousVersion?: PreviousVersionLookup;
}

/** Options of {@link S3Exporter.exportSince}. */
export interface ExportSinceOptions {
  /** The change-log consumer whose cursor is read, and saved after each batch's manifest. */
  cursorName: string;
  /** Change-log entries per batch (bounds memory), 1–10,000. Default 10,000. */
  batchSize?: number;
  signal?: AbortSignal;
  /**
   * Progress after each batch: `true` prints a line (rows, MB, rows/s) to stderr, a function
   * receives the figures, `false` is silent. Default: print when stderr is a terminal.
   */
  progress?: boolean | ((progress: ExportProgress) => void);
}

/** Figures of an export run so far. */
export interface ExportProgress {
  batches: number;
  rows: number;
  /** Bytes of data objects written (or found already written). */
  bytes: number;
  elapsedMs: number;
  rowsPerSecond: number;
}

type S3Store = Pick<RatedRecordStore, "listSince" | "getCursor" | "saveCursor" | "get">;

function sha256(bytes: Uint8Array): Buffer {
  return createHash("sha256").update(bytes).digest();
}

function contentType(key: string): string {
  if (key.endsWith(".json")) return "application/json";
  if (key.endsWith(".gz")) return "application/gzip";
  if (key.endsWith(".csv")) return "text/csv; charset=utf-8";
  if (key.endsWith(".parquet")) return "application/vnd.apache.parquet";
  return "application/octet-stream";
}

function sizeOption(value: unknown, field: string, fallback: number): number {
  const v = value ?? fallback;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < MIN_PART_BYTES || v > 5 * 1024 * MiB) {
    throw LatchValidationError.at(
      "S3Exporter options",
      field,
      "expected an integer from 5 MiB (5242880) to 5 GiB",
    );
  }
  return v;
}

/**
 * Publishes `latch.billing-export.v1` batches to S3 or an S3-compatible server (MinIO, R2,
 * Ceph…), with the layout of `FileExporter` (see `partKey`):
 * `<prefix>/latch.billing-export.v1/dt=YYYY-MM-DD/part-<first>-<last>.<ext>`, an intent
 * marker first, then the parts, then the manifest (`_manifests/<batchId>.json`, schema id,
 * keys, row counts, sha256, per-currency totals) last.
 *
 * Every object is written with `If-None-Match: *` (create only if absent), so nothing is ever
 * overwritten. A 412 counts as "already written" only after the stored object is checked: its
 * SHA-256 (object metadata) equals the bytes about to be written, or, failing that, its
 * content equals them (gzip compared decompressed); otherwise the batch fails with `invalid_data`.
 * A retried batch (a crash, a lost response) therefore writes the same keys and no duplicate.
 * Objects above `multipartThresholdBytes` go up in parts, completed with `If-None-Match: *`.
 *
 * Throttling, 5xx, 409 conflicts, resets and timeouts are retried with exponential backoff and
 * full jitter; then, like every failure, mapped to `ExportError`: `connection`, `auth`
 * (401/403, missing bucket, bad credentials), `invalid_data`, `rate_limited` (with
 * `retryAfterMs`).
 *
 * @example
 * const exporter = new S3Exporter({ bucket: "acme-billing", prefix: "latch/prod", formats: ["jsonl.gz", "parquet"] });
 * const { rows } = await exporter.exportSince(store, { cursorName: "billing" });
 */
export class S3Exporter implements RatedRecordExporter {
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #formats: ExportFormat[];
  readonly #encoders: RowEncoders;
  readonly #multipartThreshold: number;
  readonly #partSize: number;
  readonly #retry: RetryPolicy;
  readonly #previous: PreviousVersionLookup | undefined;

  constructor(options: S3ExporterOptions) {
    if (typeof options !== "object" || options === null) {
      throw LatchValidationError.at("S3Exporter options", "", "expected an object");
    }
    if (typeof options.bucket !== "string" || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(options.bucket)) {
      throw LatchValidationError.at(
        "S3Exporter options",
        "bucket",
        "expected an S3 bucket name (3–63 of a-z 0-9 . -)",
      );
    }
    this.#bucket = options.bucket;
    this.#prefix = normalizePrefix(options.prefix);
    this.#formats = normalizeFormats(options.formats);
    this.#encoders = { parquet: toParquet, ...options.encoders };
    checkEncoders(this.#formats, this.#encoders);
    this.#multipartThreshold = sizeOption(
      options.multipartThresholdBytes,
      "multipartThresholdBytes",
      16 * MiB,
    );
    this.#partSize = sizeOption(options.partSizeBytes, "partSizeBytes", 8 * MiB);
    this.#retry = retryPolicy(options.retry);
    this.#previous = options.previousVersion;
    if (
      options.endpoint !== undefined &&
      (typeof options.endpoint !== "string" || !URL.canParse(options.endpoint))
    ) {
      throw LatchValidationError.at(
        "S3Exporter options",
        "endpoint",
        "expected a URL such as http://127.0.0.1:9000",
      );
    }
    const timeout = options.requestTimeoutMs ?? 30_000;
    if (!Number.isSafeInteger(timeout) || timeout < 1) {
      throw LatchValidationError.at("S3Exporter options", "requestTimeoutMs", "expected an integer ≥ 1");
    }
    this.#client =
      options.client ??
      new S3Client({
        region: options.region ?? process.env.AWS_REGION ?? "us-east-1",
        ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
        ...(options.credentials !== undefined ? { credentials: options.credentials } : {}),
        forcePathStyle: options.forcePathStyle ?? false,
        // This exporter retries (with backoff and the 412 check) itself.
        maxAttempts: 1,
        requestHandler: {
          requestTimeout: timeout,
          connectionTimeout: Math.min(timeout, 10_000),
          throwOnRequestTimeout: true,
        },
        // Bodies carry an explicit SHA-256 checksum (below); no extra CRC trailers, which
        // several S3-compatible servers reject.
        requestChecksumCalculation: "WHEN_REQUIRED",
        responseChecksumValidation: "WHEN_REQUIRED",
      });
  }

  /** The S3 client in use (for reading back, or to `destroy()` it when done). */
  get client(): S3Client {
    return this.#client;
  }

  async export(
    batch: readonly ChangeLogEntry[],
    options: {
      batchId: string;
      previousVersion?: PreviousVersionLookup;
      intentRecorded?: boolean;
      formats?: readonly ExportFormat[];
    },
    signal?: AbortSignal,
  ): Promise<ExportResult> {
    const previousVersion = options?.previousVersion ?? this.#previous;
    return writeBatch(batch, {
      batchId: options?.batchId,
      prefix: this.#prefix,
      // A batch an earlier attempt started is finished in the formats it pinned.
      formats: pinnedFormats(options?.formats, this.#formats, this.#encoders, options?.batchId),
      encoders: this.#encoders,
      ...(previousVersion !== undefined ? { previousVersion } : {}),
      put: (key, bytes, s) => this.#put(key, bytes, s),
      intentRecorded: options?.intentRecorded === true,
      partConcurrency: PART_CONCURRENCY,
      ...(signal !== undefined ? { signal } : {}),
    });
  }

  async beginBatch(intent: BatchIntent, signal?: AbortSignal): Promise<BatchIntent | undefined> {
    const marker = intentObject(this.#prefix, { ...intent, formats: this.#formats });
    signal?.throwIfAborted();
    const earlier = await this.#putIfAbsent(
      marker.key,
      marker.bytes,
      sha256(marker.bytes),
      async () => {
        const stored = await this.#get(marker.key, signal);
        if (stored === undefined) {
          throw new ExportError({
            kind: "connection",
            reason: `${marker.key} was reported to exist but cannot be read`,
          });
        }
        return parseIntent(stored, intent.batchId);
      },
      signal,
    );
    return "created" in earlier ? undefined : earlier;
  }

  async startedBatch(batchId: string, signal?: AbortSignal): Promise<BatchIntent | undefined> {
    const key = intentKey(this.#prefix, validateBatchId(batchId));
    const bytes = await this.#get(key, signal);
    return bytes === undefined ? undefined : parseIntent(bytes, batchId);
  }

  /**
   * Exports every rated-record version the store's change log holds after the saved cursor
   * `cursorName`, batch by batch (`exportPending`): parts, then the manifest, and only then the
   * cursor is advanced. Memory is bounded by `batchSize`. A run that crashed anywhere is
   * finished by running again: the same keys, no duplicate row, none missing.
   *
   * @example
   * const result = await exporter.exportSince(store, { cursorName: "billing", progress: true });
   * console.log(`${result.rows} rows in ${result.batches} batches`);
   */
  async exportSince(store: S3Store, options: ExportSinceOptions): Promise<ExportPendingResult> {
    if (typeof options !== "object" || options === null) {
      throw LatchValidationError.at("exportSince options", "", "expected an object with cursorName");
    }
    const startedAt = performance.now();
    const report: ProgressReporter | undefined =
      typeof options.progress === "function"
        ? callbackReporter(options.progress)
        : (options.progress ?? process.stderr.isTTY === true)
          ? statusLineReporter(process.stderr)
          : undefined;
    const progressOf = (totals: ExportPendingResult): ExportProgress => {
      const elapsedMs = performance.now() - startedAt;
      return {
        batches: totals.batches,
        rows: totals.rows,
        bytes: totals.bytes,
        elapsedMs,
        rowsPerSecond: elapsedMs > 0 ? (totals.rows * 1_000) / elapsedMs : 0,
      };
    };
    try {
      const result = await exportPending({
        store,
        exporter: this,
        consumer: options.cursorName,
        batchSize: options.batchSize ?? 10_000,
        pipeline: true,
        ...(options.signal !== undefined ? { signal: options.signal } : {}),
        onBatch: (_batch, totals) => report?.batch(progressOf(totals)),
      });
      report?.done(progressOf(result));
      return result;
    } catch (error) {
      report?.failed();
      throw error;
    }
  }

  /** Reads an object's bytes (undefined when absent), with retries. */
  async #get(key: string, signal: AbortSignal | undefined): Promise<Uint8Array | undefined> {
    return withRetries<Uint8Array | undefined>(
      this.#retry,
      `GET ${key}`,
      async () => {
        const out = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key: key }), {
          abortSignal: signal,
        });
        if (out.Body === undefined)
          throw new ExportError({ kind: "connection", reason: `GET ${key}: no body` });
        return out.Body.transformToByteArray();
      },
      { onMissing: () => undefined },
      signal,
    );
  }

  /**
   * Creates `key` with `bytes` unless it exists. Returns the bytes now stored under the key (the
   * existing ones when they hold the same content) and whether this call created it.
   */
  async #put(
    key: string,
    bytes: Uint8Array,
    signal: AbortSignal | undefined,
  ): Promise<{ bytes: Uint8Array; created: boolean }> {
    signal?.throwIfAborted();
    const digest = sha256(bytes);
    if (bytes.byteLength > this.#multipartThreshold) return this.#putMultipart(key, bytes, digest, signal);
    return this.#putIfAbsent(
      key,
      bytes,
      digest,
      () => this.#existing(key, bytes, digest.toString("hex"), signal),
      signal,
    );
  }

  /** One `PutObject` with `If-None-Match: *`, retried; a 412 is answered by `onExists`. */
  #putIfAbsent<T>(
    key: string,
    bytes: Uint8Array,
    digest: Buffer,
    onExists: () => Promise<T>,
    signal: AbortSignal | undefined,
  ): Promise<T | { bytes: Uint8Array; created: true }> {
    return withRetries<T | { bytes: Uint8Array; created: true }>(
      this.#retry,
      `PUT ${key}`,
      async () => {
        await this.#client.send(
          new PutObjectCommand({
            Bucket: this.#bucket,
            Key: key,
            Body: bytes,
            IfNoneMatch: "*",
            ContentType: contentType(key),
            ContentLength: bytes.byteLength,
            ChecksumSHA256: digest.toString("base64"),
            Metadata: { [SHA256_METADATA]: digest.toString("hex") },
          }),
          { abortSignal: signal },
        );
        return { bytes, created: true as const };
      },
      { onExists },
      signal,
    );
  }

  /**
   * After a 412: the stored object counts as this write only if its SHA-256 (metadata) is the
   * one of `bytes`, or its content equals `bytes` (gzip compared decompressed).
   */
  async #existing(
    key: string,
    bytes: Uint8Array,
    hex: string,
    signal: AbortSignal | undefined,
  ): Promise<{ bytes: Uint8Array; created: boolean }> {
    const head = await withRetries(
      this.#retry,
      `HEAD ${key}`,
      () =>
        this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: key }), { abortSignal: signal }),
      { onMissing: () => undefined },
      signal,
    );
    if (head?.Metadata?.[SHA256_METADATA] === hex && head.ContentLength === bytes.byteLength) {
      return { bytes, created: false };
    }
    const stored = await this.#get(key, signal);
    if (stored !== undefined && sameContent(key, stored, bytes)) return { bytes: stored, created: false };
    throw new ExportError({
      kind: "invalid_data",
      reason:
        stored === undefined
          ? `${key} was reported to exist but cannot be read`
          : `${key} already exists with different content; nothing was overwritten`,
    });
  }

  async #putMultipart(
    key: string,
    bytes: Uint8Array,
    digest: Buffer,
    signal: AbortSignal | undefined,
  ): Promise<{ bytes: Uint8Array; created: boolean }> {
    const hex = digest.toString("hex");
    const Bucket = this.#bucket;
    const created = await withRetries(
      this.#retry,
      `CreateMultipartUpload ${key}`,
      () =>
        this.#client.send(
          new CreateMultipartUploadCommand({
            Bucket,
            Key: key,
            ContentType: contentType(key),
            ChecksumAlgorithm: "SHA256",
            Metadata: { [SHA256_METADATA]: hex },
          }),
          { abortSignal: signal },
        ),
      {},
      signal,
    );
    const UploadId = created.UploadId;
    if (UploadId === undefined) {
      throw new ExportError({ kind: "connection", reason: `CreateMultipartUpload ${key}: no UploadId` });
    }
    const abort = () =>
      this.#client
        .send(new AbortMultipartUploadCommand({ Bucket, Key: key, UploadId }))
        .catch(() => undefined);
    try {
      const parts: Array<{ PartNumber: number; ETag: string; ChecksumSHA256: string }> = [];
      for (let offset = 0, n = 1; offset < bytes.byteLength; offset += this.#partSize, n++) {
        const body = bytes.subarray(offset, Math.min(bytes.byteLength, offset + this.#partSize));
        const checksum = sha256(body).toString("base64");
        const out = await withRetries(
          this.#retry,
          `UploadPart ${n} of ${key}`,
          () =>
            this.#client.send(
              new UploadPartCommand({
                Bucket,
                Key: key,
                UploadId,
                PartNumber: n,
                Body: body,
                ContentLength: body.byteLength,
                ChecksumSHA256: checksum,
              }),
              { abortSignal: signal },
            ),
          {},
          signal,
        );
        if (out.ETag === undefined)
          throw new ExportError({ kind: "connection", reason: `UploadPart ${n} of ${key}: no ETag` });
        parts.push({ PartNumber: n, ETag: out.ETag, ChecksumSHA256: out.ChecksumSHA256 ?? checksum });
      }
      const exists = async () => {
        await abort();
        return this.#existing(key, bytes, hex, signal);
      };
      return await withRetries(
        this.#retry,
        `CompleteMultipartUpload ${key}`,
        async () => {
          await this.#client.send(
            new CompleteMultipartUploadCommand({
              Bucket,
              Key: key,
              UploadId,
              IfNoneMatch: "*",
              MultipartUpload: { Parts: parts },
            }),
            { abortSignal: signal },
          );
          return { bytes, created: true };
        },
        // A retried Complete whose first attempt succeeded answers 412 (the object exists) or
        // 404 NoSuchUpload (the upload is gone): either way, check what is stored.
        { onExists: exists, onMissing: exists },
        signal,
      );
    } catch (error) {
      await abort();
      throw error;
    }
  }
}
