/**
 * Migration 0020: `record_batch` writes its rows' keys itself, set-based, and the key triggers
 * skip rows while `latch.keys_written` is on. This runs 0019's `record_batch` (the frozen text
 * of the shipped migration, installed as `record_batch_0019` next to the new one, so it runs
 * with the triggers as release 19 does) and 0020's on the same cases, each in a rolled-back
 * transaction, and compares what the writer reads, the rows and keys left behind (rated
 * records in change-log order), and the error with its DETAIL. Then: release 19's and 18's
 * statements and raw SQL still get their keys written after 0020; the flag never outlives the
 * call; concurrent batches on shared ids in opposite orders neither deadlock nor duplicate.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../src/index.js";
import {
  args,
  type Batch,
  frozenRecordBatch,
  payload,
  recordBatchRunner,
  recordRow,
} from "./record-batch-args.js";
import { release18Statements } from "./release-18-statements.js";
import { DATABASE_URL, freshSchema } from "./support.js";

const schema = freshSchema("keys20");
const q = `"${schema}"`;
const client = new pg.Client({ connectionString: DATABASE_URL });
const others: pg.Client[] = [];

async function connect(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: DATABASE_URL });
  c.on("error", () => undefined);
  await c.connect();
  others.push(c);
  return c;
}

beforeAll(async () => {
  await client.connect();
  await migrate(client, { schema });
  await client.query(`SET search_path TO ${q}, pg_temp`);
  await client.query(frozenRecordBatch(19));
  await client.query("RESET search_path");
});

afterAll(async () => {
  await Promise.all(others.map((c) => c.end().catch(() => undefined)));
  await client.query(`DROP SCHEMA IF EXISTS ${q} CASCADE`);
  await client.end();
});

const { call, run, state } = recordBatchRunner(client, q);

let n = 0;
const id = (name: string) => `k${n}-${name}`;

/** Committed by another transaction first, as a concurrent writer's rows would be. */
async function stored(b: Batch): Promise<void> {
  await client.query(call("record_batch_0019"), args(b));
}

const HORIZON = `INSERT INTO ${q}.retention_horizon (before_month) VALUES ('2026-01')
  ON CONFLICT (singleton) DO UPDATE SET before_month = EXCLUDED.before_month`;

