/**
 * `createLatch` on a Postgres schema nobody migrated (issue 21): `latch.ready()` throws
 * `SchemaNotMigratedError` up front; without it the first call throws it. Nothing is spooled
 * and `reserve` does not call it "quota store unavailable".
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLatch, type LatchWarning } from "@latch/core";
import { makeObservation } from "@latch/testkit";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import {
  migrate,
  PostgresObservationStore,
  PostgresQuota,
  PostgresRatedRecordStore,
  PostgresUsageCounter,
  SchemaNotMigratedError,
} from "../src/index.js";
import { DATABASE_URL, freshSchema, LATEST } from "./support.js";

const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
const schema = freshSchema("unmigrated");
let dir: string | undefined;

afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe("createLatch on an unmigrated Postgres schema", () => {
  it("ready() and the first record/reserve throw schema_not_migrated, spool nothing, and work after migrate()", async () => {
    dir = await mkdtemp(join(tmpdir(), "latch-pg-unmigrated-"));
    const warnings: LatchWarning[] = [];
    const latch = createLatch({
      observations: new PostgresObservationStore(pool, { schema }),
      rated: new PostgresRatedRecordStore(pool, { schema }),
      quota: new PostgresQuota(pool, { schema }),
      counter: new PostgresUsageCounter(pool, { schema }),
      pricing: { resolve: async () => undefined },
      spoolDir: join(dir, "spool"),
      onWarning: (w) => warnings.push(w),
    });

    const early = await latch.ready().catch((e: unknown) => e);
    expect(SchemaNotMigratedError.isInstance(early)).toBe(true);
    expect(early).toMatchObject({ code: "schema_not_migrated", schema, found: 0, required: LATEST });

    const obs = makeObservation({});
    await expect(latch.record(obs)).rejects.toBeInstanceOf(SchemaNotMigratedError);
    await expect(latch.reserve({ account: "acme", amount: 10 })).rejects.toBeInstanceOf(
      SchemaNotMigratedError,
    );
    const spooled = await readdir(join(dir, "spool")).catch(() => []);
    expect(spooled.filter((f) => f.endsWith(".jsonl"))).toEqual([]);
    expect(warnings.map((w) => w.code)).toEqual([]);

    await migrate(pool, { schema });
    await expect(latch.ready()).resolves.toBeUndefined();
    expect(await latch.record(obs)).toMatchObject({ status: "unpriced", eventId: obs.eventId });
    await latch.close();
  });
});
