/**
 * The record writer trusts a record the default engine sealed (no zod re-parse): attacks on
 * that shortcut. A sealed record is frozen through and through; a Proxy, an heir or a copy of
 * one is parsed in full; a sealed record of another observation is refused; and a sealed
 * record with a snapshotId the record schema would refuse cannot exist any more: the snapshot
 * schema refuses it first (before that, the server's jsonb refusal spooled the call forever).
 */
import {
  createLatch,
  DefaultRatingEngine,
  InMemoryPricingSource,
  parseObservation,
  type RatedUsageRecord,
  type UsageObservation,
} from "@latch/core";
import type { RecordWriter } from "@latch/core/adapter";
import { makeObservation, makeSnapshot } from "@latch/testkit";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rateSealed } from "../../core/src/rating/sealed-record.js";
import { migrate, PostgresObservationStore, PostgresRatedRecordStore } from "../src/index.js";
import { count, DATABASE_URL, freshSchema } from "./support.js";

const schema = freshSchema("rwsealed");
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
const engine = new DefaultRatingEngine();
const sealed = (obs: UsageObservation, snapshotId?: string): RatedUsageRecord => {
  const snapshot = makeSnapshot(obs.model.billableModel);
  return rateSealed(engine, obs, snapshotId === undefined ? snapshot : { ...snapshot, snapshotId }, {
    ratedAt: "2026-03-01T12:00:05Z",
  });
};

beforeAll(async () => {
  await migrate(pool, { schema });
});
afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

function writer(): RecordWriter {
  const w = new PostgresObservationStore(pool, { schema, groupCommit: false }).recordWriter(
    new PostgresRatedRecordStore(pool, { schema }),
  );
  if (w === undefined) throw new Error("expected a record writer");
  return w;
}

const ratedRows = (eventId: string) =>
  count(pool, `SELECT 1 FROM "${schema}".rated_records WHERE event_id = $1`, [eventId]);

describe("record writer: sealed records", () => {
  it("a sealed record is frozen through (record, line items, observation members)", () => {
    const obs = parseObservation(makeObservation({}));
    const record = sealed(obs);
    expect(Object.isFrozen(record)).toBe(true);
    expect(Object.isFrozen(record.lineItems)).toBe(true);
    for (const item of record.lineItems) expect(Object.isFrozen(item)).toBe(true);
    for (const value of Object.values(record.observation))
      if (typeof value === "object") expect(Object.isFrozen(value)).toBe(true);
    expect(() => {
      (record.lineItems[0] as { subtotal: string }).subtotal = "-1";
    }).toThrow(TypeError);
  });

  it("a Proxy, an heir or a copy of a sealed record is parsed in full; a sealed record of another observation is refused", async () => {
    const w = writer();
    const obs = parseObservation(makeObservation({}));
    const record = sealed(obs);
    const proxy = new Proxy(record, {
      get: (target, key) => (key === "total" ? "not a decimal" : Reflect.get(target, key)),
    });
    // The target is frozen: a Proxy cannot report another value for its fields (a TypeError).
    await expect(w.write(obs, proxy)).rejects.toThrow(TypeError);
    // A truthful Proxy is not the sealed record: parsed in full, and stored like the record.
    const honest = new Proxy(record, {});
    const copy = { ...record, total: "not a decimal" };
    await expect(w.write(obs, copy)).rejects.toMatchObject({ code: "invalid_input" });
    const other = parseObservation(makeObservation({}));
    await expect(w.write(obs, sealed(other))).rejects.toMatchObject({ code: "invalid_input" });
    expect(await ratedRows(obs.eventId)).toBe(0);
    // The genuine one is stored as the engine built it.
    expect((await w.write(obs, honest)).current).toEqual(record);
    // An heir: zod reads its inherited fields, so it parses (to a plain copy of the record).
    expect((await w.write(obs, Object.create(record) as RatedUsageRecord)).current).toEqual(record);
    expect((await w.write(obs, record)).current).toEqual(record);
    expect(await ratedRows(obs.eventId)).toBe(1);
  });

  it("the stored record hash of a sealed record is the one a plain copy of it hashes to (a put of the copy is a retry, not a conflict)", async () => {
    const obs = parseObservation(makeObservation({ attributes: { b: "2", a: "1" } }));
    const record = sealed(obs);
    await writer().write(obs, record);
    const copy = JSON.parse(JSON.stringify(record)) as RatedUsageRecord;
    const rated = new PostgresRatedRecordStore(pool, { schema });
    await expect(rated.put(copy)).resolves.toBeDefined();
    expect(await rated.get(record.ratedRecordId)).toEqual(copy);
  });

  for (const [label, snapshotId] of [
    ["U+0000", "snap\u0000x"],
    ["a lone surrogate", "snap\ud800x"],
  ] as const) {
    it(`no sealed record carries a snapshotId with ${label}: the engine refuses the snapshot (invalid_input)`, () => {
      const obs = parseObservation(makeObservation({}));
      expect(() => sealed(obs, snapshotId)).toThrow(expect.objectContaining({ code: "invalid_input" }));
      expect(() => sealed(obs, snapshotId)).toThrow(/snapshotId/);
    });
  }

  it("createLatch on Postgres with such a snapshot: refused when the pricing source is built, nothing stored", async () => {
    expect(
      () => new InMemoryPricingSource([{ ...makeSnapshot("gpt-4o"), snapshotId: "snap\ud800x" }]),
    ).toThrow(expect.objectContaining({ code: "invalid_input" }));
    const latch = createLatch({
      observations: new PostgresObservationStore(pool, { schema, groupCommit: false }),
      rated: new PostgresRatedRecordStore(pool, { schema }),
      pricing: new InMemoryPricingSource([makeSnapshot("gpt-4o")]),
      spoolDir: `/tmp/${schema}-spool`,
      retry: { attempts: 1, baseDelayMs: 5 },
    });
    await latch.ready();
    const obs = makeObservation({});
    expect(await latch.record(obs)).toMatchObject({ status: "rated" });
    expect(await ratedRows(obs.eventId)).toBe(1);
    await latch.close();
  });
});
