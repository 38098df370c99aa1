/**
 * Attacks on migration 0019's `record_batch` and the record writer that calls it: schema names
 * and shadowing tables, partitions created or dropped while pool connections hold the
 * function's cached (generic) plans, a backend killed inside the function, hostile ids, and
 * hostile server settings under two concurrent pools on overlapping ids.
 */

import { fork } from "node:child_process";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { DefaultRatingEngine, type RatedUsageRecord, type UsageObservation } from "@latch/core";
import { hashCanonicalJson, observationCanonicalJson, type RecordWriter } from "@latch/core/adapter";
import { makeObservation, makeSnapshot } from "@latch/testkit";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  fromPglite,
  migrate,
  PostgresObservationStore,
  PostgresRatedRecordStore,
  type Queryable,
} from "../src/index.js";
import { MIGRATIONS } from "../src/migrations/index.js";
import { applyMigrations } from "../src/migrator.js";
import { parseRecord, toRow } from "../src/rated-record-store.js";
import { release18Statements } from "./release-18-statements.js";
import { DATABASE_URL, freshSchema } from "./support.js";

const engine = new DefaultRatingEngine();
const rate = (obs: UsageObservation): RatedUsageRecord =>
  engine.rate(obs, makeSnapshot(obs.model.billableModel, "USD"), { ratedAt: "2026-03-01T12:00:05Z" });

const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 3 });
const cleanup: string[] = [];
const pools: pg.Pool[] = [];
function pool(config: pg.PoolConfig = {}): pg.Pool {
  const p = new pg.Pool({ connectionString: DATABASE_URL, ...config });
  p.on("error", () => undefined);
  pools.push(p);
  return p;
}

afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
  for (const s of cleanup) await admin.query(`DROP SCHEMA IF EXISTS ${ident(s)} CASCADE`);
  await admin.end();
});

const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;

function writerOn(
  db: Queryable,
  schema: string,
  groupCommit: false | { maxWaitMs: number; maxBatch: number } = false,
): RecordWriter {
  const observations = new PostgresObservationStore(db, { schema, groupCommit });
  const writer = observations.recordWriter(new PostgresRatedRecordStore(db, { schema }));
  if (writer === undefined) throw new Error("expected a record writer");
  return writer;
}

async function rows(schema: string, eventId: string) {
  const q = ident(schema);
  const o = await admin.query(`SELECT priced, payload FROM ${q}.observations WHERE event_id = $1`, [eventId]);
  const r = await admin.query(`SELECT payload FROM ${q}.rated_records WHERE event_id = $1`, [eventId]);
  const ok = await admin.query(`SELECT 1 FROM ${q}.observation_keys WHERE event_id = $1`, [eventId]);
  const rk = await admin.query(`SELECT 1 FROM ${q}.rated_record_keys WHERE event_id = $1`, [eventId]);
  return { o: o.rows, r: r.rows, keys: [ok.rows.length, rk.rows.length] };
}

