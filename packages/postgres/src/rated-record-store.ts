import {
  LatchValidationError,
  type LinesPage,
  type LinesQuery,
  type RatedUsageRecord,
  type SummaryQuery,
  type SummaryRow,
} from "@latch/core";
import {
  type ChangeLogEntry,
  type ChangeLogStatus,
  type ChangeLogStatusQuery,
  ConsumerNameSchema,
  canonicalDecimal,
  checkVersionShape,
  decodeLinesCursor,
  EventIdSchema,
  encodeLinesCursor,
  type FilterKey,
  ChangeLogLimitSchema as LimitSchema,
  LinesQuerySchema,
  type PutResult,
  parseChangeLogStatusQuery,
  parseWith,
  RatedRecordIdSchema,
  type RatedRecordStore,
  RatedUsageRecordSchema,
  ratedRecordHash,
  type SummaryGroupKey,
  SummaryQuerySchema,
  supersededCurrencyMismatch,
  supersededNotStored,
  TOKEN_GROUP_NAMES,
  type TokenGroup,
  tokenGroupsOf,
} from "@latch/core/adapter";
import { IdempotencyConflictError, OverflowError } from "@latch/core/errors";
import { z } from "zod";
import { readLogStatus } from "./change-log-status.js";
import type { PostgresStoreOptions } from "./observation-store.js";
import type { Queryable, QueryResultLike } from "./queryable.js";
import { assertMigrated, DEFAULT_SCHEMA, quoteSchema, sqlState } from "./schema.js";
import {
  CURRENCY_MISMATCH_STATE,
  detailField,
  detailId,
  MISSING_SUPERSEDED_STATE,
  parseStored,
  rethrowConflict,
} from "./sql-errors.js";
import { registerTarget } from "./store-target.js";
import {
  resolveTimeouts,
  STORE_TIMEOUTS,
  type TransactionSettings,
  transact,
  transactQuery,
} from "./transaction.js";

/** A change-log position: `0` (the start) or a seq handed out by `listSince`. */
const CursorSchema = z
  .string({ error: "expected a decimal integer string" })
  .regex(/^(0|[1-9][0-9]{0,39})$/, { error: "expected a decimal integer string" });

/**
 * A change-log position packs the writing transaction's xid and the row's bigserial id into
 * one decimal integer, `xid × 10^19 + id` (ids stay below 2^63 < 10^19): ordering by it is
 * ordering by (xid, id), and a seq alone is a cursor.
 */
const XID_SHIFT = 10n ** 19n;

function encodeSeq(xid: string, id: string): string {
  return (BigInt(xid) * XID_SHIFT + BigInt(id)).toString();
}

function decodeSeq(seq: string): { xid: string; id: string } {
  const value = BigInt(seq);
  return { xid: (value / XID_SHIFT).toString(), id: (value % XID_SHIFT).toString() };
}

const FILTER_COLUMNS: Readonly<Record<FilterKey, string>> = {
  provider: "provider",
  model: "model",
  tenantId: "tenant_id",
  orgId: "org_id",
  projectId: "project_id",
  apiKeyId: "api_key_id",
  endUserId: "end_user_id",
  feature: "feature",
};
const GROUP_COLUMNS: Readonly<Record<SummaryGroupKey, string>> = { ...FILTER_COLUMNS, day: "completed_day" };
/** The column of each token group (core's `TOKEN_GROUPS`), written per row and summed by `summary`. */
const TOKEN_COLUMNS: Readonly<Record<TokenGroup, string>> = {
  inputTokens: "input_tokens",
  outputTokens: "output_tokens",
  cacheReadTokens: "cache_read_tokens",
  cacheWriteTokens: "cache_write_tokens",
  totalTokens: "total_tokens",
};

/** A record's columns for the insert function (bigints as strings). @internal */
export interface RecordRow {
  rated_record_id: string;
  event_id: string;
  version: number;
  hash: string;
  payload: RatedUsageRecord;
  currency: string;
  total: string;
  completed_ms: number;
  completed_text: string;
  completed_day: string;
  provider: string;
  model: string;
  tenant_id: string;
  org_id: string;
  project_id: string;
  api_key_id: string;
  end_user_id: string;
  feature: string;
  success: boolean;
  input_tokens: string;
  output_tokens: string;
  cache_read_tokens: string;
  cache_write_tokens: string;
  total_tokens: string;
}

