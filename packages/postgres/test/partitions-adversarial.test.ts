import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileExporter, type RatedUsageRecord } from "@latch/core";
import { exportPending } from "@latch/core/export";
import { makeCorrection, makeRatedRecord } from "@latch/testkit";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  applyRetention,
  maintainPartitions,
  migrate,
  PostgresObservationStore,
  PostgresRatedRecordStore,
  type Queryable,
} from "../src/index.js";
import { count, DATABASE_URL, freshSchema } from "./support.js";

/** A rated record (and its observation) completed at `completedAt`. */
function completedAt(completedAt: string, tenantId = "acme"): RatedUsageRecord {
  return makeRatedRecord({
    observation: { timing: { startedAt: completedAt, completedAt }, subject: { tenantId } },
    ratedAt: completedAt,
  });
}

async function manifestRanges(dir: string): Promise<Array<{ firstSeq: string; lastSeq: string }>> {
  const out: Array<{ firstSeq: string; lastSeq: string }> = [];
  for (const entry of (await readdir(dir, { recursive: true })).sort()) {
    if (!/(^|\/)_manifests\/[^/]+\.json$/.test(entry)) continue;
    const m = JSON.parse(await readFile(join(dir, entry), "utf8")) as {
      cursor: { firstSeq: string; lastSeq: string };
    };
    out.push(m.cursor);
  }
  return out;
}

