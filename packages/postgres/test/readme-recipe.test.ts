/**
 * The README's "With your own migration tool" recipe (issue 21: it stopped at an old migration
 * and failed on a fresh database): its ledger list is every shipped migration, and the recipe
 * run by hand on a fresh schema gives stores that work.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { makeObservation } from "@latch/testkit";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { MIGRATIONS, PostgresObservationStore } from "../src/index.js";
import { DATABASE_URL, freshSchema } from "./support.js";

const readme = readFileSync(join(dirname(fileURLToPath(import.meta.url)), "..", "README.md"), "utf8");

/** The `INSERT INTO latch.latch_migrations … VALUES …;` statement of the recipe. */
function recipeLedgerInsert(): string {
  const match = /INSERT INTO latch\.latch_migrations \(version, name, compatible_from\)\s+VALUES[^;]+;/.exec(
    readme,
  );
  if (match === null) throw new Error("the README recipe's ledger INSERT is missing");
  return match[0];
}

const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
const schema = freshSchema("recipe");
afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

describe("README: applying the migrations with your own tool", () => {
  it("lists every shipped migration in the ledger, with its version, name and compatibility floor", () => {
    const rows = [...recipeLedgerInsert().matchAll(/\((\d+), '([a-z_]+)', (\d+)\)/g)].map((m) => ({
      version: Number(m[1]),
      name: m[2],
      compatibleFrom: Number(m[3]),
    }));
    expect(rows).toEqual(
      MIGRATIONS.map(({ version, name, compatibleFrom }) => ({ version, name, compatibleFrom })),
    );
  });

  it("run by hand on a fresh schema, it leaves a schema the stores accept", async () => {
    const client = await pool.connect();
    try {
      await client.query(`CREATE SCHEMA "${schema}"`);
      await client.query(`SET search_path TO "${schema}"`);
      for (const migration of MIGRATIONS) await client.query(migration.sql);
      await client.query(
        `CREATE TABLE "${schema}".latch_migrations (version integer PRIMARY KEY, name text NOT NULL,
           applied_at timestamptz NOT NULL DEFAULT now(), compatible_from integer)`,
      );
      await client.query(
        recipeLedgerInsert().replace("latch.latch_migrations", `"${schema}".latch_migrations`),
      );
    } finally {
      await client.query("RESET search_path");
      client.release();
    }
    const store = new PostgresObservationStore(pool, { schema });
    await expect(store.ready()).resolves.toBeUndefined();
    expect(await store.append(makeObservation({}))).toBe("appended");
  });
});