/** A record's columns, as `put_rated_records` takes them. @internal */
export function toRow(record: RatedUsageRecord): RecordRow {
  const obs = record.observation;
  const tokens = tokenGroupsOf(obs.meters);
  const ms = Date.parse(obs.timing.completedAt);
  return {
    rated_record_id: record.ratedRecordId,
    event_id: record.eventId,
    version: record.version,
    hash: ratedRecordHash(record),
    payload: record,
    currency: record.currency,
    total: record.total,
    completed_ms: ms,
    completed_text: obs.timing.completedAt,
    completed_day: new Date(ms).toISOString().slice(0, 10),
    provider: obs.provider?.providerId ?? "",
    model: obs.model.billableModel,
    tenant_id: obs.subject.tenantId,
    org_id: obs.subject.orgId ?? "",
    project_id: obs.subject.projectId ?? "",
    api_key_id: obs.subject.apiKeyId ?? "",
    end_user_id: obs.subject.endUserId ?? "",
    feature: obs.subject.feature ?? "",
    success: obs.outcome.kind === "success",
    input_tokens: tokens.inputTokens.toString(),
    output_tokens: tokens.outputTokens.toString(),
    cache_read_tokens: tokens.cacheReadTokens.toString(),
    cache_write_tokens: tokens.cacheWriteTokens.toString(),
    total_tokens: tokens.totalTokens.toString(),
  };
}

/** @internal */
export function parseRecord(input: unknown): RatedUsageRecord {
  return parseWith(RatedUsageRecordSchema, input, "RatedUsageRecord");
}

/** Exact integer sum → a safe JS number, or `OverflowError` naming the field. */
function safe(value: bigint, field: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER))
    throw new OverflowError({ path: field, reason: "sum exceeds 2^53-1" });
  return Number(value);
}

/**
 * {@link RatedRecordStore} on PostgreSQL or PGlite (table `<schema>.rated_records`).
 *
 * - `put`/`putMany`: one statement per batch, idempotent by `ratedRecordId` with a canonical
 *   hash comparison (ignoring `ratedAt`), all-or-nothing; versions must chain, each in the
 *   currency of the version it supersedes (`CurrencyMismatchError`, migration 0008).
 * - `listSince`: a change log that never skips a version: each row carries the xid of its
 *   transaction and is handed out only once `xid < pg_snapshot_xmin(pg_current_snapshot())`,
 *   in (xid, id) order. A `seq` is `xid × 10^19 + id` as a decimal string (and is a cursor).
 * - `summary` / `lines`: computed in SQL over the current version of each event, equal to
 *   core's reference `summarize` / `selectLines` (same cursor format and order).
 *
 * @example
 * const rated = new PostgresRatedRecordStore(pool, { schema: "latch" });
 * await rated.put(record);
 * const rows = await rated.summary({ start, end, groupBy: ["model"] });
 */
export class PostgresRatedRecordStore implements RatedRecordStore {
  readonly #db: Queryable;
  readonly #schema: string;
  readonly #q: string;
  readonly #table: string;
  readonly #settings: TransactionSettings;

