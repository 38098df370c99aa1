import { randomUUID } from "node:crypto";
import * as nodeFs from "node:fs/promises";
import * as path from "node:path";
import type {
  BatchIntent,
  ExportResult,
  PreviousVersionLookup,
  RatedRecordExporter,
} from "../contracts/exporter.js";
import type { ChangeLogEntry } from "../contracts/rated-record-store.js";
import { ExportError, LatchError, LatchValidationError } from "../errors/index.js";
import { intentKey, normalizePrefix, validateBatchId } from "./layout.js";
import { intentObject, normalizeFormats, parseIntent, pinnedFormats } from "./manifest.js";
import { writeBatch } from "./write-batch.js";
import { checkEncoders, type ExportFormat, type RowEncoders, sameContent } from "./writers.js";

/** The part of `node:fs/promises` the file exporter uses (`readdir`/`stat` default to node's). */
export type ExportFileSystem = Pick<typeof nodeFs, "mkdir" | "open" | "link" | "unlink" | "readFile"> &
  Partial<Pick<typeof nodeFs, "readdir" | "stat">>;

/** `.<name>.<uuid>.tmp`: the temporary file an object is written to before its link. */
const TEMP_FILE = /^\..+\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.tmp$/;

/** Options of {@link FileExporter}. */
export interface FileExporterOptions {
  /** The local folder objects are written under (created if missing). */
  directory: string;
  /** Key prefix inside the folder; see `normalizePrefix`. Default `""`. */
  prefix?: string;
  /**
   * Default `["jsonl.gz"]`. Written in canonical order (jsonl.gz, csv, csv.gz, parquet)
   * whatever the order given. `parquet` needs `encoders.parquet`.
   */
  formats?: ReadonlyArray<ExportFormat>;
  /** Encoders for formats core cannot write itself, e.g. `{ parquet: toParquet }` from `@latch/s3`. */
  encoders?: RowEncoders;
  /**
   * Finds a superseded version that is not in the batch being exported (it was exported
   * earlier): its `total` and `currency`, or undefined. `exportPending` passes one backed by
   * the store with each batch, which takes precedence; set this only to call `export` directly.
   * Without either, a correction whose previous version is in an earlier batch fails with
   * `invalid_data`.
   */
  previousVersion?: PreviousVersionLookup;
  /**
   * Temporary files older than this, left in a folder by a process killed between writing an
   * object and linking it, are removed the first time this exporter writes into that folder.
   * Younger ones may belong to another exporter still writing. Default 10 minutes.
   */
  staleTempAfterMs?: number;
  /** @internal Replaces `node:fs/promises` (tests inject failures and crashes). */
  fs?: ExportFileSystem;
}

function errorCode(e: unknown): string | undefined {
  const code = typeof e === "object" && e !== null ? (e as { code?: unknown }).code : undefined;
  return typeof code === "string" ? code : undefined;
}

/** Maps a file-system error: permissions ⇒ `auth`; anything else (ENOSPC, EIO, …) ⇒ `connection`. */
function fsError(e: unknown, what: string, signal: AbortSignal | undefined): unknown {
  if (LatchError.isInstance(e) || (signal?.aborted && e === signal.reason)) return e;
  const code = errorCode(e);
  const kind = code === "EACCES" || code === "EPERM" ? "auth" : "connection";
  return new ExportError({ kind, reason: `${what} failed${code ? ` (${code})` : ""}`, cause: e });
}

/**
 * Writes `latch.billing-export.v1` batches into a local folder, laid out exactly like the S3
 * exporter's bucket (see `partKey`, `manifestKey`): object key `a/b/c` is file
 * `<directory>/a/b/c`.
 *
 * Per batch (see `writeBatch`): the intent marker first, then every part, then the manifest last. Each object
 * is written to a temporary file in its target folder, fsynced, then hard-linked to its final
 * name — an atomic create-if-absent, like S3 `If-None-Match: *` — and the temporary file
 * removed. An object that already exists with the same content (a rerun) is left alone; with
 * different content the batch fails with `ExportError` `invalid_data` and nothing is replaced.
 * File-system errors: EACCES/EPERM ⇒ `auth`, others ⇒ `connection` (retryable). The signal is
 * checked before each object.
 *
 * @example
 * const exporter = new FileExporter({ directory: "./billing", formats: ["jsonl.gz", "csv"] });
 * await exportPending({ store, exporter });
 */
export class FileExporter implements RatedRecordExporter {
  readonly #root: string;
  readonly #prefix: string;
  readonly #formats: ExportFormat[];
  readonly #encoders: RowEncoders | undefined;
  readonly #previous: PreviousVersionLookup | undefined;
  readonly #fs: ExportFileSystem;
  readonly #staleTempAfterMs: number;
  /** Folders already swept of stale temporary files by this exporter. */
  readonly #swept = new Set<string>();

