/**
 * Postgres computes calendar periods with its own time-zone data (quota_period_bounds,
 * migration 0015): the same golden table as core's Intl arithmetic, on the server and PGlite.
 */
import { PGlite } from "@electric-sql/pglite";
import { QUOTA_PERIOD_CASES } from "@latch/testkit";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromPglite, migrate, type Queryable } from "../src/index.js";
import { DATABASE_URL, freshSchema } from "./support.js";

const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
const schema = freshSchema("periods");
let pglite: PGlite | undefined;

beforeAll(async () => {
  await migrate(pool, { schema });
  pglite = new PGlite();
  await migrate(fromPglite(pglite), { schema });
}, 120_000);
afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
  await pglite?.close();
});

for (const [name, db] of [
  ["postgres", () => pool as Queryable],
  ["pglite", () => fromPglite(pglite as PGlite)],
] as const) {
  describe(`${name}: quota_period_bounds`, () => {
    for (const c of QUOTA_PERIOD_CASES) {
      it(c.title, async () => {
        const { rows } = await db().query(
          `SELECT floor(extract(epoch FROM period_start) * 1000)::bigint::text AS s,
                  floor(extract(epoch FROM period_end) * 1000)::bigint::text AS e
           FROM "${schema}".quota_period_bounds($1, $2, to_timestamp($3::double precision / 1000))`,
          [c.period.every, c.period.timeZone, c.at],
        );
        const row = rows[0] as { s: string; e: string };
        expect({ start: Number(row.s), end: Number(row.e) }).toEqual({ start: c.start, end: c.end });
      });
    }
  });
}
