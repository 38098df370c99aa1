/**
 * One self-overwriting status line on a terminal stream: the only place Latch draws progress
 * in place. `@latch/s3` prints an export's progress with it and the `latch` CLI draws its
 * progress bars with it (`@latch/s3/status-line`, free of the S3 client), so both look and
 * clean up the same way.
 *
 * @example
 * const line = new StatusLine(process.stderr);
 * line.draw("exporting: 10,000 rows");
 * line.finish("exported: 12,345 rows");
 */
export class StatusLine {
  readonly #out: NodeJS.WritableStream;
  #shown = false;

  constructor(out: NodeJS.WritableStream) {
    this.#out = out;
  }

  /** Replaces the line with `text` (`\r` and erase-line: nothing of the old text is left). */
  draw(text: string): void {
    this.#out.write(`\r\x1b[2K${text}`);
    this.#shown = true;
  }

  /** Replaces the line with `text` and ends it, so later output starts below it. */
  finish(text: string): void {
    this.#out.write(`\r\x1b[2K${text}\n`);
    this.#shown = false;
  }

  /** Erases the line, when one is shown; the cursor stays at its start. */
  clear(): void {
    if (this.#shown) this.#out.write("\r\x1b[2K");
    this.#shown = false;
  }

  /** Ends the line as it stands, when one is shown (after an error: its message starts below). */
  abandon(): void {
    if (this.#shown) this.#out.write("\n");
    this.#shown = false;
  }
}
