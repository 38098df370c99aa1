import {
  formatMinorUnits,
  LatchError,
  type LinesQuery,
  linesToCsv,
  type SummaryQuery,
  type SummaryRow,
  sumDecimals,
  summaryToCsv,
  toMinorUnits,
} from "@latch/core";
import { isCurrencyCode, PROMPT_METERS, SUMMARY_GROUP_KEYS, type SummaryGroupKey } from "@latch/core/adapter";
import type { CliContext } from "../context.js";
import { CommandError, InterruptedError, UsageError } from "../exit-codes.js";
import { openStore } from "../stores.js";
import { renderTable } from "../table.js";
import { parseTime } from "../times.js";
import type { LinesFlags, ReportFlags, SummaryFlags } from "./reports-command.js";

/** Every record when no range is given: `[1970-01-01, 9999-12-31)`. */
const EARLIEST = "1970-01-01T00:00:00Z";
const LATEST = "9999-12-31T00:00:00Z";

const GROUP_ALIASES: Readonly<Record<string, SummaryGroupKey>> = Object.fromEntries(
  SUMMARY_GROUP_KEYS.flatMap((key) => {
    const snake = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    const short = snake.replace(/_id$/, "");
    return [
      [key.toLowerCase(), key],
      [snake, key],
      [snake.replaceAll("_", "-"), key],
      [short, key],
    ];
  }),
);

/** `--group-by model,day` → `["model", "day"]`; accepts camelCase, snake_case, kebab-case and `tenant` for `tenantId`. */
export function parseGroupBy(value: string | undefined): SummaryGroupKey[] {
  if (value === undefined || value.trim() === "") return [];
  const keys = value.split(",").map((raw) => {
    const key = GROUP_ALIASES[raw.trim().toLowerCase()];
    if (key === undefined) {
      throw new UsageError(
        `--group-by: unknown key "${raw.trim()}"; expected any of ${SUMMARY_GROUP_KEYS.join(", ")}`,
      );
    }
    return key;
  });
  if (new Set(keys).size !== keys.length) throw new UsageError("--group-by: lists a key twice");
  return keys;
}

function range(flags: ReportFlags): { start: string; end: string } {
  const start = flags.from === undefined ? EARLIEST : parseTime(flags.from, "--from");
  const end = flags.to === undefined ? LATEST : parseTime(flags.to, "--to");
  if (Date.parse(end) <= Date.parse(start)) throw new UsageError("--to: must be after --from");
  return { start, end };
}

function filters(flags: ReportFlags): SummaryQuery["filters"] {
  const out: NonNullable<SummaryQuery["filters"]> = {};
  if (flags.tenant !== undefined) out.tenantId = flags.tenant;
  if (flags.model !== undefined) out.model = flags.model;
  if (flags.provider !== undefined) out.provider = flags.provider;
  if (flags.project !== undefined) out.projectId = flags.project;
  return Object.keys(out).length > 0 ? out : undefined;
}

function outputMode(flags: ReportFlags): "table" | "json" | "csv" {
  if (flags.json && flags.csv) throw new UsageError("--json, --csv: choose one");
  return flags.json ? "json" : flags.csv ? "csv" : "table";
}

function storeFailure(error: unknown): unknown {
  if (error instanceof UsageError || error instanceof CommandError || error instanceof InterruptedError)
    return error;
  if (LatchError.isInstance(error) && error.code === "invalid_input") return new UsageError(error.message);
  return new CommandError(`store: ${(error as Error).message}`, { cause: error });
}

const n = new Intl.NumberFormat("en-US");

/** Exact total per currency over the rows, and that total rounded once to minor units. */
function currencyTotals(rows: SummaryRow[]): Array<{ currency: string; exact: string; rounded: string }> {
  const byCurrency = new Map<string, string[]>();
  for (const row of rows) {
    for (const [currency, amount] of Object.entries(row.costByCurrency)) {
      const list = byCurrency.get(currency) ?? [];
      list.push(amount);
      byCurrency.set(currency, list);
    }
  }
  return [...byCurrency.keys()].sort().map((currency) => {
    const exact = sumDecimals(byCurrency.get(currency) ?? []);
    const rounded = isCurrencyCode(currency)
      ? formatMinorUnits(toMinorUnits(exact, currency), currency)
      : exact;
    return { currency, exact, rounded };
  });
}