describe("record_batch: schema names and shadowing tables", () => {
  const schema = freshSchema("n");
  beforeAll(async () => {
    // Schema names are refused before any SQL unless plain lower-case identifiers.
    for (const name of ["Latch", "a b", 'a"b', "a'b", "ü", "a$fn$"]) {
      await expect(migrate(admin, { schema: name })).rejects.toThrow(TypeError);
      expect(() => new PostgresObservationStore(admin, { schema: name })).toThrow(TypeError);
    }
    cleanup.push(schema, `${schema}_decoy Ü"'`);
    await migrate(admin, { schema });
  });

  it("writes into its schema, not a decoy in public or in the caller's search_path", async () => {
    const decoy = `${schema}_decoy Ü"'`;
    await admin.query(`CREATE SCHEMA ${ident(decoy)}`);
    await admin.query(`CREATE TABLE ${ident(decoy)}.observations (LIKE ${ident(schema)}.observations)`);
    await admin.query(
      `CREATE TABLE ${ident(decoy)}.rated_records (LIKE ${ident(schema)}.rated_records INCLUDING DEFAULTS)`,
    );
    const p = pool({ max: 2, options: `-c search_path=${ident(decoy).replace(/ /g, "\\ ")},public` });
    const obs = makeObservation({});
    const record = rate(obs);
    expect((await writerOn(p, schema, { maxWaitMs: 2, maxBatch: 8 }).write(obs, record)).observation).toBe(
      "appended",
    );
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    try {
      await client.query(`SET search_path = ${ident(decoy)}, public`);
      const again = await writerOn(client, schema).write(obs, record);
      expect(again).toEqual({ observation: "already_exists", current: record });
    } finally {
      await client.end();
    }
    const stored = await rows(schema, obs.eventId);
    expect(stored.o).toEqual([{ priced: true, payload: expect.anything() }]);
    expect(stored.r).toHaveLength(1);
    expect((await admin.query(`SELECT 1 FROM ${ident(decoy)}.observations`)).rows).toHaveLength(0);
    expect((await admin.query(`SELECT 1 FROM ${ident(decoy)}.rated_records`)).rows).toHaveLength(0);
  });

  it("a temporary table named like one of the schema's takes none of the batch", async () => {
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    try {
      await client.query(
        `CREATE TEMP TABLE observations (LIKE ${ident(schema)}.observations INCLUDING DEFAULTS)`,
      );
      await client.query(
        `CREATE TEMP TABLE rated_records (LIKE ${ident(schema)}.rated_records INCLUDING DEFAULTS)`,
      );
      await client.query(`CREATE TEMP TABLE observation_keys (LIKE ${ident(schema)}.observation_keys)`);
      const obs = makeObservation({});
      const record = rate(obs);
      const writer = writerOn(client, schema);
      expect(await writer.write(obs, record)).toEqual({ observation: "appended", current: record });
      const stored = await rows(schema, obs.eventId);
      expect(stored.o).toHaveLength(1);
      expect(stored.r).toHaveLength(1);
      expect(stored.keys).toEqual([1, 1]);
      const temp = await client.query(
        "SELECT (SELECT count(*) FROM pg_temp.observations)::int + (SELECT count(*) FROM pg_temp.rated_records)::int + (SELECT count(*) FROM pg_temp.observation_keys)::int AS n",
      );
      expect(temp.rows[0].n).toBe(0);
      // A conflicting payload is still refused (the check reads the schema's table, not the temp one).
      const other = { ...obs, meters: { ...obs.meters, input_tokens: 1 } };
      await expect(writer.write(other, undefined)).rejects.toMatchObject({ code: "idempotency_conflict" });
    } finally {
      await client.end();
    }
  });
});

describe("record_batch: partitions change under the cached plans", () => {
  const schema = freshSchema("pc");
  beforeAll(async () => {
    cleanup.push(schema);
    await migrate(admin, { schema });
  });

  it("a month partition created, then dropped behind the horizon, while one pooled connection keeps its plans", async () => {
    const q = ident(schema);
    const one = pool({ max: 1 });
    const writer = writerOn(one, schema, { maxWaitMs: 1, maxBatch: 16 });
    const at = (month: string) =>
      makeObservation({
        timing: { startedAt: `${month}-02T00:00:00Z`, completedAt: `${month}-02T00:00:01Z` },
      });
    const first = at("2031-05");
    const firstRecord = rate(first);
    // Plans cached on the connection, and the rows in DEFAULT (no 2031-05 partition yet).
    for (let i = 0; i < 7; i++) await writer.write(at("2031-04"), undefined);
    expect(await writer.write(first, firstRecord)).toEqual({ observation: "appended", current: firstRecord });
    const made = await admin.query(`SELECT ${q}.maintain_partitions('2031-05', '2031-05') AS m`);
    expect(made.rows[0].m).toEqual(["2031-04", "2031-05"]);
    // Same connection, same plans: the moved rows are found, the new one lands in the partition.
    expect(await writer.write(first, firstRecord)).toEqual({
      observation: "already_exists",
      current: firstRecord,
    });
    const second = at("2031-05");
    const secondRecord = rate(second);
    const unpriced = at("2031-05");
    const [a, b] = await Promise.all([writer.write(second, secondRecord), writer.write(unpriced, undefined)]);
    expect(a).toEqual({ observation: "appended", current: secondRecord });
    expect(b).toEqual({ observation: "appended", current: undefined });
    // Priced later, through the cached plans, in the new partition.
    const later = rate(unpriced);
    expect(await writer.write(unpriced, later)).toEqual({ observation: "already_exists", current: later });
    const where = await admin.query(
      `SELECT tableoid::regclass::text AS t, event_id, priced FROM ${q}.observations WHERE event_id = ANY ($1) ORDER BY event_id`,
      [[first.eventId, second.eventId, unpriced.eventId]],
    );
    expect(where.rows.map((r) => [r.t.split(".").pop(), r.priced])).toEqual([
      ["observations_p2031_05", true],
      ["observations_p2031_05", true],
      ["observations_p2031_05", true],
    ]);
    const records = await admin.query(
      `SELECT tableoid::regclass::text AS t FROM ${q}.rated_records WHERE event_id = ANY ($1)`,
      [[first.eventId, second.eventId, unpriced.eventId]],
    );
    expect(records.rows.map((r) => r.t.split(".").pop())).toEqual(Array(3).fill("rated_records_p2031_05"));
    // Retention removes the month under the same plans: its events are refused, others still pass.
    await admin.query(`INSERT INTO ${q}.retention_horizon (before_month) VALUES ('2031-06')`);
    await admin.query(`ALTER TABLE ${q}.observations DETACH PARTITION ${q}.observations_p2031_05`);
    await admin.query(`ALTER TABLE ${q}.rated_records DETACH PARTITION ${q}.rated_records_p2031_05`);
    await admin.query(`DROP TABLE ${q}.observations_p2031_05, ${q}.rated_records_p2031_05`);
    const gone = at("2031-05");
    await expect(writer.write(gone, rate(gone))).rejects.toMatchObject({ code: "invalid_input" });
    const kept = at("2031-07");
    const keptRecord = rate(kept);
    expect(await writer.write(kept, keptRecord)).toEqual({ observation: "appended", current: keptRecord });
    expect((await rows(schema, gone.eventId)).keys).toEqual([0, 0]);
  });
});

