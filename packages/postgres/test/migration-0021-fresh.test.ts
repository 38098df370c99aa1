/**
 * Migration 0021: `record_batch` skips the hash check's append_observations (one event, on the
 * triggers' path), the comparison (set-based path) and the priced mark when they cannot change
 * anything: every check names an id the call just inserted with the same hash, every id was
 * just inserted priced. This runs 0020's `record_batch` (the frozen text of the shipped
 * migration, installed as `record_batch_0020` next to the new one) and 0021's on the same
 * cases, each in a rolled-back transaction, alone (a batch of one runs the triggers' path) and
 * padded with a fresh event (the set-based path), and compares what the writer reads, the rows
 * and keys left behind (priced flags, rated records in change-log order) and the error (code,
 * message, DETAIL). Then: the skipped calls are really skipped.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../src/index.js";
import { args, type Batch, frozenRecordBatch, recordBatchRunner, recordRow } from "./record-batch-args.js";
import { DATABASE_URL, freshSchema } from "./support.js";

const schema = freshSchema("fresh21");
const q = `"${schema}"`;
const client = new pg.Client({ connectionString: DATABASE_URL });

beforeAll(async () => {
  await client.connect();
  await migrate(client, { schema });
  await client.query(`SET search_path TO ${q}, pg_temp`);
  await client.query(frozenRecordBatch(20));
  await client.query("RESET search_path");
});

afterAll(async () => {
  await client.query(`DROP SCHEMA IF EXISTS ${q} CASCADE`);
  await client.end();
});

const { call, run } = recordBatchRunner(client, q);

let n = 0;
const id = (name: string) => `p21-${n}-${name}`;

/** Committed by another transaction first, as a concurrent writer's rows would be. */
async function stored(b: Batch): Promise<void> {
  await client.query(call("record_batch_0020"), args(b));
}

const HORIZON = `INSERT INTO ${q}.retention_horizon (before_month) VALUES ('2026-01')
  ON CONFLICT (singleton) DO UPDATE SET before_month = EXCLUDED.before_month`;

const fresh = (name: string, hash = "h1", month?: string) => ({
  obs: [{ id: id(name), hash, month }],
  records: [{ id: id(`${name}:r`), event: id(name), hash: "r1", month }],
});

