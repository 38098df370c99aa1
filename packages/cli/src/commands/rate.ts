import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createInterface } from "node:readline";
import { linesToCsv, type RatedUsageRecord, sumDecimals } from "@latch/core";
import { canonicalDecimal } from "@latch/core/adapter";
import { AtomicOutput } from "../atomic-file.js";
import type { CliContext } from "../context.js";
import { CommandError, InterruptedError, RejectedLinesError, UsageError } from "../exit-codes.js";
import { loadPriceSheet, pricingSourceOf } from "../price-file.js";
import { pricesPath, requirePriceFile } from "../prices-flag.js";
import { countFormat, Progress } from "../progress.js";
import { LineRater, type Rejection } from "../rater.js";
import { parseTime } from "../times.js";
import type { RateOptions } from "./rate-command.js";

export type RateFormat = "jsonl" | "csv";

/** Rejections listed on stderr; `--rejects <file>` keeps them all. */
const SHOWN_REJECTIONS = 10;

/** What one `latch rate` run did (printed at the end; `--json` prints this object). */
export interface RateSummary {
  lines: number;
  rated: number;
  rejected: number;
  /** Exact total per currency of the rated records. */
  totals: Record<string, string>;
  out: string;
  /** The file rejected lines were written to (`--rejects`), or `null` when none was asked for. */
  rejects: string | null;
  format: RateFormat;
  seconds: number;
  linesPerSecond: number;
  /** Peak resident set size of the process, bytes. */
  peakRssBytes: number;
}

/** Writes to stdout with back-pressure (no atomic rename is possible there). */
class StdoutSink {
  readonly target = "-";
  #buffer = "";
  async write(text: string): Promise<void> {
    this.#buffer += text;
    if (this.#buffer.length >= 1 << 16) await this.#flush();
  }
  async #flush(): Promise<void> {
    const chunk = this.#buffer;
    this.#buffer = "";
    if (chunk !== "" && !process.stdout.write(chunk)) {
      await new Promise<void>((resolve) => process.stdout.once("drain", () => resolve()));
    }
  }
  async commit(): Promise<void> {
    await this.#flush();
  }
  async discard(): Promise<void> {
    this.#buffer = "";
  }
}

const CSV_HEADER = linesToCsv([]);

function csvLine(record: RatedUsageRecord): string {
  return linesToCsv([record]).slice(CSV_HEADER.length);
}

function inferFormat(options: RateOptions): RateFormat {
  if (options.format !== undefined) return options.format;
  return /\.csv$/i.test(options.out) ? "csv" : "jsonl";
}

/**
 * `latch rate`: streams a usage log line by line (bounded memory), rates every line against
 * the price sheet, writes rated records (JSONL or CSV) and rejected lines (JSONL with line
 * number, code, field and reason) through temporary files renamed into place at the end.
 */
