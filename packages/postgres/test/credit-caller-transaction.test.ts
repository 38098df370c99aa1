/**
 * A credit write that joins the caller's transaction (a `PoolClient` already inside BEGIN)
 * leaves the caller's planner settings as they were: the bounded usage reads turn
 * `enable_bitmapscan` and `enable_sort` off only for themselves.
 */
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { migrate, PostgresCreditLedger } from "../src/index.js";
import { DATABASE_URL, freshSchema } from "./support.js";

const schema = freshSchema("crtx");
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
beforeAll(() => migrate(pool, { schema }));
afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

const settings = async (client: pg.PoolClient) =>
  (
    await client.query(
      "SELECT current_setting('enable_bitmapscan') AS bitmapscan, current_setting('enable_sort') AS sort",
    )
  ).rows[0];

it("a burn inside the caller's transaction does not change the caller's planner settings", async () => {
  const setup = new PostgresCreditLedger(pool, { schema });
  await setup.createFeature({ featureId: "f", measure: { kind: "money", currency: "USD" } });
  await setup.createLedger({ ledgerId: "l", subject: { tenantId: "t" } });
  await setup.grant({
    grantId: "g",
    ledgerId: "l",
    featureId: "f",
    amount: "100",
    effectiveAt: "2026-01-01T00:00:00Z",
  });
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    // One the caller set locally, one left at the server's default.
    await client.query("SET LOCAL enable_sort = on; SET LOCAL enable_bitmapscan = on");
    const credits = new PostgresCreditLedger(client, { schema });
    for (const enforce of [false, true]) {
      const result = await credits.recordUsage({
        ledgerId: "l",
        featureId: "f",
        eventId: `e-${enforce}`,
        amount: "1",
        at: "2026-01-02T00:00:00Z",
        enforce,
      });
      expect(result.status).toBe("recorded");
      expect(await settings(client)).toEqual({ bitmapscan: "on", sort: "on" });
    }
    await client.query("SET LOCAL enable_sort = off");
    await credits.recordUsage({
      ledgerId: "l",
      featureId: "f",
      eventId: "e-3",
      amount: "1",
      at: "2026-01-03T00:00:00Z",
    });
    expect(await settings(client)).toEqual({ bitmapscan: "on", sort: "off" });
    await client.query("SET LOCAL enable_sort = on");
    expect(
      await credits.reserve({ holdId: "h", ledgerId: "l", featureId: "f", amount: "2", ttlMs: 60_000 }),
    ).toMatchObject({ granted: true });
    expect(await settings(client)).toEqual({ bitmapscan: "on", sort: "on" });
    await credits.voidHold("h");
    await client.query("COMMIT");
    // Outside a transaction of the caller's: the store's own BEGIN … COMMIT on the session.
    expect(
      await credits.recordUsage({
        ledgerId: "l",
        featureId: "f",
        eventId: "e-4",
        amount: "1",
        at: "2026-01-03T01:00:00Z",
        enforce: true,
      }),
    ).toMatchObject({ status: "recorded" });
    expect(await settings(client)).toEqual({ bitmapscan: "on", sort: "on" });
  } finally {
    client.release();
  }
  expect((await setup.balance("l", "2026-01-04T00:00:00Z")).features[0]?.balance).toBe("96");
});
