import type { RatedUsageRecord } from "@latch/core";
import { makeCorrection, makeRatedRecord } from "@latch/testkit";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate, PostgresRatedRecordStore } from "../src/index.js";
import { DATABASE_URL, freshSchema } from "./support.js";

/**
 * The current-version flag's trigger (migration 0014) is an ordinary trigger: a session with
 * `session_replication_role = replica` (a logical-replication apply worker's, or a bulk loader's)
 * does not fire it, so a correction written there leaves two versions current. The README's
 * remedy, `ENABLE ALWAYS TRIGGER`, makes it fire there too. Neither Latch call sets the role.
 */

const at = "2026-03-04T10:00:00.000Z";
const month = { start: "2026-03-01T00:00:00Z", end: "2026-04-01T00:00:00Z" };

describe("current-version flag: session_replication_role = replica", () => {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
  const schema = freshSchema("cur_replica");

  beforeAll(async () => {
    await migrate(pool, { schema });
  }, 60_000);

  afterAll(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool.end();
  });

  /** Puts v1 normally, then v2 on a session in replica mode; returns the current versions. */
  const correctInReplicaMode = async (eventId: string) => {
    const v1 = makeRatedRecord({ observation: { eventId, timing: { startedAt: at, completedAt: at } } });
    const v2 = makeCorrection(v1 as RatedUsageRecord, { input_tokens: 7 });
    await new PostgresRatedRecordStore(pool, { schema }).put(v1);
    const client = await pool.connect();
    try {
      await client.query("SET session_replication_role = replica");
      await new PostgresRatedRecordStore(client, { schema }).put(v2);
    } finally {
      await client.query("RESET session_replication_role");
      client.release();
    }
    const { rows } = await pool.query(
      `SELECT rated_record_id AS id FROM "${schema}".rated_records WHERE event_id = $1 AND is_current ORDER BY version`,
      [eventId],
    );
    return (rows as Array<{ id: string }>).map((r) => r.id);
  };

  it("replica mode skips the trigger (both versions current); ENABLE ALWAYS TRIGGER keeps it", async () => {
    expect(await correctInReplicaMode("replica-off")).toEqual(["replica-off:v1", "replica-off:v2"]);
    const [before] = await new PostgresRatedRecordStore(pool, { schema }).summary({ ...month, groupBy: [] });
    expect(before?.requests).toBe(2); // one event counted twice

    await pool.query(`ALTER TABLE "${schema}".rated_records ENABLE ALWAYS TRIGGER rated_records_current`);
    expect(await correctInReplicaMode("replica-always")).toEqual(["replica-always:v2"]);
  });
});
