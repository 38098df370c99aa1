import type { RatedUsageRecord } from "@latch/core";
import { makeCorrection, makeRatedRecord } from "@latch/testkit";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MIGRATIONS, migrate, PostgresRatedRecordStore } from "../src/index.js";
import { applyMigrations } from "../src/migrator.js";
import { DATABASE_URL, freshSchema } from "./support.js";

/**
 * The current-version flag (migration 0014) under concurrent writers of one event. Version n+1
 * may be put by another connection while the statement or transaction inserting version n has
 * not committed yet (a worker pool rating upstream corrections, a caller's own transaction):
 * the chain makes the later version wait or fail until its predecessor commits, and the flag
 * must end on the newest version alone, as the anti-join of 0013 did.
 */

const at = (day: number) => `2026-03-${String(day).padStart(2, "0")}T10:00:00.000Z`;
const month = { start: "2026-03-01T00:00:00Z", end: "2026-04-01T00:00:00Z" };

/** Resolves once `pid` waits on a lock (its statement is blocked inside the server). */
async function waitingOnLock(pool: pg.Pool, pid: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const { rows } = await pool.query("SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", [pid]);
    if ((rows[0] as { wait_event_type: string | null } | undefined)?.wait_event_type === "Lock") return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`backend ${pid} never waited on a lock`);
}

const pidOf = async (client: pg.PoolClient) =>
  Number(((await client.query("SELECT pg_backend_pid() AS pid")).rows[0] as { pid: number }).pid);

describe("current-version flag: concurrent versions of one event", () => {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 6 });
  const schema = freshSchema("cur_race");
  const store = () => new PostgresRatedRecordStore(pool, { schema });

  beforeAll(async () => {
    await migrate(pool, { schema });
  }, 60_000);

  afterAll(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool.end();
  });

  const chain = (eventId: string, length: number): RatedUsageRecord[] => {
    const v1 = makeRatedRecord({
      observation: { eventId, timing: { startedAt: at(3), completedAt: at(3) } },
    });
    const out = [v1];
    for (let n = 2; n <= length; n++) {
      out.push(makeCorrection(out[n - 2] as RatedUsageRecord, { input_tokens: 100 * n }));
    }
    return out;
  };

  const current = async (eventId: string) => {
    const { rows } = await pool.query(
      `SELECT rated_record_id AS id FROM "${schema}".rated_records WHERE event_id = $1 AND is_current ORDER BY version`,
      [eventId],
    );
    return (rows as Array<{ id: string }>).map((r) => r.id);
  };

  const cases = [
    ...(["read committed", "repeatable read", "serializable"] as const).map((isolation) => ({
      isolation,
      own: false,
    })),
    ...(["repeatable read", "serializable"] as const).map((isolation) => ({ isolation, own: true })),
  ];
  for (const { isolation, own } of cases) {
    const where = own ? `inside its caller's ${isolation} transaction` : `server default ${isolation}`;
    it(`v3 put (${where}) while v2's transaction is open leaves v3 alone current`, async () => {
      const eventId = `race-${own ? "own" : "default"}-${isolation.replace(" ", "-")}`;
      const [v1, v2, v3] = chain(eventId, 3) as [RatedUsageRecord, RatedUsageRecord, RatedUsageRecord];
      await store().put(v1);
      const a = await pool.connect();
      const b = await pool.connect();
      try {
        await b.query(`SET default_transaction_isolation = '${isolation}'`);
        // A: v2 inside the caller's transaction (the store joins it), not committed yet.
        await a.query("BEGIN");
        expect(await new PostgresRatedRecordStore(a, { schema }).put(v2)).toBe("stored");
        // B: v3 through the store on another connection; it waits on A's row lock.
        const bPid = await pidOf(b);
        if (own) await b.query("BEGIN");
        const putV3 = new PostgresRatedRecordStore(b, { schema })
          .put(v3)
          .then(async (r) => {
            if (own) await b.query("COMMIT");
            return { ok: r };
          })
          .catch(async (e: unknown) => {
            if (own) await b.query("ROLLBACK");
            return { error: e };
          });
        await waitingOnLock(pool, bPid);
        await a.query("COMMIT");
        const outcome = await putV3;
        // Refused (not stored yet, or a serialization failure): its retry stores it.
        if ("error" in outcome) expect(await store().put(v3)).toBe("stored");
        expect(await current(eventId)).toEqual([`${eventId}:v3`]);
        const [row] = await store().summary({ ...month, groupBy: [] });
        expect(row?.requests).toBe(await countEvents());
      } finally {
        await b.query("RESET default_transaction_isolation");
        a.release();
        b.release();
      }
    }, 30_000);
  }

  it("v2 and v3 of 150 events put at once through a pool (v3 retried until v2 is stored): one current version each", async () => {
    const rated = store();
    const chains = Array.from({ length: 150 }, (_, i) => chain(`burst-${i}`, 3));
    await rated.putMany(chains.map((c) => c[0] as RatedUsageRecord));
    /** Puts `record`, again after a refusal (v3 before v2 is stored: superseded_version_missing). */
    const putUntilStored = async (record: RatedUsageRecord) => {
      for (let attempt = 0; attempt < 1000; attempt++) {
        try {
          return await rated.put(record);
        } catch {
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
      throw new Error(`${record.ratedRecordId} never stored`);
    };
    for (const [, v2, v3] of chains) {
      await Promise.all([putUntilStored(v2 as RatedUsageRecord), putUntilStored(v3 as RatedUsageRecord)]);
    }
    const { rows } = await pool.query(
      `SELECT event_id, count(*) FILTER (WHERE is_current)::int AS current, max(version) AS newest,
         max(version) FILTER (WHERE is_current) AS flagged
       FROM "${schema}".rated_records WHERE event_id LIKE 'burst-%' GROUP BY event_id`,
    );
    const wrong = (rows as Array<{ current: number; newest: number; flagged: number }>).filter(
      (r) => r.current !== 1 || r.flagged !== r.newest,
    );
    expect(wrong).toEqual([]);
    expect(rows).toHaveLength(150);
    const [row] = await rated.summary({ ...month, groupBy: [] });
    expect(row?.requests).toBe(await countEvents());
  }, 60_000);

  const countEvents = async () =>
    Number(
      (
        (await pool.query(`SELECT count(DISTINCT event_id)::int AS n FROM "${schema}".rated_records`))
          .rows[0] as {
          n: number;
        }
      ).n,
    );
});

