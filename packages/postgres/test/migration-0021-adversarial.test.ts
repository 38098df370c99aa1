/**
 * Migration 0021 under attack: states, inputs and real concurrent connections where its skips
 * (the hash check's call, the comparison, the priced mark) could make it answer, store or raise
 * something other than 0020's `record_batch` (installed next to it, frozen, as
 * `record_batch_0020`), or lose or duplicate a row.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate, PostgresObservationStore, PostgresRatedRecordStore } from "../src/index.js";
import { frozenRecordBatch, recordRow } from "./record-batch-args.js";
import { release18Statements } from "./release-18-statements.js";
import { DATABASE_URL, freshSchema } from "./support.js";

const schema = freshSchema("adv21");
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
  await admin.query(`SET search_path TO ${q}, pg_temp`);
  await admin.query(frozenRecordBatch(20));
  await admin.query("RESET search_path");
});
afterAll(async () => {
  await Promise.all(clients.filter((c) => c !== admin).map((c) => c.end().catch(() => undefined)));
  await admin.query(`DROP SCHEMA IF EXISTS ${q} CASCADE`);
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
});

const at = (month: string) => `${month}-01T12:00:00.000Z`;

const record = (ratedId: string, eventId: string, month = "2026-03", version = 1, hash = "r") =>
  recordRow({ id: ratedId, event: eventId, month, version, hash });

interface Ev {
  id: string;
  hash: string;
  month?: string;
  /** Sent with its record (`<id>:r`). */
  priced?: boolean;
}

/** The writer's arguments (checks with an empty payload, as record-writer.ts sends them). */
function args(events: Ev[]): unknown[] {
  const priced = events.filter((e) => e.priced !== false);
  return [
    JSON.stringify(
      events.map((e) => ({
        event_id: e.id,
        hash: e.hash,
        priced: e.priced !== false,
        payload: { eventId: e.id, timing: { completedAt: at(e.month ?? "2026-03") } },
      })),
    ),
    JSON.stringify(events.map((e) => ({ event_id: e.id, hash: e.hash, payload: {} }))),
    JSON.stringify(priced.map((e) => record(`${e.id}:r`, e.id, e.month ?? "2026-03"))),
    [...new Set(events.map((e) => e.id))],
    [...new Set(priced.map((e) => `${e.id}:r`))],
  ];
}

const call = (fn: string) =>
  `SELECT n, appended, convert_from(current_id, 'UTF8') AS id,
     convert_from(current_payload, 'UTF8')::jsonb AS payload
   FROM ${q}.${fn}($1::jsonb, $2::jsonb, $3::jsonb, $4::text[], $5::text[]) ORDER BY n`;

async function state(db: pg.Client, ids: string[]) {
  const one = async (sql: string) => (await db.query(sql, [ids])).rows;
  return {
    observations: await one(
      `SELECT event_id, hash, priced, tableoid::regclass::text AS part FROM ${q}.observations
       WHERE event_id = ANY ($1) ORDER BY event_id, hash, priced`,
    ),
    rated: await one(
      `SELECT rated_record_id, event_id, version, is_current FROM ${q}.rated_records
       WHERE event_id = ANY ($1) ORDER BY xid, id`,
    ),
    keys: await one(`SELECT event_id, month FROM ${q}.observation_keys WHERE event_id = ANY ($1) ORDER BY 1`),
    ratedKeys: await one(
      `SELECT rated_record_id, version FROM ${q}.rated_record_keys WHERE event_id = ANY ($1) ORDER BY 1`,
    ),
  };
}

type Outcome = { rows: unknown[]; state: unknown } | { code?: string; message?: string; detail?: string };