describe("record_batch: a backend killed inside the function", () => {
  const schema = freshSchema("kill");
  beforeAll(async () => {
    cleanup.push(schema);
    await migrate(admin, { schema });
  });

  it("leaves nothing of the batch, and the retries store each event once", async () => {
    const q = ident(schema);
    const app = `rbk-${process.pid}`;
    const p = pool({ max: 2, application_name: app });
    const writer = writerOn(p, schema, { maxWaitMs: 30, maxBatch: 16 });
    const a = makeObservation({ eventId: "a-kill" });
    const b = makeObservation({ eventId: "b-kill" });
    const [ra, rb] = [rate(a), rate(b)];
    // Another transaction holds b's key: the batch inserts a's rows, then waits on b inside record_batch.
    const holder = await admin.connect();
    try {
      await holder.query("BEGIN");
      await holder.query(`INSERT INTO ${q}.observation_keys (event_id, month) VALUES ('b-kill', '2026-03')`);
      const calls = [writer.write(a, ra), writer.write(b, rb)].map((c) =>
        c.then(
          () => "ok",
          (e: unknown) => e,
        ),
      );
      let pid: number | undefined;
      for (let i = 0; i < 200 && pid === undefined; i++) {
        const { rows: waiting } = await admin.query(
          `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock' AND query LIKE '%record_batch%'`,
          [app],
        );
        pid = waiting[0]?.pid;
        if (pid === undefined) await new Promise((r) => setTimeout(r, 10));
      }
      expect(pid).toBeDefined();
      await admin.query("SELECT pg_terminate_backend($1)", [pid]);
      const answers = await Promise.all(calls);
      expect(answers.every((x) => x !== "ok")).toBe(true);
      expect(await rows(schema, "a-kill")).toEqual({ o: [], r: [], keys: [0, 0] });
    } finally {
      await holder.query("ROLLBACK");
      holder.release();
    }
    expect(await Promise.all([writer.write(a, ra), writer.write(b, rb)])).toEqual([
      { observation: "appended", current: ra },
      { observation: "appended", current: rb },
    ]);
    expect(await writer.write(a, ra)).toEqual({ observation: "already_exists", current: ra });
    for (const id of ["a-kill", "b-kill"]) {
      const s = await rows(schema, id);
      expect([s.o.length, s.r.length, s.keys]).toEqual([1, 1, [1, 1]]);
    }
  });
});