describe("migration 0020: record_batch answers and writes as 0019's did", () => {
  const cases: Array<[string, () => Promise<{ batch: Batch; setup?: string; error?: string }>]> = [
    [
      "new, with records, sent out of id order (rows keep batch order: change-log order)",
      async () => ({
        batch: {
          obs: [
            { id: id("c"), hash: "h3" },
            { id: id("a"), hash: "h1" },
            { id: id("b"), hash: "h2", month: "2026-04" },
          ],
          records: [
            { id: id("c:r"), event: id("c"), hash: "r3" },
            { id: id("a:r"), event: id("a"), hash: "r1" },
            { id: id("b:r"), event: id("b"), hash: "r2", month: "2026-04" },
          ],
        },
      }),
    ],
    ["empty batch", async () => ({ batch: { obs: [] } })],
    [
      "an id twice in one batch, other months: the first row is the event (one key, its month)",
      async () => ({
        batch: {
          obs: [
            { id: id("a"), hash: "h1", month: "2026-04" },
            { id: id("a"), hash: "h1", month: "2026-03" },
          ],
          checks: [{ id: id("a"), hash: "h1" }],
        },
      }),
    ],
    [
      "an id twice in one batch with another hash: the second is a conflict (LT409)",
      async () => ({
        batch: {
          obs: [
            { id: id("a"), hash: "h1" },
            { id: id("a"), hash: "h2", month: "2026-05" },
          ],
        },
        error: "LT409",
      }),
    ],
    [
      "a record id twice in one batch: the first stands",
      async () => ({
        batch: {
          obs: [{ id: id("a"), hash: "h1" }],
          records: [
            { id: id("a:r"), event: id("a"), hash: "r1", total: "1" },
            { id: id("a:r"), event: id("a"), hash: "r1", total: "2" },
          ],
        },
      }),
    ],
    [
      "two record ids of one event in one batch (23505 on its version)",
      async () => ({
        batch: {
          obs: [{ id: id("a"), hash: "h1" }],
          records: [
            { id: id("a:r1"), event: id("a"), hash: "r1" },
            { id: id("a:r2"), event: id("a"), hash: "r2" },
          ],
        },
        error: "23505",
      }),
    ],
    [
      "an event stored, re-sent with another completion month: one event, the hash check reports it",
      async () => {
        await stored({ obs: [{ id: id("a"), hash: "h1", month: "2026-03" }] });
        return {
          batch: {
            obs: [{ id: id("a"), hash: "h1-april", month: "2026-04" }],
            records: [{ id: id("a:r"), event: id("a"), hash: "r1", month: "2026-04" }],
          },
          error: "LT409",
        };
      },
    ],
    [
      "an event stored, re-sent with its payload: already there, its record answered",
      async () => {
        const b = {
          obs: [{ id: id("a"), hash: "h1" }],
          records: [{ id: id("a:r"), event: id("a"), hash: "r1" }],
        };
        await stored(b);
        return { batch: { ...b, obs: [...b.obs, { id: id("b"), hash: "h2" }] } };
      },
    ],
    [
      "a record another writer stored (another id): it stands and is answered",
      async () => {
        await stored({
          obs: [{ id: id("a"), hash: "h1" }],
          records: [{ id: id("a:other"), event: id("a"), hash: "rO" }],
        });
        return {
          batch: {
            obs: [{ id: id("a"), hash: "h1" }],
            records: [{ id: id("a:r"), event: id("a"), hash: "r1" }],
          },
        };
      },
    ],
    [
      "an unpriced observation stored, its record now",
      async () => {
        await stored({ obs: [{ id: id("a"), hash: "h1" }] });
        return {
          batch: {
            obs: [{ id: id("a"), hash: "h1" }],
            records: [{ id: id("a:r"), event: id("a"), hash: "r1" }],
          },
        };
      },
    ],
    [
      "a payload without timing.completedAt (key month NULL, DEFAULT partition)",
      async () => ({ batch: { obs: [{ id: id("a"), hash: "h1", month: null }] } }),
    ],
    [
      "observations before the horizon: 22L10 names the first in batch order",
      async () => ({
        batch: {
          obs: [
            { id: id("c"), hash: "h3" },
            { id: id("b"), hash: "h2", month: "2025-06" },
            { id: id("a"), hash: "h1", month: "2025-01" },
          ],
        },
        setup: HORIZON,
        error: "22L10",
      }),
    ],
    [
      "a stored observation re-sent before the horizon is refused too (the check comes before the key)",
      async () => {
        await stored({ obs: [{ id: id("a"), hash: "h1", month: "2025-03" }] });
        return {
          batch: { obs: [{ id: id("a"), hash: "h1", month: "2025-03" }] },
          setup: HORIZON,
          error: "22L10",
        };
      },
    ],
    [
      "only a record before the horizon (its observation without a month): 22L10 names the record",
      async () => ({
        batch: {
          obs: [
            { id: id("a"), hash: "h1", month: null },
            { id: id("b"), hash: "h2", month: null },
          ],
          records: [
            { id: id("a:r"), event: id("a"), hash: "r1" },
            { id: id("b:r"), event: id("b"), hash: "r2", month: "2025-02" },
          ],
        },
        setup: HORIZON,
        error: "22L10",
      }),
    ],
    [
      "a record before the horizon of an event that has one already: skipped, not refused",
      async () => {
        await stored({
          obs: [{ id: id("a"), hash: "h1", month: null }],
          records: [{ id: id("a:r"), event: id("a"), hash: "r1" }],
        });
        return {
          batch: {
            obs: [{ id: id("a"), hash: "h1", month: null }],
            records: [{ id: id("a:new"), event: id("a"), hash: "r2", month: "2025-02" }],
          },
          setup: HORIZON,
        };
      },
    ],
    [
      "a conflicting payload and a record before the horizon: the conflict first (LT409)",
      async () => {
        await stored({ obs: [{ id: id("a"), hash: "h1", month: null }] });
        return {
          batch: {
            obs: [{ id: id("a"), hash: "hX", month: null }],
            records: [{ id: id("a:r"), event: id("a"), hash: "r1", month: "2025-02" }],
          },
          setup: HORIZON,
          error: "LT409",
        };
      },
    ],
    [
      "a check payload before the horizon (append_observations' own path)",
      async () => ({
        batch: {
          obs: [{ id: id("a"), hash: "h1" }],
          checks: [{ id: id("a"), hash: "h1", month: "2025-04" }],
        },
        setup: HORIZON,
        error: "22L10",
      }),
    ],
    [
      "a check naming an id the batch does not insert (append_observations inserts it)",
      async () => ({
        batch: {
          obs: [{ id: id("a"), hash: "h1" }],
          checks: [
            { id: id("a"), hash: "h1" },
            { id: id("z"), hash: "hz" },
          ],
        },
      }),
    ],
    [
      "a NULL hash (23502)",
      async () => ({
        batch: {
          obs: [
            { id: id("a"), hash: "h1" },
            { id: id("b"), hash: null },
          ],
        },
        error: "23502",
      }),
    ],
    [
      "a NULL hash of a stored id: skipped by its key, no error",
      async () => {
        await stored({ obs: [{ id: id("a"), hash: "h1" }] });
        return { batch: { obs: [{ id: id("a"), hash: null }], checks: [] } };
      },
    ],
    [
      "a NULL event id (23502 on observation_keys)",
      async () => ({ batch: { obs: [{ id: null, hash: "h1" }], checks: [] }, error: "23502" }),
    ],
    [
      "a record with a NULL currency (23502)",
      async () => ({
        batch: {
          obs: [{ id: id("a"), hash: "h1" }],
          records: [{ id: id("a:r"), event: id("a"), hash: "r1", currency: null }],
        },
        error: "23502",
      }),
    ],
    [
      "a record whose total is no number (22P02)",
      async () => ({
        batch: {
          obs: [{ id: id("a"), hash: "h1" }],
          records: [{ id: id("a:r"), event: id("a"), hash: "r1", total: "1.2.3" }],
        },
        error: "22P02",
      }),
    ],
    [
      "a record whose completion text is no time (22007)",
      async () => ({
        batch: {
          obs: [{ id: id("a"), hash: "h1" }],
          records: [{ id: id("a:r"), event: id("a"), hash: "r1", completedText: "soon" }],
        },
        error: "22007",
      }),
    ],
    [
      "a version 2 without its version 1 (record_batch inserts it as 0019 did)",
      async () => ({
        batch: {
          obs: [{ id: id("a"), hash: "h1" }],
          records: [{ id: id("a:r2"), event: id("a"), hash: "r2", version: 2 }],
        },
      }),
    ],
    [
      "inside maintain_partitions' move (latch.partition_move on): no keys, no horizon, as 0019",
      async () => ({
        batch: {
          obs: [
            { id: id("a"), hash: "h1", month: "2025-01" },
            { id: id("b"), hash: "h2" },
          ],
          records: [{ id: id("a:r"), event: id("a"), hash: "r1", month: "2025-01" }],
        },
        setup: `${HORIZON}; SELECT set_config('latch.partition_move', 'on', true)`,
      }),
    ],
  ];
  // A batch of one event runs 0019's statements (cheaper than the set-based ones for one row):
  // each case also goes with a new event added, so the set-based path meets it too.
  const padded = (b: Batch): Batch =>
    b.obs.length >= 2
      ? b
      : {
          ...b,
          obs: [...b.obs, { id: id("~pad"), hash: "hp" }],
          checks: b.checks === undefined ? undefined : [...b.checks, { id: id("~pad"), hash: "hp" }],
        };
  for (const [name, make] of cases)
    it(name, async () => {
      n++;
      const { batch, setup, error } = await make();
      for (const b of batch.obs.length >= 2 ? [batch] : [batch, padded(batch)]) {
        const before = await run("record_batch_0019", b, setup);
        const now = await run("record_batch", b, setup);
        expect(now).toEqual(before);
        if (error !== undefined) expect(now).toMatchObject({ code: error });
        else expect(now).toHaveProperty("rows");
      }
    });

  it("a batch of several events fires no key trigger; a batch of one fires them as 0019 did (less 0021's hash check)", async () => {
    n++;
    const fired = async (b: Batch) => {
      await client.query("BEGIN");
      try {
        await client.query("SET LOCAL track_functions = 'pl'");
        await client.query(call("record_batch"), args(b));
        const { rows } = await client.query(
          `SELECT coalesce(pg_stat_get_xact_function_calls('${q}.observations_key'::regproc), 0)
                + coalesce(pg_stat_get_xact_function_calls('${q}.rated_records_key'::regproc), 0) AS n`,
        );
        return Number(rows[0].n);
      } finally {
        await client.query("ROLLBACK");
      }
    };
    const events = Array.from({ length: 32 }, (_, i) => id(`e${String(i).padStart(2, "0")}`));
    expect(
      await fired({
        obs: events.map((e) => ({ id: e, hash: "h" })),
        records: events.map((e) => ({ id: `${e}:r`, event: e, hash: "r" })),
      }),
    ).toBe(0);
    // Its observation and its rated record (0021 skips the hash check's call for an id the
    // call just inserted with the same hash; 0019 and 0020 fired the key trigger a third time).
    expect(
      await fired({
        obs: [{ id: id("one"), hash: "h" }],
        records: [{ id: id("one:r"), event: id("one"), hash: "r" }],
      }),
    ).toBe(2);
  });

  it("the horizon refusal's DETAIL is the one the record writer reads", async () => {
    n++;
    const now = await run("record_batch", { obs: [{ id: id("a"), hash: "h1", month: "2025-01" }] }, HORIZON);
    expect(now).toMatchObject({ code: "22L10", message: "before_retention_horizon" });
    expect(JSON.parse((now as { detail: string }).detail)).toEqual({
      id: id("a"),
      month: "2025-01",
      horizon: "2026-01",
    });
  });
});

