import {
  MemoryObservationStore,
  MemoryQuotaReservator,
  MemoryRatedRecordStore,
  MemoryUsageCounter,
} from "@latch/core";
import type {
  ObservationStore,
  QuotaAuthorizer,
  QuotaReservator,
  RatedRecordStore,
  UsageCounter,
} from "@latch/core/adapter";
import {
  migrate,
  PostgresObservationStore,
  PostgresQuota,
  PostgresRatedRecordStore,
  PostgresUsageCounter,
} from "@latch/postgres";
import { failFastRedisOptions, RedisQuota, RedisUsageCounter } from "@latch/redis";
import { Redis } from "ioredis";
import pg from "pg";

/** Where the simulated gateway keeps its state: the application code is the same for all. */
export interface Backends {
  observations: ObservationStore;
  rated: RatedRecordStore;
  quota: QuotaReservator & QuotaAuthorizer;
  counter: UsageCounter;
  /** Human-readable, for the report. */
  description: string;
  close(): Promise<void>;
}

export interface BackendOptions {
  /** PostgreSQL for observations and rated records (and quota, unless Redis is given). */
  databaseUrl?: string;
  /** Redis for hot quota and usage counters. */
  redisUrl?: string;
  /** Postgres schema / Redis key prefix; wiped at start so every run starts from nothing. */
  namespace?: string;
  /** Also wipe the namespace on close (tests). */
  dropOnClose?: boolean;
  /** Connections in the PostgreSQL pool. Default 4. */
  poolSize?: number;
}

/**
 * The embedded default (in memory), or PostgreSQL and/or Redis. Postgres is the system of
 * record; Redis, when given, takes the hot path (quota, counters).
 */
export async function openBackends(options: BackendOptions = {}): Promise<Backends> {
  const namespace = options.namespace ?? "latch_quickstart";
  const closers: Array<() => Promise<unknown>> = [];
  const parts: string[] = [];
  let observations: ObservationStore = new MemoryObservationStore();
  let rated: RatedRecordStore = new MemoryRatedRecordStore();
  let quota: QuotaReservator & QuotaAuthorizer = new MemoryQuotaReservator();
  let counter: UsageCounter = new MemoryUsageCounter();

  if (options.databaseUrl) {
    const pool = new pg.Pool({ connectionString: options.databaseUrl, max: options.poolSize ?? 4 });
    // An idle connection the server drops (restart, failover, pg_terminate_backend) is reported
    // here; without a listener node-postgres' pool would crash the process. The pool replaces
    // the connection; queries that were running on it fail and Latch retries or spools them.
    pool.on("error", (error) => console.warn(`[latch] PostgreSQL connection lost: ${error.message}`));
    const drop = () => pool.query(`DROP SCHEMA IF EXISTS "${namespace}" CASCADE`);
    closers.push(async () => {
      if (options.dropOnClose) await drop();
      await pool.end();
    });
    await drop();
    await migrate(pool, { schema: namespace });
    observations = new PostgresObservationStore(pool, { schema: namespace });
    rated = new PostgresRatedRecordStore(pool, { schema: namespace });
    quota = new PostgresQuota(pool, { schema: namespace });
    counter = new PostgresUsageCounter(pool, { schema: namespace });
    parts.push(`PostgreSQL (schema ${namespace})`);
  }
  if (options.redisUrl) {
    // Fail-fast options queue nothing while disconnected: connect before the first command.
    const redis = new Redis(options.redisUrl, { ...failFastRedisOptions(2_000), lazyConnect: true });
    await redis.connect();
    const wipe = async () => {
      let cursor = "0";
      do {
        const [next, keys] = await redis.scan(cursor, "MATCH", `${namespace}:*`, "COUNT", 1000);
        if (keys.length > 0) await redis.del(...keys);
        cursor = next;
      } while (cursor !== "0");
    };
    closers.push(async () => {
      if (options.dropOnClose) await wipe();
      await redis.quit();
    });
    await wipe();
    quota = new RedisQuota(redis, { keyPrefix: namespace });
    counter = new RedisUsageCounter(redis, { keyPrefix: namespace });
    parts.push(`Redis (prefix ${namespace}) for quota and counters`);
  }
  return {
    observations,
    rated,
    quota,
    counter,
    description: parts.length > 0 ? parts.join(" + ") : "embedded default: in-memory stores",
    async close() {
      for (const close of closers.reverse()) await close();
    },
  };
}
