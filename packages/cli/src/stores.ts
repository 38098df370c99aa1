import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { type LatchSettings, readLatchSettings } from "@latch/config";
import { LatchError, LatchValidationError, MemoryRatedRecordStore } from "@latch/core";
import type { RatedRecordStore } from "@latch/core/adapter";
import type { CliContext } from "./context.js";
import { STORE_KINDS, type StoreKind } from "./defaults.js";
import { CommandError, InterruptedError, UsageError } from "./exit-codes.js";
import type { StoreFlags } from "./store-options.js";

export type { StoreFlags };

export interface OpenedStore {
  store: RatedRecordStore;
  kind: StoreKind;
  /** Human-readable, e.g. `PostgreSQL (schema latch)`. */
  description: string;
  close(): Promise<void>;
}

/** The variable each store flag stands for (the flag wins over the variable). */
const FLAG_VARIABLES = {
  store: ["--store", "LATCH_STORE"],
  databaseUrl: ["--database-url", "LATCH_DATABASE_URL"],
  schema: ["--schema", "LATCH_SCHEMA"],
  redisUrl: ["--redis-url", "LATCH_REDIS_URL"],
  keyPrefix: ["--key-prefix", "LATCH_REDIS_PREFIX"],
} as const;

export type SettingsFlags = Partial<Record<keyof typeof FLAG_VARIABLES, string | undefined>>;

/**
 * The flags laid over the environment, read and validated by `@latch/config` (the same
 * variables, fallbacks and messages as `loadLatchConfig()`); a problem names the flag when a
 * flag gave the value, else the variable, never the value. The CLI never guesses the store:
 * without `--store` or `LATCH_STORE` it is `memory`.
 */
export function settingsOf(flags: SettingsFlags, env: NodeJS.ProcessEnv): LatchSettings {
  const merged: Record<string, string | undefined> = { ...env };
  const fromFlag = new Map<string, string>();
  for (const [key, [flag, variable]] of Object.entries(FLAG_VARIABLES)) {
    const value = flags[key as keyof SettingsFlags];
    if (value === undefined) continue;
    merged[variable] = value;
    fromFlag.set(variable, flag);
  }
  if (merged.LATCH_STORE === undefined || merged.LATCH_STORE === "") merged.LATCH_STORE = "memory";
  try {
    return readLatchSettings(merged);
  } catch (error) {
    if (!LatchValidationError.isInstance(error)) throw error;
    const lines = error.issues.map((issue) => {
      const flag = fromFlag.get(issue.path);
      if (issue.message.startsWith("required with LATCH_STORE=")) {
        const [flagName, variable] =
          issue.path === "LATCH_REDIS_URL"
            ? ["--redis-url", "LATCH_REDIS_URL or REDIS_URL"]
            : ["--database-url", "LATCH_DATABASE_URL or DATABASE_URL"];
        const store = fromFlag.has("LATCH_STORE")
          ? `--store ${merged.LATCH_STORE}`
          : `LATCH_STORE=${merged.LATCH_STORE}`;
        return `${flagName}: required with ${store} (or set ${variable})`;
      }
      return `${flag ?? issue.path}: ${issue.message}`;
    });
    throw new UsageError(lines.join("\n"));
  }
}

/**
 * The PostgreSQL URL and schema of `latch migrate` and `latch serve`: `--database-url`, else
 * `LATCH_DATABASE_URL`, else `DATABASE_URL`; `--schema`, else `LATCH_SCHEMA`, else `latch`.
 */
export function postgresOf(
  flags: { databaseUrl?: string | undefined; schema?: string | undefined },
  env: NodeJS.ProcessEnv,
): { url: string; schema: string } {
  const settings = settingsOf({ ...flags, store: "postgres" }, env);
  return { url: settings.databaseUrl as string, schema: settings.schema };
}

/**
 * Opens the rated-record store the flags and environment name:
 * - `memory` (default): an in-memory store filled from `--records` files (JSONL of rated
 *   records, as `latch rate` writes them; `LATCH_RECORDS`, comma-separated, when no flag);
 * - `postgres`: `--database-url` / `LATCH_DATABASE_URL` / `DATABASE_URL`, schema `--schema` /
 *   `LATCH_SCHEMA` (default `latch`), migrated by `latch migrate`;
 * - `redis`: `--redis-url` / `LATCH_REDIS_URL` / `REDIS_URL`, key prefix `--key-prefix` /
 *   `LATCH_REDIS_PREFIX` / `LATCH_KEY_PREFIX` (default `latch`).
 * Flags and variables are read by {@link settingsOf} (`@latch/config`'s rules).
 */
