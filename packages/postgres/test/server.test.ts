import type { RatedUsageRecord } from "@latch/core";
import type { ChangeLogEntry } from "@latch/core/adapter";
import {
  makeObservation,
  makeRatedRecord,
  observationStoreSuite,
  runConformance,
  uniqueId,
} from "@latch/testkit";
import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import {
  MIGRATIONS,
  migrate,
  PostgresBusyError,
  PostgresObservationStore,
  PostgresQuota,
  PostgresRatedRecordStore,
  PostgresUsageCounter,
  REQUIRED_SCHEMA_VERSION,
  SchemaIncompatibleError,
  SchemaNotMigratedError,
} from "../src/index.js";
import { applyMigrations } from "../src/migrator.js";
import { apiKeySuite } from "./api-key-support.js";
import { describeChangeLogHoldOnServer } from "./change-log-status-support.js";
import { creditSuites } from "./credit-support.js";
import { describeUnderDefaultIsolation } from "./isolation-support.js";
import { ALL, count, DATABASE_URL, describeQuotaSweep, freshSchema, LATEST, storeSuites } from "./support.js";

// Everything that runs against the server lives in this one file, so its tests run one after
// another: an open transaction in one test would otherwise hold back another test's change log.
const schema = freshSchema("srv");
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 20 });

// Connect and migrate once; every test awaits it, so an unreachable server fails every test
// (a failing beforeAll would only mark them skipped).
let ready: Promise<void> | undefined;
beforeEach(async () => {
  ready ??= migrate(pool, { schema }).then((result) => {
    expect(result).toEqual({ version: LATEST, applied: ALL });
  });
  await ready;
});

afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

runConformance({
  name: "postgres",
  suites: [
    ...storeSuites(() => pool, schema, { quota: 100_000 }),
    ...creditSuites(() => pool, schema, 10_000),
    apiKeySuite(() => pool, schema),
  ],
});
describeQuotaSweep(
  "postgres",
  () => pool,
  () => freshSchema("sweep"),
);
describeChangeLogHoldOnServer(() => pool, schema, DATABASE_URL);

// The COPY-staged batch path (every batch, even of one, through COPY) passes the same suite.
runConformance({
  name: "postgres, COPY-staged batches",
  suites: [
    observationStoreSuite({
      create: () => new PostgresObservationStore(pool, { schema, copyFrom, copyThreshold: 1 }),
      inspect: {
        countObservations: (id) =>
          count(pool, `SELECT 1 FROM "${schema}".observations WHERE event_id = $1`, [id]),
      },
    }),
  ],
});

/** Follows the change log to its current end. */
async function drain(store: PostgresRatedRecordStore, cursor: string | undefined) {
  const entries: ChangeLogEntry[] = [];
  for (;;) {
    const page = await store.listSince(cursor, 500);
    if (page.items.length === 0) return { entries, cursor };
    entries.push(...page.items);
    cursor = page.cursor;
  }
}

/**
 * Follows the change log until it has handed out `want` entries, for up to a minute: another
 * session on the shared server (a second test run) with an open transaction holds the log back
 * for a while, by design.
 */
