import { defineCommand, flag, negatedFlag, type OptionValues, text } from "../command.js";
import { STORE_OPTIONS } from "../store-options.js";

export const EXPORT_OPTIONS = [
  ...STORE_OPTIONS,
  text(
    "--to <dest>",
    "s3://bucket/prefix or a folder (env LATCH_S3_BUCKET + LATCH_S3_PREFIX, or LATCH_EXPORT_DIR)",
  ),
  text(
    "--since <cursor|time>",
    "a change-log position (seq; 0 = the start) or a time (only usage completed at or after it); default: the consumer's saved cursor",
  ),
  text("--consumer <name>", "the change-log consumer whose cursor is read and saved", {
    default: "latch-cli",
  }),
  text("--format <formats>", "comma-separated: jsonl.gz, csv, csv.gz, parquet", { default: "jsonl.gz" }),
  text("--batch-size <n>", "rows per batch (1–10000; default 10000)"),
  text("--s3-endpoint <url>", "S3-compatible endpoint, e.g. http://127.0.0.1:9000 (env S3_ENDPOINT)"),
  text("--s3-region <region>", "S3 region (env S3_REGION, AWS_REGION; default us-east-1)"),
  negatedFlag("--no-progress", "no progress on stderr"),
  flag("--json", "print the result as JSON"),
] as const;
export type ExportFlags = OptionValues<typeof EXPORT_OPTIONS>;

export const EXPORT_STATUS_OPTIONS = [
  ...STORE_OPTIONS,
  text("--consumer <name>", "the change-log consumer whose cursor counts start after", {
    default: "latch-cli",
  }),
  flag("--json", "print the status as JSON"),
] as const;
export type ExportStatusFlags = OptionValues<typeof EXPORT_STATUS_OPTIONS>;

/** `latch export` and `latch export status`. */
export const exportCommand = defineCommand({
  name: "export",
  description: "publish rated records as latch.billing-export.v1 to S3 or a folder, exactly once",
  options: EXPORT_OPTIONS,
  helpAfter: `
S3 credentials come from the AWS default chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles, roles).
S3_FORCE_PATH_STYLE=true|false (default true when an endpoint is set).
`,
  action: async (_args, options, ctx) => (await import("./export.js")).runExport(options, ctx),
  commands: [
    defineCommand({
      name: "status",
      description:
        "where a consumer stands in the change log, and what holds the log back (an open transaction: pid, application, age)",
      options: EXPORT_STATUS_OPTIONS,
      action: async (_args, options, ctx) =>
        (await import("./export-status.js")).runExportStatus(options, ctx),
    }),
  ],
});
