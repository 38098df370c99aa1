import type { ExportProgress } from "./s3-exporter.js";
import { StatusLine } from "./status-line.js";

const count = new Intl.NumberFormat("en-US");
const oneDecimal = new Intl.NumberFormat("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1 });

/** `12,345 rows · 3 batches · 4.2 MB · 9,876 rows/s · 1.3 s` */
export function formatProgress(p: ExportProgress): string {
  return [
    `${count.format(p.rows)} rows`,
    `${count.format(p.batches)} batch${p.batches === 1 ? "" : "es"}`,
    `${oneDecimal.format(p.bytes / 1e6)} MB`,
    `${count.format(Math.round(p.rowsPerSecond))} rows/s`,
    `${oneDecimal.format(p.elapsedMs / 1_000)} s`,
  ].join(" · ");
}

/** Where `exportSince` reports an export run: after each batch, and at its end. */
export interface ProgressReporter {
  batch(progress: ExportProgress): void;
  done(progress: ExportProgress): void;
  failed(): void;
}

/** A caller's callback as a reporter: it hears every batch. */
export function callbackReporter(onBatch: (progress: ExportProgress) => void): ProgressReporter {
  return { batch: onBatch, done: () => {}, failed: () => {} };
}

/** `progress: true`: the figures on a {@link StatusLine} (`exporting: …`, then `exported: …`). */
export function statusLineReporter(out: NodeJS.WritableStream): ProgressReporter {
  const line = new StatusLine(out);
  return {
    batch: (p) => line.draw(`exporting: ${formatProgress(p)}`),
    done: (p) => line.finish(`exported: ${formatProgress(p)}`),
    failed: () => line.abandon(),
  };
}