async function drainUntil(store: PostgresRatedRecordStore, cursor: string | undefined, want: number) {
  const entries: ChangeLogEntry[] = [];
  const deadline = Date.now() + 60_000;
  for (;;) {
    const page = await drain(store, cursor);
    entries.push(...page.entries);
    cursor = page.cursor;
    if (entries.length >= want || Date.now() > deadline) return { entries, cursor };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const record = (): RatedUsageRecord =>
  makeRatedRecord({ observation: { eventId: `${uniqueId("ev")}:0:openai` } });

describe("postgres: must-shows", () => {
  it("does not skip a version whose transaction commits after a later one (out-of-order commit)", async () => {
    const store = new PostgresRatedRecordStore(pool, { schema });
    const start = (await drain(store, undefined)).cursor;
    const early = await pool.connect();
    const late = await pool.connect();
    const a = record();
    const b = record();
    try {
      await early.query("BEGIN");
      await late.query("BEGIN");
      expect(await new PostgresRatedRecordStore(early, { schema }).put(a)).toBe("stored");
      expect(await new PostgresRatedRecordStore(late, { schema }).put(b)).toBe("stored");
      const ids = await pool.query(
        `SELECT rated_record_id, id::text FROM "${schema}".rated_records WHERE rated_record_id = ANY($1) ORDER BY id`,
        [[a.ratedRecordId, b.ratedRecordId]],
      );
      expect(ids.rows).toEqual([]); // neither is committed yet
      await late.query("COMMIT"); // b, the later position, commits first

      const whileOpen = await drain(store, start);
      const seenWhileOpen = whileOpen.entries.map((e) => e.record.ratedRecordId);
      expect(seenWhileOpen).not.toContain(b.ratedRecordId); // held back behind a's open transaction
      expect(seenWhileOpen).not.toContain(a.ratedRecordId);
      expect(whileOpen.cursor).toBe(start);

      await early.query("COMMIT");
    } finally {
      early.release();
      late.release();
    }
    const after = await drainUntil(store, start, 2);
    expect(after.entries.map((e) => e.record.ratedRecordId)).toEqual([a.ratedRecordId, b.ratedRecordId]);
    const [first, second] = after.entries.map((e) => BigInt(e.seq));
    expect((first as bigint) < (second as bigint)).toBe(true);
  });

  it("orders the change log by number, not text, across a digit boundary of the row ids", async () => {
    const store = new PostgresRatedRecordStore(pool, { schema });
    const start = (await drain(store, undefined)).cursor;
    await pool.query(
      `SELECT setval('"${schema}".rated_records_id_seq', greatest(99999998, last_value)) FROM "${schema}".rated_records_id_seq`,
    );
    const batch = [record(), record(), record(), record()];
    await store.putMany(batch);
    const { entries } = await drainUntil(store, start, batch.length);
    expect(entries.map((e) => e.record.ratedRecordId)).toEqual(batch.map((r) => r.ratedRecordId));
    const seqs = entries.map((e) => BigInt(e.seq));
    expect(seqs.every((seq, i) => i === 0 || seq > (seqs[i - 1] as bigint))).toBe(true);
  });

  it("applies migrations once when 20 connections call migrate at the same time", async () => {
    const target = freshSchema("mig");
    const many = new pg.Pool({ connectionString: DATABASE_URL, max: 20 });
    try {
      const results = await Promise.all(Array.from({ length: 20 }, () => migrate(many, { schema: target })));
      expect(results.filter((r) => r.applied.length > 0)).toEqual([{ version: LATEST, applied: ALL }]);
      expect(results.every((r) => r.version === LATEST)).toBe(true);
      expect(await count(many, `SELECT 1 FROM "${target}".latch_migrations`, [])).toBe(ALL.length);
    } finally {
      await many.query(`DROP SCHEMA IF EXISTS "${target}" CASCADE`);
      await many.end();
    }
  });

  it("migrates through a single pg.Client too (its own BEGIN/COMMIT), and then finds nothing to do", async () => {
    const target = freshSchema("cli");
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    try {
      expect(await migrate(client, { schema: target })).toEqual({ version: LATEST, applied: ALL });
      expect(await migrate(client, { schema: target })).toEqual({ version: LATEST, applied: [] });
      expect(await count(client, `SELECT 1 FROM "${target}".latch_migrations`, [])).toBe(ALL.length);
    } finally {
      await client.query(`DROP SCHEMA IF EXISTS "${target}" CASCADE`);
      await client.end();
    }
  });

  it("fails with SchemaNotMigratedError on a schema that was never migrated", async () => {
    const store = new PostgresObservationStore(pool, { schema: freshSchema("none") });
    await expect(store.append(makeObservation({}))).rejects.toBeInstanceOf(SchemaNotMigratedError);
    const quota = new PostgresQuota(pool, { schema: freshSchema("none") });
    const reserve = quota.reserve({ holdId: "h", account: "a", amount: 1, ttlMs: 1_000 });
    await expect(reserve).rejects.toBeInstanceOf(SchemaNotMigratedError); // a deployment error, not an outage
    await expect(store.get("x:0:openai")).rejects.toMatchObject({
      code: "schema_not_migrated",
      found: 0,
      required: LATEST,
    });
  });

  it("fails closed when the database cannot answer: reserve denies as unavailable, the rest throw quota_unavailable", async () => {
    const down = new pg.Pool({
      connectionString: "postgres://postgres@127.0.0.1:1/none",
      connectionTimeoutMillis: 2_000,
    });
    try {
      const quota = new PostgresQuota(down, { schema });
      const request = { holdId: uniqueId("hold"), account: uniqueId("acct"), amount: 1, ttlMs: 60_000 };
      expect(await quota.reserve(request)).toEqual({ granted: false, reason: "unavailable" });
      // Started together and settled together: awaiting them one by one left the later ones
      // without a handler while an earlier one was awaited, and a rejection with no handler yet
      // is reported as unhandled.
      const calls = await Promise.allSettled([
        quota.commit(request.holdId, 1),
        quota.void(request.holdId),
        quota.balance(request.account),
        quota.check(request.account, 1),
        quota.setLimit(request.account, 10),
      ]);
      expect(calls.map((call) => call.status)).toEqual(Array(5).fill("rejected"));
      for (const call of calls) {
        expect((call as PromiseRejectedResult).reason).toMatchObject({
          code: "quota_unavailable",
          isRetryable: true,
        });
      }
    } finally {
      await down.end();
    }
  });

  it("grants exactly the limit of 10,000 concurrent reserves over 20 connections", async () => {
    const quota = new PostgresQuota(pool, { schema });
    const account = uniqueId("acct");
    await quota.setLimit(account, 4_000);
    const results = await Promise.all(
      Array.from({ length: 10_000 }, (_, i) =>
        quota.reserve({ holdId: `${account}-${i}`, account, amount: 1, ttlMs: 600_000 }),
      ),
    );
    const granted = results.filter((r) => r.granted).length;
    expect(granted).toBe(4_000);
    expect(results.filter((r) => !r.granted && r.reason === "insufficient")).toHaveLength(6_000);
    expect(await quota.balance(account)).toEqual({ limit: 4_000, spent: 0, held: 4_000, available: 0 });
    expect(await count(pool, `SELECT 1 FROM "${schema}".quota_holds WHERE account = $1`, [account])).toBe(
      4_000,
    );
  }, 120_000);

  for (const path of ["one statement", "COPY-staged"] as const) {
    it(`stores a batch wholly or not at all when its backend is terminated mid-batch (${path}); a retry adds no duplicate`, async () => {
      const prefix = uniqueId("kill");
      const batch = Array.from({ length: 2_000 }, (_, i) =>
        makeObservation({ eventId: `${prefix}-${String(i).padStart(5, "0")}:0:openai` }),
      );
      const middle = batch[1_000];
      if (middle === undefined) throw new Error("unreachable");
      const ours = `SELECT 1 FROM "${schema}".observations WHERE event_id LIKE $1`;

      // A second session holds the middle id uncommitted, so the batch's insert blocks there,
      // half written, until we terminate its backend.
      const blocker = await pool.connect();
      // The victim: one session (a pool of one for the COPY path, which needs a pool).
      let victim: pg.Pool | pg.Client;
      if (path === "COPY-staged") {
        victim = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
        victim.on("error", () => undefined);
      } else {
        victim = new pg.Client({ connectionString: DATABASE_URL });
        victim.on("error", () => undefined);
        await victim.connect();
      }
      const victimStore = new PostgresObservationStore(victim, { schema, copyFrom, copyThreshold: 1 });
      try {
        await blocker.query("BEGIN");
        await new PostgresObservationStore(blocker, { schema }).append(middle);
        const pid = Number((await victim.query("SELECT pg_backend_pid() AS pid")).rows[0].pid);
        const pending = victimStore.appendMany(batch).then(
          () => "resolved",
          (error: unknown) => (error as { code?: string }).code ?? "rejected",
        );
        let blocked = false;
        for (let i = 0; i < 10_000 && !blocked; i++) {
          const { rows } = await pool.query("SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", [
            pid,
          ]);
          blocked = (rows[0] as { wait_event_type: string | null } | undefined)?.wait_event_type === "Lock";
        }
        expect(blocked).toBe(true); // the batch is mid-statement, its first half written
        expect((await pool.query("SELECT pg_terminate_backend($1) AS ok", [pid])).rows[0].ok).toBe(true);
        expect(await pending).toBe("57P01"); // admin_shutdown: the client saw its backend die
        await blocker.query("ROLLBACK");
      } finally {
        blocker.release();
        await victim.end().catch(() => undefined);
      }
      expect(await count(pool, ours, [`${prefix}-%`])).toBe(0); // wholly absent

      const retried = await new PostgresObservationStore(pool, { schema }).appendMany(batch);
      expect(retried.every((r) => r === "appended")).toBe(true);
      expect(await new PostgresObservationStore(pool, { schema }).appendMany(batch)).toEqual(
        batch.map(() => "already_exists"),
      );
      expect(await count(pool, ours, [`${prefix}-%`])).toBe(2_000);
    });
  }

  it("leaves no trace of an observation, a rated record or a hold when the caller's transaction rolls back", async () => {
    const quota = new PostgresQuota(pool, { schema });
    const account = uniqueId("acct");
    await quota.setLimit(account, 100);
    const observation = makeObservation({});
    const rated = record();
    const holdId = uniqueId("hold");
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      expect(await new PostgresObservationStore(client, { schema }).append(observation)).toBe("appended");
      expect(await new PostgresRatedRecordStore(client, { schema }).put(rated)).toBe("stored");
      expect(
        await new PostgresQuota(client, { schema }).reserve({ holdId, account, amount: 40, ttlMs: 60_000 }),
      ).toEqual({ granted: true, remaining: 60 });
      // Visible inside the transaction…
      expect(await count(client, `SELECT 1 FROM "${schema}".quota_holds WHERE hold_id = $1`, [holdId])).toBe(
        1,
      );
      await client.query("ROLLBACK");
    } finally {
      client.release();
    }
    // …and gone after the rollback.
    expect(
      await count(pool, `SELECT 1 FROM "${schema}".observations WHERE event_id = $1`, [observation.eventId]),
    ).toBe(0);
    expect(
      await count(pool, `SELECT 1 FROM "${schema}".rated_records WHERE event_id = $1`, [rated.eventId]),
    ).toBe(0);
    expect(await count(pool, `SELECT 1 FROM "${schema}".quota_holds WHERE hold_id = $1`, [holdId])).toBe(0);
    expect(await quota.balance(account)).toEqual({ limit: 100, spent: 0, held: 0, available: 100 });
  });

  it("sweepExpired skips an account another transaction holds instead of waiting, and releases it on a later sweep", async () => {
    const target = freshSchema("skip");
    await migrate(pool, { schema: target });
    const quota = new PostgresQuota(pool, { schema: target });
    const client = await pool.connect();
    try {
      for (const account of ["busy", "idle"]) {
        await quota.setLimit(account, 100);
        await quota.reserve({ holdId: `${account}-1`, account, amount: 30, ttlMs: 50 });
      }
      await new Promise((resolve) => setTimeout(resolve, 150));
      await client.query("BEGIN");
      // An open transaction locks the busy account's row (a balance-changing call inside it).
      await new PostgresQuota(client, { schema: target }).setLimit("busy", 200);
      const sweep = quota.sweepExpired();
      const outcome = await Promise.race([
        sweep,
        // Skipping answers at once; waiting would last until the COMMIT below: 30 s tells them
        // apart on a loaded machine too (5 s was a duration a starved sweep could reach).
        new Promise((resolve) => setTimeout(() => resolve("waited"), 30_000)),
      ]);
      expect(outcome).toEqual({ released: 1 }); // the idle account's hold; it did not wait on busy
      await client.query("COMMIT");
    } finally {
      client.release();
    }
    expect(await quota.sweepExpired()).toEqual({ released: 1 });
    expect(await quota.balance("busy")).toEqual({ limit: 200, spent: 0, held: 0, available: 200 });
    const { rows } = await pool.query(
      `SELECT account, held::text AS held FROM "${target}".quota_accounts ORDER BY account`,
    );
    expect(rows).toEqual([
      { account: "busy", held: "0" },
      { account: "idle", held: "0" },
    ]);
    await pool.query(`DROP SCHEMA "${target}" CASCADE`);
  });

  it("COPY path: new batches go straight into the table; a batch meeting stored ids falls back to the stage on the same session, with the same answers and errors", async () => {
    const one = new pg.Pool({ connectionString: DATABASE_URL, max: 1 }); // one session throughout
    try {
      const store = new PostgresObservationStore(one, { schema, copyFrom, copyThreshold: 1 });
      const prefix = uniqueId("direct");
      const make = (i: number) =>
        makeObservation({ eventId: `${prefix}-${String(i).padStart(5, "0")}:0:openai` });
      const ours = `SELECT 1 FROM "${schema}".observations WHERE event_id LIKE $1`;
      const first = Array.from({ length: 1_500 }, (_, i) => make(i));
      expect(await store.appendMany(first)).toEqual(first.map(() => "appended"));
      // Half stored, half new, one id twice: the direct COPY fails on the first stored id.
      const mixed = [
        ...first.slice(1_000),
        ...Array.from({ length: 500 }, (_, i) => make(2_000 + i)),
        make(2_000),
      ];
      expect(await store.appendMany(mixed)).toEqual([
        ...first.slice(1_000).map(() => "already_exists"),
        ...Array.from({ length: 500 }, () => "appended"),
        "already_exists",
      ]);
      // The next all-new batch (after a fallback it is staged first, then direct again).
      for (const base of [3_000, 4_000]) {
        const fresh = Array.from({ length: 700 }, (_, i) => make(base + i));
        expect(await store.appendMany(fresh)).toEqual(fresh.map(() => "appended"));
      }
      expect(await count(one, ours, [`${prefix}-%`])).toBe(1_500 + 500 + 1_400);
      // A stored id first, then megabytes of new rows: the server fails the COPY while the
      // client is still streaming; the session survives and the stage stores the rest.
      const big = [make(0), ...Array.from({ length: 6_000 }, (_, i) => make(10_000 + i))];
      expect(await store.appendMany(big)).toEqual(["already_exists", ...big.slice(1).map(() => "appended")]);
      // An all-new batch (staged, after that fallback) turns the direct COPY back on; then a
      // stored id at the very end fails it after every row was sent.
      expect(await store.appendMany([make(30_000)])).toEqual(["appended"]);
      const big2 = [...Array.from({ length: 6_000 }, (_, i) => make(20_000 + i)), make(1)];
      expect(await store.appendMany(big2)).toEqual([
        ...big2.slice(0, -1).map(() => "appended"),
        "already_exists",
      ]);
      expect(await count(one, ours, [`${prefix}-%`])).toBe(1_500 + 500 + 1_400 + 12_001);
      // A stored id with another payload: a conflict, and nothing of the batch is written.
      const clash = makeObservation({ ...make(10), meters: { input_tokens: 1, output_tokens: 1 } });
      const withClash = [...Array.from({ length: 300 }, (_, i) => make(5_000 + i)), clash];
      await expect(store.appendMany(withClash)).rejects.toMatchObject({
        code: "idempotency_conflict",
        id: clash.eventId,
      });
      // Two payloads for one new id late in an all-new batch: a conflict, nothing written.
      const twice = [
        ...Array.from({ length: 300 }, (_, i) => make(6_000 + i)),
        { ...make(6_000), meters: { input_tokens: 2 } },
      ];
      await expect(store.appendMany(twice as never)).rejects.toMatchObject({ code: "idempotency_conflict" });
      expect(await count(one, ours, [`${prefix}-%`])).toBe(1_500 + 500 + 1_400 + 12_001);
      expect(await store.get(make(10).eventId)).toEqual(make(10));
    } finally {
      await one.end();
    }
  });

  it("a held row lock: reserve denies unavailable within its lock timeout, the other calls fail with a typed retryable error, and nothing is written", async () => {
    const quota = new PostgresQuota(pool, { schema, lockTimeoutMs: 300 });
    const counter = new PostgresUsageCounter(pool, { schema, lockTimeoutMs: 300 });
    const slowCounter = new PostgresUsageCounter(pool, { schema, lockTimeoutMs: 0, statementTimeoutMs: 300 });
    const account = uniqueId("acct");
    const key = uniqueId("usage");
    await quota.setLimit(account, 100);
    await quota.reserve({ holdId: `${account}-1`, account, amount: 10, ttlMs: 600_000 });
    await counter.add(key, "2026-03", 5);
    const holder = await pool.connect();
    /** `work`'s outcome, or "hung" if it has none after 10 s. */
    const settled = async (work: Promise<unknown>) => {
      let timer: NodeJS.Timeout | undefined;
      const hung = new Promise((resolve) => {
        timer = setTimeout(() => resolve("hung"), 10_000);
      });
      try {
        return await Promise.race([
          work.then(
            (value) => ({ value }),
            (error: unknown) => ({ error }),
          ),
          hung,
        ]);
      } finally {
        clearTimeout(timer);
      }
    };
    try {
      await holder.query("BEGIN");
      await holder.query(`SELECT 1 FROM "${schema}".quota_accounts WHERE account = $1 FOR UPDATE`, [account]);
      await holder.query(`SELECT 1 FROM "${schema}".usage_counters WHERE key = $1 FOR UPDATE`, [key]);

      const reserve = quota.reserve({ holdId: `${account}-2`, account, amount: 10, ttlMs: 600_000 });
      expect(await settled(reserve)).toEqual({ value: { granted: false, reason: "unavailable" } });
      const commit = (await settled(quota.commit(`${account}-1`, 10))) as { error: unknown };
      expect(commit.error).toMatchObject({ code: "quota_unavailable", isRetryable: true });
      expect((commit.error as Error).cause).toBeInstanceOf(PostgresBusyError);
      expect((commit.error as Error).cause).toMatchObject({ reason: "lock_timeout", sqlState: "55P03" });

      const add = (await settled(counter.add(key, "2026-03", 1))) as { error: unknown };
      expect(add.error).toBeInstanceOf(PostgresBusyError);
      expect(add.error).toMatchObject({ code: "store_busy", reason: "lock_timeout", isRetryable: true });
      // No lock timeout, but a statement timeout: the wait ends there.
      const slow = (await settled(slowCounter.add(key, "2026-03", 1))) as { error: unknown };
      expect(slow.error).toMatchObject({
        code: "store_busy",
        reason: "statement_timeout",
        sqlState: "57014",
      });
      await holder.query("ROLLBACK");
    } finally {
      holder.release();
    }
    // Nothing of the refused calls was written; the released rows answer again.
    expect(await quota.balance(account)).toEqual({ limit: 100, spent: 0, held: 10, available: 90 });
    expect(await counter.get(key, "2026-03")).toBe(5);
    expect(await quota.reserve({ holdId: `${account}-2`, account, amount: 10, ttlMs: 600_000 })).toEqual({
      granted: true,
      remaining: 80,
    });
    expect(await quota.commit(`${account}-1`, 10)).toEqual({ committed: 10 });
  }, 60_000);

  it("old code keeps working after a newer release's compatible migration, and refuses an incompatible one with SchemaIncompatibleError", async () => {
    const target = freshSchema("compat");
    const required = REQUIRED_SCHEMA_VERSION;
    // What the next release would ship: an additive change old code does not see, declared
    // `-- compatible-from: <this version>`, and then one that old code cannot run against.
    const additive = {
      version: required + 1,
      name: "future_note",
      file: `${String(required + 1).padStart(4, "0")}_future_note.sql`,
      compatibleFrom: required,
      sql: "ALTER TABLE quota_accounts ADD COLUMN note text;\nCREATE INDEX quota_accounts_note ON quota_accounts (note);\n",
    };
    const breaking = {
      version: required + 2,
      name: "future_split",
      file: `${String(required + 2).padStart(4, "0")}_future_split.sql`,
      compatibleFrom: required + 2,
      sql: "ALTER TABLE quota_holds ADD COLUMN owner text NOT NULL DEFAULT 'x';\n",
    };
    const pools: pg.Pool[] = [];
    /** A new process of this (the old) release: a pool of its own, nothing checked yet. */
    const oldPod = () => {
      const p = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
      pools.push(p);
      return p;
    };
    try {
      expect(await migrate(pool, { schema: target })).toEqual({ version: required, applied: ALL });
      expect(await applyMigrations(pool, { schema: target }, [...MIGRATIONS, additive])).toEqual({
        version: required + 1,
        applied: [required + 1],
      });
      const { rows } = await pool.query(
        `SELECT version, compatible_from FROM "${target}".latch_migrations WHERE version > $1 ORDER BY version`,
        [required - 1],
      );
      expect(rows).toEqual([
        { version: required, compatible_from: MIGRATIONS[MIGRATIONS.length - 1]?.compatibleFrom },
        { version: required + 1, compatible_from: required },
      ]);

      const before = oldPod();
      const quota = new PostgresQuota(before, { schema: target });
      await quota.setLimit("acme", 100);
      expect(await quota.reserve({ holdId: "h1", account: "acme", amount: 40, ttlMs: 60_000 })).toEqual({
        granted: true,
        remaining: 60,
      });
      expect(await quota.commit("h1", 30)).toEqual({ committed: 30 });
      const observations = new PostgresObservationStore(before, { schema: target });
      const observation = makeObservation({});
      expect(await observations.append(observation)).toBe("appended");
      // Old code's migrate finds nothing to do and leaves the newer schema alone.
      expect(await migrate(before, { schema: target })).toEqual({ version: required + 1, applied: [] });

      await applyMigrations(pool, { schema: target }, [...MIGRATIONS, additive, breaking]);
      const after = oldPod();
      const refused = {
        code: "schema_incompatible",
        schema: target,
        found: required + 2,
        required,
        compatibleFrom: required + 2,
      };
      const reserve = new PostgresQuota(after, { schema: target }).reserve({
        holdId: "h2",
        account: "acme",
        amount: 1,
        ttlMs: 60_000,
      });
      await expect(reserve).rejects.toBeInstanceOf(SchemaIncompatibleError); // not an outage: never "unavailable"
      await expect(
        new PostgresObservationStore(after, { schema: target }).get(observation.eventId),
      ).rejects.toMatchObject(refused);
    } finally {
      await pool.query(`DROP SCHEMA IF EXISTS "${target}" CASCADE`);
      for (const p of pools) await p.end();
    }
  });
});

describe("postgres usage counter: operation records", () => {
  it("keeps an operation for its retention, then a replay adds again; purgeExpiredOps deletes only expired records", async () => {
    const counter = new PostgresUsageCounter(pool, { schema, opRetentionMs: 1 });
    const keep = new PostgresUsageCounter(pool, { schema });
    const key = uniqueId("ops");
    expect(await keep.add(key, "2026-03", 10, { opId: "kept" })).toBe(0);
    expect(await counter.add(key, "2026-03", 5, { opId: "short" })).toBe(10);
    await new Promise((r) => setTimeout(r, 20));
    // Past the 1 ms retention the record no longer answers: the add applies again.
    expect(await counter.add(key, "2026-03", 5, { opId: "short" })).toBe(15);
    await new Promise((r) => setTimeout(r, 20));
    const rows = async () =>
      Number(
        (
          await pool.query(`SELECT count(*)::int AS n FROM "${schema}".usage_counter_ops WHERE key = $1`, [
            key,
          ])
        ).rows[0].n,
      );
    expect(await rows()).toBe(2);
    // The 1 ms counter purges both (it sees them as expired); the default one keeps both.
    expect(await keep.purgeExpiredOps()).toBe(0);
    expect(await counter.purgeExpiredOps()).toBeGreaterThanOrEqual(2);
    expect(await rows()).toBe(0);
    expect(await keep.get(key, "2026-03")).toBe(20);
  });
});

describeUnderDefaultIsolation("repeatable read");
describeUnderDefaultIsolation("serializable");