  constructor(db: Queryable, options: PostgresStoreOptions = {}) {
    this.#db = db;
    this.#schema = options.schema ?? DEFAULT_SCHEMA;
    this.#q = quoteSchema(this.#schema);
    this.#table = `${this.#q}.rated_records`;
    this.#settings = resolveTimeouts(options, STORE_TIMEOUTS);
    registerTarget(this, { db, schema: this.#schema });
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

  async put(record: RatedUsageRecord, signal?: AbortSignal): Promise<PutResult> {
    signal?.throwIfAborted();
    const parsed = parseWith(RatedUsageRecordSchema, record, "RatedUsageRecord", "");
    checkVersionShape(parsed, "");
    const [result] = await this.#write([parsed], false, signal);
    return result as PutResult;
  }

  async putMany(records: readonly RatedUsageRecord[], signal?: AbortSignal): Promise<PutResult[]> {
    signal?.throwIfAborted();
    if (!Array.isArray(records)) {
      throw LatchValidationError.at("RatedUsageRecord[]", "", "expected an array of records");
    }
    const parsed = records.map((r: unknown, index) =>
      parseWith(RatedUsageRecordSchema, r, "RatedUsageRecord", String(index)),
    );
    parsed.forEach((r, index) => {
      checkVersionShape(r, String(index));
    });
    return this.#write(parsed, true, signal);
  }

  async current(eventId: string, signal?: AbortSignal): Promise<RatedUsageRecord | undefined> {
    signal?.throwIfAborted();
    const id = parseWith(EventIdSchema, eventId, "RatedRecordStore.current", "eventId");
    await assertMigrated(this.#db, this.#schema);
    const { rows } = await this.#query(
      `SELECT rated_record_id, payload FROM ${this.#table} WHERE event_id = $1 ORDER BY version DESC LIMIT 1`,
      [id],
    );
    const row = rows[0] as { rated_record_id: string; payload: unknown } | undefined;
    return row === undefined ? undefined : parseStored(row.rated_record_id, row.payload, parseRecord);
  }

  async get(ratedRecordId: string, signal?: AbortSignal): Promise<RatedUsageRecord | undefined> {
    signal?.throwIfAborted();
    const id = parseWith(RatedRecordIdSchema, ratedRecordId, "RatedRecordStore.get", "ratedRecordId");
    await assertMigrated(this.#db, this.#schema);
    const { rows } = await this.#query(`SELECT payload FROM ${this.#table} WHERE rated_record_id = $1`, [id]);
    const row = rows[0] as { payload: unknown } | undefined;
    return row === undefined ? undefined : parseStored(id, row.payload, parseRecord);
  }

  async listSince(
    cursor: string | undefined,
    limit: number,
    signal?: AbortSignal,
  ): Promise<{ items: ChangeLogEntry[]; cursor: string | undefined }> {
    signal?.throwIfAborted();
    const from = decodeSeq(
      cursor === undefined ? "0" : parseWith(CursorSchema, cursor, "RatedRecordStore.listSince", "cursor"),
    );
    const max = parseWith(LimitSchema, limit, "RatedRecordStore.listSince", "limit");
    await assertMigrated(this.#db, this.#schema);
    // Only rows whose transaction is older than every transaction still running: no row
    // with an earlier (xid, id) can appear after this page.
    const rows = await this.#run(async (tx) => {
      const page = await tx.query(
        `SELECT r.xid::text AS xid_text, r.id::text AS id_text, r.rated_record_id, r.payload
         FROM ${this.#table} r
         WHERE r.xid < pg_snapshot_xmin(pg_current_snapshot())
           AND (r.xid, r.id) > ($1::text::xid8, $2::bigint)
         ORDER BY r.xid, r.id LIMIT $3`,
        [from.xid, from.id, max],
      );
      // An empty page: caught up, or a cursor past the end (which would skip what comes next).
      if (page.rows.length === 0 && cursor !== undefined) {
        await this.#refusePastEnd(tx, from, "RatedRecordStore.listSince");
      }
      return page.rows;
    });
    const items = (
      rows as Array<{ xid_text: string; id_text: string; rated_record_id: string; payload: unknown }>
    ).map((row) => ({
      seq: encodeSeq(row.xid_text, row.id_text),
      record: parseStored(row.rated_record_id, row.payload, parseRecord),
    }));
    const last = items[items.length - 1];
    return last === undefined ? { items, cursor } : { items, cursor: last.seq };
  }

  async summary(query: SummaryQuery, signal?: AbortSignal): Promise<SummaryRow[]> {
    signal?.throwIfAborted();
    const q = parseWith(SummaryQuerySchema, query, "SummaryQuery");
    await assertMigrated(this.#db, this.#schema);
    const params: unknown[] = [];
    const where = this.#where(q, params);
    const groupCols = q.groupBy.map((key, i) => `${GROUP_COLUMNS[key]} AS g${i}`);
    const groupRefs = q.groupBy.map((key) => GROUP_COLUMNS[key]);
    const { rows } = await this.#query(
      `SELECT ${[...groupCols, "currency"].join(", ")},
         count(*)::text AS requests,
         count(*) FILTER (WHERE success)::text AS successes,
         ${TOKEN_GROUP_NAMES.map((g) => `sum(${TOKEN_COLUMNS[g]})::text AS ${TOKEN_COLUMNS[g]},`).join("\n         ")}
         sum(total)::text AS cost
       FROM ${this.#table} r
       WHERE ${where}
       GROUP BY ${[...groupRefs, "currency"].join(", ")}`,
      params,
    );
    interface Acc {
      values: string[];
      tokens: Record<TokenGroup, bigint>;
      requests: bigint;
      successes: bigint;
      cost: Map<string, string>;
    }
    const groups = new Map<string, Acc>();
    for (const raw of rows as Array<Record<string, string>>) {
      const values = q.groupBy.map((_, i) => raw[`g${i}`] ?? "");
      const id = JSON.stringify(values);
      let acc = groups.get(id);
      if (acc === undefined) {
        acc = {
          values,
          tokens: {
            inputTokens: 0n,
            outputTokens: 0n,
            cacheReadTokens: 0n,
            cacheWriteTokens: 0n,
            totalTokens: 0n,
          },
          requests: 0n,
          successes: 0n,
          cost: new Map(),
        };
        groups.set(id, acc);
      }
      for (const g of TOKEN_GROUP_NAMES) acc.tokens[g] += BigInt(raw[TOKEN_COLUMNS[g]] ?? "0");
      acc.requests += BigInt(raw.requests ?? "0");
      acc.successes += BigInt(raw.successes ?? "0");
      acc.cost.set(raw.currency ?? "", canonicalDecimal(raw.cost ?? "0"));
    }
    const sorted = [...groups.values()].sort((a, b) => {
      for (let i = 0; i < a.values.length; i++) {
        const x = a.values[i] ?? "";
        const y = b.values[i] ?? "";
        if (x !== y) return x < y ? -1 : 1;
      }
      return 0;
    });
    return sorted.map((acc) => {
      const group: Partial<Record<SummaryGroupKey, string>> = {};
      q.groupBy.forEach((key, i) => {
        group[key] = acc.values[i] ?? "";
      });
      const costByCurrency: Record<string, string> = {};
      for (const currency of [...acc.cost.keys()].sort())
        costByCurrency[currency] = acc.cost.get(currency) ?? "0";
      return {
        group,
        inputTokens: safe(acc.tokens.inputTokens, "inputTokens"),
        outputTokens: safe(acc.tokens.outputTokens, "outputTokens"),
        cacheReadTokens: safe(acc.tokens.cacheReadTokens, "cacheReadTokens"),
        cacheWriteTokens: safe(acc.tokens.cacheWriteTokens, "cacheWriteTokens"),
        totalTokens: safe(acc.tokens.totalTokens, "totalTokens"),
        requests: Number(acc.requests),
        successes: Number(acc.successes),
        failures: Number(acc.requests - acc.successes),
        costByCurrency,
      };
    });
  }

  async lines(query: LinesQuery, signal?: AbortSignal): Promise<LinesPage> {
    signal?.throwIfAborted();
    const q = parseWith(LinesQuerySchema, query, "LinesQuery");
    const after = q.cursor === undefined ? undefined : decodeLinesCursor(q.cursor);
    await assertMigrated(this.#db, this.#schema);
    const params: unknown[] = [];
    let where = this.#where(q, params);
    if (after !== undefined) {
      params.push(after[0], after[1], after[2]);
      const n = params.length;
      where += ` AND (completed_ms, completed_text, event_id) > ($${n - 2}::bigint, $${n - 1}::text, $${n}::text)`;
    }
    params.push(q.limit + 1);
    const { rows } = await this.#query(
      `SELECT r.rated_record_id, r.payload, r.completed_ms::text AS ms, r.completed_text, r.event_id
         FROM ${this.#table} r
         WHERE ${where}
         ORDER BY r.completed_ms, r.completed_text, r.event_id
         LIMIT $${params.length}`,
      params,
    );
    const typed = rows as Array<{
      rated_record_id: string;
      payload: unknown;
      ms: string;
      completed_text: string;
      event_id: string;
    }>;
    const page = typed.slice(0, q.limit);
    const items = page.map((row) => parseStored(row.rated_record_id, row.payload, parseRecord));
    const last = page[page.length - 1];
    if (typed.length > q.limit && last !== undefined) {
      return { items, next: encodeLinesCursor([Number(last.ms), last.completed_text, last.event_id]) };
    }
    return { items };
  }

  async getCursor(name: string, signal?: AbortSignal): Promise<string | undefined> {
    signal?.throwIfAborted();
    const consumer = parseWith(ConsumerNameSchema, name, "RatedRecordStore.getCursor", "name");
    await assertMigrated(this.#db, this.#schema);
    const { rows } = await this.#query(
      `SELECT position::text AS position FROM ${this.#q}.consumer_cursors WHERE name = $1`,
      [consumer],
    );
    return (rows[0] as { position: string } | undefined)?.position;
  }

  async saveCursor(name: string, cursor: string, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const consumer = parseWith(ConsumerNameSchema, name, "RatedRecordStore.saveCursor", "name");
    const position = parseWith(CursorSchema, cursor, "RatedRecordStore.saveCursor", "cursor");
    await assertMigrated(this.#db, this.#schema);
    await this.#run(async (tx) => {
      // The end only moves forward, so a cursor at or before it now stays valid.
      await this.#refusePastEnd(tx, decodeSeq(position), "RatedRecordStore.saveCursor");
      // Forward only: a late, stale save must not rewind the consumer.
      await tx.query(
        `INSERT INTO ${this.#q}.consumer_cursors AS c (name, position) VALUES ($1, $2::numeric)
         ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = now()
         WHERE c.position < EXCLUDED.position`,
        [consumer, position],
      );
    });
  }

  /**
   * `invalid_input` naming `cursor` when `at` lies past the last entry `listSince` can hand
   * out now (a row of a transaction older than every running one): a consumer that saved or
   * followed it would skip every version written up to there. A position inside a month that
   * retention removed (migration 0017's `retained_months.last_seq`) stays valid: a consumer
   * whose cursor was the newest entry of a dropped month goes on from there.
   */
  async #refusePastEnd(tx: Queryable, at: { xid: string; id: string }, subject: string): Promise<void> {
    if (at.xid === "0" && at.id === "0") return;
    const { rows } = await tx.query(
      `SELECT NOT EXISTS (
         SELECT 1 FROM ${this.#table} r
         WHERE r.xid < pg_snapshot_xmin(pg_current_snapshot())
           AND (r.xid, r.id) >= ($1::text::xid8, $2::bigint))
       AND NOT EXISTS (
         SELECT 1 FROM ${this.#q}.retained_months m
         WHERE m.last_seq >= $1::text::numeric * 10000000000000000000 + $2::bigint) AS past`,
      [at.xid, at.id],
    );
    if ((rows[0] as { past: boolean }).past) {
      throw LatchValidationError.at(subject, "cursor", "is past the end of this store's change log");
    }
  }

  /** One statement in one transaction of this store (`READ COMMITTED`, its timeouts). */
  #query(text: string, params: unknown[]): Promise<QueryResultLike> {
    return transactQuery(this.#db, this.#settings, text, params);
  }

  /** One transaction of this store (`READ COMMITTED`, its timeouts). */
  #run<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return transact(this.#db, this.#settings, fn);
  }

