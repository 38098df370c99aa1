import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { makeObservation, makeRatedRecord, runConformance, uniqueId } from "@latch/testkit";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import {
  fromPglite,
  migrate,
  PostgresObservationStore,
  PostgresQuota,
  PostgresRatedRecordStore,
  type Queryable,
} from "../src/index.js";
import { describeChangeLogHoldOnPglite } from "./change-log-status-support.js";
import { ALL, count, describeQuotaSweep, freshSchema, LATEST, storeSuites } from "./support.js";

// One in-memory PGlite for the whole file: it takes seconds to start.
const schema = "latch";
let pglite: PGlite;
let db: Queryable;

let ready: Promise<void> | undefined;
beforeEach(async () => {
  ready ??= (async () => {
    pglite = new PGlite();
    db = fromPglite(pglite);
    expect(await migrate(db, { schema })).toEqual({ version: LATEST, applied: ALL });
  })();
  await ready;
}, 60_000);

afterAll(async () => {
  await pglite?.close();
});

runConformance({ name: "pglite", suites: storeSuites(() => db, schema, { quota: 3_000 }) });
describeQuotaSweep(
  "pglite",
  () => db,
  () => freshSchema("sweep"),
);
describeChangeLogHoldOnPglite(() => db, schema);

describe("PGlite specifics", () => {
  it("migrates once: a second migrate applies nothing", async () => {
    expect(await migrate(db, { schema })).toEqual({ version: LATEST, applied: [] });
    expect(await count(db, `SELECT 1 FROM "${schema}".latch_migrations`, [])).toBe(ALL.length);
  });

  it("returns int8 values as decimal strings, like pg", async () => {
    const { rows } = await db.query("SELECT 9007199254740993::int8 AS big");
    expect(rows).toEqual([{ big: "9007199254740993" }]);
  });

  it("leaves no trace of an observation, a rated record or a hold written in a rolled-back transaction", async () => {
    const quota = new PostgresQuota(db, { schema });
    const account = uniqueId("acct");
    await quota.setLimit(account, 100);
    const observation = makeObservation({});
    const record = makeRatedRecord({ observation: { eventId: uniqueId("ev").concat(":0:openai") } });
    const holdId = uniqueId("hold");
    const transaction = db.transaction;
    expect(transaction).toBeDefined();
    await expect(
      db.transaction?.(async (tx) => {
        expect(await new PostgresObservationStore(tx, { schema }).append(observation)).toBe("appended");
        expect(await new PostgresRatedRecordStore(tx, { schema }).put(record)).toBe("stored");
        const hold = await new PostgresQuota(tx, { schema }).reserve({
          holdId,
          account,
          amount: 40,
          ttlMs: 60_000,
        });
        expect(hold).toEqual({ granted: true, remaining: 60 });
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");
    expect(
      await count(db, `SELECT 1 FROM latch.observations WHERE event_id = $1`, [observation.eventId]),
    ).toBe(0);
    expect(await count(db, `SELECT 1 FROM latch.rated_records WHERE event_id = $1`, [record.eventId])).toBe(
      0,
    );
    expect(await count(db, `SELECT 1 FROM latch.quota_holds WHERE hold_id = $1`, [holdId])).toBe(0);
    expect(await quota.balance(account)).toEqual({ limit: 100, spent: 0, held: 0, available: 100 });
  });

  it("keeps what it stored in a data directory across a restart; migrate then finds nothing to do", async () => {
    const directory = await mkdtemp(join(tmpdir(), "latch-pglite-"));
    try {
      const observation = makeObservation({});
      const first = new PGlite(directory);
      const before = fromPglite(first);
      expect(await migrate(before, { schema })).toEqual({ version: LATEST, applied: ALL });
      expect(await new PostgresObservationStore(before, { schema }).append(observation)).toBe("appended");
      await first.close();

      const second = new PGlite(directory);
      try {
        const after = fromPglite(second);
        expect(await migrate(after, { schema })).toEqual({ version: LATEST, applied: [] });
        expect(await new PostgresObservationStore(after, { schema }).get(observation.eventId)).toEqual(
          observation,
        );
      } finally {
        await second.close();
      }
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  }, 60_000);
});
