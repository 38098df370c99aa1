import { MIGRATIONS, type Migration } from "./migrations/index.js";
import { MAINTAIN_PARTITIONS_SQL } from "./partitions.js";
import type { Queryable } from "./queryable.js";
import { DEFAULT_SCHEMA, quoteSchema } from "./schema.js";
import { resolveTimeouts, runScript, transact } from "./transaction.js";

export interface MigrateOptions {
  /** The schema to create or upgrade. Default `latch`. */
  schema?: string;
  /** How long to wait for the migration lock or a table lock before failing. Default 60 s. */
  lockTimeoutMs?: number;
  /** Longest run of one statement (a migration's DDL). Default `0`: no limit. */
  statementTimeoutMs?: number;
}

export interface MigrateResult {
  /** The schema's version after the call. */
  version: number;
  /** Versions this call applied (empty when the schema was already current). */
  applied: number[];
}

/**
 * Creates or upgrades the Latch tables in `schema`: every pending shipped migration, in one
 * transaction, under a transaction-scoped advisory lock keyed by the schema name, so any
 * number of processes may call it at once (one applies, the others wait and find nothing to
 * do). The ledger `<schema>.latch_migrations` records each applied version and its
 * `compatible_from` (see {@link Migration.compatibleFrom}). Either every pending migration
 * applies or none does.
 *
 * Pass a `pg.Pool` (a dedicated client is checked out), a `pg.Client`, or `fromPglite(db)`
 * (a session already inside your transaction runs it in that transaction). Stores never call
 * this on their own.
 *
 * @example
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * await migrate(pool, { schema: "latch" }); // { version: 3, applied: [1, 2, 3] }
 */
export async function migrate(db: Queryable, options: MigrateOptions = {}): Promise<MigrateResult> {
  return applyMigrations(db, options, MIGRATIONS);
}

/** {@link migrate} with a given list of migrations (tests play a newer release with it). @internal */
export async function applyMigrations(
  db: Queryable,
  options: MigrateOptions,
  migrations: readonly Migration[],
): Promise<MigrateResult> {
  const schema = options.schema ?? DEFAULT_SCHEMA;
  const q = quoteSchema(schema);
  const settings = resolveTimeouts(options, { lockTimeoutMs: 60_000, statementTimeoutMs: 0 });
  return transact(db, settings, async (tx) => {
    // The lock comes first: CREATE SCHEMA IF NOT EXISTS itself races between sessions.
    await tx.query("SELECT pg_advisory_xact_lock(hashtext('latch.migrate'), hashtext($1))", [schema]);
    await tx.query(`CREATE SCHEMA IF NOT EXISTS ${q}`);
    // pg_temp last: functions capture this path (SET search_path FROM CURRENT), and a path that
    // does not name pg_temp searches it first for tables (see migration 0019).
    await tx.query(`SET LOCAL search_path TO ${q}, pg_temp`);
    await tx.query(
      `CREATE TABLE IF NOT EXISTS ${q}.latch_migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`,
    );
    // Each migration's compatibility floor (read by the stores' schema check). Added to ledgers
    // from before it only when missing: ALTER TABLE would lock the ledger against every check.
    const { rows: column } = await tx.query(
      `SELECT 1 FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'compatible_from' AND NOT attisdropped`,
      [`${q}.latch_migrations`],
    );
    if (column.length === 0) {
      await tx.query(`ALTER TABLE ${q}.latch_migrations ADD COLUMN compatible_from integer`);
    }
    const { rows } = await tx.query(`SELECT coalesce(max(version), 0)::int AS v FROM ${q}.latch_migrations`);
    const current = Number((rows[0] as { v: number | string }).v);
    const applied: number[] = [];
    for (const migration of migrations) {
      if (migration.version <= current) continue;
      await runScript(tx, migration.sql);
      await tx.query(
        `INSERT INTO ${q}.latch_migrations (version, name, compatible_from) VALUES ($1, $2, $3)`,
        [migration.version, migration.name, migration.compatibleFrom],
      );
      applied.push(migration.version);
    }
    // Partitions for this month and the next three, from migration 0016 on (and any month whose
    // rows wait in a DEFAULT partition): so every deploy keeps them ahead of the writes.
    const { rows: partitioned } = await tx.query(`SELECT to_regprocedure($1) IS NOT NULL AS yes`, [
      `${q}.maintain_partitions(text,text)`,
    ]);
    if ((partitioned[0] as { yes: boolean }).yes) await tx.query(MAINTAIN_PARTITIONS_SQL(q, 3));
    return { version: Math.max(current, ...applied), applied };
  });
}
