/**
 * Two writers on two pools (as two processes would be) record the same events concurrently,
 * each with its own rating of them, while their connections are killed at random: whatever a
 * call was answered, every event ends with one observation, at most one rated record, priced
 * exactly when it has one, and every successful answer names that stored record.
 */
import { DefaultRatingEngine, type RatedUsageRecord, type UsageObservation } from "@latch/core";
import type { RecordWriter } from "@latch/core/adapter";
import { makeObservation, makeSnapshot } from "@latch/testkit";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate, PostgresObservationStore, PostgresRatedRecordStore } from "../src/index.js";
import { DATABASE_URL, freshSchema } from "./support.js";

const schema = freshSchema("rws");
const pools = [0, 1].map(
  (i) => new pg.Pool({ connectionString: DATABASE_URL, max: 3, application_name: `rws-${i}-${process.pid}` }),
);
for (const p of pools) p.on("error", () => undefined);
const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
const engine = new DefaultRatingEngine();
const rate = (obs: UsageObservation, ratedAt: string): RatedUsageRecord =>
  engine.rate(obs, makeSnapshot(obs.model.billableModel, "USD"), { ratedAt });

beforeAll(async () => {
  await migrate(admin, { schema });
});
afterAll(async () => {
  await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await Promise.all([...pools, admin].map((p) => p.end()));
});

function writerOn(pool: pg.Pool): RecordWriter {
  const observations = new PostgresObservationStore(pool, {
    schema,
    groupCommit: { maxWaitMs: 5, maxBatch: 64 },
  });
  const writer = observations.recordWriter(new PostgresRatedRecordStore(pool, { schema }));
  if (writer === undefined) throw new Error("expected a record writer");
  return writer;
}

describe("record writer under two writers and killed connections", () => {
  it("keeps every event whole and every answer true", async () => {
    const writers = pools.map(writerOn);
    const events = Array.from({ length: 40 }, () => makeObservation({}));
    let killing = true;
    const killer = (async () => {
      let kills = 0;
      while (killing) {
        const { rows } = await admin.query(
          `SELECT pg_terminate_backend(pid) AS k FROM pg_stat_activity
           WHERE application_name LIKE $1 AND state = 'active' ORDER BY random() LIMIT 1`,
          [`rws-%-${process.pid}`],
        );
        kills += rows.length;
        await new Promise((r) => setTimeout(r, Math.random() * 15));
      }
      return kills;
    })();
    const answers: Array<{ eventId: string; current: RatedUsageRecord | undefined }> = [];
    let failures = 0;
    for (let round = 0; round < 6; round++) {
      const calls = [];
      for (let i = 0; i < 128; i++) {
        const obs = events[Math.floor(Math.random() * events.length)] as UsageObservation;
        const writer = writers[i % 2] as RecordWriter;
        const record =
          Math.random() < 0.2 ? undefined : rate(obs, `2026-03-01T12:00:${String(i % 60).padStart(2, "0")}Z`);
        calls.push(
          writer.write(obs, record).then(
            (r) => answers.push({ eventId: obs.eventId, current: r.current }),
            () => {
              failures++;
            },
          ),
        );
      }
      await Promise.all(calls);
    }
    killing = false;
    const kills = await killer;
    for (const obs of events) {
      const o = await admin.query(`SELECT priced FROM "${schema}".observations WHERE event_id = $1`, [
        obs.eventId,
      ]);
      const r = await admin.query(`SELECT payload FROM "${schema}".rated_records WHERE event_id = $1`, [
        obs.eventId,
      ]);
      expect(o.rows.length).toBeLessThanOrEqual(1);
      expect(r.rows.length).toBeLessThanOrEqual(1);
      if (o.rows.length === 1) expect(o.rows[0].priced).toBe(r.rows.length === 1);
      else expect(r.rows.length).toBe(0);
      for (const a of answers.filter((x) => x.eventId === obs.eventId)) {
        if (a.current !== undefined) expect(a.current).toEqual(r.rows[0]?.payload);
      }
    }
    expect(kills).toBeGreaterThan(0);
    expect(answers.length + failures).toBe(6 * 128);
  }, 120_000);
});
