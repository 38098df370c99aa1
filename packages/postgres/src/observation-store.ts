import { parseObservation, type UsageObservation } from "@latch/core";
import {
  type AppendResult,
  canonicalJson,
  EventIdListSchema,
  EventIdSchema,
  hashCanonicalJson,
  ListUnpricedOptionsSchema,
  type ObservationStore,
  parseObservationBatch as parseBatch,
  parseWith,
  type RatedRecordStore,
  type RecordWriter,
} from "@latch/core/adapter";
import { IdempotencyConflictError } from "@latch/core/errors";
import { type GroupCommitOptions, type GroupCommitSettings, resolveGroupCommit } from "./group-commit.js";
import { isPool, type Queryable, type QueryResultLike } from "./queryable.js";
import { PostgresRecordWriter } from "./record-writer.js";
import { assertMigrated, DEFAULT_SCHEMA, quoteSchema } from "./schema.js";
import { parseStored, rethrowConflict } from "./sql-errors.js";
import { appendCopy, type CopyFrom } from "./staged-copy.js";
import { sameTarget } from "./store-target.js";
import {
  resolveTimeouts,
  STORE_TIMEOUTS,
  type TransactionOptions,
  type TransactionSettings,
  transactQuery,
} from "./transaction.js";

/** Options of every Postgres store: the schema, and the timeouts of its transactions. */
export interface PostgresStoreOptions extends TransactionOptions {
  /** The schema `migrate()` created. Default `latch`. */
  schema?: string;
}

export interface PostgresObservationStoreOptions extends PostgresStoreOptions {
  /**
   * Faster large batches on a `pg.Pool`: pass `from` of `pg-copy-streams`, and `appendMany`
   * batches of at least `copyThreshold` observations are COPYed straight into the table when
   * none of their ids is stored, else into a temporary stage and inserted from there, in one
   * transaction (same results, same errors). Ignored on PGlite (COPY FROM STDIN hangs it) and
   * on a single client (which may be inside your transaction).
   */
  copyFrom?: CopyFrom;
  /** Smallest batch that goes through COPY. Default 1,000. */
  copyThreshold?: number;
  /**
   * Group commit of the facade's record path ({@link PostgresObservationStore.recordWriter}) on
   * a `pg.Pool`: concurrent `record()` calls share one transaction, each answered once it
   * commits. Default `{ maxWaitMs: 2, maxBatch: 64 }`; `false` gives every call a transaction
   * of its own (still one round trip). Ignored on a single session and on PGlite.
   */
  groupCommit?: GroupCommitOptions | false;
}

/**
 * In input order: the first copy of an id that was inserted is `appended`, every other
 * `already_exists`. `"all"`: every distinct id of the batch was inserted.
 */
function answers(
  observations: readonly UsageObservation[],
  inserted: ReadonlySet<string> | "all",
): AppendResult[] {
  const answered = new Set<string>();
  const results = new Array<AppendResult>(observations.length);
  for (let i = 0; i < observations.length; i++) {
    const id = (observations[i] as UsageObservation).eventId;
    const first = !answered.has(id);
    if (first) answered.add(id);
    results[i] = first && (inserted === "all" || inserted.has(id)) ? "appended" : "already_exists";
  }
  return results;
}

/**
 * {@link ObservationStore} on PostgreSQL or PGlite (table `<schema>.observations`).
 *
 * `append`/`appendMany` are one statement per batch (a function of the shipped migration):
 * `INSERT … ON CONFLICT DO NOTHING`, then a canonical-hash comparison that fails the whole
 * statement on any conflict, so a batch is stored wholly or not at all, even when a
 * concurrent writer stores one of its ids in between. Duplicate ids inside a batch are
 * resolved before the insert. Each call is one `READ COMMITTED` transaction with the store's
 * timeouts; pass a `PoolClient` inside your own transaction to make the append part of it.
 *
 * @example
 * const store = new PostgresObservationStore(pool, { schema: "latch" });
 * await store.append(observation); // "appended"
 */
export class PostgresObservationStore implements ObservationStore {
  readonly #db: Queryable;
  readonly #schema: string;
  readonly #table: string;
  readonly #copyFrom: CopyFrom | undefined;
  readonly #copyThreshold: number;
  readonly #settings: TransactionSettings;
  readonly #groupCommit: GroupCommitSettings | undefined;
  readonly #writers = new WeakMap<RatedRecordStore, PostgresRecordWriter>();
  #direct = true;

  constructor(db: Queryable, options: PostgresObservationStoreOptions = {}) {
    this.#db = db;
    this.#settings = resolveTimeouts(options, STORE_TIMEOUTS);
    this.#copyFrom = options.copyFrom;
    this.#copyThreshold = options.copyThreshold ?? 1_000;
    this.#schema = options.schema ?? DEFAULT_SCHEMA;
    this.#table = `${quoteSchema(this.#schema)}.observations`;
    this.#groupCommit = resolveGroupCommit(options.groupCommit);
  }

