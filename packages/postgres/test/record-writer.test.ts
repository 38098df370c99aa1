/**
 * The facade's record path in one transaction (`PostgresObservationStore.recordWriter`) and its
 * group commit, on the server: batch semantics, duplicates and conflicts inside one batch, a
 * refused row, a connection killed mid-batch, and the facade recording through it.
 */
import {
  createLatch,
  DefaultRatingEngine,
  InMemoryPricingSource,
  type RatedUsageRecord,
  type RecordResult,
  type UsageObservation,
} from "@latch/core";
import type { RecordWriteResult, RecordWriter } from "@latch/core/adapter";
import { makeObservation, makeSnapshot, uniqueId } from "@latch/testkit";
import pg from "pg";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { migrate, PostgresObservationStore, PostgresRatedRecordStore } from "../src/index.js";
import { count, DATABASE_URL, freshSchema } from "./support.js";

const schema = freshSchema("rw");
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 8 });
const engine = new DefaultRatingEngine();
const rate = (obs: UsageObservation, ratedAt = "2026-03-01T12:00:05Z", currency = "USD"): RatedUsageRecord =>
  engine.rate(obs, makeSnapshot(obs.model.billableModel, currency), { ratedAt });

let ready: Promise<unknown> | undefined;
beforeEach(async () => {
  ready ??= migrate(pool, { schema });
  await ready;
});

afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

function writerOf(options: ConstructorParameters<typeof PostgresObservationStore>[1] = {}): RecordWriter {
  const observations = new PostgresObservationStore(pool, { schema, ...options });
  const writer = observations.recordWriter(new PostgresRatedRecordStore(pool, { schema }));
  if (writer === undefined) throw new Error("expected a record writer");
  return writer;
}

/** The stored rows of one event, read with raw SQL: observations, priced, rated versions and their xids. */
async function stored(eventId: string) {
  const obs = await pool.query(`SELECT hash, priced FROM "${schema}".observations WHERE event_id = $1`, [
    eventId,
  ]);
  const rated = await pool.query(
    `SELECT rated_record_id, xid::text AS xid, payload FROM "${schema}".rated_records WHERE event_id = $1 ORDER BY version`,
    [eventId],
  );
  return {
    observations: obs.rows.length,
    priced: (obs.rows[0] as { priced?: boolean } | undefined)?.priced,
    rated: rated.rows as Array<{ rated_record_id: string; xid: string; payload: RatedUsageRecord }>,
  };
}

const settled = <T>(p: Promise<T>) =>
  p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );

