import { StatusLine } from "@latch/s3/status-line";

const count = new Intl.NumberFormat("en-US");

function duration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

export interface ProgressFigures {
  /** Units done (lines, rows). */
  done: number;
  /** Bytes consumed of `totalBytes`, when the input size is known. */
  bytes?: number;
  totalBytes?: number;
  /** Extra figures, e.g. `12 rejected`. */
  extra?: string;
}

/**
 * Progress on stderr: on a terminal, a bar redrawn in place (on a `StatusLine`, the one
 * `@latch/s3` prints an export's progress on) with the rate and, when the input size is known,
 * the percentage and ETA; elsewhere (a pipe, a log file, CI), a plain line every few seconds.
 * Silent when disabled.
 */
export class Progress {
  readonly #out: NodeJS.WriteStream;
  readonly #tty: boolean;
  readonly #enabled: boolean;
  readonly #label: string;
  readonly #unit: string;
  readonly #startedAt = performance.now();
  readonly #intervalMs: number;
  #lastDraw = 0;
  #lastDone = -1;
  readonly #line: StatusLine;
  #timer: NodeJS.Timeout | undefined;
  #latest: ProgressFigures = { done: 0 };

  readonly #plainOnUpdate: boolean;

  /**
   * `plain: "timer"` (default) prints a plain line every `intervalMs` (2 s) when something
   * moved; `plain: "update"` prints one per {@link update} (for coarse units such as batches).
   */
  constructor(options: {
    label: string;
    unit: string;
    enabled: boolean;
    out?: NodeJS.WriteStream;
    intervalMs?: number;
    plain?: "timer" | "update";
  }) {
    this.#out = options.out ?? process.stderr;
    this.#line = new StatusLine(this.#out);
    this.#tty = this.#out.isTTY === true;
    this.#enabled = options.enabled;
    this.#label = options.label;
    this.#unit = options.unit;
    this.#intervalMs = options.intervalMs ?? (this.#tty ? 100 : 2_000);
    this.#plainOnUpdate = options.plain === "update";
    if (this.#enabled && !this.#tty && !this.#plainOnUpdate) {
      // Plain output is driven by a timer, so a slow or stalled input still reports.
      this.#timer = setInterval(() => this.#plain(), this.#intervalMs);
      this.#timer.unref();
    }
  }

  /** Records the latest figures; redraws the terminal bar at most every 100 ms. */
  update(figures: ProgressFigures): void {
    this.#latest = figures;
    if (!this.#enabled) return;
    if (!this.#tty) {
      if (this.#plainOnUpdate) this.#plain();
      return;
    }
    const now = performance.now();
    if (now - this.#lastDraw < this.#intervalMs) return;
    this.#lastDraw = now;
    this.#line.draw(this.#bar(figures));
  }

  /** Stops the timer and clears the bar (the caller prints the final summary). */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#line.clear();
  }

  #rate(done: number): number {
    const seconds = (performance.now() - this.#startedAt) / 1_000;
    return seconds > 0 ? done / seconds : 0;
  }

  #eta(f: ProgressFigures): number | undefined {
    if (f.bytes === undefined || f.totalBytes === undefined || f.totalBytes <= 0 || f.bytes <= 0)
      return undefined;
    const seconds = (performance.now() - this.#startedAt) / 1_000;
    return (seconds * (f.totalBytes - f.bytes)) / f.bytes;
  }

  #figures(f: ProgressFigures): string {
    const parts = [
      `${count.format(f.done)} ${this.#unit}`,
      `${count.format(Math.round(this.#rate(f.done)))} ${this.#unit}/s`,
    ];
    if (f.extra) parts.push(f.extra);
    const eta = this.#eta(f);
    if (eta !== undefined) parts.push(`ETA ${duration(eta)}`);
    return parts.join(" · ");
  }

  #bar(f: ProgressFigures): string {
    const width = 24;
    if (f.bytes === undefined || f.totalBytes === undefined || f.totalBytes <= 0) {
      return `${this.#label} ${this.#figures(f)}`;
    }
    const ratio = Math.min(1, f.bytes / f.totalBytes);
    const full = Math.round(ratio * width);
    const bar = `${"█".repeat(full)}${"░".repeat(width - full)}`;
    return `${this.#label} ${bar} ${String(Math.floor(ratio * 100)).padStart(3)}% ${this.#figures(f)}`;
  }

  #plain(): void {
    const f = this.#latest;
    if (f.done === this.#lastDone) return;
    this.#lastDone = f.done;
    const pct =
      f.bytes !== undefined && f.totalBytes !== undefined && f.totalBytes > 0
        ? ` (${Math.floor(Math.min(1, f.bytes / f.totalBytes) * 100)}%)`
        : "";
    this.#out.write(`${this.#label}${pct}: ${this.#figures(f)}\n`);
  }
}

export { count as countFormat, duration };
