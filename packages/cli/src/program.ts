import { Command, CommanderError, Option } from "commander";
import type { CliContext } from "./context.js";
import { DEFAULT_PRICE_FILE, STORE_KINDS } from "./defaults.js";
import { CommandError, EXIT, InterruptedError, UsageError } from "./exit-codes.js";

const VERSION = "0.0.0";

const EXIT_HELP = `
Exit codes: 0 ok · 1 the command failed · 2 usage error (bad flag or argument) · 130 interrupted (Ctrl-C; nothing partial left behind)
`;

function addStoreOptions(command: Command): Command {
  return command
    .addOption(
      new Option("--store <kind>", "where rated records live (env LATCH_STORE; default memory)").choices(
        STORE_KINDS,
      ),
    )
    .option(
      "--records <files...>",
      "memory store: JSONL files of rated records to load (latch rate output; env LATCH_RECORDS, comma-separated)",
    )
    .option("--database-url <url>", "postgres store: connection URL (env LATCH_DATABASE_URL or DATABASE_URL)")
    .option("--schema <name>", "postgres store: schema (env LATCH_SCHEMA; default latch)")
    .option("--redis-url <url>", "redis store: URL (env LATCH_REDIS_URL or REDIS_URL)")
    .option("--key-prefix <prefix>", "redis store: key prefix (env LATCH_KEY_PREFIX; default latch)");
}

function addReportOptions(command: Command): Command {
  return addStoreOptions(command)
    .option(
      "--from <time>",
      "start of the range, inclusive, by usage completedAt (ISO 8601 or YYYY-MM-DD, UTC)",
    )
    .option("--to <time>", "end of the range, exclusive")
    .option("--tenant <id>", "only this tenant")
    .option("--model <name>", "only this billable model")
    .option("--provider <id>", "only this provider")
    .option("--project <id>", "only this project")
    .option("--json", "print JSON", false)
    .option("--csv", "print RFC 4180 CSV", false);
}

