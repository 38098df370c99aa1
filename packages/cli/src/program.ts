import { LatchError } from "@latch/core";
import { Command, CommanderError } from "commander";
import { type CommandDef, registerCommand } from "./command.js";
import { doctorCommand } from "./commands/doctor-command.js";
import { exportCommand } from "./commands/export-command.js";
import { migrateCommand } from "./commands/migrate-command.js";
import { pricesCommand } from "./commands/prices-command.js";
import { rateCommand } from "./commands/rate-command.js";
import { linesCommand, summaryCommand } from "./commands/reports-command.js";
import { retentionCommand } from "./commands/retention-command.js";
import { keysCommand, serveCommand } from "./commands/serve-command.js";
import type { CliContext } from "./context.js";
import { CommandError, EXIT, InterruptedError, RejectedLinesError, UsageError } from "./exit-codes.js";

const VERSION = "0.0.0";

/** Every command, in the order `latch --help` lists them. */
const COMMANDS: readonly CommandDef[] = [
  pricesCommand,
  rateCommand,
  migrateCommand,
  doctorCommand,
  exportCommand,
  summaryCommand,
  linesCommand,
  serveCommand,
  keysCommand,
  retentionCommand,
];

const EXIT_HELP = `
Exit codes: 0 ok · 1 the command failed · 2 usage error (bad flag or argument) · 3 rate: some lines rejected · 130 interrupted (Ctrl-C; nothing partial left behind)
`;

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

  for (const command of COMMANDS) registerCommand(program, command, ctx, EXIT_HELP);

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
    const unmigrated = schemaNotMigrated(error);
    if (unmigrated !== undefined) {
      ctx.stderr.write(`latch: ${unmigrated}\n`);
      return EXIT.failure;
    }
    if (error instanceof RejectedLinesError) {
      ctx.stderr.write(`latch: ${error.message}\n`);
      return EXIT.rejected;
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

/**
 * A store's `schema_not_migrated` (found directly or as the cause of a wrapped error), told
 * in the CLI's terms: run `latch migrate`, not the library's `migrate(db, …)`.
 */
function schemaNotMigrated(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e !== undefined && depth < 5; depth++) {
    if (LatchError.is(e, "schema_not_migrated")) {
      const { schema, found, required } = e as LatchError & {
        schema?: unknown;
        found?: unknown;
        required?: unknown;
      };
      const name = typeof schema === "string" ? schema : undefined;
      const where = name === undefined ? "the schema" : `schema ${name}`;
      const versions =
        typeof found === "number" && typeof required === "number"
          ? ` is at migration ${found}; this version of Latch needs ${required}`
          : " is not migrated";
      return `${where}${versions}: run \`latch migrate${name === undefined ? "" : ` --schema ${name}`}\` (with the same --database-url) first`;
    }
    e = (e as { cause?: unknown } | null)?.cause;
  }
  return undefined;
}