describe("postgres record writer", () => {
  it("offers itself only for a rated store on the same pool and schema", () => {
    const observations = new PostgresObservationStore(pool, { schema });
    expect(observations.recordWriter(new PostgresRatedRecordStore(pool, { schema }))).toBeDefined();
    expect(
      observations.recordWriter(new PostgresRatedRecordStore(pool, { schema: `${schema}_x` })),
    ).toBeUndefined();
    const other = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
    expect(observations.recordWriter(new PostgresRatedRecordStore(other, { schema }))).toBeUndefined();
    void other.end();
  });

  it("stores the observation, its rated record and the priced mark; a retry answers the stored record; another payload conflicts", async () => {
    const writer = writerOf({ groupCommit: false });
    const obs = makeObservation({});
    const record = rate(obs);
    expect(await writer.write(obs, record)).toEqual({ observation: "appended", current: record });
    const first = await stored(obs.eventId);
    expect(first).toMatchObject({ observations: 1, priced: true });
    expect(first.rated.map((r) => r.rated_record_id)).toEqual([record.ratedRecordId]);

    // A retry rated later (another ratedAt): the stored record is the answer, nothing new stored.
    const retry = await writer.write(obs, rate(obs, "2026-03-01T13:00:00Z"));
    expect(retry).toEqual({ observation: "already_exists", current: record });
    // A retry that could not be priced this time still answers the stored record.
    expect(await writer.write(obs, undefined)).toEqual({ observation: "already_exists", current: record });

    const other = { ...obs, meters: { input_tokens: 1 } };
    await expect(writer.write(other, rate(other))).rejects.toMatchObject({
      code: "idempotency_conflict",
      id: obs.eventId,
    });
    expect((await stored(obs.eventId)).rated).toHaveLength(1);
  });

  it("keeps an unpriced observation unpriced, and prices it on a later write with a record", async () => {
    const writer = writerOf();
    const obs = makeObservation({});
    expect(await writer.write(obs, undefined)).toEqual({ observation: "appended", current: undefined });
    expect(await stored(obs.eventId)).toMatchObject({ observations: 1, priced: false, rated: [] });
    const record = rate(obs);
    expect(await writer.write(obs, record)).toEqual({ observation: "already_exists", current: record });
    expect(await stored(obs.eventId)).toMatchObject({ observations: 1, priced: true });
  });

  it("answers a rated record stored before (another snapshot) instead of its own", async () => {
    const writer = writerOf();
    const obs = makeObservation({});
    const earlier = rate(obs, "2026-03-01T12:00:05Z", "EUR");
    await new PostgresObservationStore(pool, { schema }).append(obs);
    await new PostgresRatedRecordStore(pool, { schema }).put(earlier);
    expect(await writer.write(obs, rate(obs))).toEqual({ observation: "already_exists", current: earlier });
    expect(await stored(obs.eventId)).toMatchObject({ priced: true });
  });

  it("a new observation whose event has a rated record stored already: appended, priced, answered with that record", async () => {
    const writer = writerOf();
    const obs = makeObservation({});
    const earlier = rate(obs, "2026-03-01T12:00:05Z", "EUR");
    await new PostgresRatedRecordStore(pool, { schema }).put(earlier);
    // Without a record of its own, and with one (another rating): the stored version wins both times.
    const other = makeObservation({});
    const otherEarlier = rate(other, "2026-03-01T12:00:05Z", "EUR");
    await new PostgresRatedRecordStore(pool, { schema }).put(otherEarlier);
    const [bare, rated] = await Promise.all([writer.write(obs, undefined), writer.write(other, rate(other))]);
    expect(bare).toEqual({ observation: "appended", current: earlier });
    expect(rated).toEqual({ observation: "appended", current: otherEarlier });
    for (const [o, r] of [
      [obs, earlier],
      [other, otherEarlier],
    ] as const) {
      const rows = await stored(o.eventId);
      expect(rows).toMatchObject({ observations: 1, priced: true });
      expect(rows.rated.map((x) => x.rated_record_id)).toEqual([r.ratedRecordId]);
    }
  });

  it("refuses a record that is not version 1 of the observation written, naming the field", async () => {
    const writer = writerOf();
    const obs = makeObservation({});
    const elsewhere = rate(makeObservation({ eventId: obs.eventId, meters: { input_tokens: 3 } }));
    await expect(writer.write(obs, elsewhere)).rejects.toMatchObject({
      code: "invalid_input",
      message: expect.stringContaining("record.observation"),
    });
    expect(await stored(obs.eventId)).toMatchObject({ observations: 0 });
  });

  it("64 concurrent callers share two transactions (a batch sent with nothing in flight is split, an event's calls in one half); duplicates answer like sequential calls; one conflicting payload fails alone", async () => {
    const writer = writerOf({ groupCommit: { maxWaitMs: 50, maxBatch: 64 } });
    const conflicted = makeObservation({});
    await writer.write(conflicted, rate(conflicted)); // stored before, with another payload than below
    const calls: Array<{ obs: UsageObservation; record: RatedUsageRecord | undefined }> = [];
    const distinct = Array.from({ length: 56 }, () => makeObservation({}));
    for (const obs of distinct) calls.push({ obs, record: rate(obs) });
    // Four more copies of two events (the same payload), one rated later, one unpriced.
    const [a, b] = distinct as [UsageObservation, UsageObservation];
    calls.push({ obs: a, record: rate(a, "2026-03-01T12:30:00Z") }, { obs: a, record: undefined });
    calls.push({ obs: b, record: rate(b) }, { obs: b, record: rate(b) });
    // Another payload for an eventId earlier in the batch: a conflict, once that one commits.
    const c = distinct[2] as UsageObservation;
    const cOther = { ...c, meters: { input_tokens: 7 } };
    calls.push({ obs: cOther, record: rate(cOther) });
    // Another payload for an eventId stored before the batch.
    const dOther = { ...conflicted, meters: { input_tokens: 9 } };
    calls.push({ obs: dOther, record: rate(dOther) });
    // Two unpriced.
    const e = makeObservation({});
    calls.push({ obs: e, record: undefined }, { obs: e, record: undefined });
    expect(calls).toHaveLength(64);

    const results = await Promise.all(calls.map((call) => settled(writer.write(call.obs, call.record))));
    const answer = (i: number) => results[i] as { ok: true; value: RecordWriteResult };
    for (let i = 0; i < 56; i++) {
      expect(answer(i)).toEqual({ ok: true, value: { observation: "appended", current: calls[i]?.record } });
    }
    // Copies: already_exists, with the first call's record.
    for (const i of [56, 57])
      expect(answer(i).value).toEqual({ observation: "already_exists", current: calls[0]?.record });
    for (const i of [58, 59])
      expect(answer(i).value).toEqual({ observation: "already_exists", current: calls[1]?.record });
    expect(results[60]).toMatchObject({ ok: false, error: { code: "idempotency_conflict", id: c.eventId } });
    expect(results[61]).toMatchObject({
      ok: false,
      error: { code: "idempotency_conflict", id: conflicted.eventId },
    });
    expect(answer(62).value).toEqual({ observation: "appended", current: undefined });
    expect(answer(63).value).toEqual({ observation: "already_exists", current: undefined });

    // Each event stored once; the rated records of the batch written by its two transactions.
    const xids = new Set<string>();
    for (const obs of distinct) {
      const rows = await stored(obs.eventId);
      expect(rows).toMatchObject({ observations: 1, priced: true });
      expect(rows.rated).toHaveLength(1);
      xids.add((rows.rated[0] as { xid: string }).xid);
    }
    expect(xids.size).toBe(2);
    expect((await stored(conflicted.eventId)).rated).toHaveLength(1);
    expect(await stored(e.eventId)).toMatchObject({ observations: 1, priced: false, rated: [] });
  });

  it("pools of 1 and 2: overlapping waves (split batches and batches sent while others are in flight, shared eventIds, conflicting payloads) all answer promptly; each event stored once, appended once", async () => {
    for (const max of [1, 2]) {
      const small = new pg.Pool({ connectionString: DATABASE_URL, max });
      try {
        // A lock timeout of 40 s: a write left waiting on a lock answers only after it, far
        // from the 15 s allowed below (0.3–0.6 s with a CI run beside it; the 5 s bound against
        // the default 10 s timeout left a loaded machine little room).
        const observations = new PostgresObservationStore(small, {
          schema,
          groupCommit: { maxWaitMs: 1, maxBatch: 32 },
          lockTimeoutMs: 40_000,
        });
        const writer = observations.recordWriter(new PostgresRatedRecordStore(small, { schema }));
        if (writer === undefined) throw new Error("expected a record writer");
        const events = Array.from({ length: 48 }, () => makeObservation({}));
        const started = Date.now();
        const waves: Array<Promise<Array<Awaited<ReturnType<typeof settled<RecordWriteResult>>>>>> = [];
        const conflicting: string[] = [];
        for (let wave = 0; wave < 4; wave++) {
          // Each wave: every event again, in another order (reversed on odd waves), a third unpriced;
          // on wave 2, another payload for every fifth event.
          const order = wave % 2 === 0 ? events : [...events].reverse();
          waves.push(
            Promise.all(
              order.map((obs, i) => {
                if (wave === 2 && i % 5 === 0) {
                  const other = { ...obs, meters: { input_tokens: 1_000 + i } };
                  conflicting.push(obs.eventId);
                  return settled(writer.write(other, rate(other)));
                }
                return settled(writer.write(obs, i % 3 === 0 ? undefined : rate(obs)));
              }),
            ),
          );
          await new Promise((resolve) => setImmediate(resolve));
        }
        const results = (await Promise.all(waves)).flat();
        expect(Date.now() - started, `pool of ${max}`).toBeLessThan(15_000);
        const failed = results.filter((r) => !r.ok);
        expect(failed).toHaveLength(conflicting.length);
        for (const r of failed)
          expect(r).toMatchObject({ ok: false, error: { code: "idempotency_conflict" } });
        const appended = results.filter((r) => r.ok && r.value.observation === "appended");
        expect(appended).toHaveLength(events.length);
        for (const obs of events) {
          const rows = await stored(obs.eventId);
          expect(rows.observations).toBe(1);
          expect(rows.rated.length).toBeLessThanOrEqual(1);
          expect(rows.priced).toBe(rows.rated.length === 1);
        }
      } finally {
        await small.end();
      }
    }
  });

  it("a row the server refuses fails alone: its neighbours in the batch are stored", async () => {
    const writer = writerOf({ groupCommit: { maxWaitMs: 50, maxBatch: 16 } });
    // A real refusal by the server (a check in a trigger), for one eventId only.
    await pool.query(`CREATE FUNCTION "${schema}".refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.event_id LIKE 'poison-%' THEN RAISE EXCEPTION 'refused' USING ERRCODE = '23514'; END IF;
        RETURN NEW;
      END $$`);
    await pool.query(
      `CREATE TRIGGER refuse_poison BEFORE INSERT ON "${schema}".observations FOR EACH ROW EXECUTE FUNCTION "${schema}".refuse_poison()`,
    );
    try {
      const good = Array.from({ length: 15 }, () => makeObservation({}));
      const poison = makeObservation({ eventId: `${uniqueId("poison")}:0:openai` });
      const all = [...good.slice(0, 7), poison, ...good.slice(7)];
      const results = await Promise.all(all.map((obs) => settled(writer.write(obs, rate(obs)))));
      expect(results[7]).toMatchObject({ ok: false, error: { code: "23514" } });
      expect(results.filter((r) => r.ok)).toHaveLength(15);
      for (const obs of good)
        expect(await stored(obs.eventId)).toMatchObject({ observations: 1, priced: true });
      expect(await stored(poison.eventId)).toMatchObject({ observations: 0, rated: [] });
    } finally {
      await pool.query(`DROP TRIGGER refuse_poison ON "${schema}".observations`);
    }
  });

  it("a connection killed mid-batch acknowledges nobody; the retry stores each row once", async () => {
    // A lock timeout of 40 s: a transaction left waiting answers only after it, far from the
    // 10 s allowed below for answers caused by the kill (0.4 s on an idle machine; the 2 s bound
    // against the default 10 s timeout left a loaded machine little room).
    const writer = writerOf({ groupCommit: { maxWaitMs: 50, maxBatch: 32 }, lockTimeoutMs: 40_000 });
    const batch = Array.from({ length: 32 }, () => makeObservation({}));
    const blocker = await pool.connect();
    let results: Array<Awaited<ReturnType<typeof settled<RecordWriteResult>>>>;
    try {
      // Hold the table so the batch waits inside its transaction, then kill its connection.
      await blocker.query("BEGIN");
      await blocker.query(`LOCK TABLE "${schema}".observations IN EXCLUSIVE MODE`);
      const writes = Promise.all(batch.map((obs) => settled(writer.write(obs, rate(obs)))));
      // The batch of 32 leaves with nothing in flight: two transactions, both waiting. Kill both
      // (killing one leaves the other waiting until its lock timeout: it would fail, but only
      // after seconds, and not because of the kill).
      let pids: number[] = [];
      for (let i = 0; i < 200 && pids.length < 2; i++) {
        // From another session: inside a transaction, pg_stat_activity is read once and cached.
        const { rows } = await pool.query(
          `SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`,
          [`%"${schema}".record_batch(%`],
        );
        pids = (rows as Array<{ pid: number }>).map((r) => r.pid);
        if (pids.length < 2) await new Promise((resolve) => setTimeout(resolve, 25));
      }
      expect(pids).toHaveLength(2);
      const killedAt = Date.now();
      for (const pid of pids) await blocker.query("SELECT pg_terminate_backend($1)", [pid]);
      results = await writes;
      // Answered because of the kill, not a timeout.
      expect(Date.now() - killedAt).toBeLessThan(10_000);
      await blocker.query("COMMIT");
    } finally {
      blocker.release();
    }
    expect(results.every((r) => !r.ok)).toBe(true);
    for (const obs of batch) expect(await stored(obs.eventId)).toMatchObject({ observations: 0, rated: [] });

    const again = await Promise.all(batch.map((obs) => writer.write(obs, rate(obs))));
    expect(again.every((r) => r.observation === "appended")).toBe(true);
    const twice = await Promise.all(batch.map((obs) => writer.write(obs, rate(obs))));
    expect(twice.every((r) => r.observation === "already_exists")).toBe(true);
    for (const obs of batch) {
      const rows = await stored(obs.eventId);
      expect(rows).toMatchObject({ observations: 1, priced: true });
      expect(rows.rated).toHaveLength(1);
    }
  });
});

