import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileExporter, type RatedUsageRecord } from "@latch/core";
import { exportPending } from "@latch/core/export";
import { makeCorrection, makeObservation, makeRatedRecord } from "@latch/testkit";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  applyRetention,
  MIGRATIONS,
  maintainPartitions,
  migrate,
  PostgresObservationStore,
  PostgresRatedRecordStore,
} from "../src/index.js";
import { applyMigrations } from "../src/migrator.js";
import { count, DATABASE_URL, freshSchema } from "./support.js";

/** Every `_manifests/*.json` under `dir`, as change-log ranges. */
async function manifestRanges(dir: string): Promise<Array<{ firstSeq: string; lastSeq: string }>> {
  const out: Array<{ firstSeq: string; lastSeq: string }> = [];
  const entries = await readdir(dir, { recursive: true });
  for (const entry of entries.sort()) {
    if (!/(^|\/)_manifests\/[^/]+\.json$/.test(entry)) continue;
    const m = JSON.parse(await readFile(join(dir, entry), "utf8")) as {
      cursor: { firstSeq: string; lastSeq: string };
    };
    out.push(m.cursor);
  }
  return out;
}

/** Every exported billing row (decompressed JSONL lines) of the `dt=` days in `months`, sorted. */
async function exportedRows(dir: string, months: readonly string[]): Promise<string[]> {
  const { gunzipSync } = await import("node:zlib");
  const rows: string[] = [];
  for (const entry of await readdir(dir, { recursive: true })) {
    const dt = /dt=(\d{4}-\d{2})-\d{2}\/[^/]+\.jsonl\.gz$/.exec(entry);
    if (dt === null || !months.includes(dt[1] as string)) continue;
    const text = gunzipSync(await readFile(join(dir, entry))).toString("utf8");
    rows.push(...text.split("\n").filter((l) => l !== ""));
  }
  return rows.sort();
}

/**
 * Exports until `want` rows went out in total, for up to a minute: another session on the
 * shared server with an open transaction holds the change log back for a while, by design.
 */
