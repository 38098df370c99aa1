import { randomUUID } from "node:crypto";
import { createLatch, InMemoryPricingSource } from "@latch/core";
import { SchemaNotMigratedError } from "@latch/postgres";
import { makeObservation, makeSnapshot } from "@latch/testkit";
import { Redis } from "ioredis";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadLatchConfig } from "../src/index.js";

// Real servers: these tests fail (never skip) when PostgreSQL or Redis is unreachable.
const databaseUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const id = randomUUID().replaceAll("-", "").slice(0, 12);
const schema = `latch_config_${id}`;
const prefix = `latch_config_${id}`;
let pool: pg.Pool;
let redis: Redis;

beforeAll(() => {
  pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  redis = new Redis(redisUrl);
});
afterAll(async () => {
  await pool?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool?.end();
  const keys = await redis.keys(`*${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

describe("loadLatchConfig on real backends", () => {
  it("opens Postgres (migrated with LATCH_MIGRATE) with quota and counters in Redis", async () => {
    const backends = await loadLatchConfig({
      LATCH_DATABASE_URL: databaseUrl,
      LATCH_SCHEMA: schema,
      LATCH_MIGRATE: "true",
      LATCH_REDIS_URL: redisUrl,
      LATCH_REDIS_PREFIX: prefix,
    });
    try {
      expect(backends.description).toBe(
        `PostgreSQL 127.0.0.1:5432 (schema ${schema}); Redis 127.0.0.1:6379 (prefix ${prefix}) for quota and counters`,
      );
      const observation = makeObservation();
      const latch = createLatch({
        ...backends,
        pricing: new InMemoryPricingSource([makeSnapshot(observation.model.billableModel)]),
      });
      const result = await latch.record(observation);
      expect(result.status).toBe("rated");
      const stored = await pool.query(`SELECT count(*)::int AS n FROM "${schema}".observations`);
      expect(stored.rows[0]).toEqual({ n: 1 });
      await backends.quota.setLimit("acme", 100);
      expect(await redis.keys(`*${prefix}*acme*`)).not.toEqual([]);
      await latch.close();
    } finally {
      await backends.close();
    }
  });

  it("leaves an unmigrated schema alone without LATCH_MIGRATE: the stores say it is not migrated", async () => {
    const other = `${schema}_bare`;
    const backends = await loadLatchConfig({ LATCH_DATABASE_URL: databaseUrl, LATCH_SCHEMA: other });
    try {
      await expect(backends.observations.get("x")).rejects.toSatisfy((e) =>
        SchemaNotMigratedError.isInstance(e),
      );
    } finally {
      await backends.close();
    }
  });

  it("opens an in-memory PGlite, migrated, with LATCH_STORE=pglite", async () => {
    const backends = await loadLatchConfig({ LATCH_STORE: "pglite" });
    try {
      expect(backends.description).toBe("PGlite in memory (schema latch)");
      const observation = makeObservation();
      expect(await backends.observations.append(observation)).toBe("appended");
      expect(await backends.observations.get(observation.eventId)).toEqual(observation);
    } finally {
      await backends.close();
    }
  });

  it("names LATCH_REDIS_URL when Redis cannot be reached, and closes what it opened", async () => {
    await expect(
      loadLatchConfig({
        LATCH_DATABASE_URL: databaseUrl,
        LATCH_SCHEMA: schema,
        LATCH_REDIS_URL: "redis://:pw@127.0.0.1:1",
      }),
    ).rejects.toThrow("LATCH_REDIS_URL: cannot connect to 127.0.0.1:1");
  });
});
