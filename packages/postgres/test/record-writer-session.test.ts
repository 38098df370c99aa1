/**
 * The record writer on a single session: PGlite (its own `transaction()`), and a `PoolClient`
 * inside the caller's transaction (the write joins it and rolls back with it). Same answers as
 * on a pool, one call at a time.
 */
import { createLatch, DefaultRatingEngine, InMemoryPricingSource, type UsageObservation } from "@latch/core";
import { makeObservation, makeSnapshot } from "@latch/testkit";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate, PostgresObservationStore, PostgresRatedRecordStore, type Queryable } from "../src/index.js";
import { inMemoryPglite } from "./pglite-support.js";
import { count, DATABASE_URL, freshSchema } from "./support.js";

const engine = new DefaultRatingEngine();
const rate = (obs: UsageObservation, currency = "USD") =>
  engine.rate(obs, makeSnapshot(obs.model.billableModel, currency), { ratedAt: "2026-03-01T12:00:05Z" });

function writerOn(db: Queryable, schema: string) {
  const writer = new PostgresObservationStore(db, { schema }).recordWriter(
    new PostgresRatedRecordStore(db, { schema }),
  );
  if (writer === undefined) throw new Error("expected a record writer");
  return writer;
}

describe("record writer on PGlite", () => {
  const schema = "latch";
  const lite = inMemoryPglite(schema);
  beforeAll(lite.setup, 60_000);
  afterAll(lite.teardown);

  it("appends, answers the stored record on a retry, refuses another payload, prices an unpriced one later", async () => {
    const writer = writerOn(lite.db(), schema);
    const obs = makeObservation({});
    const record = rate(obs);
    expect(await writer.write(obs, record)).toEqual({ observation: "appended", current: record });
    expect(await writer.write(obs, rate(obs, "EUR"))).toEqual({
      observation: "already_exists",
      current: record,
    });
    const other = { ...obs, meters: { input_tokens: 2 } };
    await expect(writer.write(other, undefined)).rejects.toMatchObject({ code: "idempotency_conflict" });

    const later = makeObservation({});
    expect(await writer.write(later, undefined)).toEqual({ observation: "appended", current: undefined });
    const laterRecord = rate(later);
    expect(await writer.write(later, laterRecord)).toEqual({
      observation: "already_exists",
      current: laterRecord,
    });
    const priced = await lite
      .db()
      .query(`SELECT priced FROM "${schema}".observations WHERE event_id = $1`, [later.eventId]);
    expect(priced.rows).toEqual([{ priced: true }]);
  });

  it("createLatch records through it", async () => {
    const latch = createLatch({
      observations: new PostgresObservationStore(lite.db(), { schema }),
      rated: new PostgresRatedRecordStore(lite.db(), { schema }),
      pricing: new InMemoryPricingSource([makeSnapshot("gpt-4o")]),
      spoolDir: `/tmp/latch-rw-pglite-${process.pid}`,
    });
    const obs = makeObservation({});
    const first = await latch.record(obs);
    expect(first).toMatchObject({ status: "rated", record: { eventId: obs.eventId } });
    expect(await latch.record(obs)).toEqual(first);
    await latch.close();
  });
});

describe("record writer inside the caller's transaction", () => {
  const schema = freshSchema("rwtx");
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
  beforeAll(() => migrate(pool, { schema }));
  afterAll(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool.end();
  });

  it("joins it: nothing stays when the caller rolls back, everything when it commits", async () => {
    const obs = makeObservation({});
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      expect(await writerOn(client, schema).write(obs, rate(obs))).toMatchObject({ observation: "appended" });
      await client.query("ROLLBACK");
      expect(
        await count(pool, `SELECT 1 FROM "${schema}".observations WHERE event_id = $1`, [obs.eventId]),
      ).toBe(0);
      await client.query("BEGIN");
      expect(await writerOn(client, schema).write(obs, rate(obs))).toMatchObject({ observation: "appended" });
      await client.query("COMMIT");
    } finally {
      client.release();
    }
    expect(
      await count(pool, `SELECT 1 FROM "${schema}".rated_records WHERE event_id = $1`, [obs.eventId]),
    ).toBe(1);
  });

  it("leaves the caller's settings as they were: JIT and both timeouts (the writer, appendMany, markPriced, put)", async () => {
    const client = await pool.connect();
    const current = async () =>
      (
        await client.query(
          "SELECT current_setting('jit') AS jit, current_setting('lock_timeout') AS lock, current_setting('statement_timeout') AS statement",
        )
      ).rows[0];
    try {
      await client.query("BEGIN");
      await client.query(
        "SET LOCAL jit = on; SET LOCAL lock_timeout = '7s'; SET LOCAL statement_timeout = '9s'",
      );
      const before = await current();
      expect(before).toEqual({ jit: "on", lock: "7s", statement: "9s" });
      const [a, b] = [makeObservation({}), makeObservation({})];
      await writerOn(client, schema).write(a, rate(a));
      const observations = new PostgresObservationStore(client, { schema });
      await observations.appendMany([b]);
      await new PostgresRatedRecordStore(client, { schema }).put(rate(b));
      await observations.markPriced([b.eventId]);
      expect(await current()).toEqual(before);
      await client.query("ROLLBACK");
    } finally {
      client.release();
    }
  });
});