describe("migration 0014 while writers of the previous release are running", () => {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 6 });
  const old = freshSchema("cur_roll_old");
  const reference = freshSchema("cur_roll_ref");
  const COLUMNS =
    "rated_record_id, event_id, version, hash, payload, currency, total, completed_ms, completed_text, " +
    "completed_at, completed_day, provider, model, tenant_id, org_id, project_id, api_key_id, end_user_id, " +
    "feature, success, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, total_tokens";
  /** A plain INSERT of stored rows (what a 0013 writer's function inserts). */
  const copy = (db: pg.Pool | pg.PoolClient, ids: string[]) =>
    db.query(
      `INSERT INTO "${old}".rated_records (${COLUMNS})
       SELECT ${COLUMNS} FROM "${reference}".rated_records WHERE rated_record_id = ANY ($1::text[]) ORDER BY id`,
      [ids],
    );

  afterAll(async () => {
    for (const schema of [old, reference]) await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool.end();
  });

  it("waits for an open v2 transaction, flags it in the backfill, and a v3 queued behind it through the trigger", async () => {
    const v1 = makeRatedRecord({
      observation: { eventId: "roll", timing: { startedAt: at(5), completedAt: at(5) } },
    });
    const v2 = makeCorrection(v1, { input_tokens: 2 });
    const v3 = makeCorrection(v2, { input_tokens: 3 });
    await migrate(pool, { schema: reference });
    await new PostgresRatedRecordStore(pool, { schema: reference }).putMany([v1, v2, v3]);
    await applyMigrations(pool, { schema: old }, MIGRATIONS.slice(0, 13));
    await copy(pool, [v1.ratedRecordId]);

    const a = await pool.connect();
    const m = await pool.connect();
    const b = await pool.connect();
    try {
      const [mPid, bPid] = [await pidOf(m), await pidOf(b)];
      await a.query("BEGIN");
      await copy(a, [v2.ratedRecordId]); // a 0013 writer, not committed yet
      const migrating = migrate(m, { schema: old });
      await waitingOnLock(pool, mPid);
      const writingV3 = copy(b, [v3.ratedRecordId]); // queued behind the migration's lock
      await waitingOnLock(pool, bPid);
      await a.query("COMMIT");
      expect((await migrating).applied[0]).toBe(14);
      await writingV3;
    } finally {
      a.release();
      m.release();
      b.release();
    }
    const { rows } = await pool.query(
      `SELECT rated_record_id AS id, is_current FROM "${old}".rated_records ORDER BY version`,
    );
    expect(rows).toEqual([
      { id: "roll:v1", is_current: false },
      { id: "roll:v2", is_current: false },
      { id: "roll:v3", is_current: true },
    ]);
  }, 60_000);
});
