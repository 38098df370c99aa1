import { defineCommand, flag, type OptionValues, text } from "../command.js";
import { STORE_OPTIONS } from "../store-options.js";

/** The store flags, the range and the filters: what `summary` and `lines` share. */
export const REPORT_OPTIONS = [
  ...STORE_OPTIONS,
  text("--from <time>", "start of the range, inclusive, by usage completedAt (ISO 8601 or YYYY-MM-DD, UTC)"),
  text("--to <time>", "end of the range, exclusive"),
  text("--tenant <id>", "only this tenant"),
  text("--model <name>", "only this billable model"),
  text("--provider <id>", "only this provider"),
  text("--project <id>", "only this project"),
  flag("--json", "print JSON"),
  flag("--csv", "print RFC 4180 CSV"),
] as const;
export type ReportFlags = OptionValues<typeof REPORT_OPTIONS>;

export const SUMMARY_OPTIONS = [
  ...REPORT_OPTIONS,
  text(
    "--group-by <keys>",
    "comma-separated: provider, model, day, tenant, org, project, api_key, end_user, feature",
    {
      default: "model",
    },
  ),
] as const;
export type SummaryFlags = OptionValues<typeof SUMMARY_OPTIONS>;

export const LINES_OPTIONS = [
  ...REPORT_OPTIONS,
  text("--limit <n>", "at most this many records"),
  text("--page-size <n>", "records per store page (default 1000)"),
] as const;
export type LinesFlags = OptionValues<typeof LINES_OPTIONS>;

/** `latch summary`. */
export const summaryCommand = defineCommand({
  name: "summary",
  description: "usage and cost per group, exact per currency",
  options: SUMMARY_OPTIONS,
  action: async (_args, options, ctx) => (await import("./reports.js")).runSummary(options, ctx),
});

/** `latch lines`. */
export const linesCommand = defineCommand({
  name: "lines",
  description: "the rated records in range, in (completedAt, eventId) order",
  options: LINES_OPTIONS,
  action: async (_args, options, ctx) => (await import("./reports.js")).runLines(options, ctx),
});