/** Ids and texts that break naive quoting, array literals, dollar quotes, encodings, and the limits. */
const SHORT_IDS = ["'; DROP TABLE observations; --", "a\\b\\", "$fn$ $pin$ $$", '"{,}" NULL', "NULL", " {} "];
/** The short ones, and ids of exactly 512 UTF-16 units (the schema's limit) after `label`. */
const hostileIds = (label: string) => [
  ...SHORT_IDS.map((id) => `${label}${id}`),
  ...["😀", "\u0800", "\\'"].map((unit) =>
    `${label}${unit.repeat(Math.floor((512 - label.length) / unit.length))}`.padEnd(512, "x"),
  ),
];
const fullAttributes = () =>
  Object.fromEntries(
    Array.from({ length: 64 }, (_, i) => [
      `${String(i).padStart(2, "0")}${"ü'\\".repeat(15)}`, // 62 bytes
      "\u3041\\'$".repeat(42), // 252 bytes
    ]),
  );

async function hostileRoundTrip(db: Queryable, schema: string, label: string, concurrent: boolean) {
  const writer = writerOn(db, schema, concurrent ? { maxWaitMs: 20, maxBatch: 64 } : false);
  const events = hostileIds(label).map((eventId) =>
    makeObservation({ eventId, attributes: fullAttributes() }),
  );
  const records = events.map(rate);
  const write = (i: number, priced: boolean) =>
    writer.write(events[i] as UsageObservation, priced ? records[i] : undefined);
  const first = concurrent
    ? await Promise.all(events.flatMap((_, i) => [write(i, i % 2 === 0), write(i, true)]))
    : await (async () => {
        const out = [];
        for (let i = 0; i < events.length; i++) out.push(await write(i, i % 2 === 0), await write(i, true));
        return out;
      })();
  events.forEach((_, i) => {
    expect(first[2 * i]?.observation).toBe("appended");
    expect(first[2 * i + 1]).toEqual({ observation: "already_exists", current: records[i] });
  });
  const store = new PostgresObservationStore(db, { schema });
  for (const e of events) expect(await store.get(e.eventId)).toEqual(e);
  const refused = [
    makeObservation({ eventId: `${label}a\u0000b` }),
    makeObservation({ eventId: `${label}a\uD800` }),
    makeObservation({ eventId: `${label}x`.repeat(600) }),
    makeObservation({ attributes: { note: "nul\u0000" } }),
    makeObservation({ subject: { tenantId: "t\u0000" } }),
    makeObservation({ attributes: { note: "\uDC00" } }),
  ];
  for (const obs of refused)
    await expect(writer.write(obs, undefined)).rejects.toMatchObject({ code: "invalid_input" });
}

describe("record_batch: hostile ids and texts", () => {
  const schema = freshSchema("ho");
  beforeAll(async () => {
    cleanup.push(schema);
    await migrate(admin, { schema });
  });

  it("on a pool (one batch, literals), on a session (bound parameters), and under SJIS with standard_conforming_strings off", async () => {
    await hostileRoundTrip(pool({ max: 2 }), schema, "pool:", true);
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    try {
      await hostileRoundTrip(client, schema, "client:", false);
    } finally {
      await client.end();
    }
    const legacy = pool({
      max: 1,
      options: "-c standard_conforming_strings=off -c backslash_quote=on -c bytea_output=escape",
    });
    legacy.on("connect", (c) => void c.query("SET client_encoding = 'SJIS'"));
    const writer = writerOn(legacy, schema, { maxWaitMs: 10, maxBatch: 16 });
    // Non-ASCII ids and texts, some SJIS cannot carry: the answers name the right events and
    // records (pg decodes every text as UTF-8; before record_batch answered in bytes, a
    // non-ASCII id came back in SJIS: "already_exists" and no record, for an event just appended).
    const obs = hostileIds("sjis:").map((eventId) =>
      makeObservation({ eventId, attributes: { n: "\u3041\\'😀" } }),
    );
    const recs = obs.map(rate);
    const answers = await Promise.all(obs.map((o, i) => writer.write(o, recs[i])));
    expect(answers).toEqual(recs.map((current) => ({ observation: "appended", current })));
    for (const o of obs) expect((await rows(schema, o.eventId)).keys).toEqual([1, 1]);
    // A record another writer stored comes back whole (its payload read through SJIS).
    const elsewhere = makeObservation({ eventId: "sjis:ほか😀", attributes: { n: "\u3041\\'😀" } });
    const theirs = rate(elsewhere);
    await writerOn(admin, schema).write(elsewhere, theirs);
    const again = await Promise.all([
      writer.write(elsewhere, undefined),
      writer.write(obs[0] as UsageObservation, undefined),
    ]);
    expect(again).toEqual([
      { observation: "already_exists", current: theirs },
      { observation: "already_exists", current: recs[0] },
    ]);
  });

  it("on PGlite", async () => {
    const { PGlite } = await import("@electric-sql/pglite");
    const lite = new PGlite();
    try {
      const db = fromPglite(lite);
      await migrate(db, { schema: "latch" });
      await hostileRoundTrip(db, "latch", "lite:", false);
      // Two writers interleaving on the one session: still one row each.
      const obs = makeObservation({});
      const [a, b] = await Promise.all([
        writerOn(db, "latch").write(obs, rate(obs)),
        writerOn(db, "latch").write(obs, undefined),
      ]);
      expect([a.observation, b.observation].sort()).toEqual(["already_exists", "appended"]);
      expect(b.current).toEqual(rate(obs));
    } finally {
      await lite.close();
    }
  }, 60_000);
});

