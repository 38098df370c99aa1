import {
  FileExporter,
  type IngestLog,
  MemoryObservationStore,
  MemoryQuotaReservator,
  MemoryRatedRecordStore,
  MemoryUsageCounter,
} from "@latch/core";
import type {
  ObservationStore,
  QuotaAuthorizer,
  QuotaReservator,
  RatedRecordExporter,
  RatedRecordStore,
  UsageCounter,
} from "@latch/core/adapter";
import type { Queryable } from "@latch/postgres";
import type { Redis } from "ioredis";
import { describeSettings, type LatchSettings, readLatchSettings } from "./settings.js";

/**
 * The stores and options `createLatch` takes, opened from {@link LatchSettings}, plus what
 * opened them. Spread it into `createLatch` with a pricing source:
 * `createLatch({ ...backends, pricing })`.
 */
export interface LatchBackends {
  observations: ObservationStore;
  rated: RatedRecordStore;
  quota: QuotaReservator & QuotaAuthorizer;
  counter: UsageCounter;
  /** S3 (`LATCH_S3_BUCKET`) or a folder (`LATCH_EXPORT_DIR`); absent when neither is set. */
  exporter?: RatedRecordExporter;
  /** The JetStream ingest log (`LATCH_NATS_URL`). */
  ingest?: IngestLog;
  /** `LATCH_SPOOL_DIR`. */
  spoolDir?: string;
  /** The validated settings these were opened from. */
  settings: LatchSettings;
  /** Human-readable, without secrets, e.g. `PostgreSQL db:5432 (schema latch); export to s3://b/`. */
  description: string;
  /** The clients opened, for callers that need them (health checks, tests). */
  clients: { postgres?: Queryable; redis?: Redis };
  /** Closes every connection opened, in reverse order. Call after `latch.close()`. */
  close(): Promise<void>;
}

/**
 * Imports a backend's module. When it (or a package it imports, such as the adapter's driver)
 * is not installed, the error names the variable that selected the backend and the package
 * actually missing.
 */
export async function load<T>(
  specifier: string,
  variable: string,
  importer: (specifier: string) => Promise<unknown> = (s) => import(s),
): Promise<T> {
  try {
    return (await importer(specifier)) as T;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code !== "ERR_MODULE_NOT_FOUND" && code !== "MODULE_NOT_FOUND") throw error;
    const missing = missingPackage(error) ?? specifier;
    const needs = missing === specifier ? "" : ` (${specifier} needs it)`;
    throw new Error(`${variable}: install ${missing}${needs} to use this backend`, { cause: error });
  }
}

/** The package a module-not-found error names: `pg` from "Cannot find package 'pg' imported from …". */
function missingPackage(error: unknown): string | undefined {
  const message = (error as { message?: unknown }).message;
  if (typeof message !== "string") return undefined;
  const name = /Cannot find (?:package|module) '([^']+)'/.exec(message)?.[1];
  if (name === undefined || name.startsWith(".") || name.startsWith("/")) return undefined;
  // A deep import (`pg/lib/x`, `@scope/pkg/sub`) is installed as its package.
  const parts = name.split("/");
  return name.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

/**
 * Opens what `settings` name. Adapter packages and drivers are imported only when selected, so
 * a memory-only application installs none of them. On failure, whatever was opened is closed.
 *
 * @example
 * const backends = await openLatchBackends(readLatchSettings());
 * const latch = createLatch({ ...backends, pricing });
 */
