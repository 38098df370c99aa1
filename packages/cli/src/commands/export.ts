import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { FileExporter, formatMinorUnits, LatchError, sumDecimals, toMinorUnits } from "@latch/core";
import {
  type ChangeLogEntry,
  type ChangeLogStatus,
  isCurrencyCode,
  type RatedRecordStore,
} from "@latch/core/adapter";
import { type ExportFormat, exportPending } from "@latch/core/export";
import { S3Exporter, toParquet } from "@latch/s3";
import type { CliContext } from "../context.js";
import { CommandError, InterruptedError, UsageError } from "../exit-codes.js";
import { countFormat, Progress } from "../progress.js";
import { openStore } from "../stores.js";
import { looksLikeTime, parseTime } from "../times.js";
import type { ExportFlags } from "./export-command.js";
import { heldBackNote } from "./export-status.js";
import { positiveInt } from "./reports.js";

const FORMATS: readonly ExportFormat[] = ["jsonl.gz", "csv", "csv.gz", "parquet"];

type Destination =
  | { kind: "s3"; bucket: string; prefix: string; url: string }
  | { kind: "dir"; path: string };

/**
 * Where an export goes (or went): `--to`, else `s3://$LATCH_S3_BUCKET[/$LATCH_S3_PREFIX]`, else
 * `$LATCH_EXPORT_DIR`; `required` is the usage text when none is set.
 */
export function exportDestination(
  to: string | undefined,
  env: CliContext["env"],
  required = "s3://bucket/prefix or a folder",
): Destination {
  const chosen =
    to ??
    (env.LATCH_S3_BUCKET
      ? `s3://${env.LATCH_S3_BUCKET}${env.LATCH_S3_PREFIX ? `/${env.LATCH_S3_PREFIX}` : ""}`
      : env.LATCH_EXPORT_DIR);
  if (chosen === undefined) throw new UsageError(`--to: required (${required})`);
  return parseDestination(chosen);
}

/** `s3://bucket/prefix` or a local folder. */
export function parseDestination(to: string): Destination {
  if (to.startsWith("s3://")) {
    const rest = to.slice("s3://".length);
    const slash = rest.indexOf("/");
    const bucket = slash === -1 ? rest : rest.slice(0, slash);
    const prefix = slash === -1 ? "" : rest.slice(slash + 1).replace(/\/+$/, "");
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
      throw new UsageError(`--to: "${bucket}" is not an S3 bucket name (3–63 of a-z 0-9 . -)`);
    }
    return { kind: "s3", bucket, prefix, url: to };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(to))
    throw new UsageError(`--to: expected s3://bucket/prefix or a folder, got "${to}"`);
  return { kind: "dir", path: to };
}

function parseFormats(value: string): ExportFormat[] {
  const formats = value.split(",").map((f) => f.trim());
  for (const f of formats) {
    if (!(FORMATS as readonly string[]).includes(f)) {
      throw new UsageError(`--format: unknown format "${f}"; expected any of ${FORMATS.join(", ")}`);
    }
  }
  return formats as ExportFormat[];
}

type ExportStore = Pick<RatedRecordStore, "listSince" | "getCursor" | "saveCursor" | "get">;

/**
 * Only the versions whose usage completed at or after `fromMs`. Pages are read at the
 * requested size and filtered; pages without a match are skipped, so the batches stay
 * deterministic for a given store and batch size.
 */
function completedSince(store: RatedRecordStore, fromMs: number): ExportStore {
  return {
    getCursor: (name, signal) => store.getCursor(name, signal),
    saveCursor: (name, cursor, signal) => store.saveCursor(name, cursor, signal),
    get: (id, signal) => store.get(id, signal),
    async listSince(cursor, limit, signal) {
      let at = cursor;
      for (;;) {
        const page = await store.listSince(at, limit, signal);
        if (page.items.length === 0) return { items: [], cursor: at };
        const items: ChangeLogEntry[] = page.items.filter(
          (e) => Date.parse(e.record.observation.timing.completedAt) >= fromMs,
        );
        if (items.length > 0) return { items, cursor: page.cursor };
        at = page.cursor;
      }
    },
  };
}