describe("record_batch: two pools on overlapping ids under hostile server settings", () => {
  const schema = freshSchema("two");
  beforeAll(async () => {
    cleanup.push(schema);
    await migrate(admin, { schema });
  });

  it("serializable by default, JIT on everything, custom plans forced, plpgsql extra errors: every id once, every answer consistent", async () => {
    const options = [
      "-c default_transaction_isolation=serializable",
      "-c jit=on -c jit_above_cost=0 -c jit_inline_above_cost=0 -c jit_optimize_above_cost=0",
      "-c plan_cache_mode=force_custom_plan -c plpgsql.extra_errors=all -c plpgsql.variable_conflict=use_column",
      "-c search_path=public -c lock_timeout=0 -c idle_in_transaction_session_timeout=0",
    ].join(" ");
    const hostile = [0, 1].map(() => pool({ max: 4, options }));
    const shown = await (hostile[0] as pg.Pool).query(
      "SELECT current_setting('default_transaction_isolation') AS iso, current_setting('jit_above_cost') AS jit, current_setting('plan_cache_mode') AS plans",
    );
    expect(shown.rows[0]).toEqual({ iso: "serializable", jit: "0", plans: "force_custom_plan" });
    const writers = hostile.map((p) => writerOn(p, schema, { maxWaitMs: 3, maxBatch: 64 }));
    const events = Array.from({ length: 24 }, (_, i) => makeObservation({ eventId: `two-${i}-'\\ü😀` }));
    const records = events.map(rate);
    // Another payload for a few ids: refused as conflicts, never stored.
    const clashing = (i: number) => ({ ...(events[i] as UsageObservation), meters: { input_tokens: 7 } });
    type Answer = {
      i: number;
      kind: "ok" | "conflict" | "other";
      observation?: string;
      current?: RatedUsageRecord;
      error?: unknown;
    };
    const answers: Answer[] = [];
    // Two rounds of 64 concurrent calls over both pools; the second also sends clashing payloads
    // for ids the first stored.
    for (const round of [0, 1]) {
      const calls: Promise<void>[] = [];
      for (let k = round * 64; k < (round + 1) * 64; k++) {
        const i = k % events.length;
        const writer = writers[k % 2] as RecordWriter;
        const clash = round === 1 && k % 9 === 5;
        const obs = clash ? clashing(i) : (events[i] as UsageObservation);
        const record = clash || k % 3 === 0 ? undefined : records[i];
        calls.push(
          writer.write(obs, record).then(
            (r) =>
              void answers.push({
                i,
                kind: clash ? "other" : "ok",
                observation: r.observation,
                current: r.current,
              }),
            (error: { code?: string }) =>
              void answers.push({
                i,
                kind: clash && error.code === "idempotency_conflict" ? "conflict" : "other",
                error,
              }),
          ),
        );
      }
      await Promise.all(calls);
    }
    const unexpected = answers.filter((a) => a.kind === "other");
    expect(unexpected).toEqual([]);
    for (const [i, obs] of events.entries()) {
      const s = await rows(schema, obs.eventId);
      const mine = answers.filter((a) => a.i === i && a.kind === "ok");
      // The stored payload is the identical one's, never the clashing one's.
      expect(s.o).toHaveLength(1);
      expect(s.keys[0]).toBe(1);
      const appended = mine.filter((a) => a.observation === "appended");
      expect(appended.length).toBeLessThanOrEqual(1);
      if (mine.some((a) => a.current !== undefined)) {
        expect(s.r).toHaveLength(1);
        expect(s.o[0].priced).toBe(true);
        for (const a of mine) if (a.current !== undefined) expect(a.current).toEqual(records[i]);
      } else expect(s.o[0].priced).toBe(s.r.length === 1);
    }
    const conflicts = answers.filter((a) => a.kind === "conflict");
    expect(conflicts.length).toBe(
      answers.filter((a) => a.i !== undefined).length - answers.filter((a) => a.kind === "ok").length,
    );
    expect(answers).toHaveLength(128);
  }, 60_000);
});

