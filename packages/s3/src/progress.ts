import type { ExportProgress } from "./s3-exporter.js";

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

/** One self-overwriting status line on a terminal stream (`\r`), finished with a newline. */
export class ProgressLine {
  readonly #out: NodeJS.WritableStream;
  #written = false;

  constructor(out: NodeJS.WritableStream) {
    this.#out = out;
  }

  update(p: ExportProgress): void {
    this.#out.write(`\r\x1b[2Kexporting: ${formatProgress(p)}`);
    this.#written = true;
  }

  finish(p: ExportProgress): void {
    this.#out.write(`\r\x1b[2Kexported: ${formatProgress(p)}\n`);
    this.#written = false;
  }

  abandon(): void {
    if (this.#written) this.#out.write("\n");
    this.#written = false;
  }
}