async function exportAll(store: PostgresRatedRecordStore, directory: string, consumer: string, want: number) {
  let rows = 0;
  const deadline = Date.now() + 60_000;
  for (;;) {
    rows += (
      await exportPending({ store, exporter: new FileExporter({ directory }), consumer, batchSize: 5 })
    ).rows;
    if (rows >= want || Date.now() > deadline) return rows;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function at(month: string, day: number, n: number): RatedUsageRecord {
  const completedAt = `${month}-${String(day).padStart(2, "0")}T10:00:${String(n % 60).padStart(2, "0")}Z`;
  return makeRatedRecord({
    observation: {
      timing: { startedAt: completedAt, completedAt },
      subject: { tenantId: n % 2 === 0 ? "acme" : "globex" },
    },
    ratedAt: completedAt,
  });
}

describe("monthly partitions and retention (server)", () => {
  const schema = freshSchema("part");
  let pool: pg.Pool;
  let observations: PostgresObservationStore;
  let rated: PostgresRatedRecordStore;
  const dirs: string[] = [];

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
    await migrate(pool, { schema });
    observations = new PostgresObservationStore(pool, { schema });
    rated = new PostgresRatedRecordStore(pool, { schema });
  });
  afterAll(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool.end();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  const partitionOf = async (table: string, where: string, params: unknown[]) => {
    const { rows } = await pool.query(
      `SELECT tableoid::regclass::text AS part FROM "${schema}".${table} WHERE ${where}`,
      params,
    );
    return (rows as Array<{ part: string }>).map((r) =>
      r.part.replace(`"${schema}".`, "").replace(`${schema}.`, ""),
    );
  };

  it("stores each row in its month's partition, and a month without one in DEFAULT until maintenance moves it", async () => {
    // migrate() created this month's partition (and three ahead); 2026-01 and a month ten years
    // ahead have none yet.
    const now = new Date().toISOString().slice(0, 7);
    const farMonth = `${Number(now.slice(0, 4)) + 10}${now.slice(4)}`;
    const current = at(now, 1, 1);
    const far = at(farMonth, 2, 2);
    const past = at("2026-01", 9, 3);
    await observations.appendMany([current.observation, far.observation, past.observation]);
    await rated.putMany([current, far, past]);
    const p = `p${now.replace("-", "_")}`;
    expect(await partitionOf("observations", "event_id = $1", [current.eventId])).toEqual([
      `observations_${p}`,
    ]);
    expect(await partitionOf("rated_records", "event_id = $1", [current.eventId])).toEqual([
      `rated_records_${p}`,
    ]);
    expect(await partitionOf("rated_records", "event_id = $1", [far.eventId])).toEqual([
      "rated_records_default",
    ]);
    expect(await partitionOf("observations", "event_id = $1", [past.eventId])).toEqual([
      "observations_default",
    ]);
    const seqBefore = (await rated.listSince(undefined, 1000)).items.map((e) => e.seq);
    // Two pools create the same month at once: both succeed, one creates it.
    const other = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
    try {
      const created = await Promise.all([
        maintainPartitions(pool, { schema, monthsAhead: 0 }),
        maintainPartitions(other, { schema, monthsAhead: 0 }),
      ]);
      // A month past the look-ahead stays in DEFAULT: events dated far ahead create no partitions.
      expect(created.flat().sort()).toEqual(["2026-01"]);
    } finally {
      await other.end();
    }
    expect(await partitionOf("observations", "event_id = $1", [far.eventId])).toEqual([
      "observations_default",
    ]);
    expect(await partitionOf("rated_records", "event_id = $1", [far.eventId])).toEqual([
      "rated_records_default",
    ]);
    // Moved rows keep their change-log positions; the copy is whole.
    expect((await rated.listSince(undefined, 1000)).items.map((e) => e.seq)).toEqual(seqBefore);
    expect(await partitionOf("rated_records", "event_id = $1", [past.eventId])).toEqual([
      "rated_records_p2026_01",
    ]);
    expect(await observations.get(far.eventId)).toEqual(far.observation);
    expect(await count(pool, `SELECT 1 FROM "${schema}".rated_records_default`, [])).toBe(1);
  });

  it("keeps one row per id across partitions: the same id in another month is a conflict", async () => {
    const obs = makeObservation({
      timing: { startedAt: "2026-04-01T00:00:00Z", completedAt: "2026-04-01T00:00:01Z" },
    });
    expect(await observations.append(obs)).toBe("appended");
    const moved = {
      ...obs,
      timing: { startedAt: "2026-05-20T00:00:00Z", completedAt: "2026-05-20T00:00:01Z" },
    };
    await expect(observations.append(moved)).rejects.toMatchObject({ code: "idempotency_conflict" });
    expect(await observations.append(obs)).toBe("already_exists");
    expect(
      await count(pool, `SELECT 1 FROM "${schema}".observations WHERE event_id = $1`, [obs.eventId]),
    ).toBe(1);

    const v1 = at("2026-04", 3, 7);
    const other = makeRatedRecord({
      observation: {
        ...v1.observation,
        timing: { startedAt: "2026-06-01T00:00:00Z", completedAt: "2026-06-01T00:00:00Z" },
      },
    });
    expect(await rated.put(v1)).toBe("stored");
    await expect(rated.put(other)).rejects.toMatchObject({ code: "idempotency_conflict" });
    expect(
      await count(pool, `SELECT 1 FROM "${schema}".rated_records WHERE event_id = $1`, [v1.eventId]),
    ).toBe(1);
    // A correction still supersedes across the trigger: exactly one current version.
    const v2 = makeCorrection(v1, { input_tokens: 10, output_tokens: 5 });
    expect(await rated.put(v2)).toBe("stored");
    const { rows } = await pool.query(
      `SELECT version, is_current FROM "${schema}".rated_records WHERE event_id = $1 ORDER BY version`,
      [v1.eventId],
    );
    expect(rows).toEqual([
      { version: 1, is_current: false },
      { version: 2, is_current: true },
    ]);
  });

  it("retention refuses uncovered months, then drops them leaving export and reports of retained months unchanged", async () => {
    // Two old months and two retained ones, with corrections.
    const old: RatedUsageRecord[] = [];
    const kept: RatedUsageRecord[] = [];
    for (let n = 0; n < 6; n++) old.push(at(n % 2 === 0 ? "2025-01" : "2025-02", 3 + n, n));
    for (let n = 0; n < 6; n++) kept.push(at(n % 2 === 0 ? "2025-03" : "2025-04", 3 + n, n));
    const all = [...old, ...kept];
    const writer = observations.recordWriter(rated);
    if (writer === undefined) throw new Error("expected a record writer");
    for (const r of all) await writer.write(r.observation, r);
    const corrections = [old[0], kept[0]].map((r) =>
      makeCorrection(r as RatedUsageRecord, { input_tokens: 7, output_tokens: 3 }),
    );
    await rated.putMany(corrections);

    const retained = ["2025-03", "2025-04"];
    const window = { start: "2025-03-01T00:00:00Z", end: "2025-05-01T00:00:00Z" };
    const reports = async () => ({
      summary: await rated.summary({ ...window, groupBy: ["tenantId", "day"] }),
      lines: await rated.lines({ ...window, limit: 1000 }),
    });
    const before = await reports();

    // Nothing exported yet: refused, nothing changes.
    const none = await applyRetention(pool, {
      schema,
      before: "2025-03",
      consumer: "billing",
      manifests: [],
      dryRun: false,
    });
    expect(none.applied).toBe(false);
    expect(none.months.map((m) => m.month)).toEqual(["2025-01", "2025-02"]);
    expect(none.months.every((m) => m.refusals.some((r) => r.includes("cursor")))).toBe(true);

    const first = await mkdtemp(join(tmpdir(), "latch-part-"));
    dirs.push(first);
    // Everything this file wrote: every version goes out.
    const total = await count(pool, `SELECT 1 FROM "${schema}".rated_records`, []);
    expect(await exportAll(rated, first, "billing", total)).toBe(total);
    const ranges = await manifestRanges(first);
    expect(ranges.length).toBeGreaterThan(1);
    // Dry run: covered, reported, nothing removed.
    const dry = await applyRetention(pool, {
      schema,
      before: "2025-03",
      consumer: "billing",
      manifests: ranges,
    });
    expect(dry.applied).toBe(false);
    expect(dry.months).toEqual([
      expect.objectContaining({ month: "2025-01", observations: 3, ratedRecords: 4, refusals: [] }),
      expect.objectContaining({ month: "2025-02", observations: 3, ratedRecords: 3, refusals: [] }),
    ]);
    expect(
      await count(pool, `SELECT 1 FROM "${schema}".rated_records WHERE completed_ms < $1`, [
        Date.parse("2025-03-01T00:00:00Z"),
      ]),
    ).toBe(7);

    // The cursor passed, but the manifest holding January's last entry is missing: refused.
    const lastOfJanuary = BigInt(dry.months[0]?.lastSeq ?? "0");
    const holding = (r: { firstSeq: string; lastSeq: string }) =>
      BigInt(r.firstSeq) <= lastOfJanuary && lastOfJanuary <= BigInt(r.lastSeq);
    expect(ranges.filter(holding)).toHaveLength(1);
    const partial = await applyRetention(pool, {
      schema,
      before: "2025-03",
      consumer: "billing",
      manifests: ranges.filter((r) => !holding(r)),
      dryRun: false,
    });
    expect(partial.applied).toBe(false);
    expect(partial.months[0]?.refusals).toEqual([expect.stringContaining("in no export manifest")]);
    expect(partial.months[1]?.refusals).toEqual([]);

    const applied = await applyRetention(pool, {
      schema,
      before: "2025-03",
      consumer: "billing",
      manifests: ranges,
      dryRun: false,
    });
    expect(applied.applied).toBe(true);
    expect(applied.keysDeleted).toBe(6 + 7);
    expect(
      await count(pool, `SELECT 1 FROM "${schema}".rated_records WHERE completed_ms < $1`, [
        Date.parse("2025-03-01T00:00:00Z"),
      ]),
    ).toBe(0);
    expect(
      await count(
        pool,
        `SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname LIKE '%p2025_01'`,
        [schema],
      ),
    ).toBe(0);

    // Reports of the retained months: value for value the same.
    expect(await reports()).toEqual(before);
    // A fresh export of what is left holds exactly the retained months' rows of the first export.
    const second = await mkdtemp(join(tmpdir(), "latch-part-"));
    dirs.push(second);
    const left = await count(pool, `SELECT 1 FROM "${schema}".rated_records`, []);
    expect(await exportAll(rated, second, "fresh", left)).toBe(left);
    const keptRows = await exportedRows(first, retained);
    expect(keptRows.length).toBe(7);
    expect(await exportedRows(second, retained)).toEqual(keptRows);
    expect(await exportedRows(second, ["2025-01", "2025-02"])).toEqual([]);
    // The first consumer goes on from its cursor.
    expect(
      (
        await exportPending({
          store: rated,
          exporter: new FileExporter({ directory: first }),
          consumer: "billing",
        })
      ).rows,
    ).toBe(0);

    // A write older than the horizon is refused, naming the field, by every write path.
    const late = at("2025-02", 20, 99);
    await expect(observations.append(late.observation)).rejects.toMatchObject({
      code: "invalid_input",
      issues: [expect.objectContaining({ path: "timing.completedAt" })],
    });
    await expect(rated.put(late)).rejects.toMatchObject({ code: "invalid_input" });
    await expect(writer.write(late.observation, late)).rejects.toMatchObject({ code: "invalid_input" });
    // A dropped event re-sent is refused too (its key went with its month).
    await expect(observations.append((old[1] as RatedUsageRecord).observation)).rejects.toMatchObject({
      code: "invalid_input",
    });
    // Maintenance never re-creates a month before the horizon.
    await maintainPartitions(pool, { schema });
    expect(
      await count(
        pool,
        `SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname LIKE '%p2025_02'`,
        [schema],
      ),
    ).toBe(0);
    // Retained months still take writes; the horizon is recorded.
    const fresh = at("2025-04", 28, 5);
    expect((await writer.write(fresh.observation, fresh)).observation).toBe("appended");
    const { rows } = await pool.query(
      `SELECT month, action, rated_records::int AS n FROM "${schema}".retained_months ORDER BY month`,
    );
    expect(rows).toEqual([
      { month: "2025-01", action: "dropped", n: 4 },
      { month: "2025-02", action: "dropped", n: 3 },
    ]);
  });
});

describe("migration 0017 on a schema with data (server)", () => {
  const schema = freshSchema("part17");
  let pool: pg.Pool;

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
  });
  afterAll(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool.end();
  });

  it("moves every row into its month, keeping change-log positions, current flags, reports and ids", async () => {
    expect(MIGRATIONS[16]).toMatchObject({ version: 17, compatibleFrom: 17 });
    await applyMigrations(pool, { schema }, MIGRATIONS.slice(0, 16));
    const observations = new PostgresObservationStore(pool, { schema });
    const rated = new PostgresRatedRecordStore(pool, { schema });
    // The stores need 17 now: write through the 0016 functions directly.
    const records = [at("2025-11", 3, 1), at("2025-12", 4, 2), at("2026-02", 5, 3)];
    const corrected = makeCorrection(records[0] as RatedUsageRecord, { input_tokens: 5, output_tokens: 1 });
    const { toRow } = await import("../src/rated-record-store.js");
    for (const r of records) {
      await pool.query(`SELECT "${schema}".append_observations($1::jsonb)`, [
        JSON.stringify([{ event_id: r.eventId, hash: "h", payload: r.observation }]),
      ]);
    }
    await pool.query(`SELECT "${schema}".put_rated_records($1::jsonb)`, [
      JSON.stringify([...records, corrected].map(toRow)),
    ]);
    const snapshot = async () =>
      (
        await pool.query(
          `SELECT id::text, xid::text, rated_record_id, is_current, total::text FROM "${schema}".rated_records ORDER BY xid, id`,
        )
      ).rows;
    const before = await snapshot();

    const result = await migrate(pool, { schema });
    expect(result.applied).toEqual(MIGRATIONS.filter((m) => m.version >= 17).map((m) => m.version));
    expect(await snapshot()).toEqual(before);
    const { rows: parts } = await pool.query(
      `SELECT DISTINCT tableoid::regclass::text AS p FROM "${schema}".rated_records ORDER BY 1`,
    );
    expect((parts as Array<{ p: string }>).map((r) => r.p.split(".").pop())).toEqual([
      "rated_records_p2025_11",
      "rated_records_p2025_12",
      "rated_records_p2026_02",
    ]);
    expect(await count(pool, `SELECT 1 FROM "${schema}".observation_keys`, [])).toBe(3);
    expect(await count(pool, `SELECT 1 FROM "${schema}".rated_record_keys`, [])).toBe(4);
    // Stored ids stay stored; a new id after the copy does not reuse a position.
    expect(await rated.put(records[1] as RatedUsageRecord)).toBe("already_exists");
    expect(await observations.get((records[2] as RatedUsageRecord).eventId)).toEqual(
      (records[2] as RatedUsageRecord).observation,
    );
    const next = at("2025-12", 9, 4);
    expect(await rated.put(next)).toBe("stored");
    const { rows } = await pool.query(
      `SELECT max(id)::text AS m FROM "${schema}".rated_records WHERE rated_record_id <> $1`,
      [next.ratedRecordId],
    );
    const { rows: mine } = await pool.query(
      `SELECT id::text AS id FROM "${schema}".rated_records WHERE rated_record_id = $1`,
      [next.ratedRecordId],
    );
    expect(BigInt((mine[0] as { id: string }).id)).toBeGreaterThan(BigInt((rows[0] as { m: string }).m));
    const summary = await rated.summary({
      start: "2025-11-01T00:00:00Z",
      end: "2025-12-01T00:00:00Z",
      groupBy: [],
    });
    expect(summary[0]?.requests).toBe(1);
  });
});