/** Release 18's record writer, one call per transaction, as an old pod still running sends it. */
async function release18Write(
  db: pg.Pool,
  schema: string,
  obs: UsageObservation,
  record: RatedUsageRecord | undefined,
) {
  const [insert, check, put, mark, read] = release18Statements(ident(schema));
  const canonical = observationCanonicalJson(obs);
  const head = `{"event_id":${JSON.stringify(obs.eventId)},"hash":"${hashCanonicalJson(canonical)}"`;
  for (let attempt = 1; ; attempt++) {
    const client = await db.connect();
    try {
      await client.query("BEGIN ISOLATION LEVEL READ COMMITTED");
      const inserted = await client.query(insert, [
        `[${head},"priced":${record !== undefined},"payload":${canonical}}]`,
      ]);
      await client.query(check, [`[${head},"payload":{}}]`]);
      await client.query(put, [record === undefined ? "[]" : `[${JSON.stringify(toRow(record))}]`]);
      await client.query(mark, [[obs.eventId]]);
      const found = await client.query(read, [
        [obs.eventId],
        record === undefined ? [] : [record.ratedRecordId],
      ]);
      await client.query("COMMIT");
      const row = found.rows[0] as { payload: unknown } | undefined;
      return {
        observation: inserted.rows.length === 1 ? "appended" : "already_exists",
        current: row === undefined ? undefined : row.payload === null ? record : parseRecord(row.payload),
      };
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      const code = (error as { code?: string }).code;
      if ((code === "40001" || code === "40P01") && attempt < 5) continue;
      throw error;
    } finally {
      client.release();
    }
  }
}

describe("record_batch next to release 18's statements (a rolling deploy)", () => {
  const schema = freshSchema("r18");
  beforeAll(async () => {
    cleanup.push(schema);
    await migrate(admin, { schema });
  });

  it("old and new pods on the same ids, each with its own rating: one observation, one record, every answer the stored one", async () => {
    const fresh = writerOn(pool({ max: 4 }), schema, { maxWaitMs: 3, maxBatch: 32 });
    const old = pool({ max: 4 });
    const events = Array.from({ length: 16 }, (_, i) => makeObservation({ eventId: `r18-${i}-ü'` }));
    const ratedAt = (second: number) => (obs: UsageObservation) =>
      engine.rate(obs, makeSnapshot(obs.model.billableModel, "USD"), {
        ratedAt: `2026-03-01T12:00:${String(second).padStart(2, "0")}Z`,
      });
    const answers: Array<{ i: number; observation: string; current: RatedUsageRecord | undefined }> = [];
    const calls: Promise<void>[] = [];
    for (let k = 0; k < 128; k++) {
      const i = (k * 7) % events.length;
      const obs = events[i] as UsageObservation;
      const record = k % 4 === 0 ? undefined : ratedAt(k % 50)(obs);
      const call = k % 2 === 0 ? fresh.write(obs, record) : release18Write(old, schema, obs, record);
      calls.push(call.then((r) => void answers.push({ i, ...r })));
    }
    await Promise.all(calls);
    expect(answers).toHaveLength(128);
    for (const [i, obs] of events.entries()) {
      const s = await rows(schema, obs.eventId);
      expect(s.o).toHaveLength(1);
      expect(s.r.length).toBeLessThanOrEqual(1);
      expect(s.o[0].priced).toBe(s.r.length === 1);
      const mine = answers.filter((a) => a.i === i);
      expect(mine.filter((a) => a.observation === "appended")).toHaveLength(1);
      for (const a of mine)
        if (a.current !== undefined) expect(a.current).toEqual(parseRecord(s.r[0]?.payload));
    }
  }, 60_000);
});

const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;

