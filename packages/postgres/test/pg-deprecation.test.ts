import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  migrate,
  PostgresObservationStore,
  PostgresQuota,
  PostgresRatedRecordStore,
  PostgresUsageCounter,
} from "../src/index.js";
import { DATABASE_URL, freshSchema } from "./support.js";

// pg 8.23 deprecates sending a query on a client while another runs on it (pg 9 removes it),
// with a process warning the first time. Every store call on a real pg.Pool must stay clear of it.

const schema = freshSchema("pgdeprecation");
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
pool.on("error", () => undefined);
const warnings: string[] = [];
const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);

beforeAll(async () => {
  process.on("warning", onWarning);
  await migrate(pool, { schema });
});

afterAll(async () => {
  process.off("warning", onWarning);
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

describe("store calls on a pg.Pool", () => {
  it("send no query while another runs on the same client (no pg deprecation warning)", async () => {
    const quota = new PostgresQuota(pool, { schema });
    const counter = new PostgresUsageCounter(pool, { schema });
    const observations = new PostgresObservationStore(pool, { schema });
    const rated = new PostgresRatedRecordStore(pool, { schema });
    await quota.setLimit("acct", 1000);
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 20; i++) {
      calls.push(
        quota.reserve({ account: "acct", amount: 1, holdId: `h${i}`, ttlMs: 60_000 }).then((r) => {
          expect(r.granted).toBe(true);
          return quota.commit(`h${i}`, 1);
        }),
      );
      calls.push(counter.add("k", "2026-12", 1));
    }
    await Promise.all(calls);
    expect(await counter.get("k", "2026-12")).toBe(20);
    expect(await observations.listUnpriced({ limit: 1 })).toEqual({ items: [] });
    expect(await rated.current("no-such-event")).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 50)); // warnings are emitted on the next tick
    expect(warnings.filter((w) => w.includes("already executing a query"))).toEqual([]);
  });
});