/** One call in a rolled-back transaction of `admin`; `setup` runs first in it. */
async function run(fn: string, a: unknown[], ids: string[], setup?: string): Promise<Outcome> {
  await admin.query("BEGIN ISOLATION LEVEL READ COMMITTED");
  try {
    if (setup !== undefined) await admin.query(setup);
    const { rows } = await admin.query(call(fn), a);
    return { rows, state: await state(admin, ids) };
  } catch (error) {
    const e = error as { code?: string; message?: string; detail?: string };
    return { code: e.code, message: e.message, detail: e.detail };
  } finally {
    await admin.query("ROLLBACK");
  }
}

let n = 0;
const id = (name: string) => `a21-${n}-${name}`;

/** Both functions on the same arguments, alone and padded with a fresh event (set-based path). */
async function parity(a: unknown[], ids: string[], setup?: string): Promise<Outcome> {
  const pad = id("~pad");
  const [obs, checks, recs, pIds, ours] = a as [string, string, string, string[] | null, string[]];
  const padded = [
    obs === null
      ? obs
      : JSON.stringify([
          ...(JSON.parse(obs) ?? []),
          { event_id: pad, hash: "hp", priced: false, payload: { timing: { completedAt: at("2026-03") } } },
        ]),
    checks === null
      ? checks
      : JSON.stringify([...(JSON.parse(checks) ?? []), { event_id: pad, hash: "hp", payload: {} }]),
    recs,
    pIds === null ? pIds : [...pIds, pad],
    ours,
  ];
  let first: Outcome | undefined;
  for (const x of [a, padded]) {
    const before = await run("record_batch_0020", x, [...ids, pad], setup);
    const now = await run("record_batch", x, [...ids, pad], setup);
    expect(now).toEqual(before);
    first ??= now;
  }
  return first as Outcome;
}