describe("record_batch: the client process killed mid-batch", () => {
  const schema = freshSchema("sigkill");
  beforeAll(async () => {
    cleanup.push(schema);
    await migrate(admin, { schema });
  });

  it("SIGKILL while batches are in flight: nothing half-written, and the retries store each event once", async () => {
    const prefix = `sk${process.pid}`;
    const n = 48;
    for (let run = 0; run < 3; run++) {
      const child = fork(new URL("./record-batch-child.ts", import.meta.url), {
        execArgv: ["--conditions=dev-source", "--import", TSX],
        env: {
          ...process.env,
          DATABASE_URL,
          CHILD_SCHEMA: schema,
          CHILD_PREFIX: prefix,
          CHILD_EVENTS: String(n),
        },
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      });
      const exited = new Promise((resolve) => child.once("exit", resolve));
      await new Promise<void>((resolve, reject) => {
        child.once("message", () => resolve());
        child.once("exit", (code) => reject(new Error(`child exited with ${code} before committing`)));
      });
      await new Promise((r) => setTimeout(r, 5 + run * 10));
      child.kill("SIGKILL");
      await exited;
      // Whatever committed is whole: a record only with its observation, priced exactly then.
      const { rows: bad } = await admin.query(
        `SELECT o.event_id FROM ${ident(schema)}.observations o
         WHERE o.priced <> EXISTS (SELECT 1 FROM ${ident(schema)}.rated_records r WHERE r.event_id = o.event_id)
         UNION ALL
         SELECT r.event_id FROM ${ident(schema)}.rated_records r
         WHERE NOT EXISTS (SELECT 1 FROM ${ident(schema)}.observations o WHERE o.event_id = r.event_id)`,
      );
      expect(bad).toEqual([]);
    }
    const writer = writerOn(pool({ max: 4 }), schema, { maxWaitMs: 3, maxBatch: 32 });
    const events = Array.from({ length: n }, (_, i) => makeObservation({ eventId: `${prefix}-${i}` }));
    const answers = await Promise.all(events.map((e) => writer.write(e, rate(e))));
    expect(answers.map((a) => a.current)).toEqual(events.map(rate));
    for (const e of events) {
      const s = await rows(schema, e.eventId);
      expect([s.o.length, s.o[0]?.priced, s.r.length, s.keys]).toEqual([1, true, 1, [1, 1]]);
    }
    expect(answers.some((a) => a.observation === "already_exists")).toBe(true);
  }, 120_000);
});

describe("migration 0019 on a schema release 18 left", () => {
  const schema = freshSchema("up19");
  beforeAll(async () => {
    cleanup.push(schema);
  });

  it("pins every function's search_path before pg_temp, and the writer then ignores a temp table", async () => {
    await applyMigrations(
      admin,
      { schema },
      MIGRATIONS.filter((m) => m.version <= 18),
    );
    // As release 18's migrate() left them: the schema alone (pg_temp searched first).
    const fns = `SELECT p.oid::regprocedure::text AS fn, array_to_string(p.proconfig, ',') AS config
      FROM pg_proc p WHERE p.pronamespace = $1::regnamespace AND p.proconfig IS NOT NULL ORDER BY 1`;
    for (const { fn } of (await admin.query(fns, [ident(schema)])).rows) {
      await admin.query(`ALTER FUNCTION ${fn} SET search_path = ${ident(schema)}`);
    }
    // 19 and every migration after it (0020 pins the functions it replaces the same way).
    expect(await migrate(admin, { schema })).toMatchObject({
      applied: MIGRATIONS.filter((m) => m.version >= 19).map((m) => m.version),
    });
    const after = (await admin.query(fns, [ident(schema)])).rows as Array<{ fn: string; config: string }>;
    expect(after.length).toBeGreaterThan(20);
    for (const f of after)
      expect(f.config.split(",plan_cache_mode=")[0]).toBe(`search_path=${schema}, pg_temp`);
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    try {
      await client.query(`CREATE TEMP TABLE observation_keys (LIKE ${ident(schema)}.observation_keys)`);
      await client.query(
        `CREATE TEMP TABLE observations (LIKE ${ident(schema)}.observations INCLUDING DEFAULTS)`,
      );
      const obs = makeObservation({});
      expect(await writerOn(client, schema).write(obs, rate(obs))).toEqual({
        observation: "appended",
        current: rate(obs),
      });
      expect((await rows(schema, obs.eventId)).keys).toEqual([1, 1]);
    } finally {
      await client.end();
    }
  });
});