describe("after 0020, every other writer still gets its keys from the triggers", () => {
  it("release 19's record_batch, release 18's statements and raw SQL inserts", async () => {
    n++;
    const ids = [id("r19"), id("r18"), id("raw")];
    await client.query(
      call("record_batch_0019"),
      args({
        obs: [{ id: ids[0] as string, hash: "h1" }],
        records: [{ id: `${ids[0]}:r`, event: ids[0] as string, hash: "r1" }],
      }),
    );
    const [insert, check, put] = release18Statements(q);
    const a18 = args({
      obs: [{ id: ids[1] as string, hash: "h2" }],
      records: [{ id: `${ids[1]}:r`, event: ids[1] as string, hash: "r2" }],
    });
    await client.query(insert, [a18[0]]);
    await client.query(check, [a18[1]]);
    await client.query(put, [a18[2]]);
    const raw = ids[2] as string;
    const rawRecord = recordRow({ id: `${raw}:r`, event: raw, hash: "r3", month: "2026-04" });
    await client.query(
      `INSERT INTO ${q}.observations (event_id, hash, payload) VALUES ($1, 'h3', $2::jsonb)`,
      [raw, JSON.stringify(payload({ id: raw, hash: "h3", month: "2026-04" }))],
    );
    const columns = [...Object.keys(rawRecord), "completed_at"].join(", ");
    await client.query(
      `INSERT INTO ${q}.rated_records (${columns})
       SELECT ${columns} FROM jsonb_populate_record(NULL::${q}.rated_records, $1::jsonb)`,
      [JSON.stringify({ ...rawRecord, completed_at: rawRecord.completed_text })],
    );
    const s = await state(client, ids);
    expect(s.observationKeys).toEqual(
      [
        { event_id: ids[2], month: "2026-04" },
        { event_id: ids[1], month: "2026-03" },
        { event_id: ids[0], month: "2026-03" },
      ].sort((x, y) => ((x.event_id ?? "") < (y.event_id ?? "") ? -1 : 1)),
    );
    expect(
      s.ratedKeys.map((k: { rated_record_id: string; month: string }) => [k.rated_record_id, k.month]).sort(),
    ).toEqual(
      [
        [`${ids[0]}:r`, "2026-03"],
        [`${ids[1]}:r`, "2026-03"],
        [`${raw}:r`, "2026-04"],
      ].sort(),
    );
    // A raw insert of a stored id is skipped by its key; one before the horizon is refused.
    const again = await client.query(
      `INSERT INTO ${q}.observations (event_id, hash, payload) VALUES ($1, 'other', '{}')`,
      [raw],
    );
    expect(again.rowCount).toBe(0);
    await client.query("BEGIN");
    try {
      await client.query(HORIZON);
      await expect(
        client.query(`INSERT INTO ${q}.observations (event_id, hash, payload) VALUES ($1, 'h', $2::jsonb)`, [
          id("old"),
          JSON.stringify(payload({ id: id("old"), hash: "h", month: "2025-01" })),
        ]),
      ).rejects.toMatchObject({ code: "22L10" });
    } finally {
      await client.query("ROLLBACK");
    }
    expect((await state(client, ids)).observations).toHaveLength(3);
  });
});

