import { runConformance, uniqueId } from "@latch/testkit";
import pg from "pg";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { migrate, PostgresQuota } from "../src/index.js";
import { apiKeySuite } from "./api-key-support.js";
import { creditSuites } from "./credit-support.js";
import { ALL, DATABASE_URL, freshSchema, LATEST, storeSuites } from "./support.js";

/**
 * Every store suite again, on a pool whose sessions default to `level` (set per connection
 * with `options`, so the shared server's own default is left alone): each Latch transaction
 * states READ COMMITTED, so the answers must not change.
 */
export function describeUnderDefaultIsolation(level: "repeatable read" | "serializable"): void {
  describe(`server sessions defaulting to ${level}`, () => {
    const schema = freshSchema(level === "serializable" ? "ser" : "rr");
    const pool = new pg.Pool({
      connectionString: DATABASE_URL,
      max: 20,
      options: `-c default_transaction_isolation=${level.replace(" ", "\\ ")}`,
    });

    let ready: Promise<void> | undefined;
    beforeEach(async () => {
      ready ??= migrate(pool, { schema }).then((result) => {
        expect(result).toEqual({ version: LATEST, applied: ALL });
      });
      await ready;
    });

    afterAll(async () => {
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await pool.end();
    });

    it(`really defaults to ${level} on every connection of the pool`, async () => {
      const clients = await Promise.all(Array.from({ length: 5 }, () => pool.connect()));
      try {
        for (const client of clients) {
          const { rows } = await client.query("SELECT current_setting('transaction_isolation') AS level");
          expect(rows).toEqual([{ level }]);
        }
      } finally {
        for (const client of clients) client.release();
      }
    });

    it("200 concurrent reserves against room for 71: exactly 71 granted, 129 insufficient, none unavailable; the 71 concurrent commits all succeed", async () => {
      const quota = new PostgresQuota(pool, { schema });
      const account = uniqueId("acct");
      await quota.setLimit(account, 710);
      const holds = Array.from({ length: 200 }, (_, i) => `${account}-${i}`);
      const results = await Promise.all(
        holds.map((holdId) => quota.reserve({ holdId, account, amount: 10, ttlMs: 600_000 })),
      );
      const granted = holds.filter((_, i) => results[i]?.granted === true);
      expect(granted).toHaveLength(71);
      expect(results.filter((r) => !r.granted && r.reason === "insufficient")).toHaveLength(129);
      expect(results.filter((r) => !r.granted && r.reason === "unavailable")).toHaveLength(0);
      // Commits below, at and above the hold, all at once.
      const actual = (i: number) => [7, 10, 12][i % 3] as number;
      const commits = await Promise.allSettled(granted.map((holdId, i) => quota.commit(holdId, actual(i))));
      expect(commits.filter((c) => c.status === "rejected")).toEqual([]);
      // 24 × 7 + 24 × 10 + 23 × 12 = 684
      expect(await quota.balance(account)).toEqual({ limit: 710, spent: 684, held: 0, available: 26 });
    }, 120_000);

    runConformance({
      name: `postgres, ${level} by default`,
      suites: [
        ...storeSuites(() => pool, schema, { quota: 2_000 }),
        ...creditSuites(() => pool, schema, 1_000),
        apiKeySuite(() => pool, schema),
      ],
    });
  });
}