  /**
   * The facade's record path in one transaction (see `RecordWriter` in `@latch/core/adapter`):
   * the observation, its rated record and the priced mark, when `rated` is a
   * {@link PostgresRatedRecordStore} on the same `Queryable` and schema (else `undefined`, and
   * the facade writes step by step). On a `pg.Pool` a write is one simple query
   * (`BEGIN; …; COMMIT`), so one round trip and one commit, shared by concurrent calls through
   * group commit (`groupCommit`). `createLatch` uses it by itself.
   *
   * @example
   * const observations = new PostgresObservationStore(pool, { schema: "latch", groupCommit: { maxWaitMs: 2, maxBatch: 64 } });
   * const latch = createLatch({ observations, rated: new PostgresRatedRecordStore(pool, { schema: "latch" }), pricing });
   */
  recordWriter(rated: RatedRecordStore): RecordWriter | undefined {
    if (!sameTarget(rated, { db: this.#db, schema: this.#schema })) return undefined;
    let writer = this.#writers.get(rated);
    if (writer === undefined) {
      writer = new PostgresRecordWriter(this.#db, this.#schema, this.#settings, this.#groupCommit);
      this.#writers.set(rated, writer);
    }
    return writer;
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

  async append(observation: UsageObservation, signal?: AbortSignal): Promise<AppendResult> {
    signal?.throwIfAborted();
    const parsed = parseObservation(observation);
    const [result] = await this.#write([parsed], signal);
    return result as AppendResult;
  }

  async appendMany(observations: readonly UsageObservation[], signal?: AbortSignal): Promise<AppendResult[]> {
    signal?.throwIfAborted();
    return this.#write(parseBatch(observations), signal);
  }

  async get(eventId: string, signal?: AbortSignal): Promise<UsageObservation | undefined> {
    signal?.throwIfAborted();
    const id = parseWith(EventIdSchema, eventId, "ObservationStore.get", "eventId");
    await assertMigrated(this.#db, this.#schema);
    const { rows } = await this.#query(`SELECT payload FROM ${this.#table} WHERE event_id = $1`, [id]);
    const row = rows[0] as { payload: unknown } | undefined;
    return row === undefined ? undefined : this.#parse(id, row.payload);
  }

  async listUnpriced(
    options: { after?: string; limit: number },
    signal?: AbortSignal,
  ): Promise<{ items: UsageObservation[]; next?: string }> {
    signal?.throwIfAborted();
    const { after, limit } = parseWith(ListUnpricedOptionsSchema, options, "ObservationStore.listUnpriced");
    await assertMigrated(this.#db, this.#schema);
    const { rows } = await this.#query(
      `SELECT event_id, payload FROM ${this.#table}
         WHERE NOT priced AND ($1::text IS NULL OR event_id > $1::text)
         ORDER BY event_id LIMIT $2`,
      [after ?? null, limit + 1],
    );
    const page = (rows as Array<{ event_id: string; payload: unknown }>).slice(0, limit);
    const items = page.map((row) => this.#parse(row.event_id, row.payload));
    const last = page[page.length - 1];
    return rows.length > limit && last !== undefined ? { items, next: last.event_id } : { items };
  }

  async markPriced(eventIds: readonly string[], signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const ids = parseWith(EventIdListSchema, eventIds, "ObservationStore.markPriced", "eventIds");
    if (ids.length === 0) return;
    await assertMigrated(this.#db, this.#schema);
    await this.#query(
      // `= ANY (ARRAY(…))`, not `IN (SELECT …)`: the planner takes the array for a few ids and
      // probes the index, where a semi-join over a table without statistics scanned it whole.
      `UPDATE ${this.#table} SET priced = true
         WHERE NOT priced AND event_id = ANY (ARRAY(SELECT jsonb_array_elements_text($1::jsonb)))`,
      [JSON.stringify(ids)],
    );
  }

  /** Dedupes the batch (a second payload for one id is a conflict), then stores it in one statement. */
  async #write(observations: readonly UsageObservation[], signal?: AbortSignal): Promise<AppendResult[]> {
    if (this.#copyFrom !== undefined && observations.length >= this.#copyThreshold && isPool(this.#db)) {
      await assertMigrated(this.#db, this.#schema);
      signal?.throwIfAborted();
      const inserted = await appendCopy(
        this.#db,
        this.#copyFrom,
        this.#table,
        observations,
        this.#direct,
        this.#settings,
      );
      // Straight into the table while batches keep coming back all new; after a batch that
      // met stored ids (a retry, a replay), the next goes to the stage first.
      this.#direct = inserted === "all";
      return answers(observations, inserted);
    }
    const firstHash = new Map<string, string>();
    // The batch as JSON text, built by hand: the canonical JSON that is hashed is also the
    // payload, so each observation is serialised once.
    const parts: string[] = [];
    for (const observation of observations) {
      const canonical = canonicalJson(observation);
      const hash = hashCanonicalJson(canonical);
      const seen = firstHash.get(observation.eventId);
      if (seen === undefined) {
        firstHash.set(observation.eventId, hash);
        parts.push(
          `{"event_id":${JSON.stringify(observation.eventId)},"hash":"${hash}","payload":${canonical}}`,
        );
      } else if (seen !== hash) {
        throw new IdempotencyConflictError({
          id: observation.eventId,
          existingHash: seen,
          incomingHash: hash,
        });
      }
    }
    if (parts.length === 0) return [];
    await assertMigrated(this.#db, this.#schema);
    signal?.throwIfAborted();
    let inserted: Set<string>;
    try {
      const { rows } = await this.#query(
        `SELECT ${quoteSchema(this.#schema)}.append_observations($1::jsonb) AS ids`,
        [`[${parts.join(",")}]`],
      );
      inserted = new Set((rows[0] as { ids: string[] }).ids);
    } catch (error) {
      rethrowConflict(error);
    }
    return answers(observations, inserted);
  }

  /** One statement in one transaction of this store (`READ COMMITTED`, its timeouts). */
  #query(text: string, params: unknown[]): Promise<QueryResultLike> {
    return transactQuery(this.#db, this.#settings, text, params);
  }

  #parse(id: string, payload: unknown): UsageObservation {
    return parseStored(id, payload, parseObservation);
  }
}
