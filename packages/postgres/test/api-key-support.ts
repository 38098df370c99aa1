import { apiKeyStoreSuite, type ConformanceSuite } from "@latch/testkit";
import { PostgresApiKeyStore, type Queryable } from "../src/index.js";

/**
 * Every column of one `api_keys` row as text (raw SQL, bypassing the store): the whole row
 * cast to text, so a column added later is scanned too. Undefined when there is no row.
 */
export async function rawApiKeyRow(db: Queryable, schema: string, id: string): Promise<string | undefined> {
  const { rows } = await db.query(`SELECT k::text AS row FROM "${schema}".api_keys k WHERE k.id = $1`, [id]);
  return (rows[0] as { row: string } | undefined)?.row;
}

/** The API key store suite against `db()` in `schema`, its rows read back with `rawApiKeyRow`. */
export function apiKeySuite(db: () => Queryable, schema: string): ConformanceSuite {
  return apiKeyStoreSuite({
    create: () => new PostgresApiKeyStore(db(), { schema }),
    inspect: { rawKey: (id) => rawApiKeyRow(db(), schema, id) },
  });
}