describe("0021 vs 0020: stored states and hostile inputs", () => {
  it("an observation stored priced=false without a record: the record now marks it priced", async () => {
    n++;
    await admin.query(call("record_batch_0020"), args([{ id: id("a"), hash: "h", priced: false }]));
    const out = await parity(args([{ id: id("a"), hash: "h" }]), [id("a")]);
    expect(out).toMatchObject({ state: { observations: [{ event_id: id("a"), priced: true }] } });
  });

  it("a rated record stored at version 2: answered with version 2, nothing written", async () => {
    n++;
    const e = id("a");
    await admin.query(call("record_batch_0020"), args([{ id: e, hash: "h" }]));
    await admin.query(`SELECT ${q}.put_rated_records($1::jsonb)`, [
      JSON.stringify([record(`${e}:v2`, e, "2026-03", 2, "r2")]),
    ]);
    const out = await parity(args([{ id: e, hash: "h" }]), [e]);
    expect(out).toMatchObject({ rows: [{ n: 1, appended: false, id: `${e}:v2` }] });
  });

  it("a key row without its observation row (a leftover): same answer as 0020 (already there, nothing stored)", async () => {
    n++;
    const e = id("a");
    await admin.query(`INSERT INTO ${q}.observation_keys (event_id, month) VALUES ($1, '2026-03')`, [e]);
    const out = await parity(args([{ id: e, hash: "h" }]), [e]);
    // 0020 and 0021 alike: the key skips the row, the record is stored, the observation is not.
    expect(out).toMatchObject({
      rows: [{ n: 1, appended: false, id: `${e}:r` }],
      state: { observations: [] },
    });
  });

  it("the DEFAULT partition holds the event: re-sent with its hash, and with another (LT409)", async () => {
    n++;
    const e = id("a");
    await admin.query(
      call("record_batch_0020"),
      args([{ id: e, hash: "h", month: "2099-01", priced: false }]),
    );
    const same = await parity(args([{ id: e, hash: "h", month: "2099-01" }]), [e]);
    expect(same).toMatchObject({
      state: { observations: [{ event_id: e, priced: true, part: `${schema}.observations_default` }] },
    });
    expect(await parity(args([{ id: e, hash: "hX", month: "2099-01" }]), [e])).toMatchObject({
      code: "LT409",
    });
    // Another month (a new event in DEFAULT, the stored one elsewhere): still LT409.
    expect(await parity(args([{ id: e, hash: "hX", month: "2026-03" }]), [e])).toMatchObject({
      code: "LT409",
    });
  });

  it("months at the horizon boundary: the horizon month is taken, the month before refused (22L10)", async () => {
    n++;
    const setup = `INSERT INTO ${q}.retention_horizon (before_month) VALUES ('2026-02')
      ON CONFLICT (singleton) DO UPDATE SET before_month = EXCLUDED.before_month`;
    const ok = await parity(args([{ id: id("a"), hash: "h", month: "2026-02" }]), [id("a")], setup);
    expect(ok).toMatchObject({ rows: [{ n: 1, appended: true }] });
    const refused = await parity(args([{ id: id("b"), hash: "h", month: "2026-01" }]), [id("b")], setup);
    expect(refused).toMatchObject({ code: "22L10" });
  });

  it("an id twice with different priced flags, either order", async () => {
    n++;
    for (const flags of [
      [false, true],
      [true, false],
    ]) {
      const e = id(`a${flags.join("")}`);
      const [obs, checks, , ,] = args([
        { id: e, hash: "h", priced: flags[0] },
        { id: e, hash: "h", priced: flags[1] },
      ]) as string[];
      const a = [obs, checks, JSON.stringify([record(`${e}:r`, e)]), [e, e], [`${e}:r`]];
      const out = await parity(a, [e]);
      expect(out).toMatchObject({ state: { observations: [{ event_id: e, priced: true }] } });
    }
  });

  it("p_ids with duplicates and ids absent from the batch; empty arrays; JSON null vs SQL NULL", async () => {
    n++;
    const e = id("a");
    const [obs, checks, recs] = args([{ id: e, hash: "h" }]) as string[];
    await parity([obs, checks, recs, [e, e, id("absent")], [`${e}:r`]], [e, id("absent")]);
    await parity(["[]", "[]", "[]", [], []], []);
    await parity([obs, "null", recs, [e], [`${e}:r`]], [e]);
    await parity([obs, null, recs, [e], [`${e}:r`]], [e]);
    await parity([obs, checks, recs, [], []], [e]);
    await parity([obs, checks, recs, null, null], [e]);
    await parity([obs, checks, "null", [e], []], [e]);
  });

  it("checks that name ids not in p_observations, with and without a stored row", async () => {
    n++;
    const e = id("a");
    const other = id("o");
    await admin.query(call("record_batch_0020"), args([{ id: other, hash: "hO" }]));
    const [obs, , recs] = args([{ id: e, hash: "h" }]) as string[];
    for (const h of ["hO", "hX"]) {
      const checks = JSON.stringify([
        { event_id: e, hash: "h", payload: {} },
        { event_id: other, hash: h, payload: {} },
      ]);
      const out = await parity([obs, checks, recs, [e], [`${e}:r`]], [e, other]);
      if (h === "hX") expect(out).toMatchObject({ code: "LT409" });
    }
    const checks = JSON.stringify([{ event_id: id("nowhere"), hash: "h", payload: {} }]);
    await parity([obs, checks, recs, [e], [`${e}:r`]], [e, id("nowhere")]);
  });

  it("hostile ids: very long, U+FFFF, astral, lone surrogate escapes, NUL escapes", async () => {
    n++;
    const long = `${id("long")}-${Array.from({ length: 3000 }, (_, i) => String.fromCharCode(33 + ((i * 7919) % 90))).join("")}`;
    for (const e of [
      long,
      `${id("ffff")}\uffff`,
      `${id("astral")}\u{1F600}`,
      `${id("c")}${"x".repeat(20000)}`,
    ]) {
      await parity(args([{ id: e, hash: "h" }]), [e]);
    }
    // JSON text the server must refuse (lone surrogates, \u0000): the same error from both.
    for (const esc of ["\\ud800", "\\udc00", "\\u0000", "\\ud800\\u0041"]) {
      const e = id(`esc${esc.length}`);
      const [obs, checks, recs] = (args([{ id: `${e}ESC`, hash: "h" }]).slice(0, 3) as string[]).map((s) =>
        s.replaceAll("ESC", esc),
      );
      const out = await parity([obs, checks, recs, [e], []], [e]);
      expect(out).toMatchObject({ code: expect.stringMatching(/^22/) });
    }
  });
});

