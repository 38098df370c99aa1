/**
 * Migration 0018 rewrote the checks of append_observations and put_rated_records as per-row
 * LATERAL … LIMIT 1 probes and claims "same results, same errors". This runs 0017's bodies
 * (installed beside them under another name) and 0018's on the same data, each in a rolled-back
 * savepoint, and compares the answers: inserted ids, or SQLSTATE and DETAIL.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MIGRATIONS, migrate } from "../src/index.js";
import { DATABASE_URL, freshSchema } from "./support.js";

const schema = freshSchema("parity18");
const client = new pg.Client({ connectionString: DATABASE_URL });

beforeAll(async () => {
  await client.connect();
  await migrate(client, { schema });
  const sql = MIGRATIONS.find((m) => m.version === 17)?.sql ?? "";
  const bodies = [
    ...sql.matchAll(/CREATE OR REPLACE FUNCTION (append_observations|put_rated_records)\(.*?\n\$fn\$;/gs),
  ];
  expect(bodies.map((b) => b[1])).toEqual(["append_observations", "put_rated_records"]);
  await client.query(`SET search_path TO "${schema}"`);
  for (const [body, name] of bodies)
    await client.query(body.replace(`FUNCTION ${name}(`, `FUNCTION ${name}_0017(`));
});

afterAll(async () => {
  await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await client.end();
});

const obs = (id: string, hash: string | null) => ({
  event_id: id,
  hash,
  payload: { timing: { completedAt: "2026-03-01T12:00:00.000Z" } },
});
const rec = (eventId: string, version: number, hash: string, currency = "USD") => ({
  rated_record_id: `${eventId}:v${version}`,
  event_id: eventId,
  version,
  hash,
  payload: {},
  currency,
  total: "1",
  completed_ms: 1772366400000,
  completed_text: "2026-03-01T12:00:00.000Z",
  completed_day: "2026-03-01",
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
});

type Answer = { ok: string[] } | { code: string | undefined; detail: string | undefined };

async function answer(fn: string, batch: unknown[]): Promise<Answer> {
  await client.query("SAVEPOINT s");
  try {
    const { rows } = await client.query(`SELECT ${fn}($1::jsonb) AS r`, [JSON.stringify(batch)]);
    return { ok: (rows[0] as { r: string[] }).r };
  } catch (error) {
    const e = error as { code?: string; detail?: string };
    return { code: e.code, detail: e.detail };
  } finally {
    await client.query("ROLLBACK TO SAVEPOINT s");
  }
}

/** Both versions' answers to `batch` after `setup` (in one rolled-back transaction). */
async function both(fn: string, setup: unknown[][], batch: unknown[]) {
  await client.query("BEGIN");
  try {
    for (const s of setup) await client.query(`SELECT ${fn}($1::jsonb)`, [JSON.stringify(s)]);
    return { now: await answer(fn, batch), before: await answer(`${fn}_0017`, batch) };
  } finally {
    await client.query("ROLLBACK");
  }
}

describe("migration 0018 answers as 0017 did", () => {
  const A = "append_observations";
  const cases: Array<[string, unknown[][], unknown[]]> = [
    ["all new", [], [obs("a", "h1"), obs("b", "h2")]],
    ["empty batch", [], []],
    ["a duplicate within the batch, same hash", [], [obs("a", "h1"), obs("a", "h1")]],
    ["a duplicate within the batch, another hash", [], [obs("a", "h1"), obs("a", "h2")]],
    ["stored, same hash", [[obs("a", "h1")]], [obs("a", "h1"), obs("b", "h2")]],
    ["stored, another hash", [[obs("a", "h1")]], [obs("b", "h2"), obs("a", "hX")]],
    ["two conflicts", [[obs("a", "h1"), obs("b", "h2")]], [obs("b", "hY"), obs("c", "h3"), obs("a", "hX")]],
    ["a NULL hash, new id", [], [obs("a", null)]],
    ["a NULL hash, stored id", [[obs("a", "h1")]], [obs("a", null)]],
  ];
  for (const [name, setup, batch] of cases)
    it(`append_observations: ${name}`, async () => {
      const { now, before } = await both(A, setup, batch);
      expect(now).toEqual(before);
    });

  const P = "put_rated_records";
  const pcases: Array<[string, unknown[][], unknown[]]> = [
    ["v1 new", [], [rec("e", 1, "r1")]],
    ["v1 stored, same hash", [[rec("e", 1, "r1")]], [rec("e", 1, "r1")]],
    ["v1 stored, another hash", [[rec("e", 1, "r1")]], [rec("e", 1, "rX")]],
    ["two hash conflicts", [[rec("e", 1, "r1"), rec("f", 1, "r1")]], [rec("f", 1, "rY"), rec("e", 1, "rX")]],
    ["v2 without v1 (LT422)", [], [rec("e", 2, "r2")]],
    ["v2 after a stored v1", [[rec("e", 1, "r1")]], [rec("e", 2, "r2")]],
    ["v2 in another currency than the stored v1 (LT412)", [[rec("e", 1, "r1")]], [rec("e", 2, "r2", "EUR")]],
    ["v1 and v2 in one batch, currencies differ (LT412)", [], [rec("e", 1, "r1"), rec("e", 2, "r2", "EUR")]],
    [
      "two currency mismatches: the first in batch order",
      [[rec("e", 1, "r1"), rec("f", 1, "r1")]],
      [rec("f", 2, "r2", "EUR"), rec("e", 2, "r2", "GBP")],
    ],
    ["v3 whose v2 is missing, v1 stored", [[rec("e", 1, "r1")]], [rec("e", 3, "r3")]],
    [
      "a stored v2 sent again with another hash",
      [[rec("e", 1, "r1")], [rec("e", 2, "r2")]],
      [rec("e", 2, "rX")],
    ],
  ];
  for (const [name, setup, batch] of pcases)
    it(`put_rated_records: ${name}`, async () => {
      const { now, before } = await both(P, setup, batch);
      expect(now).toEqual(before);
    });
});