  /**
   * The consumer's cursor, the versions after it that `listSince` hands out now (`ready`) and
   * those stored but held back (`waiting`), and the oldest transaction holding an xid anywhere
   * on the server (`heldBack`), which every version committed after it began waits for: its pid, xid,
   * state, application, user, database, start and age (from `pg_stat_activity`, or
   * `pg_prepared_xacts` for a prepared transaction). A short transaction of another writer
   * shows up here too, briefly; one that stays is what to look for. On PGlite (one session)
   * nothing else can be running, so `heldBack` is missing unless the caller's own transaction
   * wrote.
   *
   * @example
   * const { ready, waiting, heldBack } = await rated.changeLogStatus({ consumer: "s3-billing" });
   * // heldBack: { by: "transaction", pid: 4242, xid: "73112", state: "idle in transaction",
   * //   applicationName: "psql", startedAt: "2026-03-02T09:00:00.000Z", ageMs: 5400000, … }
   */
  async changeLogStatus(query?: ChangeLogStatusQuery, signal?: AbortSignal): Promise<ChangeLogStatus> {
    signal?.throwIfAborted();
    const { consumer, countLimit } = parseChangeLogStatusQuery(query);
    const cursor = consumer === undefined ? undefined : await this.getCursor(consumer, signal);
    await assertMigrated(this.#db, this.#schema);
    const status = await readLogStatus(
      (text, params) => this.#query(text, params),
      this.#table,
      decodeSeq(cursor ?? "0"),
      countLimit + 1,
    );
    return {
      ...(consumer === undefined ? {} : { consumer }),
      cursor,
      ready: Math.min(status.ready, countLimit),
      waiting: Math.min(status.waiting, countLimit),
      capped: status.ready > countLimit || status.waiting > countLimit,
      ...(status.holder === undefined ? {} : { heldBack: status.holder }),
    };
  }

  /** The report selection: current version (`is_current`), completedAt ∈ [start, end) in epoch ms, filters. */
  #where(
    q: { start: string; end: string; filters?: Partial<Record<FilterKey, string>> | undefined },
    params: unknown[],
  ): string {
    params.push(Date.parse(q.start), Date.parse(q.end));
    // is_current: the flag that migration 0014's trigger clears on a version once a newer one
    // is inserted, in the same statement (the partial indexes cover only current rows).
    const parts = ["is_current", "completed_ms >= $1::bigint", "completed_ms < $2::bigint"];
    for (const [key, value] of Object.entries(q.filters ?? {}) as Array<[FilterKey, string | undefined]>) {
      if (value === undefined) continue;
      params.push(value);
      parts.push(`${FILTER_COLUMNS[key]} = $${params.length}::text`);
    }
    return parts.join(" AND ");
  }

