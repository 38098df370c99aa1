/**
 * One row of the `pnpm bench` table: a figure of Latch beside its peer or raw ceiling measured
 * in the same run. Each benchmark prints its rows as `@@latch-bench <json>` lines on stdout;
 * `run-all.ts` collects them into one table.
 */
export interface BenchRow {
  /** e.g. "rating", "redis". */
  area: string;
  /** What is measured, e.g. "usages/s, 100k mixed usages". */
  metric: string;
  /** Latch's figure, formatted. */
  latch: string;
  /** What it is compared with (a peer or a raw ceiling), and its figure. */
  against: string;
  againstValue: string;
  /** Latch / against, formatted (e.g. "15.9×" or "65%"). */
  ratio: string;
  /** The target, when an issue set one (e.g. "≥ 60%"). */
  target?: string;
  /** Whether the target was met in this run. */
  met?: boolean;
}

export const ROW_PREFIX = "@@latch-bench ";

export function reportRow(row: BenchRow): void {
  process.stdout.write(`${ROW_PREFIX}${JSON.stringify(row)}\n`);
}

export const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
export const pct = (ratio: number) => `${(ratio * 100).toFixed(0)}%`;
