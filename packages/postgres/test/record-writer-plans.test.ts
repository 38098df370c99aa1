/**
 * The idempotency checks and lookups of the write paths probe the id indexes even on a table
 * the planner has no statistics for (a fresh month partition, a bulk load autovacuum has not
 * analysed yet). Before migration 0018 and the record writer's per-row subplan, each write that
 * met a stored id joined its batch to the whole table with a sequential scan of every partition
 * (10-20 ms per call at 20,000 rows, and 88 ms for the priced mark).
 *
 * Measured without timing: the server's own count of rows read by sequential scans
 * (`pg_stat_user_tables.seq_tup_read`) over the writes, which must stay far below one scan of
 * the filler rows. Autovacuum is off on the filled partitions, so they stay unanalysed.
 */
import { DefaultRatingEngine, type UsageObservation } from "@latch/core";
import { makeObservation, makeSnapshot, uniqueId } from "@latch/testkit";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate, PostgresObservationStore, PostgresRatedRecordStore } from "../src/index.js";
import { DATABASE_URL, freshSchema } from "./support.js";

const FILLER = 5_000;
const schema = freshSchema("rwplans");
const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
// One connection: its statistics are flushed on demand before each reading.
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
const engine = new DefaultRatingEngine();

beforeAll(async () => {
  await migrate(admin, { schema });
  const q = `"${schema}"`;
  // The filler's month (2026-03) has no partition of its own: it lands in DEFAULT.
  await admin.query(`ALTER TABLE ${q}.observations_default SET (autovacuum_enabled = false)`);
  await admin.query(`ALTER TABLE ${q}.rated_records_default SET (autovacuum_enabled = false)`);
  await admin.query(
    `INSERT INTO ${q}.observations (event_id, hash, payload)
     SELECT 'filler-' || g, 'sha256:x', jsonb_build_object('timing', jsonb_build_object('completedAt', '2026-03-01T12:00:00.000Z'))
     FROM generate_series(1, $1) g`,
    [FILLER],
  );
  await admin.query(
    `INSERT INTO ${q}.rated_records (rated_record_id, event_id, version, hash, payload, currency, total,
       completed_ms, completed_text, completed_at, completed_day, provider, model, tenant_id, org_id,
       project_id, api_key_id, end_user_id, feature, success, input_tokens, output_tokens,
       cache_read_tokens, cache_write_tokens, total_tokens)
     SELECT 'rr-filler-' || g, 'filler-' || g, 1, 'sha256:x', '{}'::jsonb, 'USD', 0,
       1772366400000, '2026-03-01T12:00:00.000Z', '2026-03-01T12:00:00Z', '2026-03-01', 'p', 'm', 't',
       '', '', '', '', '', true, 0, 0, 0, 0, 0
     FROM generate_series(1, $1) g`,
    [FILLER],
  );
}, 120_000);

afterAll(async () => {
  await pool.end();
  await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.end();
});

/** Rows read by sequential scans of the two tables' partitions so far, the pool's included. */
async function seqRowsRead(): Promise<number> {
  await pool.query("SELECT pg_stat_force_next_flush()");
  await pool.query("SELECT 1"); // the flush happens when the session next goes idle
  const { rows } = await admin.query(
    `SELECT coalesce(sum(seq_tup_read), 0)::int AS n FROM pg_stat_user_tables
     WHERE schemaname = $1 AND (relname LIKE 'observations%' OR relname LIKE 'rated_records%')`,
    [schema],
  );
  return (rows[0] as { n: number }).n;
}

function observation(): UsageObservation {
  return makeObservation({
    eventId: uniqueId("plan"),
    timing: { startedAt: "2026-03-01T12:00:00Z", completedAt: "2026-03-01T12:00:01Z" },
  });
}

describe("write paths on unanalysed partitions (server)", () => {
  it("probe the id indexes: no write scans the filler rows", { timeout: 120_000 }, async () => {
    const observations = new PostgresObservationStore(pool, { schema });
    const rated = new PostgresRatedRecordStore(pool, { schema });
    const writer = observations.recordWriter(rated);
    if (writer === undefined) throw new Error("expected a record writer");
    const calls = Array.from({ length: 20 }, () => {
      const obs = observation();
      return {
        obs,
        record: engine.rate(obs, makeSnapshot(obs.model.billableModel), { ratedAt: "2026-03-01T12:00:05Z" }),
      };
    });
    const before = await seqRowsRead();
    // The record writer (group commit), then the same calls again: the stored-id checks run.
    for (const { obs, record } of calls) await writer.write(obs, record);
    await Promise.all(calls.map(({ obs, record }) => writer.write(obs, record)));
    // The step-by-step store calls, each meeting stored ids.
    for (const { obs, record } of calls.slice(0, 5)) {
      expect(await observations.append(obs)).toBe("already_exists");
      await rated.put(record);
    }
    await observations.appendMany(calls.map((c) => c.obs));
    await observations.markPriced(calls.map((c) => c.obs.eventId));
    const read = (await seqRowsRead()) - before;
    // One sequential scan of either table would read at least FILLER rows.
    expect(read).toBeLessThan(FILLER);
    const stored = await admin.query(
      `SELECT count(*)::int AS n FROM "${schema}".observations WHERE event_id LIKE 'plan%' AND priced`,
    );
    expect((stored.rows[0] as { n: number }).n).toBe(calls.length);
  });
});
