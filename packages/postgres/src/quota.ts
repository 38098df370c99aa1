import { LatchError, LatchValidationError } from "@latch/core";
import {
  QuotaActualSchema as ActualSchema,
  QuotaAmountSchema as AmountSchema,
  canonicalHash,
  isQuotaName,
  isQuotaUnits,
  QuotaLimitSchema as LimitSchema,
  QuotaNameSchema as Name,
  parseHoldRetentionMs,
  parseReserveRequest,
  parseSetLimitOptions,
  parseWith,
  type QuotaAuthorizer,
  type QuotaBalance,
  type QuotaReservator,
  type ReserveRequest,
  type ReserveResult,
  type SetLimitOptions,
} from "@latch/core/adapter";
import {
  HoldAlreadyResolvedError,
  IdempotencyConflictError,
  OverflowError,
  QuotaUnavailableError,
} from "@latch/core/errors";
import { z } from "zod";
import {
  DEFAULT_POSTGRES_HOLD_RETENTION_MS,
  type PurgeResolvedHoldsOptions,
  ResolvedHoldPurge,
} from "./hold-retention.js";
import type { PostgresStoreOptions } from "./observation-store.js";
import type { Queryable, QueryResultLike } from "./queryable.js";
import { assertMigrated, DEFAULT_SCHEMA, quoteSchema, sqlState } from "./schema.js";
import { QUOTA_TIMEOUTS, resolveTimeouts, type TransactionSettings, transactQuery } from "./transaction.js";

const SweepOptionsSchema = z.strictObject({
  limit: z
    .number({ error: "expected an integer from 1 to 100000" })
    .int({ error: "expected an integer from 1 to 100000" })
    .min(1, { error: "expected an integer from 1 to 100000" })
    .max(100_000, { error: "expected an integer from 1 to 100000" })
    .optional(),
});

/** Options of {@link PostgresQuota.sweepExpired}. */
export interface SweepExpiredOptions {
  /** Most holds released per batch (one statement, one short transaction). Default 1,000. */
  limit?: number;
}

/** Options of {@link PostgresQuota}. */
export interface PostgresQuotaOptions extends PostgresStoreOptions {
  /**
   * How long a resolved hold (committed, voided, or expired) is kept so that retries stay
   * idempotent; after it the hold is purged and its holdId is unknown (`commit` and `void`
   * throw `invalid_input`, never charging twice). Default one day. See `purgeResolvedHolds`.
   */
  holdRetentionMs?: number;
}

/**
 * Errors that are ours to throw as they are (bad input, conflicts, a missing migration); a
 * busy database (`store_busy`) is an outage like any other database failure.
 */
function isOwn(error: unknown): boolean {
  return LatchError.isInstance(error) && error.code !== "store_busy";
}

/**
 * {@link QuotaReservator} and {@link QuotaAuthorizer} on PostgreSQL or PGlite (tables
 * `<schema>.quota_accounts` and `<schema>.quota_holds`), with exactly the contract's semantics.
 *
 * Each call is one statement. `reserve` locks the account's row, expires its stale holds by
 * the database clock (`clock_timestamp()`), then grants with one conditional
 * `UPDATE … SET held = held + amount WHERE limit − spent − held ≥ amount`, so concurrent
 * reserves on any number of connections never exceed the limit. Commit above the hold charges
 * in full; commit after expiry charges; void after expiry is a no-op (see the contract).
 * Budget periods (`setLimit`'s `period`, migration 0015) roll under the same lock by the
 * database clock, with calendar bounds from the database's time-zone data.
 *
 * Fails closed: when the database cannot answer, `reserve` denies with reason `unavailable`
 * and the other methods throw `QuotaUnavailableError`. Each call is a `READ COMMITTED`
 * transaction with a lock timeout (default 2 s) and a statement timeout (default 5 s): an
 * account row that another transaction holds past them makes `reserve` deny `unavailable`
 * instead of hanging.
 *
 * @example
 * const quota = new PostgresQuota(pool, { schema: "latch" });
 * await quota.setLimit("acme", 10_000);
 * const r = await quota.reserve({ holdId: "req-1", account: "acme", amount: 2_000, ttlMs: 60_000 });
 * if (r.granted) await quota.commit("req-1", 1_234);
 */
export class PostgresQuota implements QuotaReservator, QuotaAuthorizer {
  readonly #db: Queryable;
  readonly #schema: string;
  readonly #q: string;
  readonly #settings: TransactionSettings;
  readonly #retentionMs: number;
  readonly #purge: ResolvedHoldPurge;

