import { defineCommand, flag, type OptionValues, text } from "../command.js";

export const MIGRATE_OPTIONS = [
  text("--database-url <url>", "connection URL (env LATCH_DATABASE_URL or DATABASE_URL)"),
  text("--schema <name>", "schema to create or upgrade (env LATCH_SCHEMA; default latch)"),
  flag("--json", "print the result as JSON"),
] as const;
export type MigrateOptions = OptionValues<typeof MIGRATE_OPTIONS>;

/** `latch migrate`. */
export const migrateCommand = defineCommand({
  name: "migrate",
  description: "apply the Postgres migrations (idempotent: a second run applies nothing)",
  options: MIGRATE_OPTIONS,
  action: async (_args, options, ctx) => (await import("./migrate.js")).runMigrate(options, ctx),
});
