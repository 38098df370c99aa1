/**
 * Migration 0019 moved the record writer's five statements into `record_batch` and claims
 * "same statements, same results, same errors". This runs the five statements as release 18's
 * record writer sent them (a frozen copy, below) and `record_batch` on the same data, each in a
 * rolled-back transaction, and compares what the writer reads (the ids appended, each event's
 * current record with its payload or NULL, or SQLSTATE and DETAIL) and the rows left behind.
 * What the cases meet (stored observations and records) is committed first by another
 * transaction, as a concurrent writer's rows would be.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../src/index.js";
import { release18Statements } from "./release-18-statements.js";
import { DATABASE_URL, freshSchema } from "./support.js";

const schema = freshSchema("parity19");
const q = `"${schema}"`;
const client = new pg.Client({ connectionString: DATABASE_URL });

beforeAll(async () => {
  await client.connect();
  await migrate(client, { schema });
});

afterAll(async () => {
  await client.query(`DROP SCHEMA IF EXISTS ${q} CASCADE`);
  await client.end();
});

const RELEASE_18 = release18Statements(q);

/** One event of a batch as the writer sends it: its observation and, when priced, its record. */
interface Event {
  id: string;
  hash: string | null;
  month?: string;
  record?: { id: string; hash: string; total?: string };
}

const observation = (e: Event) => ({
  event_id: e.id,
  hash: e.hash,
  payload: { eventId: e.id, timing: { completedAt: `${e.month ?? "2026-03"}-01T12:00:00.000Z` } },
});

function recordRow(e: Event, record: NonNullable<Event["record"]>) {
  const month = e.month ?? "2026-03";
  return {
    rated_record_id: record.id,
    event_id: e.id,
    version: 1,
    hash: record.hash,
    payload: { ratedRecordId: record.id, hash: record.hash },
    currency: "USD",
    total: record.total ?? "0.000123",
    completed_ms: Date.parse(`${month}-01T12:00:00.000Z`),
    completed_text: `${month}-01T12:00:00.000Z`,
    completed_day: `${month}-01`,
    provider: "p",
    model: "m",
    tenant_id: "t",
    org_id: "",
    project_id: "",
    api_key_id: "",
    end_user_id: "",
    feature: "",
    success: true,
    input_tokens: 1,
    output_tokens: 1,
    cache_read_tokens: 0,
    cache_write_tokens: 0,
    total_tokens: 2,
  };
}

/** The writer's arguments for a batch (its events sorted and distinct, as `plan()` makes them). */
function args(events: Event[]) {
  return {
    observations: JSON.stringify(events.map((e) => ({ ...observation(e), priced: e.record !== undefined }))),
    checks: JSON.stringify(events.map((e) => ({ ...observation(e), payload: {} }))),
    records: JSON.stringify(events.flatMap((e) => (e.record === undefined ? [] : [recordRow(e, e.record)]))),
    ids: events.map((e) => e.id),
    ours: events.flatMap((e) => (e.record === undefined ? [] : [e.record.id])),
  };
}

type Answer =
  | { appended: string[]; current: Array<[string, string, unknown]>; rows: unknown }
  | { code: string | undefined; detail: string | undefined };

/** Every row of the case's events, as the tables hold them after the write. */
async function rows(ids: string[]) {
  const observations = await client.query(
    `SELECT event_id, hash, priced, payload FROM ${q}.observations WHERE event_id = ANY ($1) ORDER BY event_id`,
    [ids],
  );
  const rated = await client.query(
    `SELECT rated_record_id, event_id, version, hash, is_current, total::text, completed_at
     FROM ${q}.rated_records WHERE event_id = ANY ($1) ORDER BY rated_record_id`,
    [ids],
  );
  const keys = await client.query(
    `SELECT event_id, month FROM ${q}.observation_keys WHERE event_id = ANY ($1) ORDER BY event_id`,
    [ids],
  );
  return { observations: observations.rows, rated: rated.rows, keys: keys.rows };
}