describe("latch.keys_written never outlives the call", () => {
  const rawInsert = (eventId: string) =>
    client.query(`INSERT INTO ${q}.observations (event_id, hash, payload) VALUES ($1, 'h', '{}')`, [eventId]);

  it("a later insert in the same transaction writes its key; a caller's own setting is put back", async () => {
    n++;
    for (const preset of [undefined, "on", "off"]) {
      const a = `${id("a")}-${preset}`;
      const later = `${id("later")}-${preset}`;
      await client.query("BEGIN");
      try {
        if (preset !== undefined)
          await client.query(`SELECT set_config('latch.keys_written', $1, true)`, [preset]);
        const before = (await client.query(`SELECT current_setting('latch.keys_written', true) AS f`)).rows[0]
          .f;
        await client.query(
          call("record_batch"),
          args({
            obs: [
              { id: a, hash: "h1" },
              { id: `${a}-2`, hash: "h2" },
            ],
            records: [{ id: `${a}:r`, event: a, hash: "r1" }],
          }),
        );
        const after = (await client.query(`SELECT current_setting('latch.keys_written', true) AS f`)).rows[0]
          .f;
        expect(after ?? "").toBe(before ?? "");
        if (preset === "on") await client.query(`SELECT set_config('latch.keys_written', 'off', true)`);
        await rawInsert(later);
        const s = await state(client, [a, later]);
        // record_batch wrote its keys whatever the caller had set; the later insert got its own.
        expect((await state(client, [`${a}-2`])).observationKeys).toHaveLength(1);
        expect(s.observationKeys.map((k: { event_id: string }) => k.event_id)).toEqual([a, later]);
        expect(s.ratedKeys).toHaveLength(1);
      } finally {
        await client.query("ROLLBACK");
      }
    }
  });

  it("an error raised while it is on, rolled back to a savepoint, puts it back", async () => {
    n++;
    const later = id("later");
    await client.query("BEGIN");
    try {
      await client.query("SAVEPOINT s");
      // An id too long for the key index fails the set-based key insert itself.
      const long = randomBytes(3000).toString("hex");
      await expect(
        client.query(
          call("record_batch"),
          args({
            obs: [
              { id: long, hash: "h" },
              { id: id("short"), hash: "h" },
            ],
          }),
        ),
      ).rejects.toMatchObject({
        code: "54000",
      });
      await client.query("ROLLBACK TO SAVEPOINT s");
      expect(
        (await client.query(`SELECT current_setting('latch.keys_written', true) AS f`)).rows[0].f ?? "",
      ).not.toBe("on");
      await rawInsert(later);
      expect((await state(client, [later])).observationKeys).toHaveLength(1);
    } finally {
      await client.query("ROLLBACK");
    }
  });
});

