import {
  type CounterAddOptions,
  counterOpConflict,
  DEFAULT_COUNTER_OP_RETENTION_MS,
  CounterKeySchema as KeySchema,
  CounterPeriodSchema as PeriodSchema,
  parseCounterAddOptions,
  parseWith,
  QuantitySchema,
  type UsageCounter,
} from "@latch/core/adapter";
import { OverflowError } from "@latch/core/errors";
import type { PostgresStoreOptions } from "./observation-store.js";
import type { Queryable, QueryResultLike } from "./queryable.js";
import { assertMigrated, DEFAULT_SCHEMA, quoteSchema } from "./schema.js";
import { resolveTimeouts, STORE_TIMEOUTS, type TransactionSettings, transactQuery } from "./transaction.js";

export interface PostgresUsageCounterOptions extends PostgresStoreOptions {
  /** How long operation records (adds with an `opId`) are kept. Default 100 days. */
  opRetentionMs?: number;
}

/** Adds between two purges of expired operation records (each purge deletes at most 1,000). */
const PURGE_EVERY = 1_000;

/**
 * {@link UsageCounter} on PostgreSQL or PGlite (table `<schema>.usage_counters`). `add` is one
 * atomic upsert that returns the total before it:
 * `INSERT … ON CONFLICT DO UPDATE SET total = total + $qty RETURNING total − $qty`, so
 * concurrent adds on any number of connections line up in one serial order. An add with an
 * `opId` is one call of `counter_add` (migration 0007): under the counter row's lock it
 * returns the stored answer of an earlier add with the same id, or adds and records its
 * answer in the same transaction — a replay, a retry or a racing worker counts once. Expired
 * operation records are purged every 1,000 adds (at most 1,000 rows each time). A total past
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
  readonly #retentionMs: number;
  #addsSincePurge = 0;
  readonly #settings: TransactionSettings;

  constructor(db: Queryable, options: PostgresUsageCounterOptions = {}) {
    this.#db = db;
    this.#schema = options.schema ?? DEFAULT_SCHEMA;
    this.#table = `${quoteSchema(this.#schema)}.usage_counters`;
    this.#retentionMs = options.opRetentionMs ?? DEFAULT_COUNTER_OP_RETENTION_MS;
    this.#settings = resolveTimeouts(options, STORE_TIMEOUTS);
  }

  /**
   * Resolves once the schema is at the migration this package needs; else throws
   * {@link SchemaNotMigratedError} (run `migrate()` or `latch migrate`) or
   * {@link SchemaIncompatibleError}. `createLatch`'s `latch.ready()` calls it, so a forgotten
   * migration shows at start-up; every other method checks it too, on its first call.
   */
  async ready(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    await assertMigrated(this.#db, this.#schema);
  }

  async add(
    key: string,
    period: string,
    quantity: number,
    options?: CounterAddOptions | AbortSignal,
  ): Promise<number> {
    const { opId, signal } = parseCounterAddOptions(options, "UsageCounter.add");
    signal?.throwIfAborted();
    const k = parseWith(KeySchema, key, "UsageCounter.add", "key");
    const p = parseWith(PeriodSchema, period, "UsageCounter.add", "period");
    const q = parseWith(QuantitySchema, quantity, "UsageCounter.add", "quantity");
    await assertMigrated(this.#db, this.#schema);
    if (opId !== undefined) return this.#addOnce(k, p, q, opId);
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

  async #addOnce(key: string, period: string, quantity: number, opId: string): Promise<number> {
    const { rows } = await this.#query(
      `SELECT status, previous::text AS previous, stored::text AS stored
       FROM ${quoteSchema(this.#schema)}.counter_add($1, $2, $3, $4::bigint, $5::bigint)`,
      [key, period, opId, String(quantity), String(this.#retentionMs)],
    );
    const row = rows[0] as { status: string; previous: string; stored: string };
    if (row.status === "overflow")
      throw new OverflowError({ path: "quantity", reason: "the period total would exceed 2^53-1" });
    if (row.status === "conflict") throw counterOpConflict(opId, row.stored, quantity);
    if (++this.#addsSincePurge >= PURGE_EVERY) {
      this.#addsSincePurge = 0;
      await this.purgeExpiredOps();
    }
    return Number(row.previous);
  }

  /**
   * Deletes up to `limit` operation records older than the retention (oldest first) and
   * returns how many it deleted. `add` calls it every 1,000 adds; call it on a schedule for
   * counters that see few adds.
   */
  async purgeExpiredOps(limit = 1_000): Promise<number> {
    const ops = `${quoteSchema(this.#schema)}.usage_counter_ops`;
    const { rowCount } = await this.#query(
      `DELETE FROM ${ops} WHERE (key, period, op_id) IN (
         SELECT key, period, op_id FROM ${ops}
         WHERE created_at <= now() - $1::bigint * interval '1 millisecond'
         ORDER BY created_at LIMIT $2)`,
      [String(this.#retentionMs), limit],
    );
    return rowCount ?? 0;
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