/** One way of writing `events` in a transaction of its own, rolled back; `setup` runs first in it. */
async function run(how: "release 18" | "record_batch", events: Event[], setup?: string): Promise<Answer> {
  const a = args(events);
  await client.query("BEGIN ISOLATION LEVEL READ COMMITTED");
  try {
    if (setup !== undefined) await client.query(setup);
    let appended: string[];
    let current: Array<[string, string, unknown]>;
    if (how === "release 18") {
      const [insert, check, put, mark, read] = RELEASE_18;
      const inserted = await client.query(insert, [a.observations]);
      await client.query(check, [a.checks]);
      await client.query(put, [a.records]);
      await client.query(mark, [a.ids]);
      const found = await client.query(read, [a.ids, a.ours]);
      appended = inserted.rows.map((r: { event_id: string }) => r.event_id);
      current = found.rows.map((r: { event_id: string; rated_record_id: string; payload: unknown }) => [
        r.event_id,
        r.rated_record_id,
        r.payload,
      ]);
    } else {
      const { rows: out } = await client.query(
        `SELECT n, appended, current_id, current_payload
         FROM ${q}.record_batch($1::jsonb, $2::jsonb, $3::jsonb, $4::text[], $5::text[])`,
        [a.observations, a.checks, a.records, a.ids, a.ours],
      );
      // The event by its position in ids; the record's id and payload as UTF-8 bytes.
      const typed = (
        out as Array<{
          n: number;
          appended: boolean;
          current_id: Buffer | null;
          current_payload: Buffer | null;
        }>
      ).map((r) => ({
        id: a.ids[r.n - 1] as string,
        appended: r.appended,
        current_id: r.current_id === null ? null : r.current_id.toString("utf8"),
        current_payload: r.current_payload === null ? null : JSON.parse(r.current_payload.toString("utf8")),
      }));
      expect(out.map((r: { n: number }) => r.n)).toEqual(a.ids.map((_, i) => i + 1)); // one row per event
      appended = typed.filter((r) => r.appended).map((r) => r.id);
      current = typed.flatMap((r) =>
        r.current_id === null ? [] : [[r.id, r.current_id, r.current_payload] as [string, string, unknown]],
      );
    }
    return { appended: appended.sort(), current: current.sort(), rows: await rows(a.ids) };
  } catch (error) {
    const e = error as { code?: string; detail?: string };
    // A refused row's DETAIL shows its created_at, the transaction's now().
    return { code: e.code, detail: e.detail?.replace(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+\+00/g, "<now>") };
  } finally {
    await client.query("ROLLBACK");
  }
}

let n = 0;
/** A case's own ids, so cases never meet each other's rows. */
const id = (name: string) => `c${n}-${name}`;

/** Stores an observation (unpriced) and optionally its record, committed by another transaction. */
async function stored(e: Event): Promise<void> {
  await client.query(`SELECT ${q}.append_observations($1::jsonb)`, [JSON.stringify([observation(e)])]);
  if (e.record !== undefined) {
    await client.query(`SELECT ${q}.put_rated_records($1::jsonb)`, [
      JSON.stringify([recordRow(e, e.record)]),
    ]);
    await client.query(`UPDATE ${q}.observations SET priced = true WHERE event_id = $1`, [e.id]);
  }
}

