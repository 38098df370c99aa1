/**
 * Migration 0020's set-based path against `latch retention apply` running at the same time:
 * a batch that reads the retention horizon while retention holds its lock (the horizon raised,
 * the month dropped, not yet committed) must still refuse the dropped month's rows once
 * retention commits, as the key triggers (which read the horizon after the lock) did.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../src/index.js";
import { MIGRATIONS } from "../src/migrations/index.js";
import { DATABASE_URL, freshSchema } from "./support.js";

const schema = freshSchema("keys20race");
const q = `"${schema}"`;
const clients: pg.Client[] = [];

async function connect(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: DATABASE_URL });
  c.on("error", () => undefined);
  await c.connect();
  clients.push(c);
  return c;
}

let admin: pg.Client;
beforeAll(async () => {
  admin = await connect();
  await migrate(admin, { schema });
  // 0019's record_batch, as shipped, under another name (its rows go through the triggers).
  const sql = MIGRATIONS.find((m) => m.version === 19)?.sql ?? "";
  const start = sql.indexOf("CREATE FUNCTION record_batch(");
  const end = sql.indexOf("$fn$;", start) + "$fn$;".length;
  await admin.query(`SET search_path TO ${q}, pg_temp`);
  await admin.query(
    sql.slice(start, end).replace("CREATE FUNCTION record_batch(", "CREATE FUNCTION record_batch_0019("),
  );
  await admin.query("RESET search_path");
});
afterAll(async () => {
  await admin.query(`DROP SCHEMA IF EXISTS ${q} CASCADE`);
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
});

function record(eventId: string, MONTH: string) {
  const at = `${MONTH}-01T12:00:00.000Z`;
  return {
    rated_record_id: `${eventId}:r`,
    event_id: eventId,
    version: 1,
    hash: "r",
    payload: { ratedRecordId: `${eventId}:r` },
    currency: "USD",
    total: "0.1",
    completed_ms: Date.parse(at),
    completed_text: at,
    completed_day: `${MONTH}-01`,
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

async function waitingOnLock(pid: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const { rows } = await admin.query(`SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1`, [pid]);
    if (rows[0]?.wait_event_type === "Lock") return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`backend ${pid} never waited for a lock`);
}

describe("record_batch while retention apply drops a month", () => {
  it.each([
    ["record_batch_0019", "2024-05", "2024-06"],
    ["record_batch", "2024-07", "2024-08"],
  ])("%s: a batch that read the old horizon refuses the dropped month %s once retention commits (22L10), stores nothing", async (fn, MONTH, before) => {
    const at = `${MONTH}-01T12:00:00.000Z`;
    const s = MONTH.replace("-", "_");
    await admin.query(`SELECT ${q}.maintain_partitions($1, $1)`, [MONTH]);
    const retention = await connect();
    const writer = await connect();
    const ids = [`${fn}-a`, `${fn}-b`];
    // Retention apply, as retention.ts runs it: lock, raise the horizon, detach and drop.
    await retention.query("BEGIN");
    await retention.query(`LOCK TABLE ${q}.observations, ${q}.rated_records IN ACCESS EXCLUSIVE MODE`);
    await retention.query(
      `INSERT INTO ${q}.retention_horizon (before_month) VALUES ($1)
      ON CONFLICT (singleton) DO UPDATE SET before_month = EXCLUDED.before_month`,
      [before],
    );
    for (const table of ["observations", "rated_records"]) {
      await retention.query(`ALTER TABLE ${q}.${table} DETACH PARTITION ${q}."${table}_p${s}"`);
      await retention.query(`DROP TABLE ${q}."${table}_p${s}"`);
    }
    const pid = (await writer.query("SELECT pg_backend_pid() AS p")).rows[0].p as number;
    const call = writer
      .query(`SELECT * FROM ${q}.${fn}($1::jsonb, $2::jsonb, $3::jsonb, $4::text[], $5::text[])`, [
        JSON.stringify(
          ids.map((e) => ({
            event_id: e,
            hash: "h",
            payload: { timing: { completedAt: at } },
            priced: true,
          })),
        ),
        JSON.stringify(ids.map((e) => ({ event_id: e, hash: "h", payload: {} }))),
        JSON.stringify(ids.map((e) => record(e, MONTH))),
        ids,
        ids.map((e) => `${e}:r`),
      ])
      .then(
        () => ({ code: "none" }),
        (e: { code?: string }) => ({ code: e.code }),
      );
    await waitingOnLock(pid);
    await retention.query("COMMIT");
    expect(await call).toEqual({ code: "22L10" });
    const { rows } = await admin.query(
      `SELECT (SELECT count(*) FROM ${q}.observations WHERE event_id = ANY ($1))::int AS o,
              (SELECT count(*) FROM ${q}.rated_records WHERE event_id = ANY ($1))::int AS r,
              (SELECT count(*) FROM ${q}.observation_keys WHERE event_id = ANY ($1))::int AS ok,
              (SELECT count(*) FROM ${q}.rated_record_keys WHERE event_id = ANY ($1))::int AS rk`,
      [ids],
    );
    expect(rows[0]).toEqual({ o: 0, r: 0, ok: 0, rk: 0 });
  });
});