/** `latch summary`: the summary report as an aligned table, JSON or CSV. */
export async function runSummary(flags: SummaryFlags, ctx: CliContext): Promise<void> {
  const mode = outputMode(flags);
  const groupBy = parseGroupBy(flags.groupBy ?? "model");
  const query: SummaryQuery = { ...range(flags), groupBy };
  const f = filters(flags);
  if (f !== undefined) query.filters = f;
  const opened = await openStore(flags, ctx);
  let rows: SummaryRow[];
  try {
    rows = await opened.store.summary(query, ctx.signal);
  } catch (error) {
    throw ctx.signal.aborted ? new InterruptedError() : storeFailure(error);
  } finally {
    await opened.close();
  }
  if (mode === "json") {
    ctx.stdout.write(`${JSON.stringify({ query, rows, totals: currencyTotals(rows) })}\n`);
    return;
  }
  if (mode === "csv") {
    ctx.stdout.write(summaryToCsv(rows, groupBy));
    return;
  }
  const currencies = [...new Set(rows.flatMap((r) => Object.keys(r.costByCurrency)))].sort();
  const header = [
    ...groupBy.map((k) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)),
    "requests",
    "failures",
    "input",
    "cache read",
    "cache write",
    "output",
    "total tokens",
    ...currencies.map((c) => `cost (${c}, exact)`),
  ];
  const body = rows.map((r) => [
    ...groupBy.map((k) => r.group[k] ?? ""),
    n.format(r.requests),
    n.format(r.failures),
    n.format(r.inputTokens),
    n.format(r.cacheReadTokens),
    n.format(r.cacheWriteTokens),
    n.format(r.outputTokens),
    n.format(r.totalTokens),
    ...currencies.map((c) => r.costByCurrency[c] ?? ""),
  ]);
  const numeric = new Set(header.map((_, i) => i).filter((i) => i >= groupBy.length));
  let out = rows.length === 0 ? "no rated records in range\n" : renderTable(header, body, numeric);
  for (const t of currencyTotals(rows)) {
    out += `\ntotal ${t.exact} ${t.currency} exact = ${t.rounded} ${t.currency} rounded once (half-even)`;
  }
  ctx.stdout.write(`${out}${rows.length > 0 ? "\n" : ""}`);
}

/** `latch lines`: every current record in range, page by page, as a table, JSON Lines or CSV. */
export async function runLines(flags: LinesFlags, ctx: CliContext): Promise<void> {
  const mode = outputMode(flags);
  const limit = flags.limit === undefined ? Number.POSITIVE_INFINITY : positiveInt(flags.limit, "--limit");
  const pageSize = flags.pageSize === undefined ? 1_000 : positiveInt(flags.pageSize, "--page-size", 10_000);
  const base: LinesQuery = { ...range(flags), limit: Math.min(pageSize, limit) };
  const f = filters(flags);
  if (f !== undefined) base.filters = f;
  const opened = await openStore(flags, ctx);
  const tableRows: string[][] = [];
  let written = 0;
  try {
    let cursor: string | undefined;
    if (mode === "csv") ctx.stdout.write(linesToCsv([]));
    do {
      const query: LinesQuery = { ...base, limit: Math.min(pageSize, limit - written) };
      if (cursor !== undefined) query.cursor = cursor;
      const page = await opened.store.lines(query, ctx.signal);
      for (const r of page.items) {
        if (mode === "json") ctx.stdout.write(`${JSON.stringify(r)}\n`);
        else if (mode === "table") {
          const m = r.observation.meters;
          tableRows.push([
            r.observation.timing.completedAt,
            r.eventId,
            r.observation.subject.tenantId,
            r.observation.provider?.providerId ?? "",
            r.observation.model.billableModel,
            // The whole prompt: every prompt meter (cache reads and writes, audio, images, cached audio).
            n.format(PROMPT_METERS.reduce((sum, meter) => sum + BigInt(m[meter] ?? 0), 0n)),
            n.format((m.output_tokens ?? 0) + (m.reasoning_tokens ?? 0)),
            r.observation.outcome.kind,
            `${r.total} ${r.currency}`,
          ]);
        }
      }
      if (mode === "csv") ctx.stdout.write(linesToCsv(page.items).slice(linesToCsv([]).length));
      written += page.items.length;
      cursor = page.next;
    } while (cursor !== undefined && written < limit);
  } catch (error) {
    throw ctx.signal.aborted ? new InterruptedError() : storeFailure(error);
  } finally {
    await opened.close();
  }
  if (mode === "table") {
    ctx.stdout.write(
      tableRows.length === 0
        ? "no rated records in range\n"
        : renderTable(
            ["completed at", "event", "tenant", "provider", "model", "input", "output", "outcome", "cost"],
            tableRows,
            new Set([5, 6, 8]),
          ),
    );
  }
}

function positiveInt(value: string, flag: string, max = Number.MAX_SAFE_INTEGER): number {
  const v = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(v) || v < 1 || v > max) {
    throw new UsageError(`${flag}: expected an integer from 1 to ${max}, got "${value}"`);
  }
  return v;
}

export { positiveInt };