export async function openStore(flags: StoreFlags, ctx: CliContext): Promise<OpenedStore> {
  const env = ctx.env;
  const settings = settingsOf(flags, env);
  const kind = settings.store;
  if (!(STORE_KINDS as readonly string[]).includes(kind)) {
    throw new UsageError(
      `${flags.store !== undefined ? "--store" : "LATCH_STORE"}: expected one of ${STORE_KINDS.join(", ")}, got "${kind}"`,
    );
  }
  if (kind === "postgres") {
    const url = settings.databaseUrl as string;
    const schema = settings.schema;
    // Backends load on demand: `latch rate` never pays for drivers it does not use.
    const [{ default: pg }, { PostgresRatedRecordStore }] = await Promise.all([
      import("pg"),
      import("@latch/postgres"),
    ]);
    const pool = new pg.Pool({ connectionString: url, max: 4 });
    // An idle client's error (server restart) must not crash the process with an unhandled event.
    pool.on("error", () => undefined);
    let store: RatedRecordStore;
    try {
      store = new PostgresRatedRecordStore(pool, { schema });
    } catch (error) {
      await pool.end();
      throw new UsageError(`--schema: ${(error as Error).message}`);
    }
    return {
      store,
      kind: "postgres",
      description: `PostgreSQL (schema ${schema})`,
      close: () => pool.end(),
    };
  }
  if (kind === "redis") {
    const { url, keyPrefix } = settings.redis as NonNullable<LatchSettings["redis"]>;
    const [{ Redis }, { failFastRedisOptions, RedisRatedRecordStore }] = await Promise.all([
      import("ioredis"),
      import("@latch/redis"),
    ]);
    const redis = new Redis(url, { ...failFastRedisOptions(5_000), lazyConnect: true });
    try {
      await redis.connect();
    } catch (error) {
      redis.disconnect();
      throw new CommandError(`--redis-url: cannot connect (${(error as Error).message})`);
    }
    const store = new RedisRatedRecordStore(redis, { keyPrefix });
    return {
      store,
      kind: "redis",
      description: `Redis (prefix ${keyPrefix})`,
      close: async () => {
        await redis.quit();
      },
    };
  }
  const files =
    flags.records ?? (env.LATCH_RECORDS ? env.LATCH_RECORDS.split(",").filter((f) => f !== "") : []);
  if (files.length === 0) {
    throw new UsageError(
      "--records: the memory store starts empty; name the rated records to load (latch rate --out FILE), or use --store postgres|redis",
    );
  }
  const store = new MemoryRatedRecordStore();
  let count = 0;
  for (const file of files) count += await loadRecords(store, file, ctx);
  return {
    store,
    kind: "memory",
    description: `in memory (${count.toLocaleString("en-US")} records from ${files.join(", ")})`,
    close: async () => undefined,
  };
}

/** Loads a JSONL file of rated records into a store, line by line; a bad line names file and line. */
async function loadRecords(store: RatedRecordStore, file: string, ctx: CliContext): Promise<number> {
  const stream = createReadStream(file);
  let openError: Error | undefined;
  stream.on("error", (error) => {
    openError = error;
  });
  const reader = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
  stream.on("error", () => reader.close());
  let line = 0;
  let count = 0;
  try {
    for await (const text of reader) {
      line++;
      if (ctx.signal.aborted) throw new InterruptedError();
      if (text.trim() === "") continue;
      let record: unknown;
      try {
        record = JSON.parse(text);
      } catch (error) {
        throw new CommandError(`--records: ${file}:${line}: not JSON (${(error as Error).message})`);
      }
      try {
        await store.put(record as never);
      } catch (error) {
        if (LatchError.isInstance(error))
          throw new CommandError(`--records: ${file}:${line}: ${error.message}`);
        throw error;
      }
      count++;
    }
  } catch (error) {
    openError ??= (error as { code?: unknown }).code === undefined ? undefined : (error as Error);
    if (openError === undefined) throw error;
  } finally {
    stream.destroy();
  }
  if (openError !== undefined) {
    const code = (openError as { code?: string }).code;
    throw new CommandError(`--records: cannot read ${file}${code ? ` (${code})` : ""}`);
  }
  return count;
}