describe("concurrent batches on shared ids", () => {
  const waitingOn = async (pid: number) => {
    for (let i = 0; i < 500; i++) {
      const { rows } = await client.query(`SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1`, [
        pid,
      ]);
      if (rows[0]?.wait_event_type === "Lock") return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`backend ${pid} never waited on a lock`);
  };

  /**
   * T1 holds a and b; T2 sends c then b (so 0019 inserts c's key first, then waits on b); T1
   * then writes c. Row by row in batch order that is a deadlock; in id order T2 waits on b
   * before it takes c, so T1 goes on, commits, and T2 finds every id stored.
   */
  async function opposite(fn: string) {
    n++;
    const [a, b, c] = [id("a"), id("b"), id("c")];
    const t1 = await connect();
    const t2 = await connect();
    const pid2 = (await t2.query("SELECT pg_backend_pid() AS pid")).rows[0].pid as number;
    await t1.query("BEGIN");
    await t2.query("BEGIN");
    try {
      await t1.query(
        call(fn),
        args({
          obs: [
            { id: a, hash: "h" },
            { id: b, hash: "h" },
          ],
        }),
      );
      const second = t2
        .query(
          call(fn),
          args({
            obs: [
              { id: c, hash: "h" },
              { id: b, hash: "h" },
            ],
          }),
        )
        .then(
          (r) => r.rows,
          (e: { code?: string }) => ({ code: e.code }),
        );
      await waitingOn(pid2);
      const first = await t1.query(call(fn), args({ obs: [{ id: c, hash: "h" }] })).then(
        (r) => r.rows,
        (e: { code?: string }) => ({ code: e.code }),
      );
      await t1.query(Array.isArray(first) ? "COMMIT" : "ROLLBACK");
      const out = await second;
      await t2.query(Array.isArray(out) ? "COMMIT" : "ROLLBACK");
      return { first, second: out, state: await state(client, [a, b, c]) };
    } finally {
      await t1.query("ROLLBACK").catch(() => undefined);
      await t2.query("ROLLBACK").catch(() => undefined);
    }
  }

  it("in opposite orders: 0020 locks ids in one order (no deadlock), each id once", async () => {
    const { first, second, state: s } = await opposite("record_batch");
    expect(first).toEqual([{ n: 1, appended: true, id: null, payload: null }]);
    // T2 found b and c stored by T1: nothing appended, nothing duplicated.
    expect(second).toEqual([
      { n: 1, appended: false, id: null, payload: null },
      { n: 2, appended: false, id: null, payload: null },
    ]);
    expect(s.observations).toHaveLength(3);
    expect(s.observationKeys).toHaveLength(3);
  }, 30_000);

  it("(the same two batches through 0019's row-by-row keys deadlock: the case is a real one)", async () => {
    const { first, second } = await opposite("record_batch_0019");
    expect([first, second]).toContainEqual({ code: "40P01" });
  }, 30_000);

  it("a key another transaction is inserting: waits for it, then skips the row (or reports the conflict)", async () => {
    n++;
    const a = id("a");
    const t1 = await connect();
    const t2 = await connect();
    const pid2 = (await t2.query("SELECT pg_backend_pid() AS pid")).rows[0].pid as number;
    await t1.query("BEGIN");
    // Two events a batch: the set-based path (a batch of one runs 0019's statements).
    const pair = (e: string, hash: string, month?: string) => ({
      obs: [
        { id: e, hash, month },
        { id: `${e}~${randomBytes(4).toString("hex")}`, hash: "h" },
      ],
    });
    await t1.query(call("record_batch"), args(pair(a, "h1")));
    const same = t2.query(call("record_batch"), args(pair(a, "h1")));
    await waitingOn(pid2);
    await t1.query("COMMIT");
    expect((await same).rows).toEqual([
      { n: 1, appended: false, id: null, payload: null },
      { n: 2, appended: true, id: null, payload: null },
    ]);
    await t1.query("BEGIN");
    const b = id("b");
    await t1.query(call("record_batch"), args(pair(b, "h1")));
    // Caught at once: t2's error may arrive before t1's COMMIT answer, and a rejection with no
    // handler yet is reported as unhandled (seen once in CI).
    const other = t2.query(call("record_batch"), args(pair(b, "h2", "2026-05"))).then(
      () => undefined,
      (error: unknown) => error,
    );
    await waitingOn(pid2);
    await t1.query("COMMIT");
    expect(await other).toMatchObject({ code: "LT409" });
    const s = await state(client, [a, b]);
    expect(s.observations.map((o: { hash: string }) => o.hash)).toEqual(["h1", "h1"]);
  }, 30_000);

  it("two writers, many batches over shared ids in random orders: no deadlock, no duplicate", async () => {
    n++;
    const pool = Array.from({ length: 24 }, (_, i) => id(`p${String(i).padStart(2, "0")}`));
    const writers = await Promise.all([connect(), connect()]);
    const shuffled = () =>
      pool
        .filter(() => Math.random() < 0.6)
        .map((e) => [Math.random(), e] as const)
        .sort((x, y) => x[0] - y[0])
        .map(([, e]) => e);
    const failures: unknown[] = [];
    await Promise.all(
      writers.map(async (w) => {
        for (let round = 0; round < 15; round++) {
          const ids = shuffled();
          try {
            await w.query("BEGIN");
            await w.query(
              call("record_batch"),
              args({
                obs: ids.map((e) => ({ id: e, hash: "h" })),
                records: ids.map((e) => ({ id: `${e}:r`, event: e, hash: "r" })),
              }),
            );
            await w.query("COMMIT");
          } catch (error) {
            failures.push((error as { code?: string }).code);
            await w.query("ROLLBACK");
          }
        }
      }),
    );
    expect(failures).toEqual([]);
    const s = await state(client, pool);
    const stored = s.observations.map((o: { event_id: string }) => o.event_id);
    expect(new Set(stored).size).toBe(stored.length);
    expect(s.observationKeys).toHaveLength(stored.length);
    expect(s.rated).toHaveLength(stored.length);
    expect(s.ratedKeys).toHaveLength(stored.length);
  }, 60_000);
});
