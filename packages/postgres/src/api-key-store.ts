import type { ApiKeyRecord, BillingSubject } from "@latch/core";
import {
  type ApiKeyListOptions,
  ApiKeyListOptionsSchema,
  type ApiKeyPage,
  ApiKeyRecordSchema,
  type ApiKeyStore,
  BillingSubjectSchema,
  canonicalHash,
  ApiKeyDigestSchema as DigestSchema,
  ApiKeyIdSchema as IdSchema,
  ApiKeyInstantSchema as InstantSchema,
  IntervalMsSchema,
  parseWith,
  type StoredApiKey,
} from "@latch/core/adapter";
import { IdempotencyConflictError } from "@latch/core/errors";
import type { PostgresStoreOptions } from "./observation-store.js";
import type { Queryable, QueryResultLike } from "./queryable.js";
import { assertMigrated, DEFAULT_SCHEMA, quoteSchema } from "./schema.js";
import { parseStored } from "./sql-errors.js";
import {
  resolveTimeouts,
  STORE_TIMEOUTS,
  type TransactionSettings,
  transact,
  transactQuery,
} from "./transaction.js";

const S = "ApiKeyStore";
const ISO = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;
const COLUMNS = `id, digest, payload, created_by,
  to_char(revoked_at AT TIME ZONE 'UTC', ${ISO}) AS revoked_at,
  to_char(last_used_at AT TIME ZONE 'UTC', ${ISO}) AS last_used_at`;

interface Row {
  id: string;
  digest: string;
  payload: unknown;
  created_by: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}

/** The immutable part of a record, hashed for retry-vs-conflict. */
function identityOf(record: ApiKeyRecord): Omit<ApiKeyRecord, "revokedAt" | "lastUsedAt"> {
  const { revokedAt: _r, lastUsedAt: _l, ...identity } = record;
  return identity;
}

/**
 * What `payload` keeps: the identity without `createdBy`, which is the `created_by` column
 * (migration 0012), so a release from before it still parses every payload.
 */
function payloadOf(record: ApiKeyRecord): Omit<ApiKeyRecord, "revokedAt" | "lastUsedAt" | "createdBy"> {
  const { createdBy: _c, ...payload } = identityOf(record);
  return payload;
}

function toRecord(row: Row): ApiKeyRecord {
  return parseStored(row.id, row.payload, (payload) =>
    ApiKeyRecordSchema.parse({
      ...(payload as object),
      ...(row.created_by === null ? {} : { createdBy: row.created_by }),
      ...(row.revoked_at === null ? {} : { revokedAt: row.revoked_at }),
      ...(row.last_used_at === null ? {} : { lastUsedAt: row.last_used_at }),
    }),
  );
}

/**
 * {@link ApiKeyStore} on PostgreSQL or PGlite (table `<schema>.api_keys`, migrations 0005 and
 * 0012). Keys are found by digest (unique index); the plaintext never reaches this store. Reads
 * and revokes are scoped with `owner @> $owner`, so another tenant's key is simply not found.
 * `revoke` and `touch` are single conditional UPDATEs: concurrent touches of one key within
 * the interval write once. Revocation cascades to minted keys (`created_by`) through the
 * schema's triggers (0012), so every release writing to the schema cascades alike.
 *
 * @example
 * const keys = new ApiKeys({ store: new PostgresApiKeyStore(pool, { schema: "latch" }), secret });
 */
export class PostgresApiKeyStore implements ApiKeyStore {
  readonly #db: Queryable;
  readonly #schema: string;
  readonly #table: string;
  readonly #settings: TransactionSettings;

  constructor(db: Queryable, options: PostgresStoreOptions = {}) {
    this.#db = db;
    this.#schema = options.schema ?? DEFAULT_SCHEMA;
    this.#table = `${quoteSchema(this.#schema)}.api_keys`;
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

  /** One statement in one transaction of this store (`READ COMMITTED`, its timeouts). */
  #query(text: string, params: unknown[]): Promise<QueryResultLike> {
    return transactQuery(this.#db, this.#settings, text, params);
  }

  /** One transaction of this store (`READ COMMITTED`, its timeouts). */
  #run<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return transact(this.#db, this.#settings, fn);
  }

