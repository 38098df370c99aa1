import type { RatedUsageRecord } from "@latch/core";
import { makeCorrection, makeRatedRecord } from "@latch/testkit";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MIGRATIONS, migrate, PostgresRatedRecordStore } from "../src/index.js";
import { applyMigrations } from "../src/migrator.js";
import { DATABASE_URL, freshSchema } from "./support.js";

/**
 * Migration 0014 (the current-version flag): rows stored before it are backfilled, the trigger
 * keeps the flag for every writer afterwards (the store's function of any release, or a plain
 * INSERT), and reports over a migrated schema equal those of a schema created at 0014.
 */

const COLUMNS =
  "rated_record_id, event_id, version, hash, payload, currency, total, completed_ms, completed_text, " +
  "completed_at, completed_day, provider, model, tenant_id, org_id, project_id, api_key_id, end_user_id, " +
  "feature, success, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, total_tokens";

const at = (day: number) => `2026-03-${String(day).padStart(2, "0")}T10:00:00.000Z`;

/** v1 of six events; v2 of three; v3 of one; in two currencies. */
function versions(label: string): { before: RatedUsageRecord[]; after: RatedUsageRecord[] } {
  const v1 = Array.from({ length: 6 }, (_, i) =>
    makeRatedRecord({
      currency: i % 2 === 0 ? "USD" : "EUR",
      observation: {
        eventId: `${label}-${i}`,
        subject: { tenantId: `t-${i % 3}` },
        timing: { startedAt: at(i + 1), completedAt: at(i + 1) },
      },
    }),
  );
  const m = (n: number) => ({ input_tokens: n, output_tokens: n * 2 });
  const v2 = [0, 1, 2].map((i) => makeCorrection(v1[i] as RatedUsageRecord, m(100 + i)));
  const v3 = makeCorrection(v2[0] as RatedUsageRecord, m(500));
  // Stored before the migration: everything but a late correction of event 3 and v3 of event 0.
  const late = makeCorrection(v1[3] as RatedUsageRecord, m(700));
  return { before: [...v1, ...v2], after: [v3, late] };
}

describe("migration 0014: current-version flag", () => {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
  const old = freshSchema("cur_old");
  const reference = freshSchema("cur_ref");
  const { before, after } = versions("cur");

  /** Copies the rows of `ids` from the reference schema with a plain INSERT (any writer). */
  const copyRows = (ids: string[]) =>
    pool.query(
      `INSERT INTO "${old}".rated_records (${COLUMNS})
       SELECT ${COLUMNS} FROM "${reference}".rated_records WHERE rated_record_id = ANY ($1::text[]) ORDER BY id`,
      [ids],
    );
  const flags = async (schema: string) => {
    const { rows } = await pool.query(
      `SELECT rated_record_id AS id, is_current FROM "${schema}".rated_records ORDER BY rated_record_id`,
    );
    return rows as Array<{ id: string; is_current: boolean }>;
  };

  beforeAll(async () => {
    await migrate(pool, { schema: reference });
    const store = new PostgresRatedRecordStore(pool, { schema: reference });
    await store.putMany(before);
    await store.putMany(after);
    // A schema at 0013 holding the versions stored before the upgrade.
    await applyMigrations(pool, { schema: old }, MIGRATIONS.slice(0, 13));
    await copyRows(before.map((r) => r.ratedRecordId));
  }, 60_000);

  afterAll(async () => {
    for (const schema of [old, reference]) await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool.end();
  });

  it("declares compatible-from 13: pods of the previous release keep working", () => {
    expect(MIGRATIONS[13]).toMatchObject({ version: 14, compatibleFrom: 13 });
  });

  it("backfills rows stored before it, keeps the flag on later writes, and reports equal a fresh schema's", async () => {
    expect((await migrate(pool, { schema: old })).applied[0]).toBe(14);
    const backfilled = await flags(old);
    const superseded = new Set(["cur-0:v1", "cur-1:v1", "cur-2:v1"]);
    expect(backfilled).toEqual(
      before
        .map((r) => ({ id: r.ratedRecordId, is_current: !superseded.has(r.ratedRecordId) }))
        .sort((a, b) => (a.id < b.id ? -1 : 1)),
    );

    // Later versions through a plain INSERT (not the store's function): the trigger clears
    // what they supersede in the same statement.
    await copyRows(after.map((r) => r.ratedRecordId));
    expect(await flags(old)).toEqual(await flags(reference));
    expect((await flags(old)).filter((f) => f.is_current).map((f) => f.id)).toEqual([
      "cur-0:v3",
      "cur-1:v2",
      "cur-2:v2",
      "cur-3:v2",
      "cur-4:v1",
      "cur-5:v1",
    ]);

    const migrated = new PostgresRatedRecordStore(pool, { schema: old });
    const fresh = new PostgresRatedRecordStore(pool, { schema: reference });
    const month = { start: "2026-03-01T00:00:00Z", end: "2026-04-01T00:00:00Z" };
    for (const groupBy of [[], ["tenantId"], ["day", "model"]] as const) {
      const query = { ...month, groupBy: [...groupBy] };
      expect(await migrated.summary(query)).toEqual(await fresh.summary(query));
    }
    const [all] = await migrated.summary({ ...month, groupBy: [] });
    expect(all?.requests).toBe(6);
    expect(Object.keys(all?.costByCurrency ?? {})).toEqual(["EUR", "USD"]);
    const page = await migrated.lines({ ...month, limit: 10 });
    expect(page.items.map((r) => r.ratedRecordId)).toEqual([
      "cur-0:v3",
      "cur-1:v2",
      "cur-2:v2",
      "cur-3:v2",
      "cur-4:v1",
      "cur-5:v1",
    ]);
  });

  it("a batch holding v1, v2 and v3 of one event leaves only v3 current", async () => {
    const store = new PostgresRatedRecordStore(pool, { schema: reference });
    const v1 = makeRatedRecord({
      observation: { eventId: "cur-batch", timing: { startedAt: at(20), completedAt: at(20) } },
    });
    const v2 = makeCorrection(v1, { input_tokens: 10 });
    const v3 = makeCorrection(v2, { input_tokens: 20 });
    expect(await store.putMany([v1, v2, v3, v2])).toEqual(["stored", "stored", "stored", "already_exists"]);
    // A retry of the whole batch inserts nothing, so it clears nothing.
    expect(await store.putMany([v1, v2, v3])).toEqual(["already_exists", "already_exists", "already_exists"]);
    const { rows } = await pool.query(
      `SELECT rated_record_id AS id, is_current FROM "${reference}".rated_records WHERE event_id = 'cur-batch' ORDER BY version`,
    );
    expect(rows).toEqual([
      { id: "cur-batch:v1", is_current: false },
      { id: "cur-batch:v2", is_current: false },
      { id: "cur-batch:v3", is_current: true },
    ]);
    const lines = await store.lines({ start: at(20), end: at(21), limit: 5 });
    expect(lines.items.map((r) => r.ratedRecordId)).toEqual(["cur-batch:v3"]);
  });
});