describe("createLatch on Postgres records through the writer", () => {
  const latchOn = (options: ConstructorParameters<typeof PostgresObservationStore>[1] = {}) =>
    createLatch({
      observations: new PostgresObservationStore(pool, { schema, ...options }),
      rated: new PostgresRatedRecordStore(pool, { schema }),
      pricing: new InMemoryPricingSource([makeSnapshot("gpt-4o")]),
      spoolDir: `/tmp/${schema}-spool`,
      retry: { attempts: 4, baseDelayMs: 5 },
    });

  it("64 concurrent record() calls with duplicates and one conflicting payload: each call answered as if sequential, two transactions", async () => {
    const latch = latchOn({ groupCommit: { maxWaitMs: 50, maxBatch: 64 } });
    await latch.ready();
    const distinct = Array.from({ length: 60 }, () => makeObservation({}));
    const [a, b] = distinct as [UsageObservation, UsageObservation];
    const other = { ...b, meters: { input_tokens: 5 } };
    const inputs = [...distinct, a, a, b, other];
    const results = await Promise.all(inputs.map((obs) => settled(latch.record(obs))));
    const rated = (i: number) => (results[i] as { ok: true; value: RecordResult }).value;
    for (let i = 0; i < 60; i++)
      expect(rated(i)).toMatchObject({ status: "rated", record: { eventId: inputs[i]?.eventId } });
    expect(rated(60)).toEqual(rated(0));
    expect(rated(61)).toEqual(rated(0));
    expect(rated(62)).toEqual(rated(1));
    expect(results[63]).toMatchObject({ ok: false, error: { code: "idempotency_conflict" } });
    const xids = new Set<string>();
    for (const obs of distinct) {
      const rows = await stored(obs.eventId);
      expect(rows).toMatchObject({ observations: 1, priced: true });
      expect(rows.rated).toHaveLength(1);
      xids.add((rows.rated[0] as { xid: string }).xid);
    }
    expect(xids.size).toBe(2);
    await latch.close();
  });

  it("a connection killed mid-batch: record() retries, every call is answered rated, each row stored once", async () => {
    const latch = latchOn({ groupCommit: { maxWaitMs: 20, maxBatch: 64 } });
    await latch.ready();
    const inputs = Array.from({ length: 24 }, () => makeObservation({}));
    const blocker = await pool.connect();
    let results: RecordResult[];
    try {
      await blocker.query("BEGIN");
      await blocker.query(`LOCK TABLE "${schema}".observations IN EXCLUSIVE MODE`);
      const records = Promise.all(inputs.map((obs) => latch.record(obs)));
      let pid: number | undefined;
      for (let i = 0; i < 200 && pid === undefined; i++) {
        // From another session: inside a transaction, pg_stat_activity is read once and cached.
        const { rows } = await pool.query(
          `SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`,
          [`%"${schema}".record_batch(%`],
        );
        pid = (rows[0] as { pid: number } | undefined)?.pid;
        if (pid === undefined) await new Promise((resolve) => setTimeout(resolve, 25));
      }
      expect(pid).toBeDefined();
      await blocker.query("SELECT pg_terminate_backend($1)", [pid]);
      await blocker.query("COMMIT");
      results = await records;
    } finally {
      blocker.release();
    }
    expect(results.map((r) => r.status)).toEqual(inputs.map(() => "rated"));
    for (const obs of inputs) {
      const rows = await stored(obs.eventId);
      expect(rows).toMatchObject({ observations: 1, priced: true });
      expect(rows.rated).toHaveLength(1);
    }
    expect(
      await count(pool, `SELECT 1 FROM "${schema}".observations WHERE event_id = ANY($1)`, [
        inputs.map((o) => o.eventId),
      ]),
    ).toBe(24);
    await latch.close();
  });
});
