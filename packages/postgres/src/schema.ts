import { MIGRATIONS } from "./migrations/index.js";
import type { Queryable } from "./queryable.js";

/** An unquoted identifier we accept as a schema name: lower case, digits, `_`, ≤ 63 bytes. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** The default schema of every Latch store. */
export const DEFAULT_SCHEMA = "latch";

/** The newest migration this version of `@latch/postgres` ships and needs. */
export const REQUIRED_SCHEMA_VERSION = MIGRATIONS.length;

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

/**
 * The schema has not been migrated to the version this package needs (or is newer than it
 * knows). Stores never migrate on their own: call `migrate(db, { schema })` at deploy time, or
 * apply the shipped `.sql` files with your own migration tool.
 */
export class SchemaNotMigratedError extends Error {
  readonly code = "schema_not_migrated" as const;
  readonly schema: string;
  /** The version found in the schema's ledger (0 when the schema or ledger does not exist). */
  readonly found: number;
  readonly required: number;
  constructor({ schema, found, required }: { schema: string; found: number; required: number }) {
    super(
      found < required
        ? `Schema "${schema}" is at migration ${found}; @latch/postgres needs ${required}: run migrate(db, { schema: "${schema}" })`
        : `Schema "${schema}" is at migration ${found}, newer than this @latch/postgres knows (${required}): upgrade the package`,
    );
    this.name = "SchemaNotMigratedError";
    this.schema = schema;
    this.found = found;
    this.required = required;
  }
}

/** SQLSTATEs of "no such table" and "no such schema". */
const MISSING = new Set(["42P01", "3F000"]);

export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** The highest applied migration of `schema` (0 when it was never migrated). */
export async function schemaVersion(db: Queryable, schema: string): Promise<number> {
  try {
    const { rows } = await db.query(
      `SELECT coalesce(max(version), 0)::int AS v FROM ${quoteSchema(schema)}.latch_migrations`,
    );
    return Number((rows[0] as { v: number | string }).v);
  } catch (error) {
    if (MISSING.has(sqlState(error) ?? "")) return 0;
    throw error;
  }
}

const checked = new WeakMap<object, Map<string, Promise<void>>>();

/**
 * Resolves once `schema` is at exactly the migration this package needs, else rejects with
 * {@link SchemaNotMigratedError}. A successful check is remembered per (db, schema).
 */
export function assertMigrated(db: Queryable, schema: string): Promise<void> {
  let bySchema = checked.get(db);
  if (bySchema === undefined) {
    bySchema = new Map();
    checked.set(db, bySchema);
  }
  const known = bySchema.get(schema);
  if (known !== undefined) return known;
  const check = schemaVersion(db, schema).then((found) => {
    if (found !== REQUIRED_SCHEMA_VERSION) {
      throw new SchemaNotMigratedError({ schema, found, required: REQUIRED_SCHEMA_VERSION });
    }
  });
  bySchema.set(schema, check);
  // Failures are not cached: the next call checks again (e.g. after migrate()).
  check.catch(() => bySchema.delete(schema));
  return check;
}