describe("0021 with real concurrent writers", () => {
  async function pidOf(c: pg.Client): Promise<number> {
    return (await c.query("SELECT pg_backend_pid() AS p")).rows[0].p as number;
  }
  async function waitingOnLock(pid: number): Promise<void> {
    for (let i = 0; i < 500; i++) {
      const { rows } = await admin.query(`SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1`, [
        pid,
      ]);
      if (rows[0]?.wait_event_type === "Lock") return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`backend ${pid} never waited for a lock`);
  }
  const settle = (p: Promise<pg.QueryResult>) =>
    p.then(
      (r) => ({ rows: r.rows as Array<{ n: number; appended: boolean; id: string | null }> }),
      (e: { code?: string; detail?: string }) => ({ code: e.code, detail: e.detail }),
    );

  /** first holds its transaction open; second (its own transaction) must wait, then answer. */
  async function race(
    first: { fn: string; events: Ev[] },
    second: { fn: string; events: Ev[] },
    end: "COMMIT" | "ROLLBACK",
  ) {
    const a = await connect();
    const b = await connect();
    try {
      await a.query("BEGIN");
      const firstRows = (await a.query(call(first.fn), args(first.events))).rows;
      await b.query("BEGIN");
      const bPid = await pidOf(b);
      const pending = settle(b.query(call(second.fn), args(second.events)));
      await waitingOnLock(bPid);
      await a.query(end);
      const out = await pending;
      await b.query("code" in out ? "ROLLBACK" : "COMMIT");
      return { firstRows, second: out };
    } finally {
      await a.end();
      await b.end();
    }
  }

  const combos: Array<[string, string, string]> = [];
  for (const [f, s] of [
    ["record_batch", "record_batch"],
    ["record_batch_0020", "record_batch"],
    ["record_batch", "record_batch_0020"],
  ] as const)
    for (const shape of ["lone-first", "batch-first"]) combos.push([f, s, shape]);

  it.each(
    combos,
  )("%s then %s (%s), same hash: one row, one key, the second answers already_exists", async (f, s, shape) => {
    n++;
    const e = id("e");
    const lone = [{ id: e, hash: "h" }];
    const batch = [
      { id: id("x"), hash: "h" },
      { id: e, hash: "h" },
      { id: id("y"), hash: "h" },
    ];
    const { second } = await race(
      { fn: f, events: shape === "lone-first" ? lone : batch },
      { fn: s, events: shape === "lone-first" ? batch : lone },
      "COMMIT",
    );
    expect(second).toHaveProperty("rows");
    const row = (second as { rows: Array<{ appended: boolean; id: string }> }).rows.find(
      (r) => r.id === `${e}:r`,
    );
    expect(row).toMatchObject({ appended: false });
    const st = await state(admin, [e]);
    expect(st.observations).toHaveLength(1);
    expect(st.keys).toHaveLength(1);
    expect(st.rated).toHaveLength(1);
    expect(st.observations[0]).toMatchObject({ priced: true });
  });

  it.each(
    combos,
  )("%s then %s (%s), another hash: the second raises LT409 naming the stored hash", async (f, s, shape) => {
    n++;
    const e = id("e");
    const lone = (h: string) => [{ id: e, hash: h }];
    const batch = (h: string) => [
      { id: id("x"), hash: "h" },
      { id: e, hash: h },
    ];
    const { second } = await race(
      { fn: f, events: shape === "lone-first" ? lone("h1") : batch("h1") },
      { fn: s, events: shape === "lone-first" ? batch("h2") : lone("h2") },
      "COMMIT",
    );
    expect(second).toMatchObject({ code: "LT409" });
    expect(JSON.parse((second as { detail: string }).detail)).toEqual({
      id: e,
      existingHash: "h1",
      incomingHash: "h2",
    });
    const st = await state(admin, [e]);
    expect(st.observations).toEqual([expect.objectContaining({ hash: "h1", priced: true })]);
    expect(st.rated).toHaveLength(1);
  });

  it.each(combos)("%s then %s (%s), the first rolls back: the second appends, once", async (f, s, shape) => {
    n++;
    const e = id("e");
    const lone = (h: string) => [{ id: e, hash: h }];
    const batch = (h: string) => [
      { id: id("x"), hash: "h" },
      { id: e, hash: h },
    ];
    const { second } = await race(
      { fn: f, events: shape === "lone-first" ? lone("h1") : batch("h1") },
      { fn: s, events: shape === "lone-first" ? batch("h2") : lone("h2") },
      "ROLLBACK",
    );
    const row = (second as { rows: Array<{ appended: boolean; id: string }> }).rows.find(
      (r) => r.id === `${e}:r`,
    );
    expect(row).toMatchObject({ appended: true });
    const st = await state(admin, [e]);
    expect(st.observations).toEqual([expect.objectContaining({ hash: "h2", priced: true })]);
    expect(st.keys).toHaveLength(1);
    expect(st.rated).toHaveLength(1);
  });

  it("a release-18 writer (append_observations, triggers) holding the id, then 0021 lone and batched", async () => {
    n++;
    for (const shape of ["lone", "batch"]) {
      const e = id(`r18${shape}`);
      const old = await connect();
      const now = await connect();
      const [ins] = release18Statements(q);
      await old.query("BEGIN");
      await old.query(ins, [
        JSON.stringify([
          { event_id: e, hash: "h1", priced: false, payload: { timing: { completedAt: at("2026-03") } } },
        ]),
      ]);
      const events =
        shape === "lone"
          ? [{ id: e, hash: "h2" }]
          : [
              { id: id("x"), hash: "h" },
              { id: e, hash: "h2" },
            ];
      const nowPid = await pidOf(now);
      const pending = settle(now.query(call("record_batch"), args(events)));
      await waitingOnLock(nowPid);
      await old.query("COMMIT");
      expect(await pending).toMatchObject({ code: "LT409" });
      await old.end();
      await now.end();
      expect((await state(admin, [e])).observations).toEqual([
        expect.objectContaining({ hash: "h1", priced: false }),
      ]);
    }
  });

  it("a lone event waiting on retention apply (horizon raised, month dropped) is refused once it commits (22L10)", async () => {
    n++;
    const MONTH = "2024-09";
    const s = MONTH.replace("-", "_");
    await admin.query(`SELECT ${q}.maintain_partitions($1, $1)`, [MONTH]);
    const retention = await connect();
    const writer = await connect();
    const e = id("lone");
    await retention.query("BEGIN");
    await retention.query(`LOCK TABLE ${q}.observations, ${q}.rated_records IN ACCESS EXCLUSIVE MODE`);
    await retention.query(
      `INSERT INTO ${q}.retention_horizon (before_month) VALUES ('2024-10')
       ON CONFLICT (singleton) DO UPDATE SET before_month = EXCLUDED.before_month`,
    );
    for (const table of ["observations", "rated_records"]) {
      await retention.query(`ALTER TABLE ${q}.${table} DETACH PARTITION ${q}."${table}_p${s}"`);
      await retention.query(`DROP TABLE ${q}."${table}_p${s}"`);
    }
    const writerPid = await pidOf(writer);
    const pending = settle(writer.query(call("record_batch"), args([{ id: e, hash: "h", month: MONTH }])));
    await waitingOnLock(writerPid);
    await retention.query("COMMIT");
    expect(await pending).toMatchObject({ code: "22L10" });
    const st = await state(admin, [e]);
    expect(st).toEqual({ observations: [], rated: [], keys: [], ratedKeys: [] });
    await admin.query(`DELETE FROM ${q}.retention_horizon`);
  });

  it("batches racing maintain_partitions' move out of DEFAULT: no row lost or doubled, conflicts still raised", async () => {
    n++;
    const MONTH = "2098-07";
    const stored = id("stored");
    await admin.query(call("record_batch"), args([{ id: stored, hash: "h1", month: MONTH, priced: false }]));
    const mover = await connect();
    const w1 = await connect();
    const w2 = await connect();
    const w3 = await connect();
    await mover.query("BEGIN");
    expect((await mover.query(`SELECT ${q}.maintain_partitions($1, $1) AS m`, [MONTH])).rows[0].m).toContain(
      MONTH,
    );
    const fresh = id("fresh");
    const pids = await Promise.all([w1, w2, w3].map(pidOf));
    const p1 = settle(w1.query(call("record_batch"), args([{ id: stored, hash: "h1", month: MONTH }])));
    const p2 = settle(w2.query(call("record_batch"), args([{ id: stored, hash: "h2", month: MONTH }])));
    const p3 = settle(
      w3.query(
        call("record_batch"),
        args([
          { id: fresh, hash: "h", month: MONTH },
          { id: id("f2"), hash: "h", month: MONTH },
        ]),
      ),
    );
    for (const pid of pids) await waitingOnLock(pid);
    await mover.query("COMMIT");
    const [r1, r2, r3] = await Promise.all([p1, p2, p3]);
    expect(r1).toMatchObject({ rows: [{ appended: false, id: `${stored}:r` }] });
    expect(r2).toMatchObject({ code: "LT409" });
    expect(r3).toMatchObject({ rows: [{ appended: true }, { appended: true }] });
    const st = await state(admin, [stored, fresh]);
    expect(st.observations).toEqual([
      {
        event_id: fresh,
        hash: "h",
        priced: true,
        part: `${schema}.observations_p${MONTH.replace("-", "_")}`,
      },
      {
        event_id: stored,
        hash: "h1",
        priced: true,
        part: `${schema}.observations_p${MONTH.replace("-", "_")}`,
      },
    ]);
    expect(st.keys).toHaveLength(2);
    expect(st.rated).toHaveLength(2);
  });
});