/** Builds the `latch` program; actions run against `ctx` (streams, environment, interrupt signal). */
export function buildProgram(ctx: CliContext): Command {
  const program = new Command("latch")
    .description(
      "Latch from the terminal: rate usage logs, manage prices, migrate, export billing data, report.",
    )
    .version(VERSION, "-V, --version")
    // Flags belong to the command they follow: `latch export status --store …` are status's
    // flags, not export's (both take the store flags).
    .enablePositionalOptions()
    .exitOverride()
    .showHelpAfterError("(add --help for usage)")
    .configureOutput({
      writeOut: (s) => ctx.stdout.write(s),
      writeErr: (s) => ctx.stderr.write(s),
    })
    .addHelpText("after", EXIT_HELP);

  const pricesFileOption = () =>
    new Option("--prices-file <file>", "the price file (Latch snapshot JSON) to read and update")
      .env("LATCH_PRICES_FILE")
      .default(DEFAULT_PRICE_FILE);

  const prices = program
    .command("prices")
    .description("manage the price file (dated Latch price snapshots) that `latch rate` reads")
    .addHelpText("after", EXIT_HELP);
  prices
    .command("import")
    .description("merge a LiteLLM cost map or a Latch snapshot file into the price file")
    .argument("<file>", "model_prices_and_context_window.json (LiteLLM) or a Latch snapshot JSON file")
    .addOption(pricesFileOption())
    .option(
      "--effective-from <time>",
      "LiteLLM: when these prices take effect (default 1970-01-01T00:00:00Z)",
    )
    .option("--currency <code>", "LiteLLM: ISO 4217 currency of the prices (default USD)")
    .option(
      "--include-free",
      "LiteLLM: also import entries whose every price is 0 (skipped by default as placeholders)",
      false,
    )
    .option("--json", "print the result (and every LiteLLM field not imported) as JSON", false)
    .addHelpText("after", EXIT_HELP)
    .action(async (file: string, opts) =>
      (await import("./commands/prices.js")).runPricesImport(file, opts, ctx),
    );
  prices
    .command("show")
    .description(
      "show the snapshot that prices a call of a model (model matching and service tier as record() applies them), its prices and tiers",
    )
    .argument("<model>", "billable model as a call names it, e.g. gpt-4o-2024-08-06")
    .addOption(pricesFileOption())
    .option("--at <time>", "when (ISO 8601 or YYYY-MM-DD; default now)")
    .option("--region <region>", "the model's region, for regional prices")
    .option("--tier <tier>", "the call's service tier: standard (default), priority, flex, scale, batch")
    .option(
      "--provider <id>",
      "the provider that served the call (e.g. openrouter), for provider-prefixed prices",
    )
    .option("--json", "print the snapshot as JSON", false)
    .addHelpText("after", EXIT_HELP)
    .action(async (model: string, opts) =>
      (await import("./commands/prices.js")).runPricesShow(model, opts, ctx),
    );

  program
    .command("rate")
    .description("rate a usage log offline, line by line (bounded memory), into JSONL or CSV")
    .argument(
      "<input>",
      "JSONL usage log, or - for stdin: each line {api, usage, observation} or an observation",
    )
    .addOption(
      new Option("--prices <file>", "price sheet: a Latch price file or a LiteLLM cost map")
        .env("LATCH_PRICES_FILE")
        .default(DEFAULT_PRICE_FILE),
    )
    .option(
      "-o, --out <file>",
      "rated records (written to a temp file, renamed at the end); - for stdout",
      "-",
    )
    .addOption(
      new Option("--format <format>", "jsonl or csv (default: from --out's extension, else jsonl)").choices([
        "jsonl",
        "csv",
      ]),
    )
    .option(
      "--rejects <file>",
      "rejected lines as JSONL (line, code, field, reason, input); default <out>.rejects.jsonl",
    )
    .option("--rated-at <time>", "ratedAt of every record (default: the start of the run)")
    .option("--strict", "exit 1 when any line was rejected (outputs are still written)", false)
    .option("--no-progress", "no progress on stderr")
    .option("--json", "print the run's summary as JSON on stdout (needs --out FILE)", false)
    .addHelpText(
      "after",
      `
Line formats:
  {"api":"openaiChat","usage":{...},"observation":{...without meters}}   api: openaiChat, openaiResponses, anthropic, gemini, openrouter
  {"eventId":"...","subject":{...},"meters":{...},"model":{...},...}       a UsageObservation
${EXIT_HELP}`,
    )
    .action(async (input: string, opts) => {
      await (await import("./commands/rate.js")).runRate(input, opts, ctx);
    });

  program
    .command("migrate")
    .description("apply the Postgres migrations (idempotent: a second run applies nothing)")
    .option("--database-url <url>", "connection URL (env LATCH_DATABASE_URL or DATABASE_URL)")
    .option("--schema <name>", "schema to create or upgrade (env LATCH_SCHEMA; default latch)")
    .option("--json", "print the result as JSON", false)
    .addHelpText("after", EXIT_HELP)
    .action(async (opts) => (await import("./commands/migrate.js")).runMigrate(opts, ctx));

  const exportCommand = addStoreOptions(
    program
      .command("export")
      .description("publish rated records as latch.billing-export.v1 to S3 or a folder, exactly once"),
  )
    .option(
      "--to <dest>",
      "s3://bucket/prefix or a folder (env LATCH_S3_BUCKET + LATCH_S3_PREFIX, or LATCH_EXPORT_DIR)",
    )
    .option(
      "--since <cursor|time>",
      "a change-log position (seq; 0 = the start) or a time (only usage completed at or after it); default: the consumer's saved cursor",
    )
    .option("--consumer <name>", "the change-log consumer whose cursor is read and saved", "latch-cli")
    .option("--format <formats>", "comma-separated: jsonl.gz, csv, csv.gz, parquet", "jsonl.gz")
    .option("--batch-size <n>", "rows per batch (1–10000; default 10000)")
    .option("--s3-endpoint <url>", "S3-compatible endpoint, e.g. http://127.0.0.1:9000 (env S3_ENDPOINT)")
    .option("--s3-region <region>", "S3 region (env S3_REGION, AWS_REGION; default us-east-1)")
    .option("--no-progress", "no progress on stderr")
    .option("--json", "print the result as JSON", false)
    .addHelpText(
      "after",
      `
S3 credentials come from the AWS default chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles, roles).
S3_FORCE_PATH_STYLE=true|false (default true when an endpoint is set).
${EXIT_HELP}`,
    )
    .action(async (opts) => (await import("./commands/export.js")).runExport(opts, ctx));
  addStoreOptions(
    exportCommand
      .command("status")
      .description(
        "where a consumer stands in the change log, and what holds the log back (an open transaction: pid, application, age)",
      ),
  )
    .option("--consumer <name>", "the change-log consumer whose cursor counts start after", "latch-cli")
    .option("--json", "print the status as JSON", false)
    .addHelpText("after", EXIT_HELP)
    .action(async (opts) => (await import("./commands/export-status.js")).runExportStatus(opts, ctx));

  addReportOptions(program.command("summary").description("usage and cost per group, exact per currency"))
    .option(
      "--group-by <keys>",
      "comma-separated: provider, model, day, tenant, org, project, api_key, end_user, feature",
      "model",
    )
    .addHelpText("after", EXIT_HELP)
    .action(async (opts) => (await import("./commands/reports.js")).runSummary(opts, ctx));

  addReportOptions(
    program.command("lines").description("the rated records in range, in (completedAt, eventId) order"),
  )
    .option("--limit <n>", "at most this many records")
    .option("--page-size <n>", "records per store page (default 1000)")
    .addHelpText("after", EXIT_HELP)
    .action(async (opts) => (await import("./commands/reports.js")).runLines(opts, ctx));

  return program;
}

/** Runs `latch` with `argv` (without the node and script entries); resolves to the exit code. */
export async function main(args: string[], ctx: CliContext): Promise<number> {
  const program = buildProgram(ctx);
  try {
    await program.parseAsync(args, { from: "user" });
    return EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    if (error instanceof InterruptedError || (ctx.signal.aborted && !(error instanceof UsageError))) {
      ctx.stderr.write("latch: interrupted; partial output removed\n");
      return EXIT.interrupted;
    }
    if (error instanceof UsageError) {
      ctx.stderr.write(`latch: ${error.message}\n`);
      return EXIT.usage;
    }
    if (error instanceof CommandError) {
      ctx.stderr.write(`latch: ${error.message}\n`);
      return EXIT.failure;
    }
    ctx.stderr.write(`latch: ${error instanceof Error ? error.message : String(error)}\n`);
    if (ctx.env.LATCH_DEBUG && error instanceof Error && error.stack) ctx.stderr.write(`${error.stack}\n`);
    return EXIT.failure;
  }
}
