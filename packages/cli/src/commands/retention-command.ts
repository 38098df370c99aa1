import { defineCommand, flag, type OptionValues, text } from "../command.js";

export const RETENTION_APPLY_OPTIONS = [
  text("--before <month>", "remove the months before this one (YYYY-MM, UTC)"),
  text(
    "--to <dest>",
    "where the consumer exports (s3://bucket/prefix or a folder): its manifests must cover every removed row",
  ),
  text("--consumer <name>", "the export consumer whose cursor must have passed the removed months", {
    default: "latch-cli",
  }),
  text("--database-url <url>", "connection URL (env LATCH_DATABASE_URL or DATABASE_URL)"),
  text("--schema <name>", "schema (env LATCH_SCHEMA; default latch)"),
  text("--s3-endpoint <url>", "S3-compatible endpoint, e.g. http://127.0.0.1:9000 (env S3_ENDPOINT)"),
  text("--s3-region <region>", "S3 region (env S3_REGION, AWS_REGION; default us-east-1)"),
  flag("--yes", "act: without it this is a dry run that prints what it would do"),
  flag("--keep-detached", "detach the months' partitions but keep them as tables instead of dropping them"),
  flag("--json", "print the result as JSON"),
] as const;
export type RetentionApplyFlags = OptionValues<typeof RETENTION_APPLY_OPTIONS>;

/** `latch retention apply`. */
export const retentionCommand = defineCommand({
  name: "retention",
  description: "remove old months of observations and rated records (Postgres), once they are exported",
  commands: [
    defineCommand({
      name: "apply",
      description:
        "detach and drop the monthly partitions before --before, only when the consumer's cursor and the manifests at --to cover every row (dry run unless --yes)",
      options: RETENTION_APPLY_OPTIONS,
      action: async (_args, options, ctx) => (await import("./retention.js")).runRetentionApply(options, ctx),
    }),
  ],
});
