import { list, type OptionValues, oneOf, text } from "./command.js";
import { STORE_KINDS } from "./defaults.js";

/** Backend flags shared by `summary`, `lines`, `export` and `export status` (each also read from the environment). */
export const STORE_OPTIONS = [
  oneOf("--store <kind>", "where rated records live (env LATCH_STORE; default memory)", STORE_KINDS),
  list(
    "--records <files...>",
    "memory store: JSONL files of rated records to load (latch rate output; env LATCH_RECORDS, comma-separated)",
  ),
  text("--database-url <url>", "postgres store: connection URL (env LATCH_DATABASE_URL or DATABASE_URL)"),
  text("--schema <name>", "postgres store: schema (env LATCH_SCHEMA; default latch)"),
  text("--redis-url <url>", "redis store: URL (env LATCH_REDIS_URL or REDIS_URL)"),
  text("--key-prefix <prefix>", "redis store: key prefix (env LATCH_KEY_PREFIX; default latch)"),
] as const;

/** The values of {@link STORE_OPTIONS}. */
export type StoreFlags = OptionValues<typeof STORE_OPTIONS>;