describe("migration 0019: record_batch answers as release 18's five statements did", () => {
  const cases: Array<[string, () => Promise<{ batch: Event[]; setup?: string; expectError?: string }>]> = [
    [
      "new, with records",
      async () => ({
        batch: [
          { id: id("a"), hash: "h1", record: { id: id("a:r"), hash: "r1" } },
          { id: id("b"), hash: "h2", record: { id: id("b:r"), hash: "r2" } },
        ],
      }),
    ],
    ["new, unpriced", async () => ({ batch: [{ id: id("a"), hash: "h1" }] })],
    ["empty batch", async () => ({ batch: [] })],
    [
      "a duplicate: observation and record stored",
      async () => {
        const e = { id: id("a"), hash: "h1", record: { id: id("a:r"), hash: "r1" } };
        await stored(e);
        return { batch: [e] };
      },
    ],
    [
      "a conflicting payload (LT409)",
      async () => {
        await stored({ id: id("a"), hash: "h1" });
        return {
          batch: [
            { id: id("a"), hash: "hX", record: { id: id("a:r"), hash: "r1" } },
            { id: id("b"), hash: "h2" },
          ],
          expectError: "LT409",
        };
      },
    ],
    [
      "an unpriced observation stored, its record now",
      async () => {
        await stored({ id: id("a"), hash: "h1" });
        return { batch: [{ id: id("a"), hash: "h1", record: { id: id("a:r"), hash: "r1" } }] };
      },
    ],
    [
      "an unpriced observation stored, still without a record",
      async () => {
        await stored({ id: id("a"), hash: "h1" });
        return { batch: [{ id: id("a"), hash: "h1" }] };
      },
    ],
    [
      "a record another writer stored (another id): it stands and is answered",
      async () => {
        await stored({ id: id("a"), hash: "h1", record: { id: id("a:other"), hash: "rO" } });
        return { batch: [{ id: id("a"), hash: "h1", record: { id: id("a:r"), hash: "r1" } }] };
      },
    ],
    [
      "the same record id another writer stored: answered with its payload",
      async () => {
        const e = { id: id("a"), hash: "h1", record: { id: id("a:r"), hash: "r1" } };
        await stored(e);
        return { batch: [e] };
      },
    ],
    [
      "a record stored with its observation unpriced (a crash between the two): marked priced",
      async () => {
        const e = { id: id("a"), hash: "h1", record: { id: id("a:other"), hash: "rO" } };
        await stored(e);
        await client.query(`UPDATE ${q}.observations SET priced = false WHERE event_id = $1`, [e.id]);
        return { batch: [{ id: id("a"), hash: "h1" }] };
      },
    ],
    [
      "a mixed batch",
      async () => {
        const dup = { id: id("b"), hash: "h2", record: { id: id("b:r"), hash: "r2" } };
        await stored(dup);
        await stored({ id: id("c"), hash: "h3" });
        await stored({ id: id("d"), hash: "h4", record: { id: id("d:other"), hash: "rO" } });
        await stored({ id: id("f"), hash: "h6" });
        return {
          batch: [
            { id: id("a"), hash: "h1", record: { id: id("a:r"), hash: "r1" } },
            dup,
            { id: id("c"), hash: "h3", record: { id: id("c:r"), hash: "r3" } },
            { id: id("d"), hash: "h4", record: { id: id("d:r"), hash: "r4" } },
            { id: id("e"), hash: "h5" },
            { id: id("f"), hash: "h6" },
            { id: id("g"), hash: "h7", month: "2026-04", record: { id: id("g:r"), hash: "r7" } },
          ],
        };
      },
    ],
    [
      "a month before the retention horizon (22L10)",
      async () => ({
        batch: [{ id: id("a"), hash: "h1", month: "2025-01", record: { id: id("a:r"), hash: "r1" } }],
        setup: `INSERT INTO ${q}.retention_horizon (before_month) VALUES ('2026-01')
                ON CONFLICT (singleton) DO UPDATE SET before_month = EXCLUDED.before_month`,
        expectError: "22L10",
      }),
    ],
    [
      "a row the server refuses: a NULL hash (23502)",
      async () => ({ batch: [{ id: id("a"), hash: null }], expectError: "23502" }),
    ],
    [
      "a row the server refuses: a total that is no number (22P02)",
      async () => ({
        batch: [{ id: id("a"), hash: "h1", record: { id: id("a:r"), hash: "r1", total: "1.2.3" } }],
        expectError: "22P02",
      }),
    ],
  ];
  for (const [name, make] of cases)
    it(name, async () => {
      n++;
      const { batch, setup, expectError } = await make();
      batch.sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
      const before = await run("release 18", batch, setup);
      const now = await run("record_batch", batch, setup);
      expect(now).toEqual(before);
      if (expectError !== undefined) expect(now).toMatchObject({ code: expectError });
      else expect(now).toHaveProperty("appended");
    });
});