  async insert(
    record: ApiKeyRecord,
    digest: string,
    signal?: AbortSignal,
  ): Promise<"created" | "already_exists"> {
    signal?.throwIfAborted();
    const r = parseWith(ApiKeyRecordSchema, record, `${S}.insert`, "record");
    const d = parseWith(DigestSchema, digest, `${S}.insert`, "digest");
    const identity = identityOf(r);
    const hash = canonicalHash({ record: identity, digest: d });
    await assertMigrated(this.#db, this.#schema);
    const existing = await this.#run(async (tx) => {
      const inserted = await tx.query(
        `INSERT INTO ${this.#table} (id, digest, tenant_id, owner, hash, payload, revoked_at, last_used_at, created_by)
       VALUES ($1, $2, $3, $4::jsonb, $5, $6::jsonb, $7::timestamptz, $8::timestamptz, $9)
       ON CONFLICT DO NOTHING RETURNING id`,
        [
          r.id,
          d,
          r.owner.tenantId,
          JSON.stringify(r.owner),
          hash,
          JSON.stringify(payloadOf(r)),
          r.revokedAt ?? null,
          r.lastUsedAt ?? null,
          r.createdBy ?? null,
        ],
      );
      if (inserted.rows.length === 1) return "created" as const;
      // ON CONFLICT DO NOTHING waited for the conflicting writer; under READ COMMITTED a new
      // statement sees its row.
      const { rows } = await tx.query(
        `SELECT id, hash FROM ${this.#table} WHERE id = $1 OR digest = $2 ORDER BY (id = $1) DESC LIMIT 1`,
        [r.id, d],
      );
      return rows[0] as { id: string; hash: string } | undefined;
    });
    if (existing === "created") return "created";
    if (existing !== undefined && existing.id === r.id && existing.hash === hash) return "already_exists";
    throw new IdempotencyConflictError({ id: r.id, existingHash: existing?.hash ?? "", incomingHash: hash });
  }

  async findByDigest(digest: string, signal?: AbortSignal): Promise<StoredApiKey | undefined> {
    signal?.throwIfAborted();
    const d = parseWith(DigestSchema, digest, `${S}.findByDigest`, "digest");
    await assertMigrated(this.#db, this.#schema);
    const { rows } = await this.#query(`SELECT ${COLUMNS} FROM ${this.#table} WHERE digest = $1`, [d]);
    const row = rows[0] as Row | undefined;
    return row === undefined ? undefined : { record: toRecord(row), digest: row.digest };
  }

  async get(owner: BillingSubject, id: string, signal?: AbortSignal): Promise<ApiKeyRecord | undefined> {
    signal?.throwIfAborted();
    const o = parseWith(BillingSubjectSchema, owner, `${S}.get`, "owner");
    const key = parseWith(IdSchema, id, `${S}.get`, "id");
    await assertMigrated(this.#db, this.#schema);
    const { rows } = await this.#query(
      `SELECT ${COLUMNS} FROM ${this.#table} WHERE id = $1 AND owner @> $2::jsonb`,
      [key, JSON.stringify(o)],
    );
    const row = rows[0] as Row | undefined;
    return row === undefined ? undefined : toRecord(row);
  }

  async list(owner: BillingSubject, options: ApiKeyListOptions, signal?: AbortSignal): Promise<ApiKeyPage> {
    signal?.throwIfAborted();
    const o = parseWith(BillingSubjectSchema, owner, `${S}.list`, "owner");
    const { limit, cursor } = parseWith(ApiKeyListOptionsSchema, options, `${S}.list`);
    await assertMigrated(this.#db, this.#schema);
    const { rows } = await this.#query(
      `SELECT ${COLUMNS} FROM ${this.#table}
       WHERE tenant_id = $1 AND owner @> $2::jsonb AND id > $3
       ORDER BY id LIMIT $4`,
      [o.tenantId, JSON.stringify(o), cursor ?? "", limit + 1],
    );
    const items = (rows as Row[]).slice(0, limit).map(toRecord);
    const last = items[items.length - 1];
    return rows.length > limit && last !== undefined ? { items, next: last.id } : { items };
  }

  async revoke(
    owner: BillingSubject,
    id: string,
    at: string,
    signal?: AbortSignal,
  ): Promise<ApiKeyRecord | undefined> {
    signal?.throwIfAborted();
    const o = parseWith(BillingSubjectSchema, owner, `${S}.revoke`, "owner");
    const key = parseWith(IdSchema, id, `${S}.revoke`, "id");
    const when = parseWith(InstantSchema, at, `${S}.revoke`, "at");
    await assertMigrated(this.#db, this.#schema);
    const { rows } = await this.#query(
      `UPDATE ${this.#table} SET revoked_at = coalesce(revoked_at, $3::timestamptz)
       WHERE id = $1 AND owner @> $2::jsonb RETURNING ${COLUMNS}`,
      [key, JSON.stringify(o), when],
    );
    const row = rows[0] as Row | undefined;
    return row === undefined ? undefined : toRecord(row);
  }

  async touch(id: string, at: string, minIntervalMs: number, signal?: AbortSignal): Promise<boolean> {
    signal?.throwIfAborted();
    const key = parseWith(IdSchema, id, `${S}.touch`, "id");
    const when = parseWith(InstantSchema, at, `${S}.touch`, "at");
    const interval = parseWith(IntervalMsSchema, minIntervalMs, `${S}.touch`, "minIntervalMs");
    await assertMigrated(this.#db, this.#schema);
    // One statement: concurrent touches queue on the row lock and re-check the condition.
    const { rows } = await this.#query(
      `UPDATE ${this.#table} SET last_used_at = $2::timestamptz
       WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $2::timestamptz - $3::bigint * interval '1 millisecond')
       RETURNING id`,
      [key, when, String(interval)],
    );
    return rows.length === 1;
  }
}