export async function openLatchBackends(settings: LatchSettings): Promise<LatchBackends> {
  const closers: Array<() => Promise<unknown>> = [];
  const closeAll = async () => {
    for (const close of closers.splice(0).reverse()) await close();
  };
  try {
    let observations: ObservationStore = new MemoryObservationStore();
    let rated: RatedRecordStore = new MemoryRatedRecordStore();
    let quota: QuotaReservator & QuotaAuthorizer = new MemoryQuotaReservator();
    let counter: UsageCounter = new MemoryUsageCounter();
    const clients: LatchBackends["clients"] = {};

    if (settings.store === "postgres" || settings.store === "pglite") {
      const pgAdapter = await load<typeof import("@latch/postgres")>("@latch/postgres", "LATCH_STORE");
      let db: Queryable;
      if (settings.store === "postgres") {
        const { default: pg } = await load<typeof import("pg")>("pg", "LATCH_DATABASE_URL");
        const pool = new pg.Pool({ connectionString: settings.databaseUrl, max: settings.poolSize });
        // An idle connection the server drops (restart, failover) is reported here; without a
        // listener node-postgres' pool would crash the process. The pool replaces it.
        pool.on("error", (error) => console.warn(`[latch] PostgreSQL connection lost: ${error.message}`));
        closers.push(() => pool.end());
        db = pool;
        if (settings.migrate) await pgAdapter.migrate(db, { schema: settings.schema });
      } else {
        const { PGlite, types } = await load<typeof import("@electric-sql/pglite")>(
          "@electric-sql/pglite",
          "LATCH_STORE",
        );
        // int8 as strings, as node-postgres returns them.
        const pglite = new PGlite(settings.pgliteDir, { parsers: { [types.INT8]: (x: string) => x } });
        closers.push(() => pglite.close());
        db = pgAdapter.fromPglite(pglite);
        // Embedded: this process owns the directory, so nobody else can migrate it.
        await pgAdapter.migrate(db, { schema: settings.schema });
      }
      const options = { schema: settings.schema };
      observations = new pgAdapter.PostgresObservationStore(db, options);
      rated = new pgAdapter.PostgresRatedRecordStore(db, options);
      quota = new pgAdapter.PostgresQuota(db, options);
      counter = new pgAdapter.PostgresUsageCounter(db, options);
      clients.postgres = db;
    }

    if (settings.redis) {
      const [{ Redis }, redisAdapter] = await Promise.all([
        load<typeof import("ioredis")>("ioredis", "LATCH_REDIS_URL"),
        load<typeof import("@latch/redis")>("@latch/redis", "LATCH_REDIS_URL"),
      ]);
      // Fail-fast options queue nothing while disconnected: connect before the first command.
      const redis = new Redis(settings.redis.url, {
        ...redisAdapter.failFastRedisOptions(2_000),
        lazyConnect: true,
      });
      closers.push(async () => {
        if (redis.status === "ready") await redis.quit();
        else redis.disconnect();
      });
      // Without a listener ioredis prints "Unhandled error event" for every failed reconnect;
      // report connection losses once connected (a failed first connect throws below).
      let connected = false;
      redis.on("error", (error: Error) => {
        if (connected) console.warn(`[latch] Redis connection error: ${error.message}`);
      });
      try {
        await redis.connect();
        connected = true;
      } catch (error) {
        throw new Error(`LATCH_REDIS_URL: cannot connect to ${redisHost(settings.redis.url)}`, {
          cause: error,
        });
      }
      const keys = { keyPrefix: settings.redis.keyPrefix };
      if (settings.store === "redis") {
        observations = new redisAdapter.RedisObservationStore(redis, keys);
        rated = new redisAdapter.RedisRatedRecordStore(redis, keys);
      }
      quota = new redisAdapter.RedisQuota(redis, { keyPrefix: settings.redis.keyPrefix });
      counter = new redisAdapter.RedisUsageCounter(redis, { keyPrefix: settings.redis.keyPrefix });
      clients.redis = redis;
    }

    let exporter: RatedRecordExporter | undefined;
    if (settings.s3) {
      const { S3Exporter } = await load<typeof import("@latch/s3")>("@latch/s3", "LATCH_S3_BUCKET");
      exporter = new S3Exporter({
        ...settings.s3,
        ...(settings.s3.endpoint !== undefined ? { forcePathStyle: true } : {}),
        formats: ["jsonl.gz", "parquet"],
      });
    } else if (settings.exportDir !== undefined) {
      exporter = new FileExporter({ directory: settings.exportDir, formats: ["jsonl.gz", "csv"] });
    }

    let ingest: IngestLog | undefined;
    if (settings.nats) {
      const [{ connect }, natsAdapter] = await Promise.all([
        load<typeof import("@nats-io/transport-node")>("@nats-io/transport-node", "LATCH_NATS_URL"),
        load<typeof import("@latch/nats")>("@latch/nats", "LATCH_NATS_URL"),
      ]);
      // Reconnects however long the server is away (the client's default gives up after ~20 s,
      // and every record() would then spool until the process restarts).
      const options = await natsAdapter
        .natsConnectionOptions(settings.nats.url, settings.nats.creds ? { creds: settings.nats.creds } : {})
        .catch((error: unknown) => {
          throw new Error(
            `${error instanceof TypeError ? "LATCH_NATS_URL" : "LATCH_NATS_CREDS"}: ${(error as Error).message}`,
            {
              cause: error,
            },
          );
        });
      const connection = await connect({ ...options, maxReconnectAttempts: -1 }).catch((error: unknown) => {
        // Refused credentials may come from either variable: name both when a file was given.
        const names = settings.nats?.creds ? "LATCH_NATS_URL (with LATCH_NATS_CREDS)" : "LATCH_NATS_URL";
        throw new Error(`${names}: cannot connect`, { cause: error });
      });
      // With the server away the drain fails: close instead (not left reconnecting forever).
      closers.push(() => connection.drain().catch(() => connection.close()));
      await natsAdapter.ensureIngestStreams(connection, { stream: settings.nats.stream });
      ingest = natsAdapter.natsIngestLog({ connection, stream: settings.nats.stream });
    }

    return {
      observations,
      rated,
      quota,
      counter,
      ...(exporter !== undefined ? { exporter } : {}),
      ...(ingest !== undefined ? { ingest } : {}),
      ...(settings.spoolDir !== undefined ? { spoolDir: settings.spoolDir } : {}),
      settings,
      description: describeSettings(settings),
      clients,
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

const redisHost = (url: string) => {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || "6379"}`;
  } catch {
    return "?";
  }
};

/**
 * Reads the configuration from `env` (and `LATCH_CONFIG`'s file) and opens the backends it
 * names: {@link readLatchSettings} then {@link openLatchBackends}.
 *
 * @example
 * const backends = await loadLatchConfig();
 * const latch = createLatch({ ...backends, pricing });
 * // …
 * await latch.close();
 * await backends.close();
 */
export function loadLatchConfig(
  env: Record<string, string | undefined> = process.env,
): Promise<LatchBackends> {
  return openLatchBackends(readLatchSettings(env));
}
