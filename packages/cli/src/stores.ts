import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { LatchError, MemoryRatedRecordStore } from "@latch/core";
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

/** `--database-url`, else `LATCH_DATABASE_URL` (the examples' name), else `DATABASE_URL`. */
export function databaseUrlOf(flag: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  return flag ?? env.LATCH_DATABASE_URL ?? env.DATABASE_URL;
}

function storeKind(flags: StoreFlags, env: NodeJS.ProcessEnv): StoreKind {
  const kind = flags.store ?? env.LATCH_STORE ?? "memory";
  if (!(STORE_KINDS as readonly string[]).includes(kind)) {
    throw new UsageError(
      `${flags.store !== undefined ? "--store" : "LATCH_STORE"}: expected one of ${STORE_KINDS.join(", ")}, got "${kind}"`,
    );
  }
  return kind as StoreKind;
}

/**
 * Opens the rated-record store the flags and environment name:
 * - `memory` (default): an in-memory store filled from `--records` files (JSONL of rated
 *   records, as `latch rate` writes them; `LATCH_RECORDS`, comma-separated, when no flag);
 * - `postgres`: `--database-url` / `LATCH_DATABASE_URL` / `DATABASE_URL`, schema `--schema` /
 *   `LATCH_SCHEMA` (default `latch`), migrated by `latch migrate`;
 * - `redis`: `--redis-url` / `LATCH_REDIS_URL` / `REDIS_URL`, key prefix `--key-prefix` /
 *   `LATCH_KEY_PREFIX` (default `latch`).
 */
export async function openStore(flags: StoreFlags, ctx: CliContext): Promise<OpenedStore> {
  const env = ctx.env;
  const kind = storeKind(flags, env);
  if (kind === "postgres") {
    const url = databaseUrlOf(flags.databaseUrl, env);
    if (url === undefined) {
      throw new UsageError("--database-url: required with --store postgres (or set DATABASE_URL)");
    }
    const schema = flags.schema ?? env.LATCH_SCHEMA ?? "latch";
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
    return { store, kind, description: `PostgreSQL (schema ${schema})`, close: () => pool.end() };
  }
  if (kind === "redis") {
    const url = flags.redisUrl ?? env.LATCH_REDIS_URL ?? env.REDIS_URL;
    if (url === undefined)
      throw new UsageError("--redis-url: required with --store redis (or set REDIS_URL)");
    const keyPrefix = flags.keyPrefix ?? env.LATCH_KEY_PREFIX ?? "latch";
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
      kind,
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
    kind,
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
