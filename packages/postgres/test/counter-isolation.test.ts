/**
 * `counter_add` on a server whose sessions default to REPEATABLE READ (a common managed
 * setting): concurrent first adds on a new (key, period) row, and raced replays of one opId,
 * must all be answered and count once each.
 */
import pg from "pg";
import { afterAll, expect, it } from "vitest";
import { migrate, PostgresUsageCounter } from "../src/index.js";
import { DATABASE_URL, freshSchema } from "./support.js";

const schema = freshSchema("rrcounter");
const pool = new pg.Pool({
  connectionString: DATABASE_URL,
  max: 20,
  options: "-c default_transaction_isolation=repeatable\\ read",
});

afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

it("under default_transaction_isolation = repeatable read, 200 concurrent adds on a new row (100 distinct opIds, 100 replays of one) all succeed and count once each", async () => {
  // Migrated in the test, not a beforeAll: an unreachable server must fail it, not skip it.
  await migrate(pool, { schema });
  const { rows } = await pool.query("SHOW default_transaction_isolation");
  expect(rows[0].default_transaction_isolation).toBe("repeatable read");
  const counter = new PostgresUsageCounter(pool, { schema });
  const outcomes = await Promise.allSettled(
    Array.from({ length: 200 }, (_, i) =>
      i % 2 === 0
        ? counter.add("acme|gpt-4o|input_tokens", "2026-03", 10, { opId: `evt-${i}` })
        : counter.add("acme|gpt-4o|input_tokens", "2026-03", 1_000, { opId: "raced" }),
    ),
  );
  const failed = outcomes.filter((o) => o.status === "rejected");
  expect(failed.map((o) => String((o as PromiseRejectedResult).reason)).slice(0, 3)).toEqual([]);
  expect(await counter.get("acme|gpt-4o|input_tokens", "2026-03")).toBe(100 * 10 + 1_000);
});