describe("rolling deploy", () => {
  it("this release on a schema at 20: SchemaNotMigratedError naming migrate(), nothing written", async () => {
    const s = freshSchema("adv21roll");
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
    try {
      await migrate(pool, { schema: s });
      await pool.query(`DELETE FROM "${s}".latch_migrations WHERE version = 21`);
      const store = new PostgresObservationStore(pool, { schema: s });
      const writer = store.recordWriter(new PostgresRatedRecordStore(pool, { schema: s }));
      const { makeObservation } = await import("@latch/testkit");
      await expect(writer?.write(makeObservation({ eventId: "roll-1" }), undefined)).rejects.toMatchObject({
        code: "schema_not_migrated",
        message: expect.stringContaining(`run migrate(db, { schema: "${s}" })`),
      });
      expect((await pool.query(`SELECT count(*)::int AS c FROM "${s}".observations`)).rows[0].c).toBe(0);
    } finally {
      await pool.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
      await pool.end();
    }
  });

  it("a release built for 20 on this schema: 21's ledger row declares compatible_from 17 (≤ 20: it keeps writing)", async () => {
    const { rows } = await admin.query(
      `SELECT coalesce(max(version), 0)::int AS v,
              max(coalesce(compatible_from, version)) FILTER (WHERE version > 20) AS f
       FROM ${q}.latch_migrations`,
    );
    expect(rows[0]).toEqual({ v: 21, f: 17 });
  });
});