  constructor(options: FileExporterOptions) {
    if (typeof options !== "object" || options === null) {
      throw LatchValidationError.at("FileExporter options", "", "expected an object");
    }
    if (typeof options.directory !== "string" || options.directory === "") {
      throw LatchValidationError.at("FileExporter options", "directory", "expected a folder path");
    }
    this.#root = path.resolve(options.directory);
    this.#prefix = normalizePrefix(options.prefix);
    this.#formats = normalizeFormats(options.formats);
    this.#encoders = options.encoders;
    checkEncoders(this.#formats, this.#encoders);
    this.#previous = options.previousVersion;
    this.#fs = options.fs ?? nodeFs;
    const stale = options.staleTempAfterMs ?? 600_000;
    if (!Number.isSafeInteger(stale) || stale < 0) {
      throw LatchValidationError.at(
        "FileExporter options",
        "staleTempAfterMs",
        "expected a whole number of ms ≥ 0",
      );
    }
    this.#staleTempAfterMs = stale;
  }

  /**
   * Removes the stale temporary files of a folder (see `staleTempAfterMs`), once per folder per
   * exporter. Best effort: a file another process removes first, or a folder that cannot be
   * listed, is not an error (the export itself reports real file-system failures).
   */
  async #sweepTemps(dir: string): Promise<void> {
    if (this.#swept.has(dir)) return;
    this.#swept.add(dir);
    const readdir = this.#fs.readdir ?? nodeFs.readdir;
    const stat = this.#fs.stat ?? nodeFs.stat;
    let names: string[];
    try {
      names = (await readdir(dir)) as string[];
    } catch {
      return;
    }
    const now = Date.now();
    for (const name of names) {
      if (!TEMP_FILE.test(name)) continue;
      const file = path.join(dir, name);
      try {
        if (now - (await stat(file)).mtimeMs >= this.#staleTempAfterMs) await this.#fs.unlink(file);
      } catch {
        // gone already (another sweeper), or unreadable: left for the next sweep
      }
    }
  }

  /** The file an object key is stored in. */
  pathOf(key: string): string {
    return path.join(this.#root, ...key.split("/"));
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
    const formats = pinnedFormats(options?.formats, this.#formats, this.#encoders, options?.batchId);
    return writeBatch(batch, {
      batchId: options?.batchId,
      prefix: this.#prefix,
      formats,
      ...(this.#encoders !== undefined ? { encoders: this.#encoders } : {}),
      ...(previousVersion !== undefined ? { previousVersion } : {}),
      put: (key, bytes, s) => this.#put(key, bytes, s),
      intentRecorded: options?.intentRecorded === true,
      // One object at a time: a local disk gains nothing from more, and files appear in order.
      partConcurrency: 1,
      ...(signal !== undefined ? { signal } : {}),
    });
  }

  async beginBatch(intent: BatchIntent, signal?: AbortSignal): Promise<BatchIntent | undefined> {
    const marker = intentObject(this.#prefix, { ...intent, formats: this.#formats });
    signal?.throwIfAborted();
    const created = await this.#createOrRead(marker.key, marker.bytes, signal);
    return created === true ? undefined : parseIntent(created, intent.batchId);
  }

  async startedBatch(batchId: string, signal?: AbortSignal): Promise<BatchIntent | undefined> {
    const key = intentKey(this.#prefix, validateBatchId(batchId));
    signal?.throwIfAborted();
    let bytes: Uint8Array;
    try {
      bytes = await this.#fs.readFile(this.pathOf(key));
    } catch (e) {
      if (errorCode(e) === "ENOENT") return undefined;
      throw fsError(e, `reading ${key}`, signal);
    }
    return parseIntent(bytes, batchId);
  }

  /**
   * Creates `key` with `bytes` unless it exists. Returns the bytes now stored under the key
   * (the existing ones when they hold the same content) and whether this call created it.
   */
  async #put(
    key: string,
    bytes: Uint8Array,
    signal: AbortSignal | undefined,
  ): Promise<{ bytes: Uint8Array; created: boolean }> {
    const stored = await this.#createOrRead(key, bytes, signal);
    if (stored === true) return { bytes, created: true };
    if (sameContent(key, stored, bytes)) return { bytes: stored, created: false };
    throw new ExportError({
      kind: "invalid_data",
      reason: `${key} already exists with different content; nothing was overwritten`,
    });
  }

  /**
   * Creates `key` with `bytes` unless it exists (temporary file, fsync, hard link: atomic
   * create-if-absent); resolves to true when this call created it, else to the existing bytes.
   */
  async #createOrRead(
    key: string,
    bytes: Uint8Array,
    signal: AbortSignal | undefined,
  ): Promise<true | Uint8Array> {
    const fs = this.#fs;
    const final = this.pathOf(key);
    const dir = path.dirname(final);
    const tmp = path.join(dir, `.${path.basename(final)}.${randomUUID()}.tmp`);
    try {
      await fs.mkdir(dir, { recursive: true });
      await this.#sweepTemps(dir);
      const handle = await fs.open(tmp, "wx");
      let linked = false;
      try {
        try {
          await handle.writeFile(bytes);
          await handle.sync();
        } finally {
          await handle.close();
        }
        try {
          await fs.link(tmp, final);
          linked = true;
        } catch (e) {
          if (errorCode(e) !== "EEXIST") throw e;
        }
      } finally {
        await fs.unlink(tmp).catch(() => undefined);
      }
      if (linked) {
        await this.#syncDir(dir);
        return true;
      }
      return await fs.readFile(final);
    } catch (e) {
      throw fsError(e, `writing ${key}`, signal);
    }
  }

  /** Makes the new directory entry durable (best effort: not every platform can fsync a folder). */
  async #syncDir(dir: string): Promise<void> {
    if (process.platform === "win32") return;
    let handle: nodeFs.FileHandle | undefined;
    try {
      handle = await this.#fs.open(dir, "r");
      await handle.sync();
    } catch (e) {
      const code = errorCode(e);
      if (code !== "EISDIR" && code !== "EINVAL" && code !== "EPERM" && code !== "EBADF") throw e;
    } finally {
      await handle?.close();
    }
  }
}