interface ManifestTotals {
  manifests: number;
  rows: number;
  totals: Array<{ currency: string; exact: string; rounded: string }>;
}

/** Sums the manifests this run wrote or found, reading them back from the destination. */
async function manifestSummary(
  keys: string[],
  read: (key: string) => Promise<Uint8Array>,
): Promise<ManifestTotals> {
  const byCurrency = new Map<string, string[]>();
  let manifests = 0;
  let rows = 0;
  for (const key of keys) {
    if (!/\/_manifests\/[^/]+\.json$/.test(key)) continue;
    const manifest = JSON.parse(Buffer.from(await read(key)).toString("utf8")) as {
      rows: number;
      totalsByCurrency: Record<string, { costDeltaExact: string }>;
    };
    manifests++;
    rows += manifest.rows;
    for (const [currency, t] of Object.entries(manifest.totalsByCurrency)) {
      const list = byCurrency.get(currency) ?? [];
      list.push(t.costDeltaExact);
      byCurrency.set(currency, list);
    }
  }
  const totals = [...byCurrency.keys()].sort().map((currency) => {
    const exact = sumDecimals(byCurrency.get(currency) ?? []);
    const rounded = isCurrencyCode(currency)
      ? formatMinorUnits(toMinorUnits(exact, currency), currency)
      : exact;
    return { currency, exact, rounded };
  });
  return { manifests, rows, totals };
}

/**
 * `latch export`: publishes every rated-record version after the consumer's cursor (or after
 * `--since`) as `latch.billing-export.v1` to S3 or a folder, batch by batch, each batch's
 * manifest last and the cursor saved only after it; prints progress and the manifests' totals.
 * Then it asks the store's `changeLogStatus`: versions stored but held back (on Postgres,
 * behind a transaction still open somewhere on the server) are reported with what holds them,
 * so a run that exports nothing never claims "up to date" while versions wait.
 */