describe("monthly partitions under hostile input and retention edge cases (server)", () => {
  const schema = freshSchema("partadv");
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

  const partitionOf = async (table: string, eventId: string) => {
    const { rows } = await pool.query(
      `SELECT tableoid::regclass::text AS part FROM "${schema}".${table} WHERE event_id = $1`,
      [eventId],
    );
    return (rows as Array<{ part: string }>).map((r) => r.part.split(".").pop());
  };

  it("keeps the last valid month (9999-12) in DEFAULT past the look-ahead: maintenance and migrate() keep working", async () => {
    const last = completedAt("9999-12-31T23:59:59.999Z");
    const boundary = completedAt("9999-12-01T00:00:00Z");
    const writer = observations.recordWriter(rated);
    if (writer === undefined) throw new Error("expected a record writer");
    await writer.write(last.observation, last);
    await writer.write(boundary.observation, boundary);
    expect(await partitionOf("rated_records", last.eventId)).toEqual(["rated_records_default"]);

    // Past the look-ahead: no partition is created for it (events dated far ahead cannot make
    // maintenance create thousands of months), and maintenance and migrate() do not fail on it.
    expect(await maintainPartitions(pool, { schema, monthsAhead: 0 })).toEqual([]);
    expect((await migrate(pool, { schema })).applied).toEqual([]);
    for (const r of [last, boundary]) {
      expect(await partitionOf("observations", r.eventId)).toEqual(["observations_default"]);
      expect(await partitionOf("rated_records", r.eventId)).toEqual(["rated_records_default"]);
    }
    expect(await rated.put(last)).toBe("already_exists");
    expect(await observations.get(last.eventId)).toEqual(last.observation);
  });

  it("puts an observation and its rated record in the same month at the month's edges", async () => {
    const edges = [
      completedAt("2026-02-28T23:59:59.999999999Z"),
      completedAt("2026-03-01T00:00:00Z"),
      completedAt("2026-03-01T00:00:00.000Z"),
      completedAt("2026-03-31T23:59:59.9Z"),
    ];
    const writer = observations.recordWriter(rated);
    if (writer === undefined) throw new Error("expected a record writer");
    for (const r of edges) await writer.write(r.observation, r);
    await maintainPartitions(pool, { schema, monthsAhead: 0 });
    const months = async (r: RatedUsageRecord) => [
      ...(await partitionOf("observations", r.eventId)).map((p) => p?.slice(-7)),
      ...(await partitionOf("rated_records", r.eventId)).map((p) => p?.slice(-7)),
    ];
    expect(await Promise.all(edges.map(months))).toEqual([
      ["2026_02", "2026_02"],
      ["2026_03", "2026_03"],
      ["2026_03", "2026_03"],
      ["2026_03", "2026_03"],
    ]);
  });

  it("keeps a consumer's cursor valid when retention dropped the newest positions of the change log", async () => {
    // The newest positions belong to the oldest month (a backfill written last).
    const kept = [completedAt("2024-06-10T00:00:00Z"), completedAt("2024-06-11T00:00:00Z")];
    const old = [completedAt("2024-05-10T00:00:00Z"), completedAt("2024-05-31T23:59:59.999Z")];
    await rated.putMany(kept);
    await rated.putMany(old);
    for (const r of [...kept, ...old]) await observations.append(r.observation);
    await pool.query(`UPDATE "${schema}".observations SET priced = true`);
    await maintainPartitions(pool, { schema, monthsAhead: 0 });

    const dir = await mkdtemp(join(tmpdir(), "latch-partadv-"));
    dirs.push(dir);
    const total = await count(pool, `SELECT 1 FROM "${schema}".rated_records`, []);
    let exported = 0;
    const deadline = Date.now() + 60_000;
    while (exported < total && Date.now() < deadline) {
      exported += (
        await exportPending({
          store: rated,
          exporter: new FileExporter({ directory: dir }),
          consumer: "billing",
        })
      ).rows;
    }
    expect(exported).toBe(total);
    // Only 2024-05 lies before the horizon.
    const result = await applyRetention(pool, {
      schema,
      before: "2024-06",
      consumer: "billing",
      manifests: await manifestRanges(dir),
      dryRun: false,
    });
    expect(result.months.map((m) => [m.month, m.refusals])).toEqual([["2024-05", []]]);
    expect(result.applied).toBe(true);

    // The consumer goes on from its cursor (which now points into a dropped month).
    const again = await exportPending({
      store: rated,
      exporter: new FileExporter({ directory: dir }),
      consumer: "billing",
    });
    expect(again.rows).toBe(0);
    const { rows } = await pool.query(
      `SELECT position::text AS p FROM "${schema}".consumer_cursors WHERE name = 'billing'`,
    );
    const cursor = (rows[0] as { p: string }).p;
    const page = await rated.listSince(cursor, 10);
    expect(page).toEqual({ items: [], cursor });
    await rated.saveCursor("billing-copy", cursor);
    // New writes after the gap are handed out after the cursor.
    const fresh = completedAt("2024-06-20T00:00:00Z");
    await rated.put(fresh);
    let next = await rated.listSince(cursor, 10);
    // Another session's open transaction holds a fresh version back for a while, by design.
    for (const until = Date.now() + 60_000; next.items.length === 0 && Date.now() < until; ) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      next = await rated.listSince(cursor, 10);
    }
    expect(next.items.map((e) => e.record.ratedRecordId)).toEqual([fresh.ratedRecordId]);
  });

  it("refuses to drop a month when a correction of one of its events lands in a later month while retention runs", async () => {
    const v1 = completedAt("2024-07-10T00:00:00Z");
    await rated.put(v1);
    await observations.append(v1.observation);
    await pool.query(`UPDATE "${schema}".observations SET priced = true WHERE event_id = $1`, [v1.eventId]);
    await maintainPartitions(pool, { schema, monthsAhead: 0 });
    const dir = await mkdtemp(join(tmpdir(), "latch-partadv-"));
    dirs.push(dir);
    const deadline = Date.now() + 60_000;
    for (let done = false; !done && Date.now() < deadline; ) {
      await exportPending({ store: rated, exporter: new FileExporter({ directory: dir }), consumer: "race" });
      const { rows } = await pool.query(
        `SELECT count(*)::int AS n FROM "${schema}".rated_records r, "${schema}".consumer_cursors c
         WHERE c.name = 'race' AND r.rated_record_id = $1
           AND r.xid::text::numeric * 10000000000000000000 + r.id <= c.position`,
        [v1.ratedRecordId],
      );
      done = (rows[0] as { n: number }).n === 1;
    }
    // Its correction, stored with a completion in a month that stays (the horizon is 2024-06
    // by the test above; 2024-09 is kept), arrives after retention's checks and before its lock.
    const base = makeCorrection(v1, { input_tokens: 9, output_tokens: 4 });
    const timing = { startedAt: "2024-09-02T00:00:00Z", completedAt: "2024-09-02T00:00:00Z" };
    const v2: RatedUsageRecord = { ...base, observation: { ...base.observation, timing } };
    const session = new pg.Client({ connectionString: DATABASE_URL });
    await session.connect();
    let fired = false;
    const racing: Queryable = {
      query: async (text: string, params?: unknown[]) => {
        if (!fired && text.startsWith("LOCK TABLE")) {
          fired = true;
          expect(await rated.put(v2)).toBe("stored");
        }
        return session.query(text, params);
      },
    };
    try {
      await expect(
        applyRetention(racing, {
          schema,
          before: "2024-08",
          consumer: "race",
          manifests: await manifestRanges(dir),
          dryRun: false,
        }),
      ).rejects.toMatchObject({ code: "invalid_input" });
    } finally {
      await session.end();
    }
    expect(fired).toBe(true);
    // Nothing went: the correction's export still finds the version it supersedes.
    expect(await rated.get(v1.ratedRecordId)).toEqual(v1);
    const again = await applyRetention(pool, {
      schema,
      before: "2024-08",
      consumer: "race",
      manifests: await manifestRanges(dir),
    });
    expect(again.months.find((m) => m.month === "2024-07")?.refusals).toEqual([
      expect.stringContaining("the whole event must go"),
    ]);
  });
});