describe("migration 0021: record_batch answers and writes as 0020's did", () => {
  const cases: Array<[string, () => Promise<{ batch: Batch; setup?: string; error?: string }>]> = [
    [
      "one new event, priced (the shortcut: no hash-check call, no priced mark)",
      async () => ({ batch: fresh("a") }),
    ],
    ["one new event, unpriced", async () => ({ batch: { obs: [{ id: id("a"), hash: "h1" }] } })],
    ["empty batch", async () => ({ batch: { obs: [] } })],
    [
      "new events, priced, sent out of id order",
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
    [
      "an id twice in one batch, same hash, one check",
      async () => ({
        batch: {
          obs: [
            { id: id("a"), hash: "h1", month: "2026-04" },
            { id: id("a"), hash: "h1" },
          ],
          records: [{ id: id("a:r"), event: id("a"), hash: "r1" }],
          checks: [{ id: id("a"), hash: "h1" }],
        },
      }),
    ],
    [
      "an id twice in one batch, same hash, checked twice",
      async () => ({
        batch: {
          obs: [
            { id: id("a"), hash: "h1" },
            { id: id("a"), hash: "h1" },
          ],
          records: [{ id: id("a:r"), event: id("a"), hash: "r1" }],
        },
      }),
    ],
    [
      "an id twice in one batch with another hash: LT409, same DETAIL",
      async () => ({
        batch: {
          obs: [
            { id: id("a"), hash: "h1" },
            { id: id("a"), hash: "h2", month: "2026-05" },
          ],
          records: [{ id: id("a:r"), event: id("a"), hash: "r1" }],
        },
        error: "LT409",
      }),
    ],
    [
      "an id twice with another hash, only the second checked: LT409",
      async () => ({
        batch: {
          obs: [
            { id: id("a"), hash: "h1" },
            { id: id("a"), hash: "h2" },
          ],
          checks: [{ id: id("a"), hash: "h2" }],
        },
        error: "LT409",
      }),
    ],
    [
      "an id already stored with another hash: LT409, same DETAIL",
      async () => {
        await stored({ obs: [{ id: id("a"), hash: "h1" }] });
        return { batch: fresh("a", "hX"), error: "LT409" };
      },
    ],
    [
      "an event and its record stored: already there, its record answered with its payload",
      async () => {
        await stored(fresh("a"));
        return { batch: fresh("a") };
      },
    ],
    [
      "a record another writer stored (another id): it stands and is answered",
      async () => {
        await stored({
          obs: [{ id: id("a"), hash: "h1" }],
          records: [{ id: id("a:other"), event: id("a"), hash: "rO" }],
        });
        return { batch: fresh("a") };
      },
    ],
    [
      "an unpriced observation stored, its record now: marked priced",
      async () => {
        await stored({ obs: [{ id: id("a"), hash: "h1" }] });
        return { batch: fresh("a") };
      },
    ],
    [
      "a record stored, its observation not (sent unpriced): marked priced",
      async () => {
        await client.query(`SELECT ${q}.put_rated_records($1::jsonb)`, [
          JSON.stringify([recordRow({ id: id("a:other"), event: id("a"), hash: "rO" })]),
        ]);
        return { batch: { obs: [{ id: id("a"), hash: "h1" }] } };
      },
    ],
    [
      "sent priced without its record (the record another writer's): the mark is the UPDATE's",
      async () => ({ batch: { obs: [{ id: id("a"), hash: "h1", priced: true }] } }),
    ],
    [
      "a batch mixing fresh and stored ids (stored priced, stored unpriced, stored with a record)",
      async () => {
        await stored(fresh("b"));
        await stored({ obs: [{ id: id("c"), hash: "h3" }] });
        await stored({
          obs: [{ id: id("d"), hash: "h4" }],
          records: [{ id: id("d:other"), event: id("d"), hash: "rO" }],
        });
        return {
          batch: {
            obs: [
              { id: id("a"), hash: "h1" },
              { id: id("b"), hash: "h1" },
              { id: id("c"), hash: "h3" },
              { id: id("d"), hash: "h4" },
              { id: id("e"), hash: "h5", month: "2026-04" },
            ],
            records: [
              { id: id("a:r"), event: id("a"), hash: "r1" },
              { id: id("b:r"), event: id("b"), hash: "r1" },
              { id: id("c:r"), event: id("c"), hash: "r3" },
              { id: id("d:r"), event: id("d"), hash: "r4" },
              { id: id("e:r"), event: id("e"), hash: "r5", month: "2026-04" },
            ],
          },
        };
      },
    ],
    [
      "a month before the retention horizon (22L10, same DETAIL)",
      async () => ({ batch: fresh("a", "h1", "2025-01"), setup: HORIZON, error: "22L10" }),
    ],
    [
      "only the record before the horizon (22L10 names the record)",
      async () => ({
        batch: {
          obs: [{ id: id("a"), hash: "h1", month: null }],
          records: [{ id: id("a:r"), event: id("a"), hash: "r1", month: "2025-02" }],
        },
        setup: HORIZON,
        error: "22L10",
      }),
    ],
    [
      "a check naming a month before the horizon (22L10 from the hash check's call)",
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
      "a check naming a month after the horizon (the call runs, inserts nothing)",
      async () => ({
        batch: {
          obs: [{ id: id("a"), hash: "h1" }],
          checks: [{ id: id("a"), hash: "h1", month: "2026-06" }],
        },
        setup: HORIZON,
      }),
    ],
    [
      "a check naming an id the batch does not insert (the call inserts it)",
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
      "a check with a NULL id (23502 from the call's key)",
      async () => ({
        batch: {
          obs: [{ id: id("a"), hash: "h1" }],
          checks: [
            { id: id("a"), hash: "h1" },
            { id: null, hash: "hz" },
          ],
        },
        error: "23502",
      }),
    ],
    [
      "a check with a NULL hash",
      async () => ({
        batch: { obs: [{ id: id("a"), hash: "h1" }], checks: [{ id: id("a"), hash: null }] },
      }),
    ],
    [
      "checks that are not an array (the same error)",
      async () => ({ batch: { obs: [{ id: id("a"), hash: "h1" }], rawChecks: { event_id: id("a") } } }),
    ],
    [
      "checks holding a non-object (the same error)",
      async () => ({ batch: { obs: [{ id: id("a"), hash: "h1" }], rawChecks: [5] } }),
    ],
    ["a NULL hash (23502)", async () => ({ batch: { obs: [{ id: id("a"), hash: null }] }, error: "23502" })],
    [
      "a NULL event id (23502)",
      async () => ({ batch: { obs: [{ id: null, hash: "h1" }], checks: [] }, error: "23502" }),
    ],
    [
      "a NULL hash of a stored id: skipped by its key, no error",
      async () => {
        await stored({ obs: [{ id: id("a"), hash: "h1" }] });
        return { batch: { obs: [{ id: id("a"), hash: null }], checks: [] } };
      },
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
      "p_ids naming an id the batch does not hold, and a NULL",
      async () => {
        await stored({
          obs: [{ id: id("s"), hash: "h1" }],
          records: [{ id: id("s:r"), event: id("s"), hash: "r1" }],
        });
        await client.query(`UPDATE ${q}.observations SET priced = false WHERE event_id = $1`, [id("s")]);
        return { batch: { ...fresh("a"), ids: [id("a"), id("s"), null] } };
      },
    ],
    ["p_ids NULL", async () => ({ batch: { ...fresh("a"), ids: null as unknown as string[] } })],
    [
      "a payload without timing.completedAt (key month NULL)",
      async () => ({ batch: { obs: [{ id: id("a"), hash: "h1", month: null }] } }),
    ],
    [
      "inside maintain_partitions' move (latch.partition_move on): no keys, the calls insert",
      async () => {
        await stored({ obs: [{ id: id("a"), hash: "h1" }] });
        await client.query(`UPDATE ${q}.observations SET priced = false WHERE event_id = $1`, [id("a")]);
        return {
          batch: {
            obs: [
              { id: id("a"), hash: "h1" },
              { id: id("a"), hash: "h1", month: "2025-01" },
            ],
            records: [{ id: id("a:r"), event: id("a"), hash: "r1", month: "2025-01" }],
          },
          setup: `${HORIZON}; SELECT set_config('latch.partition_move', 'on', true)`,
        };
      },
    ],
    [
      "one event inside a partition move",
      async () => ({
        batch: fresh("a"),
        setup: `SELECT set_config('latch.partition_move', 'on', true)`,
      }),
    ],
  ];
  // Each case alone and with a fresh event added (a batch of one runs the triggers' path).
  const padded = (b: Batch): Batch => ({
    ...b,
    obs: [...b.obs, { id: id("~pad"), hash: "hp" }],
    checks: b.checks === undefined ? undefined : [...b.checks, { id: id("~pad"), hash: "hp" }],
    ids: b.ids === undefined || b.ids === null ? b.ids : [...b.ids, id("~pad")],
  });
  for (const [name, make] of cases)
    it(name, async () => {
      n++;
      const { batch, setup, error } = await make();
      for (const b of [batch, padded(batch)]) {
        const before = await run("record_batch_0020", b, setup);
        const now = await run("record_batch", b, setup);
        expect(now).toEqual(before);
        if (error !== undefined) expect(now).toMatchObject({ code: error });
      }
    });
});

describe("what 0021 skips", () => {
  /**
   * Calls of the given functions during one record_batch call (rolled back): counted before and
   * after it in its transaction (the backend's counts since its last report hold earlier calls).
   */
  async function calls(b: Batch, fns: string[]) {
    const counts = async () => {
      const out: Record<string, number> = {};
      for (const fn of fns) {
        const { rows } = await client.query(
          `SELECT coalesce(pg_stat_get_xact_function_calls('${q}.${fn}'::regproc), 0)::int AS n`,
        );
        out[fn] = rows[0].n;
      }
      return out;
    };
    await client.query("BEGIN");
    try {
      await client.query("SET LOCAL track_functions = 'pl'");
      const before = await counts();
      await client.query(call("record_batch"), args(b));
      const after = await counts();
      return Object.fromEntries(fns.map((fn) => [fn, (after[fn] ?? 0) - (before[fn] ?? 0)]));
    } finally {
      await client.query("ROLLBACK");
    }
  }
  const FNS = ["append_observations", "observations_key", "rated_records_key"];

  it("one new event: its observation's key and its record's, no hash-check call", async () => {
    n++;
    expect(await calls(fresh("a"), FNS)).toEqual({
      append_observations: 0,
      observations_key: 1,
      rated_records_key: 1,
    });
  });

  it("one event stored before: the hash check's call runs (its key trigger skips the row)", async () => {
    n++;
    await stored(fresh("a"));
    expect(await calls(fresh("a"), FNS)).toEqual({
      append_observations: 1,
      observations_key: 2,
      rated_records_key: 0,
    });
  });

  it("a new batch: no trigger, no call", async () => {
    n++;
    const events = Array.from({ length: 8 }, (_, i) => id(`e${i}`));
    expect(
      await calls(
        {
          obs: events.map((e) => ({ id: e, hash: "h" })),
          records: events.map((e) => ({ id: `${e}:r`, event: e, hash: "r" })),
        },
        FNS,
      ),
    ).toEqual({ append_observations: 0, observations_key: 0, rated_records_key: 0 });
  });
});