  async #write(
    records: readonly RatedUsageRecord[],
    batch: boolean,
    signal?: AbortSignal,
  ): Promise<PutResult[]> {
    const firstHash = new Map<string, string>();
    const unique: RecordRow[] = [];
    const indexOf = new Map<string, number>();
    records.forEach((record, index) => {
      const row = toRow(record);
      const seen = firstHash.get(row.rated_record_id);
      if (seen === undefined) {
        firstHash.set(row.rated_record_id, row.hash);
        indexOf.set(row.rated_record_id, index);
        unique.push(row);
      } else if (seen !== row.hash) {
        throw new IdempotencyConflictError({
          id: row.rated_record_id,
          existingHash: seen,
          incomingHash: row.hash,
        });
      }
    });
    if (unique.length === 0) return [];
    await assertMigrated(this.#db, this.#schema);
    signal?.throwIfAborted();
    let inserted: Set<string>;
    try {
      const { rows } = await this.#query(`SELECT ${this.#q}.put_rated_records($1::jsonb) AS ids`, [
        JSON.stringify(unique),
      ]);
      inserted = new Set((rows[0] as { ids: string[] }).ids);
    } catch (error) {
      if (sqlState(error) === MISSING_SUPERSEDED_STATE) {
        const index = indexOf.get(detailId(error));
        throw supersededNotStored(batch && index !== undefined ? String(index) : "");
      }
      if (sqlState(error) === CURRENCY_MISMATCH_STATE) {
        const index = indexOf.get(detailId(error));
        const record = index === undefined ? undefined : records[index];
        if (record !== undefined) {
          const prefix = batch ? String(index) : "";
          throw supersededCurrencyMismatch(record, detailField(error, "expected"), prefix);
        }
      }
      rethrowConflict(error);
    }
    const answered = new Set<string>();
    return records.map((record) => {
      const first = !answered.has(record.ratedRecordId);
      answered.add(record.ratedRecordId);
      return first && inserted.has(record.ratedRecordId) ? "stored" : "already_exists";
    });
  }
}
