import {
  CounterKeySchema as KeySchema,
  OverflowError,
  CounterPeriodSchema as PeriodSchema,
  parseWith,
  QuantitySchema,
  type UsageCounter,
} from "@latch/core";
import type { PostgresStoreOptions } from "./observation-store.js";
import type { Queryable, QueryResultLike } from "./queryable.js";
import { assertMigrated, DEFAULT_SCHEMA, quoteSchema } from "./schema.js";
import { resolveTimeouts, STORE_TIMEOUTS, type TransactionSettings, transactQuery } from "./transaction.js";

/**
 * {@link UsageCounter} on PostgreSQL or PGlite (table `<schema>.usage_counters`). `add` is one
 * atomic upsert that returns the total before it:
 * `INSERT … ON CONFLICT DO UPDATE SET total = total + $qty RETURNING total − $qty`, so
 * concurrent adds on any number of connections line up in one serial order. A total past
 * 2^53-1 throws `OverflowError` and changes nothing.
 *
 * @example
 * const counter = new PostgresUsageCounter(pool, { schema: "latch" });
 * await counter.add("acme:gpt-4o:input_tokens", "2026-02", 1_500); // 0
 */
export class PostgresUsageCounter implements UsageCounter {
  readonly #db: Queryable;
  readonly #schema: string;
  readonly #table: string;
  readonly #settings: TransactionSettings;

  constructor(db: Queryable, options: PostgresStoreOptions = {}) {
    this.#db = db;
    this.#schema = options.schema ?? DEFAULT_SCHEMA;
    this.#table = `${quoteSchema(this.#schema)}.usage_counters`;
    this.#settings = resolveTimeouts(options, STORE_TIMEOUTS);
  }

  async add(key: string, period: string, quantity: number, signal?: AbortSignal): Promise<number> {
    signal?.throwIfAborted();
    const k = parseWith(KeySchema, key, "UsageCounter.add", "key");
    const p = parseWith(PeriodSchema, period, "UsageCounter.add", "period");
    const q = parseWith(QuantitySchema, quantity, "UsageCounter.add", "quantity");
    await assertMigrated(this.#db, this.#schema);
    const { rows } = await this.#query(
      `INSERT INTO ${this.#table} AS c (key, period, total) VALUES ($1, $2, $3::bigint)
         ON CONFLICT (key, period) DO UPDATE SET total = c.total + EXCLUDED.total
         WHERE c.total + EXCLUDED.total <= 9007199254740991
         RETURNING (c.total - $3::bigint)::text AS previous`,
      [k, p, String(q)],
    );
    const row = rows[0] as { previous: string } | undefined;
    if (row === undefined)
      throw new OverflowError({ path: "quantity", reason: "the period total would exceed 2^53-1" });
    return Number(row.previous);
  }

  async get(key: string, period: string, signal?: AbortSignal): Promise<number> {
    signal?.throwIfAborted();
    const k = parseWith(KeySchema, key, "UsageCounter.get", "key");
    const p = parseWith(PeriodSchema, period, "UsageCounter.get", "period");
    await assertMigrated(this.#db, this.#schema);
    const { rows } = await this.#query(
      `SELECT total::text AS total FROM ${this.#table} WHERE key = $1 AND period = $2`,
      [k, p],
    );
    const row = rows[0] as { total: string } | undefined;
    return row === undefined ? 0 : Number(row.total);
  }

  /** One statement in one transaction of this store (`READ COMMITTED`, its timeouts). */
  #query(text: string, params: unknown[]): Promise<QueryResultLike> {
    return transactQuery(this.#db, this.#settings, text, params);
  }
}