export async function runRate(input: string, options: RateOptions, ctx: CliContext): Promise<RateSummary> {
  const startedAt = performance.now();
  const format = inferFormat(options);
  if (options.json && options.out === "-") {
    throw new UsageError("--json: the summary goes to stdout, so --out must name a file");
  }
  const ratedAt =
    options.ratedAt === undefined ? new Date().toISOString() : parseTime(options.ratedAt, "--rated-at");
  // Rejected lines go to a file only when asked: never a surprise file in the working directory.
  const rejectsPath = options.rejects;
  if (rejectsPath !== undefined && (rejectsPath === options.out || rejectsPath === "-"))
    throw new UsageError("--rejects: must name a file other than --out");
  if (options.strict)
    ctx.stderr.write("latch: warning: --strict is the default now (rejected lines exit 3)\n");
  if (options.tenant !== undefined && options.tenant.trim() === "")
    throw new UsageError("--tenant: expected a tenant id");

  const prices = pricesPath(options, ctx);
  await requirePriceFile(prices);
  const sheet = await loadPriceSheet(prices.path, "--prices");
  const rater = new LineRater(pricingSourceOf(sheet.snapshots, prices.path, "--prices"), ratedAt, {
    tenant: options.tenant,
  });

  let totalBytes: number | undefined;
  if (input !== "-") {
    try {
      const info = await stat(input);
      if (!info.isFile()) throw new CommandError(`input: ${input} is not a file`);
      totalBytes = info.size;
    } catch (error) {
      if (error instanceof CommandError) throw error;
      const code = (error as { code?: string }).code;
      throw new CommandError(`input: cannot read ${input}${code ? ` (${code})` : ""}`);
    }
  }
  if (ctx.signal.aborted) throw new InterruptedError();

  const stream = input === "-" ? process.stdin : createReadStream(input);
  const out = options.out === "-" ? new StdoutSink() : new AtomicOutput(options.out);
  const rejects = rejectsPath === undefined ? undefined : new AtomicOutput(rejectsPath);
  /** The first rejections, for stderr (reason and field only: never the line itself). */
  const shown: string[] = [];
  const progress = new Progress({ label: "rating", unit: "lines", enabled: options.progress });
  const reader = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
  const stop = () => {
    reader.close();
    stream.destroy();
  };
  ctx.signal.addEventListener("abort", stop, { once: true });

  /** Exact running totals per currency (fixed point, no digit limit; a 40-digit Decimal sum could round). */
  const totals = new Map<string, string>();
  let lines = 0;
  let rated = 0;
  let rejected = 0;
  let readError: Error | undefined;
  stream.on("error", (error: Error) => {
    readError = error;
    reader.close();
  });
  try {
    if (format === "csv") await out.write(CSV_HEADER);
    for await (const text of reader) {
      lines++;
      if (text.trim() !== "") {
        const result = rater.rate(text);
        if (result.ok) {
          rated++;
          const r = result.record;
          const sum = totals.get(r.currency);
          totals.set(r.currency, sum === undefined ? r.total : sumDecimals([sum, r.total]));
          await out.write(format === "csv" ? csvLine(r) : `${JSON.stringify(r)}\n`);
        } else {
          rejected++;
          if (shown.length < SHOWN_REJECTIONS)
            shown.push(`  line ${lines}: ${result.rejection.code}: ${result.rejection.reason}`);
          if (rejects !== undefined) {
            const rejection: Rejection & { input: string } = {
              line: lines,
              ...result.rejection,
              input: text,
            };
            await rejects.write(`${JSON.stringify(rejection)}\n`);
          }
        }
      }
      if ((lines & 1023) === 0) {
        const figures: { done: number; bytes?: number; totalBytes?: number; extra?: string } = {
          done: lines,
          extra: `${countFormat.format(rejected)} rejected`,
        };
        if (totalBytes !== undefined) {
          figures.bytes = (stream as { bytesRead?: number }).bytesRead ?? 0;
          figures.totalBytes = totalBytes;
        }
        progress.update(figures);
      }
      if (ctx.signal.aborted) break;
    }
    if (ctx.signal.aborted) throw new InterruptedError();
    if (readError !== undefined) {
      const code = (readError as { code?: string }).code;
      throw new CommandError(`input: reading ${input} failed${code ? ` (${code})` : ""}`);
    }
    await rejects?.commit();
    await out.commit();
  } catch (error) {
    await Promise.all([out.discard(), rejects?.discard()]);
    throw error;
  } finally {
    progress.stop();
    ctx.signal.removeEventListener("abort", stop);
  }

  const seconds = (performance.now() - startedAt) / 1_000;
  const summary: RateSummary = {
    lines,
    rated,
    rejected,
    totals: Object.fromEntries(
      [...totals].sort(([a], [b]) => (a < b ? -1 : 1)).map(([c, d]) => [c, canonicalDecimal(d)]),
    ),
    out: options.out,
    rejects: rejectsPath ?? null,
    format,
    seconds,
    linesPerSecond: seconds > 0 ? lines / seconds : 0,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
  };
  if (options.json) {
    ctx.stdout.write(`${JSON.stringify(summary)}\n`);
  } else {
    const money = Object.entries(summary.totals)
      .map(([currency, amount]) => `${amount} ${currency}`)
      .join(", ");
    const whereRejects = rejected === 0 || rejectsPath === undefined ? "" : ` → ${rejectsPath}`;
    ctx.stderr.write(
      `rated ${countFormat.format(rated)} of ${countFormat.format(lines)} lines` +
        ` (${countFormat.format(rejected)} rejected${whereRejects}) in ${seconds.toFixed(1)} s` +
        ` · ${countFormat.format(Math.round(summary.linesPerSecond))} lines/s` +
        ` · peak RSS ${Math.round(summary.peakRssBytes / 1e6)} MB` +
        `${money ? ` · total ${money} (exact)` : ""}\n`,
    );
  }
  if (rejected > 0) {
    const more =
      rejected > shown.length ? `\n  … and ${countFormat.format(rejected - shown.length)} more` : "";
    const kept =
      rejectsPath === undefined
        ? "add --rejects <file> to keep every rejected line"
        : `all of them in ${rejectsPath}`;
    ctx.stderr.write(`rejected lines:\n${shown.join("\n")}${more}\n`);
    if (!options.allowRejects) {
      throw new RejectedLinesError(
        `${countFormat.format(rejected)} of ${countFormat.format(lines)} line(s) rejected (${kept}; --allow-rejects exits 0)`,
      );
    }
  }
  return summary;
}
