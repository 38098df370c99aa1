import { MIGRATIONS, migrate } from "@latch/postgres";
import pg from "pg";
import type { CliContext } from "../context.js";
import { CommandError, UsageError } from "../exit-codes.js";
import { postgresOf } from "../stores.js";
import type { MigrateOptions } from "./migrate-command.js";

/**
 * `latch migrate`: applies every pending shipped migration to the schema, in one transaction
 * under an advisory lock (safe to run from several deploy steps at once). Running it again is
 * a no-op that says so.
 */
export async function runMigrate(options: MigrateOptions, ctx: CliContext): Promise<void> {
  const { url, schema } = postgresOf(options, ctx.env);
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  pool.on("error", () => undefined);
  try {
    const result = await migrate(pool, { schema });
    if (options.json) {
      ctx.stdout.write(`${JSON.stringify({ schema, ...result })}\n`);
      return;
    }
    if (result.applied.length === 0) {
      ctx.stdout.write(`schema ${schema} is up to date at migration ${result.version}: nothing to apply\n`);
      return;
    }
    const names = result.applied.map((v) => {
      const m = MIGRATIONS.find((x) => x.version === v);
      return m ? m.file : String(v);
    });
    ctx.stdout.write(
      `schema ${schema}: applied ${result.applied.length} migration(s) (${names.join(", ")}); now at ${result.version}\n`,
    );
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new CommandError(`migrate: ${(error as Error).message}`, { cause: error });
  } finally {
    await pool.end();
  }
}
