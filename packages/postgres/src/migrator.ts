import { MIGRATIONS } from "./migrations/index.js";
import { inTransaction, type Queryable } from "./queryable.js";
import { DEFAULT_SCHEMA, quoteSchema } from "./schema.js";

export interface MigrateOptions {
  /** The schema to create or upgrade. Default `latch`. */
  schema?: string;
  /** How long to wait for the migration lock or a table lock before failing. Default 60 s. */
  lockTimeoutMs?: number;
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
 * do). The ledger `<schema>.latch_migrations` records each applied version. Either every
 * pending migration applies or none does.
 *
 * Pass a `pg.Pool` (a dedicated client is checked out), a `pg.Client` that is not inside a
 * transaction, or `fromPglite(db)`. Stores never call this on their own.
 *
 * @example
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * await migrate(pool, { schema: "latch" }); // { version: 3, applied: [1, 2, 3] }
 */
export async function migrate(db: Queryable, options: MigrateOptions = {}): Promise<MigrateResult> {
  const schema = options.schema ?? DEFAULT_SCHEMA;
  const q = quoteSchema(schema);
  const lockTimeoutMs = options.lockTimeoutMs ?? 60_000;
  if (!Number.isSafeInteger(lockTimeoutMs) || lockTimeoutMs < 0) {
    throw new TypeError("lockTimeoutMs must be a whole number of milliseconds");
  }
  return inTransaction(db, async (tx) => {
    await tx.query(`SET LOCAL lock_timeout = ${lockTimeoutMs}`);
    // The lock comes first: CREATE SCHEMA IF NOT EXISTS itself races between sessions.
    await tx.query("SELECT pg_advisory_xact_lock(hashtext('latch.migrate'), hashtext($1))", [schema]);
    await tx.query(`CREATE SCHEMA IF NOT EXISTS ${q}`);
    await tx.query(`SET LOCAL search_path TO ${q}`);
    await tx.query(
      `CREATE TABLE IF NOT EXISTS ${q}.latch_migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`,
    );
    const { rows } = await tx.query(`SELECT coalesce(max(version), 0)::int AS v FROM ${q}.latch_migrations`);
    const current = Number((rows[0] as { v: number | string }).v);
    const applied: number[] = [];
    for (const migration of MIGRATIONS) {
      if (migration.version <= current) continue;
      await runScript(tx, migration.sql);
      await tx.query(`INSERT INTO ${q}.latch_migrations (version, name) VALUES ($1, $2)`, [
        migration.version,
        migration.name,
      ]);
      applied.push(migration.version);
    }
    return { version: Math.max(current, ...applied), applied };
  });
}

/** Runs a multi-statement script: `pg` takes it in one simple query; PGlite needs `exec`. */
async function runScript(tx: Queryable, sql: string): Promise<void> {
  if (tx.exec !== undefined) await tx.exec(sql);
  else await tx.query(sql);
}