export async function runExport(flags: ExportFlags, ctx: CliContext): Promise<void> {
  const env = ctx.env;
  const destination = exportDestination(flags.to, env);
  const formats = parseFormats(flags.format);
  const batchSize =
    flags.batchSize === undefined ? 10_000 : positiveInt(flags.batchSize, "--batch-size", 10_000);
  if (flags.consumer === "" || flags.consumer.length > 256)
    throw new UsageError("--consumer: expected 1–256 characters");
  let sinceSeq: string | undefined;
  let sinceMs: number | undefined;
  if (flags.since !== undefined) {
    if (/^\d+$/.test(flags.since)) sinceSeq = flags.since.replace(/^0+(?=\d)/, "");
    else if (looksLikeTime(flags.since)) sinceMs = Date.parse(parseTime(flags.since, "--since"));
    else {
      throw new UsageError(
        `--since: expected a change-log position (a decimal seq, 0 for the start) or a time (2026-03-01, 2026-03-01T00:00:00Z), got "${flags.since}"`,
      );
    }
  }

  let exporter: FileExporter | S3Exporter;
  let read: (key: string) => Promise<Uint8Array>;
  if (destination.kind === "dir") {
    const fileExporter = new FileExporter({
      directory: destination.path,
      formats,
      encoders: { parquet: toParquet },
    });
    exporter = fileExporter;
    read = (key) => readFile(fileExporter.pathOf(key));
  } else {
    const endpoint = flags.s3Endpoint ?? env.S3_ENDPOINT ?? env.LATCH_S3_ENDPOINT;
    const region = flags.s3Region ?? env.S3_REGION ?? env.LATCH_S3_REGION ?? env.AWS_REGION;
    const pathStyle = env.S3_FORCE_PATH_STYLE ?? (endpoint !== undefined ? "true" : "false");
    let s3: S3Exporter;
    try {
      s3 = new S3Exporter({
        bucket: destination.bucket,
        prefix: destination.prefix,
        formats,
        forcePathStyle: pathStyle === "true" || pathStyle === "1",
        ...(endpoint !== undefined ? { endpoint } : {}),
        ...(region !== undefined ? { region } : {}),
      });
    } catch (error) {
      if (LatchError.isInstance(error)) throw new UsageError(`--to / S3 settings: ${error.message}`);
      throw error;
    }
    exporter = s3;
    read = async (key) => {
      const out = await s3.client.send(new GetObjectCommand({ Bucket: destination.bucket, Key: key }));
      if (out.Body === undefined) throw new CommandError(`reading manifest ${key}: no body`);
      return out.Body.transformToByteArray();
    };
  }

  const opened = await openStore(flags, ctx);
  const progress = new Progress({
    label: "exporting",
    unit: "rows",
    enabled: flags.progress,
    plain: "update",
  });
  const startedAt = performance.now();
  let already = 0;
  let summary: ManifestTotals;
  let result: Awaited<ReturnType<typeof exportPending>>;
  let status: ChangeLogStatus | undefined;
  try {
    if (sinceSeq !== undefined) {
      // Forward only: a position behind the consumer's saved cursor does not rewind it.
      await opened.store.saveCursor(flags.consumer, sinceSeq, ctx.signal);
    }
    const store: ExportStore = sinceMs === undefined ? opened.store : completedSince(opened.store, sinceMs);
    result = await exportPending({
      store,
      exporter,
      consumer: flags.consumer,
      batchSize,
      signal: ctx.signal,
      pipeline: destination.kind === "s3",
      onBatch: (batch, totals) => {
        if (batch.alreadyExported) already++;
        progress.update({
          done: totals.rows,
          extra: `${countFormat.format(totals.batches)} batch${totals.batches === 1 ? "" : "es"} · ${(totals.bytes / 1e6).toFixed(1)} MB`,
        });
      },
    });
    summary = await manifestSummary(result.keys, read);
    // Versions the log still holds back (behind an open transaction) are not "up to date".
    status = await opened.store
      .changeLogStatus?.({ consumer: flags.consumer }, ctx.signal)
      .catch(() => undefined); // the export itself succeeded: a status it cannot read is no failure
  } catch (error) {
    if (ctx.signal.aborted) throw new InterruptedError();
    if (error instanceof UsageError || error instanceof CommandError) throw error;
    if (LatchError.isInstance(error) && error.code === "invalid_input") throw new UsageError(error.message);
    throw new CommandError(`export: ${(error as Error).message}`, { cause: error });
  } finally {
    progress.stop();
    await opened.close();
    if (exporter instanceof S3Exporter) exporter.client.destroy();
  }

  const seconds = (performance.now() - startedAt) / 1_000;
  const where = destination.kind === "s3" ? destination.url : destination.path;
  if (flags.json) {
    ctx.stdout.write(
      `${JSON.stringify({
        to: where,
        consumer: flags.consumer,
        batches: result.batches,
        alreadyExported: already,
        rows: result.rows,
        bytes: result.bytes,
        keys: result.keys,
        manifests: summary.manifests,
        totals: summary.totals,
        seconds,
        ...(status === undefined ? {} : { waiting: status.waiting }),
        ...(status?.heldBack === undefined ? {} : { heldBack: status.heldBack }),
      })}\n`,
    );
    return;
  }
  const note = heldBackNote(status, result.batches > 0);
  let out =
    result.batches === 0
      ? note === undefined
        ? `nothing to export: consumer ${flags.consumer} is up to date (${opened.description})\n`
        : `nothing exported for consumer ${flags.consumer} (${opened.description}): ${note}`
      : `exported ${countFormat.format(result.rows)} rows in ${countFormat.format(result.batches)} batch(es)` +
        `${already > 0 ? ` (${already} already there, verified)` : ""} to ${where} in ${seconds.toFixed(1)} s\n`;
  if (summary.manifests > 0) {
    out += `manifests: ${summary.manifests}, ${countFormat.format(summary.rows)} rows\n`;
    for (const t of summary.totals) {
      out += `  cost_delta ${t.currency}: ${t.exact} exact = ${t.rounded} rounded once (half-even)\n`;
    }
    const root = destination.kind === "s3" ? destination.url : join(destination.path);
    out += `layout: ${root}${root.endsWith("/") ? "" : "/"}latch.billing-export.v1/dt=YYYY-MM-DD/part-<firstSeq>-<lastSeq>.<ext>, manifests in _manifests/\n`;
  }
  if (result.batches > 0 && note !== undefined) out += note;
  ctx.stdout.write(out);
}
