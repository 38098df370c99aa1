import { type LatchSettings, openLatchBackends, readLatchSettings } from "@latch/config";
import type {
  ObservationStore,
  QuotaAuthorizer,
  QuotaReservator,
  RatedRecordStore,
  UsageCounter,
} from "@latch/core/adapter";
import { migrate } from "@latch/postgres";

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
  /**
   * Read the backends from these `LATCH_*` variables instead (`@latch/config`: `LATCH_STORE`,
   * `LATCH_DATABASE_URL`, `LATCH_REDIS_URL`, …); `databaseUrl` and `redisUrl` are ignored.
   */
  env?: Record<string, string | undefined>;
  /** Postgres schema / Redis key prefix; wiped at start so every run starts from nothing. */
  namespace?: string;
  /** Also wipe the namespace on close (tests). */
  dropOnClose?: boolean;
  /** Connections in the PostgreSQL pool. Default 4. */
  poolSize?: number;
}

/** The options as `@latch/config` settings: the namespace is the schema and the key prefix. */
function settingsOf(options: BackendOptions, namespace: string): LatchSettings {
  const env = options.env ?? {
    ...(options.databaseUrl ? { LATCH_DATABASE_URL: options.databaseUrl } : {}),
    ...(options.redisUrl ? { LATCH_REDIS_URL: options.redisUrl } : {}),
  };
  return readLatchSettings({
    ...(options.poolSize !== undefined ? { LATCH_POOL_SIZE: String(options.poolSize) } : {}),
    ...env,
    // The demo wipes its namespace: never a schema or prefix named elsewhere.
    LATCH_SCHEMA: namespace,
    LATCH_REDIS_PREFIX: namespace,
  });
}

/**
 * The embedded default (in memory), or PostgreSQL (or PGlite) and/or Redis, opened by
 * `@latch/config` from the same settings an application uses. Postgres is the system of
 * record; Redis, when given, takes the hot path (quota, counters). The demo wipes its
 * namespace first, so every run starts from nothing.
 */
export async function openBackends(options: BackendOptions = {}): Promise<Backends> {
  const namespace = options.namespace ?? "latch_quickstart";
  const settings = settingsOf(options, namespace);
  const opened = await openLatchBackends(settings);
  const { postgres, redis } = opened.clients;
  const parts: string[] = [];
  const wipePostgres = async () => {
    if (postgres !== undefined && settings.store === "postgres")
      await postgres.query(`DROP SCHEMA IF EXISTS "${settings.schema}" CASCADE`);
  };
  const wipeRedis = async () => {
    if (redis === undefined || settings.redis === undefined) return;
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${settings.redis.keyPrefix}:*`, "COUNT", 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== "0");
  };
  try {
    if (postgres !== undefined) {
      if (settings.store === "postgres") {
        await wipePostgres();
        await migrate(postgres, { schema: settings.schema });
        parts.push(`PostgreSQL (schema ${settings.schema})`);
      } else parts.push(`PGlite (schema ${settings.schema})`);
    }
    if (redis !== undefined && settings.redis !== undefined) {
      await wipeRedis();
      parts.push(`Redis (prefix ${settings.redis.keyPrefix}) for quota and counters`);
    }
  } catch (error) {
    await opened.close();
    throw error;
  }
  return {
    observations: opened.observations,
    rated: opened.rated,
    quota: opened.quota,
    counter: opened.counter,
    description: parts.length > 0 ? parts.join(" + ") : "embedded default: in-memory stores",
    async close() {
      if (options.dropOnClose) {
        await wipePostgres();
        await wipeRedis();
      }
      await opened.close();
    },
  };
}
