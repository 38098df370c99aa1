import { makeObservation, uniqueId } from "@latch/testkit";
import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  migrate,
  PostgresCreditLedger,
  PostgresObservationStore,
  PostgresQuota,
  PostgresRatedRecordStore,
  PostgresUsageCounter,
} from "../src/index.js";
import { count, DATABASE_URL, freshSchema } from "./support.js";

// pg 8.23 deprecates sending a query on a client while another runs on it (pg 9 removes it),
// with a process warning the first time. That warning only fires once a query is already
// waiting behind the running one (the third at once), so each client is also watched directly:
// a query sent while the client is not ready for one (a second at once) is recorded, and so is
// a client handed back to the pool inside a transaction. Every store call on a real pg.Pool
// must stay clear of all three.

const schema = freshSchema("pgdeprecation");
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
pool.on("error", () => undefined);
const warnings: string[] = [];
const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);
/** Queries sent on a client while another ran on it. */
const overlapping: string[] = [];
/** Clients handed back to the pool (not destroyed) in a transaction status other than idle. */
const releasedInTransaction: string[] = [];

pool.on("connect", (client) => {
  const watched = client as unknown as { readyForQuery: boolean; query: (...args: unknown[]) => unknown };
  const query = watched.query.bind(client);
  watched.query = (...args: unknown[]) => {
    if (!watched.readyForQuery) {
      const first = args[0];
      overlapping.push(typeof first === "string" ? first : String((first as { text?: string }).text));
    }
    return query(...args);
  };
});
pool.on("release", (error: Error | undefined, client: pg.PoolClient) => {
  const status = (client as unknown as pg.Client).getTransactionStatus();
  if (error === undefined && status !== "I") releasedInTransaction.push(String(status));
});

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
  });

  it("a COPY batch whose direct COPY meets a stored id mid-stream falls back to the stage", async () => {
    const observations = new PostgresObservationStore(pool, { schema, copyFrom, copyThreshold: 2 });
    const prefix = uniqueId("big");
    // More than one 256 KiB chunk of COPY text: the server refuses the first row while the
    // client still streams the rest, and answers ReadyForQuery only after the copy is ended.
    const batch = Array.from({ length: 3_000 }, (_, i) => makeObservation({ eventId: `${prefix}-${i}` }));
    expect(await observations.appendMany(batch.slice(0, 1))).toEqual(["appended"]);
    const results = await observations.appendMany(batch);
    expect(results[0]).toBe("already_exists");
    expect(results.slice(1).every((r) => r === "appended")).toBe(true);
    expect(
      await count(pool, `SELECT 1 FROM "${schema}".observations WHERE event_id LIKE $1`, [`${prefix}-%`]),
    ).toBe(3_000);
  });

  it("the credit ledger: grants, usage (a refused one too) and a balance, concurrently", async () => {
    const credits = new PostgresCreditLedger(pool, { schema, snapshotEvery: 3 });
    const featureId = uniqueId("f");
    const ledgerId = uniqueId("l");
    await credits.createFeature({ featureId, measure: { kind: "money", currency: "USD" } });
    await credits.createLedger({ ledgerId, subject: { tenantId: "t" } });
    await credits.grant({
      grantId: `${ledgerId}:g`,
      ledgerId,
      featureId,
      amount: "100",
      effectiveAt: "2026-01-01T00:00:00Z",
    });
    const day = (n: number) => new Date(Date.UTC(2026, 0, 1 + n)).toISOString();
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        credits.recordUsage({ ledgerId, featureId, eventId: `e${i}`, amount: "1", at: day(i + 1) }),
      ),
    );
    await expect(
      credits.recordUsage({ ledgerId, featureId: "no-such-feature", eventId: "x", amount: "1", at: day(2) }),
    ).rejects.toThrow();
    expect((await credits.balance(ledgerId, day(12))).features[0]).toMatchObject({
      balance: "90",
      usage: "10",
    });
  });

  it("the record writer's group commit and COPY-staged batches, concurrently", async () => {
    const observations = new PostgresObservationStore(pool, { schema, copyFrom, copyThreshold: 2 });
    const writer = observations.recordWriter(new PostgresRatedRecordStore(pool, { schema }));
    if (writer === undefined) throw new Error("expected a record writer");
    const prefix = uniqueId("dep");
    const batch = Array.from({ length: 50 }, (_, i) => makeObservation({ eventId: `${prefix}-c${i}` }));
    const results = await Promise.all([
      observations.appendMany(batch),
      observations.appendMany(batch), // the second meets stored ids: the staged path
      ...Array.from({ length: 20 }, (_, i) =>
        writer.write(makeObservation({ eventId: `${prefix}-w${i}` }), undefined),
      ),
    ]);
    expect(results).toHaveLength(22);
    expect(
      await count(pool, `SELECT 1 FROM "${schema}".observations WHERE event_id LIKE $1`, [`${prefix}-%`]),
    ).toBe(70);
  });
});

afterEach(async () => {
  await new Promise((resolve) => setTimeout(resolve, 50)); // warnings are emitted on the next tick
  expect(overlapping).toEqual([]);
  expect(releasedInTransaction).toEqual([]);
  expect(warnings.filter((w) => w.includes("already executing a query"))).toEqual([]);
});
