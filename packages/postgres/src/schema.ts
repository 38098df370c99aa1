import { MIGRATIONS } from "./migrations/index.js";
import type { Queryable } from "./queryable.js";
import { SchemaIncompatibleError } from "./schema-incompatible-error.js";
import { SchemaNotMigratedError } from "./schema-not-migrated-error.js";

/** An unquoted identifier we accept as a schema name: lower case, digits, `_`, ≤ 63 bytes. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** The default schema of every Latch store. */
export const DEFAULT_SCHEMA = "latch";

/** The newest migration this version of `@latch/postgres` ships and needs. */
export const REQUIRED_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;

/**
 * Validates a schema name and returns it double-quoted for interpolation into SQL.
 * Only `[a-z_][a-z0-9_]*` (≤ 63 characters) is accepted, so nothing can be injected.
 */
export function quoteSchema(schema: string): string {
  if (typeof schema !== "string" || !SCHEMA_NAME.test(schema)) {
    throw new TypeError("schema must match [a-z_][a-z0-9_]{0,62}");
  }
  return `"${schema}"`;
}

/** SQLSTATEs of "no such table" and "no such schema". */
const MISSING = new Set(["42P01", "3F000"]);
/** A ledger from before `compatible_from` existed. */
const UNDEFINED_COLUMN = "42703";

export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** The highest applied migration of `schema` (0 when it was never migrated). */
export async function schemaVersion(db: Queryable, schema: string): Promise<number> {
  // The bound is compared with an `integer` column: the largest int4, not MAX_SAFE_INTEGER.
  return (await schemaState(db, schema, 2_147_483_647)).version;
}

/**
 * The schema's version and, over the migrations applied after `required`, the highest
 * `compatibleFrom` (`undefined` when there are none). A ledger written before the column
 * existed, or a row without it, counts a migration as compatible only with its own version.
 */
async function schemaState(
  db: Queryable,
  schema: string,
  required: number,
): Promise<{ version: number; compatibleFrom: number | undefined }> {
  const ledger = `${quoteSchema(schema)}.latch_migrations`;
  const read = async (floor: string) => {
    const { rows } = await db.query(
      `SELECT coalesce(max(version), 0)::int AS v, max(${floor}) FILTER (WHERE version > $1) AS f
       FROM ${ledger}`,
      [required],
    );
    const row = rows[0] as { v: number | string; f: number | string | null };
    return { version: Number(row.v), compatibleFrom: row.f === null ? undefined : Number(row.f) };
  };
  try {
    return await read("coalesce(compatible_from, version)");
  } catch (error) {
    if (MISSING.has(sqlState(error) ?? "")) return { version: 0, compatibleFrom: undefined };
    if (sqlState(error) === UNDEFINED_COLUMN) return read("version");
    throw error;
  }
}

const checked = new WeakMap<object, Map<string, Promise<void>>>();

/**
 * Resolves once `schema` can be used by this package: at the migration it needs, or newer
 * where every newer migration declares itself compatible with this package's version (a
 * rolling deploy: the new release migrated, the old pods go on). Else rejects with
 * {@link SchemaNotMigratedError} (behind) or {@link SchemaIncompatibleError} (too new). A
 * successful check is remembered per (db, schema).
 */
export function assertMigrated(db: Queryable, schema: string): Promise<void> {
  let bySchema = checked.get(db);
  if (bySchema === undefined) {
    bySchema = new Map();
    checked.set(db, bySchema);
  }
  const known = bySchema.get(schema);
  if (known !== undefined) return known;
  const required = REQUIRED_SCHEMA_VERSION;
  const check = schemaState(db, schema, required).then(({ version: found, compatibleFrom }) => {
    if (found < required) throw new SchemaNotMigratedError({ schema, found, required });
    if (compatibleFrom !== undefined && compatibleFrom > required) {
      throw new SchemaIncompatibleError({ schema, found, required, compatibleFrom });
    }
  });
  bySchema.set(schema, check);
  // Failures are not cached: the next call checks again (e.g. after migrate()).
  check.catch(() => bySchema.delete(schema));
  return check;
}