  /**
   * `options`: the schema, `lockTimeoutMs` / `statementTimeoutMs` (defaults 2,000 / 5,000) and
   * `holdRetentionMs` (default one day).
   */
  constructor(db: Queryable, options: PostgresQuotaOptions = {}) {
    this.#db = db;
    this.#schema = options.schema ?? DEFAULT_SCHEMA;
    this.#q = quoteSchema(this.#schema);
    this.#settings = resolveTimeouts(options, QUOTA_TIMEOUTS);
    this.#retentionMs = parseHoldRetentionMs(
      options.holdRetentionMs,
      DEFAULT_POSTGRES_HOLD_RETENTION_MS,
      "PostgresQuota options",
    );
    this.#purge = new ResolvedHoldPurge(db, async (limit) => {
      const { rows } = await this.#run(
        `SELECT ${this.#q}.quota_purge_resolved($1::bigint, $2::int)::text AS purged`,
        [String(this.#retentionMs), limit],
      );
      return Number((rows[0] as { purged: string }).purged);
    });
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

  /**
   * Sets the limit and, with `options.period`, the budget period (`quota_set_limit`, migration
   * 0015). Calendar bounds come from this database's time-zone data: a zone name that core
   * accepts but the database does not know is `invalid_input` naming `period.timeZone`.
   */
  async setLimit(account: string, limit: number, options?: SetLimitOptions | AbortSignal): Promise<void> {
    const { period, signal } = parseSetLimitOptions(options, "QuotaReservator.setLimit");
    signal?.throwIfAborted();
    const name = parseWith(Name, account, "QuotaReservator.setLimit", "account");
    const value = parseWith(LimitSchema, limit, "QuotaReservator.setLimit", "limit");
    const mode = period === undefined ? "keep" : period === null ? "none" : "set";
    const every = period != null && "every" in period ? period.every : null;
    const zone = period != null && "every" in period ? period.timeZone : null;
    const rolling = period != null && "rollingMs" in period ? String(period.rollingMs) : null;
    try {
      await this.#run(`SELECT ${this.#q}.quota_set_limit($1, $2::bigint, $3, $4, $5, $6::bigint)`, [
        name,
        String(value),
        mode,
        every,
        zone,
        rolling,
      ]);
    } catch (error) {
      // 22023: "time zone … not recognized" by this database.
      if (sqlState((error as { cause?: unknown }).cause) === "22023") {
        throw LatchValidationError.at(
          "QuotaReservator.setLimit",
          "period.timeZone",
          "unknown to this database",
        );
      }
      throw error;
    }
  }

  async balance(account: string, signal?: AbortSignal): Promise<QuotaBalance> {
    signal?.throwIfAborted();
    const name = parseWith(Name, account, "QuotaReservator.balance", "account");
    const { limit, spent, held, periodStart, periodEnd } = await this.#read(name);
    const balance: QuotaBalance = { limit, spent, held, available: Math.max(0, limit - spent - held) };
    if (periodStart !== undefined && periodEnd !== undefined) {
      balance.periodStart = periodStart;
      balance.periodEnd = periodEnd;
    }
    return balance;
  }

  async check(
    account: string,
    amount: number,
    signal?: AbortSignal,
  ): Promise<{ allowed: boolean; remaining: number }> {
    signal?.throwIfAborted();
    const name = parseWith(Name, account, "QuotaAuthorizer.check", "account");
    const value = parseWith(AmountSchema, amount, "QuotaAuthorizer.check", "amount");
    const { limit, spent, held } = await this.#read(name);
    const remaining = Math.max(0, limit - spent - held);
    return { allowed: value <= remaining, remaining };
  }

  async reserve(request: ReserveRequest, signal?: AbortSignal): Promise<ReserveResult> {
    signal?.throwIfAborted();
    const { holdId, account, amount, ttlMs } = parseReserveRequest(request);
    let row: {
      status: string;
      remaining: string | null;
      existing_account: string | null;
      existing_amount: string | null;
    };
    try {
      await assertMigrated(this.#db, this.#schema);
      const { rows } = await this.#transaction(
        `SELECT status, remaining::text AS remaining, existing_account, existing_amount::text AS existing_amount
           FROM ${this.#q}.quota_reserve($1, $2, $3::bigint, $4::bigint)`,
        [holdId, account, String(amount), String(ttlMs)],
      );
      row = rows[0] as typeof row;
    } catch (error) {
      if (isOwn(error)) throw error;
      return { granted: false, reason: "unavailable" }; // fail closed
    }
    this.#purge.afterReserve();
    const remaining = Number(row.remaining ?? "0");
    switch (row.status) {
      case "granted":
      case "retry":
        return { granted: true, remaining };
      case "denied":
        return { granted: false, reason: "insufficient", remaining };
      default:
        throw new IdempotencyConflictError({
          id: holdId,
          existingHash: canonicalHash({ account: row.existing_account, amount: Number(row.existing_amount) }),
          incomingHash: canonicalHash({ account, amount }),
        });
    }
  }

  async commit(holdId: string, actual: number, signal?: AbortSignal): Promise<{ committed: number }> {
    signal?.throwIfAborted();
    // Core's pre-checks accept only what the schemas accept unchanged; anything else goes through
    // the schema, which owns every message.
    const id = isQuotaName(holdId) ? holdId : parseWith(Name, holdId, "QuotaReservator.commit", "holdId");
    const value = isQuotaUnits(actual, 0)
      ? actual
      : parseWith(ActualSchema, actual, "QuotaReservator.commit", "actual");
    const { rows } = await this.#run(
      `SELECT status, committed::text AS committed FROM ${this.#q}.quota_commit($1, $2::bigint)`,
      [id, String(value)],
    );
    const row = rows[0] as { status: string; committed: string | null };
    switch (row.status) {
      case "committed":
        return { committed: Number(row.committed) };
      case "unknown":
        throw LatchValidationError.at("QuotaReservator.commit", "holdId", "no hold with this id");
      case "voided":
        throw new HoldAlreadyResolvedError({ holdId: id, state: "voided" });
      case "overflow":
        throw new OverflowError({ path: "actual", reason: "the account's spend would exceed 2^53-1" });
      default:
        throw new IdempotencyConflictError({
          id,
          existingHash: canonicalHash({ holdId: id, actual: Number(row.committed) }),
          incomingHash: canonicalHash({ holdId: id, actual: value }),
        });
    }
  }

  async void(holdId: string, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const id = isQuotaName(holdId) ? holdId : parseWith(Name, holdId, "QuotaReservator.void", "holdId");
    const { rows } = await this.#run(`SELECT ${this.#q}.quota_void($1) AS status`, [id]);
    const status = (rows[0] as { status: string }).status;
    if (status === "unknown")
      throw LatchValidationError.at("QuotaReservator.void", "holdId", "no hold with this id");
    if (status === "committed") throw new HoldAlreadyResolvedError({ holdId: id, state: "committed" });
  }

  /**
   * Releases expired holds across **all** accounts, by the database clock, in batches of at
   * most `limit` holds (one statement each, so each batch commits on its own and keeps its
   * locks briefly); batches run until one comes back short. Returns how many holds it released.
   *
   * Holds already expire lazily: `reserve`, `commit` and `void` expire their account's holds
   * first, and `balance`/`check` never count a hold past its expiry. So correctness never
   * depends on this sweep; it only returns the held units of idle accounts to their stored
   * balance (and shrinks the index of active holds). Run it from a cron job or an interval.
   *
   * Safe alongside reserves and other sweeps: each account's row is locked before its holds
   * are touched (account → holds, the order every quota function uses), accounts are visited in
   * code-point order, and an account another transaction is holding is skipped rather than
   * waited on (`FOR UPDATE SKIP LOCKED`: that transaction expires the account's holds itself).
   * A hold is released once, and each account's `held` is updated in the same statement as its
   * holds. Aborting `signal` between batches ends the sweep early with the count so far.
   *
   * @example
   * setInterval(() => void quota.sweepExpired().catch(log), 60_000).unref();
   * const { released } = await quota.sweepExpired({ limit: 500 });
   */
  async sweepExpired(options: SweepExpiredOptions = {}, signal?: AbortSignal): Promise<{ released: number }> {
    signal?.throwIfAborted();
    const { limit = 1_000 } = parseWith(SweepOptionsSchema, options, "PostgresQuota.sweepExpired");
    let released = 0;
    for (;;) {
      const { rows } = await this.#run(`SELECT ${this.#q}.quota_sweep_expired($1::int)::text AS released`, [
        limit,
      ]);
      const batch = Number((rows[0] as { released: string }).released);
      released += batch;
      if (batch < limit || signal?.aborted) return { released };
    }
  }

  /**
   * Deletes the holds resolved (committed, voided, expired) at least `holdRetentionMs` ago by
   * the database clock, oldest first, in batches of at most `limit` (one statement each, one
   * short transaction: `quota_purge_resolved`, migration 0010) until a batch comes back short;
   * returns how many. `reserve` already runs one batch every 200 reserves in the background (on
   * a pool or PGlite), which keeps `quota_holds` bounded; call this from a schedule when the
   * store is given a single client, or to catch up after an upgrade.
   *
   * Safe alongside every other call: deleting a resolved hold changes no balance, and a hold
   * that a commit or void has locked is skipped. A hold still `held` past its expiry is purged
   * a retention after `sweepExpired` (or its account's next call) marks it expired. A commit or
   * void of a purged hold throws `invalid_input` naming `holdId`: a retry that comes too late
   * fails loudly and never charges twice; a reserve with its holdId is a new hold.
   *
   * @example
   * const quota = new PostgresQuota(pool, { schema: "latch", holdRetentionMs: 6 * 3_600_000 });
   * setInterval(() => void quota.purgeResolvedHolds().catch(log), 3_600_000).unref();
   */
  purgeResolvedHolds(
    options: PurgeResolvedHoldsOptions = {},
    signal?: AbortSignal,
  ): Promise<{ purged: number }> {
    return this.#purge.purge(options, "PostgresQuota.purgeResolvedHolds", signal);
  }

  /**
   * limit, spent and held, with holds past their expiry (by the database clock) not counted
   * and the period rolled to now as `quota_roll` would (a passed calendar period spends 0, a
   * rolling window drops the buckets it has wholly passed; its start is the first instant of
   * the oldest bucket still counted, as core's `quotaPeriodBounds`). Read-only.
   */
  async #read(
    account: string,
  ): Promise<{ limit: number; spent: number; held: number; periodStart?: number; periodEnd?: number }> {
    const { rows } = await this.#run(
      `WITH now AS (SELECT clock_timestamp() AS t)
       SELECT a.limit_units::text AS limit_units,
           (CASE
              WHEN a.period_every IS NOT NULL AND now.t >= a.period_end THEN 0
              WHEN a.period_rolling_ms IS NOT NULL THEN greatest(0, a.spent - coalesce((
                SELECT sum(u.amount) FROM ${this.#q}.quota_window_usage u
                WHERE u.account = a.account AND u.at <= now.t - a.period_rolling_ms * interval '1 millisecond'), 0))
              ELSE a.spent END)::text AS spent,
           (a.held - coalesce((SELECT sum(h.amount) FROM ${this.#q}.quota_holds h
              WHERE h.account = a.account AND h.status = 'held' AND h.expires_at <= now.t), 0))::text AS held,
           (CASE
              WHEN a.period_rolling_ms IS NOT NULL THEN floor(
                (floor(extract(epoch FROM now.t) * 1000) - a.period_rolling_ms + 1)
                / ((a.period_rolling_ms + 99) / 100)) * ((a.period_rolling_ms + 99) / 100)
              ELSE floor(extract(epoch FROM coalesce(b.period_start, a.period_start)) * 1000)
              END)::bigint::text AS period_start,
           floor(extract(epoch FROM CASE
              WHEN a.period_rolling_ms IS NOT NULL THEN now.t
              ELSE coalesce(b.period_end, a.period_end) END) * 1000)::bigint::text AS period_end
         FROM now CROSS JOIN ${this.#q}.quota_accounts a
         LEFT JOIN LATERAL ${this.#q}.quota_period_bounds(a.period_every, a.period_zone, now.t) b
           ON a.period_every IS NOT NULL AND now.t >= a.period_end
         WHERE a.account = $1`,
      [account],
    );
    const row = rows[0] as
      | {
          limit_units: string;
          spent: string;
          held: string;
          period_start: string | null;
          period_end: string | null;
        }
      | undefined;
    if (row === undefined) return { limit: 0, spent: 0, held: 0 };
    const read = { limit: Number(row.limit_units), spent: Number(row.spent), held: Number(row.held) };
    if (row.period_start === null || row.period_end === null) return read;
    return { ...read, periodStart: Number(row.period_start), periodEnd: Number(row.period_end) };
  }

  /** One statement in one transaction of quota (`READ COMMITTED`, its timeouts). */
  #transaction(text: string, params: unknown[]): Promise<QueryResultLike> {
    return transactQuery(this.#db, this.#settings, text, params);
  }

  /**
   * Runs one transaction after the schema check; a database failure (a timeout included)
   * becomes `QuotaUnavailableError`.
   */
  async #run(text: string, params: unknown[]): Promise<QueryResultLike> {
    try {
      await assertMigrated(this.#db, this.#schema);
      return await this.#transaction(text, params);
    } catch (error) {
      if (isOwn(error)) throw error;
      throw new QuotaUnavailableError({ reason: "the database did not answer", cause: error });
    }
  }
}
