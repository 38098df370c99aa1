/**
 * Rolling windows on Postgres (migration 0016): one quota_window_usage row per bucket, rows
 * 0015 wrote per commit read and trimmed by the same rule, and at most 1,000 passed rows
 * deleted by the call that touches the account (bounded work per call).
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate, PostgresQuota } from "../src/index.js";
import { count, DATABASE_URL, freshSchema } from "./support.js";

const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
const schema = freshSchema("window");

beforeAll(async () => {
  await migrate(pool, { schema });
}, 120_000);
afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

const rows = (account: string) =>
  count(pool, `SELECT 1 FROM "${schema}".quota_window_usage WHERE account = $1`, [account]);

describe("PostgresQuota: rolling windows in buckets", () => {
  it("deletes at most 1,000 passed rows per call; 0015's per-commit rows are read and trimmed like buckets", async () => {
    const quota = new PostgresQuota(pool, { schema });
    await quota.setLimit("legacy", 10_000, { period: { rollingMs: 2_000 } });
    // 1,500 rows as 0015 wrote them (one per commit), all past the window.
    await pool.query(
      `INSERT INTO "${schema}".quota_window_usage (account, at, amount)
       SELECT 'legacy', clock_timestamp() - interval '3 seconds' - g * interval '1 millisecond', 1
       FROM generate_series(1, 1500) g`,
    );
    await pool.query(`UPDATE "${schema}".quota_accounts SET spent = 1500 WHERE account = 'legacy'`);
    // Read-only balance already leaves them out.
    expect(await quota.balance("legacy")).toMatchObject({ spent: 0, available: 10_000 });
    const reserve = (n: number) =>
      quota.reserve({ holdId: `${schema}-legacy-${n}`, account: "legacy", amount: 1, ttlMs: 60_000 });
    await reserve(1);
    expect(await rows("legacy")).toBe(500); // the first call deleted 1,000
    await reserve(2);
    expect(await rows("legacy")).toBe(0);
    const { rows: stored } = await pool.query(
      `SELECT spent::int AS spent FROM "${schema}".quota_accounts WHERE account = 'legacy'`,
    );
    expect(stored[0]).toEqual({ spent: 0 });
  });

  it("adds commits to the row of their bucket, at the bucket's last millisecond", async () => {
    const quota = new PostgresQuota(pool, { schema });
    // Buckets of 36 s: both commits land in one (or two, if a bucket ends in between).
    await quota.setLimit("buckets", 10_000, { period: { rollingMs: 3_600_000 } });
    for (const n of [1, 2, 3]) {
      const holdId = `${schema}-buckets-${n}`;
      await quota.reserve({ holdId, account: "buckets", amount: 10, ttlMs: 60_000 });
      await quota.commit(holdId, 10);
    }
    const { rows: entries } = await pool.query(
      `SELECT (floor(extract(epoch FROM at) * 1000)::bigint % 36000)::int AS offset, amount::int AS amount
       FROM "${schema}".quota_window_usage WHERE account = 'buckets' ORDER BY at`,
    );
    expect(entries.length).toBeGreaterThanOrEqual(1);
    expect(entries.length).toBeLessThanOrEqual(2);
    for (const entry of entries) expect(entry.offset).toBe(35_999);
    expect(entries.reduce((sum, entry) => sum + entry.amount, 0)).toBe(30);
  });
});
