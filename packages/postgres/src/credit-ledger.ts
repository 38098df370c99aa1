import { LatchError, type SnapshotThinning } from "@latch/core";
import {
  allocationOf,
  assertNotBeforeHighWatermark,
  assertSameBody,
  assertUsageAmountFits,
  balanceAt,
  buildGrant,
  type CreditBalance,
  type CreditCommitInput,
  type CreditCommitResult,
  type CreditFeature,
  type CreditFeatureInput,
  type CreditGrant,
  type CreditGrantInput,
  type CreditHistoryPage,
  type CreditHistoryQuery,
  type CreditLedger,
  type CreditLedgerInfo,
  type CreditLedgerInput,
  type CreditLedgerListQuery,
  type CreditLedgerPage,
  type CreditReserveInput,
  type CreditReserveResult,
  type CreditResetInput,
  type CreditUsageInput,
  type CreditUsageResult,
  type CreditVoidInput,
  decodeLedgerSnapshot,
  encodeLedgerSnapshot,
  enforcementCheck,
  grantFact,
  type HoldFact,
  heldAvailability,
  historyPage,
  holdCheck,
  type LedgerFacts,
  type LedgerSnapshot,
  ledgerListPage,
  parseCreditCommit,
  parseCreditFeature,
  parseCreditGrant,
  parseCreditHistoryQuery,
  parseCreditLedger,
  parseCreditLedgerListQuery,
  parseCreditReserve,
  parseCreditReset,
  parseCreditUsage,
  parseCreditVoid,
  parseFeatureIdArg,
  parseHoldIdArg,
  parseHoldRetentionMs,
  parseLedgerIdArg,
  parseSnapshotEvery,
  parseSnapshotThinning,
  parseTimeArg,
  type SnapshotCapture,
  snapshotsAlong,
  THINNING_WINDOW,
  type ThinningRule,
  thinAfterWrite,
  toCreditUnits,
  type UsageFact,
  unknownId,
  usageDecision,
  voidChangesFrom,
  voidHash,
  withHolds,
} from "@latch/core/adapter";
import { CorruptRecordError, HoldAlreadyResolvedError } from "@latch/core/errors";
import {
  DEFAULT_POSTGRES_HOLD_RETENTION_MS,
  type PurgeResolvedHoldsOptions,
  ResolvedHoldPurge,
} from "./hold-retention.js";
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

interface LoadedLedger {
  info: CreditLedgerInfo;
  highWatermark: number | null;
  grants: CreditGrant[];
  facts: LedgerFacts;
  /** The load read at most `limit` usage rows and stopped there: `facts.usage` is a prefix in time. */
  truncated: boolean;
}

interface FactsRow {
  payload: CreditLedgerInfo;
  high_watermark_ms: string | null;
  snapshot: unknown;
  grants: Array<{
    payload: CreditGrant;
    amount: string;
    rollover_max: string | null;
    voided_ms: string | null;
  }>;
  resets: string[];
  usage: Array<[string, string, string, string]>;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Usage rows converted between two yields to the event loop when a load returns many. */
const CONVERT_SLICE = 10_000;

/** The loaded usage rows as engine facts, yielding to the event loop between slices. */
async function usageFacts(rows: FactsRow["usage"]): Promise<UsageFact[]> {
  const facts: UsageFact[] = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    if (i > 0 && i % CONVERT_SLICE === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    const [featureId, eventId, amount, at] = rows[i] as FactsRow["usage"][number];
    facts[i] = { featureId, eventId, amount: toCreditUnits(amount), atMs: Number(at) };
  }
  return facts;
}

/**
 * Usage rows a write reads at once (see `#catchUp`): more after a snapshot means a long history
 * without snapshots (a ledger migrated from before 0013, or SQL-loaded), read and replayed in
 * reads of this many rows, yielding to the event loop between them.
 */
const CATCH_UP_EVENTS = 1_000;

/**
 * {@link CreditLedger} on PostgreSQL or PGlite (tables `<schema>.credit_*`, migration 0003),
 * with exactly the contract's semantics: the tables hold the facts (features, ledgers, grants
 * with their void times, resets, usage) with amounts as exact `numeric`, and core's credit
 * engine replays them, so balances agree with `MemoryCreditLedger` to the last digit.
 *
 * Concurrency: every write runs in one `READ COMMITTED` transaction (with the store's lock and
 * statement timeouts) that first locks the ledger's row
 * (`SELECT … FOR UPDATE`), then reads the facts with a fresh snapshot, decides and writes.
 * Writes to one ledger are therefore serialised across any number of connections: concurrent
 * burns give the balances of applying them one by one, and enforced burns never overdraw.
 * Reads (`balance`, `history`) take one statement, so one consistent snapshot.
 *
 * Balance snapshots (migration 0013, table `credit_snapshots`): every question loads the latest
 * snapshot valid for it and only the usage after it, so a write reads and replays about
 * `snapshotEvery` events whatever the ledger's history; writes take and drop snapshots under
 * the ledger's lock (see core's `credits/snapshots.ts`).
 *
 * Holds (migration 0004, table `credit_holds`) are decided under the same ledger lock, at the
 * database's `clock_timestamp()` (the store's clock): a reserve counts every unexpired hold of
 * the ledger, so concurrent reserves from any number of connections never promise the same
 * credits twice. Expiry is derived at read time (`status = 'held'` past `expires_ms`), so
 * nothing needs to sweep holds.
 *
 * `listLedgers` matches the subject with jsonb containment (`payload->'subject' @> …`) in
 * `ledger_id` order (`COLLATE "C"`), keyset-paged; a given tenant is found through the index of
 * migration 0006 (`credit_ledgers_tenant`).
 *
 * @example
 * const credits = new PostgresCreditLedger(pool, { schema: "latch" });
 * await credits.recordUsage({ ledgerId: "acme", featureId: "tokens", eventId: "req-1:0:openai",
 *   amount: "1200", at: "2026-03-02T10:00:00Z", enforce: true });
 */
/** Options of {@link PostgresCreditLedger}. */
export interface PostgresCreditLedgerOptions extends PostgresStoreOptions {
  /**
   * How long a resolved hold (committed, voided, or expired) is kept so that retries stay
   * idempotent; after it the hold is purged and its holdId is unknown (`commitHold` and
   * `voidHold` throw `invalid_input`). Default one day. See `purgeResolvedHolds`.
   */
  holdRetentionMs?: number;
  /**
   * Usage events between two balance snapshots (table `credit_snapshots`, migration 0013;
   * default 64; 0: none, every question loads and replays the whole ledger). See core's
   * `credits/snapshots.ts`.
   */
  snapshotEvery?: number;
  /**
   * How old snapshots are thinned: the newest `keepNewest` (default 64) are all kept, older
   * ones one per `sparseEvery` usage events (default 8 × `snapshotEvery`); `false` keeps every
   * one. Never changes a number. See core's `credits/snapshots.ts`.
   */
  snapshotThinning?: SnapshotThinning | false;
}

export class PostgresCreditLedger implements CreditLedger {
  readonly #db: Queryable;
  readonly #schema: string;
  readonly #q: string;
  readonly #settings: TransactionSettings;
  readonly #retentionMs: number;
  readonly #purge: ResolvedHoldPurge;
  readonly #snapshotEvery: number;
  readonly #thinning: ThinningRule | null;
  #warm: Promise<void> | undefined;
  /**
   * The caller's planner settings that a write on the caller's own session (`db` itself, which
   * may be inside the caller's transaction) changed, to put back when the write ends.
   */
  readonly #callerSettings = new WeakMap<Queryable, { bitmapscan: string; sort: string }>();

  /**
   * `options`: the schema, the timeouts, `holdRetentionMs` (default one day), `snapshotEvery`
   * and `snapshotThinning`.
   */
  constructor(db: Queryable, options: PostgresCreditLedgerOptions = {}) {
    this.#snapshotEvery = parseSnapshotEvery(options.snapshotEvery, "PostgresCreditLedger options");
    this.#thinning = parseSnapshotThinning(
      options.snapshotThinning,
      this.#snapshotEvery,
      "PostgresCreditLedger options",
    );
    this.#db = db;
    this.#schema = options.schema ?? DEFAULT_SCHEMA;
    this.#q = quoteSchema(this.#schema);
    this.#settings = resolveTimeouts(options, STORE_TIMEOUTS);
    this.#retentionMs = parseHoldRetentionMs(
      options.holdRetentionMs,
      DEFAULT_POSTGRES_HOLD_RETENTION_MS,
      "PostgresCreditLedger options",
    );
    this.#purge = new ResolvedHoldPurge(db, async (limit) => {
      await assertMigrated(this.#db, this.#schema);
      const { rows } = await this.#query(
        `SELECT ${this.#q}.credit_purge_resolved_holds($1::bigint, $2::int)::text AS purged`,
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
    this.#warm ??= this.#warmUp().catch(() => {
      this.#warm = undefined; // a warm-up is only an optimisation: the first write does it then
    });
    await this.#warm;
  }

  /**
   * Runs a write's statements once on an unknown ledger and the engine on a tiny ledger, in a
   * transaction that is rolled back: on PGlite (in this thread) the catalog caches and plans a
   * first write would build, and the first compilation of the engine's code, happen here
   * instead of inside the first write. The transaction writes nothing (no such ledger).
   */
  async #warmUp(): Promise<void> {
    const none = "\u0000latch-warm-up";
    await this.#run(async (tx) => {
      await this.#lock(tx, none, "CreditLedger.ready").catch(() => undefined);
      await this.#feature(none, tx);
      await tx.query(
        `SELECT hash, version, at_ms::text AS at_ms FROM ${this.#q}.credit_usage
         WHERE ledger_id = $1 AND feature_id = $2 AND event_id = $3`,
        [none, none, none],
      );
      await this.#load(tx, none, "CreditLedger.ready", 0).catch(() => undefined);
      await this.#activeHolds(tx, none, await this.#now(tx));
      await this.#dropSnapshotsAfter(tx, none, 0);
      await this.#newestSnapshots(tx, none, 1);
    });
    const warm = "warm-up";
    const facts: LedgerFacts = {
      grants: [
        {
          ...grantFact({
            grantId: warm,
            ledgerId: warm,
            featureId: warm,
            sequence: 1,
            amount: "2",
            priority: 1,
            effectiveAt: iso(0),
          } as CreditGrant),
        },
      ],
      resets: [],
      usage: [1, 2, 3].map((i) => ({ featureId: warm, eventId: `${i}`, amount: 1n, atMs: i })),
    };
    const taken: LedgerSnapshot[] = [];
    allocationOf(facts, warm, "3", { every: 1, onSnapshot: (x) => taken.push(x) });
    for (const x of taken) decodeLedgerSnapshot(warm, JSON.parse(JSON.stringify(encodeLedgerSnapshot(x))));
    enforcementCheck(facts, { featureId: warm, eventId: "4", amount: 1n, atMs: 4 });
  }

  async createFeature(input: CreditFeatureInput, signal?: AbortSignal) {
    signal?.throwIfAborted();
    const { feature, hash } = parseCreditFeature(input);
    await assertMigrated(this.#db, this.#schema);
    const existing = await this.#run(async (tx) => {
      const { rows } = await tx.query(
        `INSERT INTO ${this.#q}.credit_features (feature_id, hash, payload) VALUES ($1, $2, $3::jsonb)
         ON CONFLICT (feature_id) DO NOTHING RETURNING feature_id`,
        [feature.featureId, hash, JSON.stringify(feature)],
      );
      return rows.length === 1 ? ("created" as const) : this.#feature(feature.featureId, tx);
    });
    if (existing === "created") return { status: "created" as const, feature };
    if (existing === undefined) throw new Error("credit feature vanished after a conflicting insert");
    assertSameBody(feature.featureId, existing.hash, hash);
    return { status: "already_exists" as const, feature: existing.feature };
  }

  async getFeature(featureId: string, signal?: AbortSignal): Promise<CreditFeature | undefined> {
    signal?.throwIfAborted();
    const id = parseFeatureIdArg(featureId, "CreditLedger.getFeature");
    await assertMigrated(this.#db, this.#schema);
    return (await this.#run((tx) => this.#feature(id, tx)))?.feature;
  }

  async createLedger(input: CreditLedgerInput, signal?: AbortSignal) {
    signal?.throwIfAborted();
    const { ledger, hash } = parseCreditLedger(input);
    await assertMigrated(this.#db, this.#schema);
    const row = await this.#run(async (tx) => {
      const { rows } = await tx.query(
        `INSERT INTO ${this.#q}.credit_ledgers (ledger_id, hash, payload) VALUES ($1, $2, $3::jsonb)
         ON CONFLICT (ledger_id) DO NOTHING RETURNING ledger_id`,
        [ledger.ledgerId, hash, JSON.stringify(ledger)],
      );
      if (rows.length === 1) return "created" as const;
      const { rows: found } = await tx.query(
        `SELECT hash, payload FROM ${this.#q}.credit_ledgers WHERE ledger_id = $1`,
        [ledger.ledgerId],
      );
      return found[0] as { hash: string; payload: unknown };
    });
    if (row === "created") return { status: "created" as const, ledger };
    assertSameBody(ledger.ledgerId, row.hash, hash);
    return {
      status: "already_exists" as const,
      ledger: parseStored(ledger.ledgerId, row.payload, (v) => parseCreditLedger(v).ledger),
    };
  }

  async getLedger(ledgerId: string, signal?: AbortSignal): Promise<CreditLedgerInfo | undefined> {
    signal?.throwIfAborted();
    const id = parseLedgerIdArg(ledgerId, "CreditLedger.getLedger");
    await assertMigrated(this.#db, this.#schema);
    const { rows } = await this.#query(`SELECT payload FROM ${this.#q}.credit_ledgers WHERE ledger_id = $1`, [
      id,
    ]);
    const row = rows[0] as { payload: unknown } | undefined;
    return row === undefined ? undefined : parseStored(id, row.payload, (v) => parseCreditLedger(v).ledger);
  }

  async listLedgers(query: CreditLedgerListQuery, signal?: AbortSignal): Promise<CreditLedgerPage> {
    signal?.throwIfAborted();
    const { subject, limit, after } = parseCreditLedgerListQuery(query);
    await assertMigrated(this.#db, this.#schema);
    const params: unknown[] = [JSON.stringify(subject), limit + 1];
    let where = "payload->'subject' @> $1::jsonb";
    if (subject.tenantId !== undefined) {
      // The expression of the credit_ledgers_tenant index (0006): one range of it per tenant.
      params.push(subject.tenantId);
      where += ` AND payload->'subject'->>'tenantId' = $${params.length}::text`;
    }
    if (after !== undefined) {
      params.push(after);
      where += ` AND ledger_id > $${params.length}::text COLLATE "C"`;
    }
    const { rows } = await this.#query(
      `SELECT ledger_id, payload FROM ${this.#q}.credit_ledgers WHERE ${where}
       ORDER BY ledger_id COLLATE "C" LIMIT $2`,
      params,
    );
    const ledgers = (rows as Array<{ ledger_id: string; payload: unknown }>).map((row) =>
      parseStored(row.ledger_id, row.payload, (v) => parseCreditLedger(v).ledger),
    );
    return ledgerListPage(ledgers, limit);
  }

  async grant(input: CreditGrantInput, signal?: AbortSignal) {
    signal?.throwIfAborted();
    const { request, hash } = parseCreditGrant(input);
    await assertMigrated(this.#db, this.#schema);
    return this.#write(async (tx) => {
      const ledger = await this.#lock(tx, request.ledgerId, "CreditGrant");
      if ((await this.#feature(request.featureId, tx)) === undefined) {
        throw unknownId("CreditGrant", "featureId", "feature");
      }
      const existing = await this.#grantRow(tx, request.grantId);
      if (existing !== undefined) {
        assertSameBody(request.grantId, existing.hash, hash);
        return { status: "already_exists" as const, grant: existing.grant };
      }
      assertNotBeforeHighWatermark(
        request.ledgerId,
        ledger.highWatermark,
        Date.parse(request.effectiveAt),
        "effectiveAt",
      );
      const grant = buildGrant(request, ledger.info, ledger.grantCount + 1);
      const { rows } = await tx.query(
        `INSERT INTO ${this.#q}.credit_grants (grant_id, ledger_id, feature_id, sequence, hash, payload, amount,
           priority, effective_ms, expires_ms, rollover_type, rollover_max)
         VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::numeric, $8, $9::bigint, $10::bigint, $11, $12::numeric)
         ON CONFLICT (grant_id) DO NOTHING RETURNING grant_id`,
        [
          grant.grantId,
          grant.ledgerId,
          grant.featureId,
          grant.sequence,
          hash,
          JSON.stringify(grant),
          grant.amount,
          grant.priority,
          String(Date.parse(grant.effectiveAt)),
          grant.expiresAt === undefined ? null : String(Date.parse(grant.expiresAt)),
          grant.rollover?.type ?? null,
          grant.rollover?.maxAmount ?? null,
        ],
      );
      if (rows.length === 0) {
        // The id was just taken on another ledger (whose lock we do not hold).
        const other = await this.#grantRow(tx, request.grantId);
        assertSameBody(request.grantId, other?.hash ?? "", hash);
        return { status: "already_exists" as const, grant: other?.grant as CreditGrant };
      }
      await tx.query(`UPDATE ${this.#q}.credit_ledgers SET grant_count = $2 WHERE ledger_id = $1`, [
        grant.ledgerId,
        grant.sequence,
      ]);
      await this.#dropSnapshotsAfter(tx, grant.ledgerId, Date.parse(grant.effectiveAt));
      return { status: "granted" as const, grant };
    });
  }

  async listGrants(ledgerId: string, signal?: AbortSignal): Promise<CreditGrant[]> {
    signal?.throwIfAborted();
    const id = parseLedgerIdArg(ledgerId, "CreditLedger.listGrants");
    await assertMigrated(this.#db, this.#schema);
    return this.#run(async (tx) => {
      const { rows } = await tx.query(
        `SELECT l.ledger_id, g.payload, g.voided_ms::text AS voided_ms
         FROM ${this.#q}.credit_ledgers l LEFT JOIN ${this.#q}.credit_grants g ON g.ledger_id = l.ledger_id
         WHERE l.ledger_id = $1 ORDER BY g.sequence`,
        [id],
      );
      if (rows.length === 0) throw unknownId("CreditLedger.listGrants", "ledgerId", "ledger");
      return (rows as Array<{ payload: CreditGrant | null; voided_ms: string | null }>).flatMap((row) => {
        if (row.payload === null) return [];
        const grant: CreditGrant = { ...row.payload };
        if (row.voided_ms !== null) grant.voidedAt = iso(Number(row.voided_ms));
        return [grant];
      });
    });
  }

  async voidGrant(input: CreditVoidInput, signal?: AbortSignal) {
    signal?.throwIfAborted();
    const { ledgerId, grantId, at } = parseCreditVoid(input);
    await assertMigrated(this.#db, this.#schema);
    return this.#write(async (tx) => {
      const ledger = await this.#lock(tx, ledgerId, "CreditVoid");
      const row = await this.#grantRow(tx, grantId);
      if (row === undefined || row.grant.ledgerId !== ledgerId) {
        throw unknownId("CreditVoid", "grantId", "grant in this ledger");
      }
      if (row.grant.voidedAt !== undefined) {
        assertSameBody(grantId, voidHash(row.grant.voidedAt), voidHash(at));
        return { status: "already_voided" as const, grant: row.grant };
      }
      assertNotBeforeHighWatermark(ledgerId, ledger.highWatermark, Date.parse(at), "at");
      await tx.query(`UPDATE ${this.#q}.credit_grants SET voided_ms = $2::bigint WHERE grant_id = $1`, [
        grantId,
        String(Date.parse(at)),
      ]);
      await this.#dropSnapshotsAfter(
        tx,
        ledgerId,
        voidChangesFrom(Date.parse(row.grant.effectiveAt), Date.parse(at)),
      );
      return { status: "voided" as const, grant: { ...row.grant, voidedAt: at } };
    });
  }

  async reset(input: CreditResetInput, signal?: AbortSignal) {
    signal?.throwIfAborted();
    const { ledgerId, at } = parseCreditReset(input);
    const atMs = Date.parse(at);
    await assertMigrated(this.#db, this.#schema);
    return this.#write(async (tx) => {
      const ledger = await this.#lock(tx, ledgerId, "CreditReset");
      if (ledger.highWatermark === atMs) return { status: "already_reset" as const, at };
      assertNotBeforeHighWatermark(ledgerId, ledger.highWatermark, atMs, "at");
      await tx.query(`INSERT INTO ${this.#q}.credit_resets (ledger_id, at_ms) VALUES ($1, $2::bigint)`, [
        ledgerId,
        String(atMs),
      ]);
      await tx.query(
        `UPDATE ${this.#q}.credit_ledgers SET high_watermark_ms = $2::bigint WHERE ledger_id = $1`,
        [ledgerId, String(atMs)],
      );
      await this.#dropSnapshotsAfter(tx, ledgerId, atMs);
      return { status: "reset" as const, at };
    });
  }

  async recordUsage(input: CreditUsageInput, signal?: AbortSignal): Promise<CreditUsageResult> {
    signal?.throwIfAborted();
    const parsed = parseCreditUsage(input);
    await assertMigrated(this.#db, this.#schema);
    return this.#write(async (tx) => {
      await this.#lock(tx, parsed.usage.ledgerId, "CreditUsage");
      const feature = await this.#feature(parsed.usage.featureId, tx);
      if (feature === undefined) throw unknownId("CreditUsage", "featureId", "feature");
      assertUsageAmountFits(feature.feature, parsed.usage.amount, "CreditUsage");
      return this.#burn(tx, parsed, "CreditUsage");
    });
  }

  async reserve(input: CreditReserveInput, signal?: AbortSignal): Promise<CreditReserveResult> {
    signal?.throwIfAborted();
    const { request, hash, amount } = parseCreditReserve(input);
    await assertMigrated(this.#db, this.#schema);
    const result = await this.#reserve(request, hash, amount);
    this.#purge.afterReserve();
    return result;
  }

  async #reserve(
    request: ReturnType<typeof parseCreditReserve>["request"],
    hash: string,
    amount: bigint,
  ): Promise<CreditReserveResult> {
    return this.#write(async (tx): Promise<CreditReserveResult> => {
      const { ledgerId, featureId, holdId } = request;
      await this.#lock(tx, ledgerId, "CreditReserve");
      if ((await this.#feature(featureId, tx)) === undefined) {
        throw unknownId("CreditReserve", "featureId", "feature");
      }
      const now = await this.#now(tx);
      const loaded = await this.#catchUp(
        tx,
        await this.#load(tx, ledgerId, "CreditReserve", now, Number.MAX_SAFE_INTEGER, CATCH_UP_EVENTS),
        now,
      );
      const holds = await this.#activeHolds(tx, ledgerId, now);
      const retry = async (): Promise<CreditReserveResult | undefined> => {
        const { rows } = await tx.query(`SELECT hash FROM ${this.#q}.credit_holds WHERE hold_id = $1`, [
          holdId,
        ]);
        const existing = rows[0] as { hash: string } | undefined;
        if (existing === undefined) return undefined;
        assertSameBody(holdId, existing.hash, hash);
        // A retry: granted once, held once.
        return { granted: true, holdId, available: heldAvailability(loaded.facts, holds, featureId, now) };
      };
      const again = await retry();
      if (again !== undefined) return again;
      const check = holdCheck(loaded.facts, holds, { holdId, featureId, amount }, now);
      if (!check.allowed) {
        return { granted: false, holdId, reason: "insufficient_credits", available: check.available };
      }
      const { rows } = await tx.query(
        `INSERT INTO ${this.#q}.credit_holds (hold_id, ledger_id, feature_id, amount, hash, status, created_ms, expires_ms)
         VALUES ($1, $2, $3, $4::numeric, $5, 'held', $6::bigint, $7::bigint)
         ON CONFLICT (hold_id) DO NOTHING RETURNING hold_id`,
        [holdId, ledgerId, featureId, request.amount, hash, String(now), String(now + request.ttlMs)],
      );
      if (rows.length === 0) {
        // The id was just taken on another ledger (whose lock we do not hold).
        const raced = await retry();
        if (raced !== undefined) return raced;
      }
      return { granted: true, holdId, available: check.available };
    });
  }

  async commitHold(input: CreditCommitInput, signal?: AbortSignal): Promise<CreditCommitResult> {
    signal?.throwIfAborted();
    const { commit, hash, usage, assertHoldFeature, assertHoldLedger } = parseCreditCommit(input);
    await assertMigrated(this.#db, this.#schema);
    return this.#write(async (tx): Promise<CreditCommitResult> => {
      const hold = await this.#lockedHold(tx, commit.holdId, "CreditCommit");
      assertHoldFeature(hold.feature_id);
      assertHoldLedger(hold.ledger_id);
      if (hold.status === "voided")
        throw new HoldAlreadyResolvedError({ holdId: commit.holdId, state: "voided" });
      if (hold.status === "committed") {
        assertSameBody(commit.holdId, hold.commit_hash ?? "", hash);
        const eventId = hold.event_id ?? "";
        const { rows: at } = await tx.query(
          `SELECT at_ms::text AS at_ms FROM ${this.#q}.credit_usage
           WHERE ledger_id = $1 AND feature_id = $2 AND event_id = $3`,
          [hold.ledger_id, hold.feature_id, eventId],
        );
        const atMs =
          at[0] === undefined ? Number.MIN_SAFE_INTEGER : Number((at[0] as { at_ms: string }).at_ms);
        const loaded = await this.#load(tx, hold.ledger_id, "CreditCommit", atMs, atMs);
        return {
          status: "committed",
          holdId: commit.holdId,
          eventId,
          ...allocationOf(loaded.facts, hold.feature_id, eventId),
        };
      }
      // Held, or expired unresolved: the call happened, so its usage is recorded in full.
      const feature = await this.#feature(hold.feature_id, tx);
      if (feature !== undefined) assertUsageAmountFits(feature.feature, commit.amount, "CreditCommit");
      const result = await this.#burn(tx, usage(hold.ledger_id, hold.feature_id), "CreditCommit");
      if (result.status === "denied") throw new Error("a commit is never enforced");
      await tx.query(
        `UPDATE ${this.#q}.credit_holds SET status = 'committed', event_id = $2, commit_hash = $3 WHERE hold_id = $1`,
        [commit.holdId, commit.eventId, hash],
      );
      return {
        status: "committed",
        holdId: commit.holdId,
        eventId: result.eventId,
        burned: result.burned,
        overage: result.overage,
      };
    });
  }

  async voidHold(holdId: string, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const id = parseHoldIdArg(holdId, "CreditLedger.voidHold");
    await assertMigrated(this.#db, this.#schema);
    await this.#write(async (tx) => {
      const hold = await this.#lockedHold(tx, id, "CreditLedger.voidHold");
      if (hold.status === "committed") throw new HoldAlreadyResolvedError({ holdId: id, state: "committed" });
      // A void after expiry changes nothing: a late commit of the hold still records its usage.
      if (hold.status === "held" && Number(hold.expires_ms) > (await this.#now(tx))) {
        await tx.query(`UPDATE ${this.#q}.credit_holds SET status = 'voided' WHERE hold_id = $1`, [id]);
      }
    });
  }

  /**
   * Records a parsed usage event in `tx`, whose ledger is locked and whose feature exists: the
   * shared path of `recordUsage` and `commitHold`.
   */
  async #burn(
    tx: Queryable,
    parsed: ReturnType<typeof parseCreditUsage>,
    subject: string,
  ): Promise<CreditUsageResult> {
    const { usage, hash, fact } = parsed;
    const { rows } = await tx.query(
      `SELECT hash, version, at_ms::text AS at_ms FROM ${this.#q}.credit_usage
       WHERE ledger_id = $1 AND feature_id = $2 AND event_id = $3`,
      [usage.ledgerId, usage.featureId, usage.eventId],
    );
    const stored = rows[0] as { hash: string; version: number; at_ms: string } | undefined;
    const storedAt = stored === undefined ? fact.atMs : Number(stored.at_ms);
    const decision = usageDecision(stored && { hash: stored.hash, version: Number(stored.version) }, {
      eventId: usage.eventId,
      hash,
      version: usage.version,
    });
    if (decision !== "write") {
      const loaded = await this.#load(tx, usage.ledgerId, subject, storedAt, storedAt);
      return {
        status: decision,
        eventId: usage.eventId,
        ...allocationOf(loaded.facts, usage.featureId, usage.eventId),
      };
    }
    // The earliest time this write changes: snapshots after it no longer hold.
    const changesFrom = Math.min(fact.atMs, storedAt);
    let loaded: LoadedLedger;
    if (usage.enforce) {
      const now = await this.#now(tx);
      const holds = await this.#activeHolds(tx, usage.ledgerId, now);
      const bound = holds.length === 0 ? changesFrom : Math.min(changesFrom, now);
      loaded = await this.#catchUp(
        tx,
        await this.#load(tx, usage.ledgerId, subject, bound, Number.MAX_SAFE_INTEGER, CATCH_UP_EVENTS),
        bound,
      );
      const check = enforcementCheck(withHolds(loaded.facts, holds, now), fact);
      if (!check.allowed) {
        return {
          status: "denied",
          eventId: usage.eventId,
          reason: "insufficient_credits",
          available: check.available,
        };
      }
    } else {
      loaded = await this.#catchUp(
        tx,
        await this.#load(tx, usage.ledgerId, subject, changesFrom, Number.MAX_SAFE_INTEGER, CATCH_UP_EVENTS),
        changesFrom,
      );
    }
    await this.#dropSnapshotsAfter(tx, usage.ledgerId, changesFrom);
    if (stored === undefined) {
      await tx.query(
        `INSERT INTO ${this.#q}.credit_usage (ledger_id, feature_id, event_id, at_ms, amount, hash, version)
         VALUES ($1, $2, $3, $4::bigint, $5::numeric, $6, $7)`,
        [
          usage.ledgerId,
          usage.featureId,
          usage.eventId,
          String(fact.atMs),
          usage.amount,
          hash,
          usage.version,
        ],
      );
    } else {
      await tx.query(
        `UPDATE ${this.#q}.credit_usage SET at_ms = $4::bigint, amount = $5::numeric, hash = $6, version = $7
         WHERE ledger_id = $1 AND feature_id = $2 AND event_id = $3`,
        [
          usage.ledgerId,
          usage.featureId,
          usage.eventId,
          String(fact.atMs),
          usage.amount,
          hash,
          usage.version,
        ],
      );
    }
    // The loaded snapshot is at or before changesFrom, so it still holds; its usage from then on
    // (the stored version of this event included) with this version in place.
    const others = loaded.facts.usage.filter(
      (u) => u.featureId !== fact.featureId || u.eventId !== fact.eventId,
    );
    const facts = { ...loaded.facts, usage: [...others, fact] };
    const taken: LedgerSnapshot[] = [];
    const capture: SnapshotCapture | undefined =
      this.#snapshotEvery === 0
        ? undefined
        : { every: this.#snapshotEvery, onSnapshot: (snapshot) => taken.push(snapshot) };
    const allocation = allocationOf(facts, usage.featureId, usage.eventId, capture);
    await this.#storeSnapshots(tx, usage.ledgerId, taken);
    return { status: "recorded", eventId: usage.eventId, ...allocation };
  }

  /**
   * A write that must replay a long history (a ledger with no snapshot yet, one migrated from
   * before 0013, or SQL-loaded usage) got only the first {@link CATCH_UP_EVENTS} usage rows from
   * `#load` (`truncated`). It replays them, stores the snapshots they take (at or before `bound`,
   * the earliest time the write's own question looks at), yields to the event loop, reads the
   * next rows from the last snapshot on, and so on: no read and no replay holds the event loop
   * for more than one slice (the caller holds the ledger's lock throughout). Returns the facts
   * from the last snapshot on, complete. When no snapshot can be taken before `bound` (snapshots
   * off, or the history before `bound` is shorter than `snapshotEvery`), the rest is read at once.
   */
  async #catchUp(tx: Queryable, loaded: LoadedLedger, bound: number): Promise<LoadedLedger> {
    if (!loaded.truncated) return loaded;
    await this.#unzeroedWal(tx);
    const ledgerId = loaded.info.ledgerId;
    let facts = loaded.facts;
    let usage = facts.usage; // a prefix in time of the usage from facts.from on
    for (;;) {
      const along =
        this.#snapshotEvery === 0
          ? []
          : snapshotsAlong({ ...facts, usage }, this.#snapshotEvery).filter((x) => x.position <= bound);
      const last = along.at(-1);
      if (last === undefined) {
        usage = await this.#usageFrom(tx, ledgerId, facts.from?.position, null);
        break;
      }
      await this.#storeSnapshots(tx, ledgerId, along);
      facts = { ...facts, from: last };
      await new Promise<void>((resolve) => setImmediate(resolve));
      usage = await this.#usageFrom(tx, ledgerId, last.position, CATCH_UP_EVENTS);
      if (usage.length < CATCH_UP_EVENTS) break;
    }
    return { ...loaded, facts: { ...facts, usage }, truncated: false };
  }

  /**
   * On PGlite, for the rest of a catch-up's transaction, new WAL files are not filled with zeros
   * first (`wal_init_zero`, when the role may set it). A catch-up of 1,000,000 usage rows writes
   * about 14 MB of WAL, so it usually opens a new 16 MB WAL file, and PGlite (one process, no WAL
   * writer) zero-fills it in this thread: 35–45 ms without a turn of the event loop, the longest
   * stretch of the write (at its COMMIT). Unzeroed WAL files hold the same records (the default
   * only pre-allocates disk space); PostgreSQL servers are left as they are.
   */
  async #unzeroedWal(tx: Queryable): Promise<void> {
    if (this.#db.transaction === undefined) return;
    await tx.query(
      "SELECT set_config('wal_init_zero', 'off', true) WHERE has_parameter_privilege('wal_init_zero', 'SET')",
    );
  }

  /**
   * For the rest of the write's transaction, a bounded read of usage in time order walks the
   * index `credit_usage_time` and stops after `limit` rows. Without statistics (usage loaded in
   * bulk and not analysed yet, as on PGlite) the planner takes a bitmap scan of every row after
   * the start and a top-N sort instead, so each read of a catch-up cost the rest of the history
   * (1,000,000 rows: 26 minutes in all instead of seconds). Every other statement of a write is
   * a probe of a unique or small index, which these settings do not change.
   */
  async #orderedReads(tx: Queryable): Promise<void> {
    if (tx !== this.#db || this.#callerSettings.has(tx)) {
      await tx.query(
        "SELECT set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true)",
      );
      return;
    }
    // On the caller's own session the transaction may be the caller's (joined): remember the
    // values to put back when the write ends (see #write). The subquery reads them first.
    const { rows } = await tx.query(
      `SELECT p.b, p.s, set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true)
       FROM (SELECT current_setting('enable_bitmapscan') AS b, current_setting('enable_sort') AS s OFFSET 0) p`,
    );
    const row = rows[0] as { b: string; s: string };
    this.#callerSettings.set(tx, { bitmapscan: row.b, sort: row.s });
  }

  /** Puts back the planner settings that #orderedReads changed on the caller's session. */
  async #restoreSettings(tx: Queryable): Promise<void> {
    const previous = this.#callerSettings.get(tx);
    if (previous === undefined) return;
    this.#callerSettings.delete(tx);
    await tx.query("SELECT set_config('enable_bitmapscan', $1, true), set_config('enable_sort', $2, true)", [
      previous.bitmapscan,
      previous.sort,
    ]);
  }

  /** The ledger's usage at or after `fromMs` (all without), in time order, at most `limit` rows. */
  async #usageFrom(
    tx: Queryable,
    ledgerId: string,
    fromMs: number | undefined,
    limit: number | null,
  ): Promise<UsageFact[]> {
    const { rows } = await tx.query(
      `SELECT coalesce(json_agg(json_build_array(u.feature_id, u.event_id, u.amount::text, u.at_ms::text) ORDER BY u.at_ms), '[]') AS usage
       FROM (SELECT feature_id, event_id, amount, at_ms FROM ${this.#q}.credit_usage
             WHERE ledger_id = $1 AND at_ms >= $2::bigint ORDER BY at_ms LIMIT $3::bigint) u`,
      [ledgerId, fromMs === undefined ? "-9223372036854775808" : String(fromMs), limit],
    );
    return usageFacts((rows[0] as { usage: FactsRow["usage"] }).usage);
  }

  /**
   * Stores the snapshots a write took, thinned together with the ledger's newest stored ones
   * (a bounded window, see core's `credits/snapshots.ts`): what the rule drops among those is
   * deleted, and a taken one it drops is never inserted.
   */
  async #storeSnapshots(
    tx: Queryable,
    ledgerId: string,
    snapshots: readonly LedgerSnapshot[],
  ): Promise<void> {
    if (snapshots.length === 0) return;
    let keep = snapshots;
    const rule = this.#thinning;
    if (rule !== null) {
      const stored = await this.#newestSnapshots(tx, ledgerId, rule.keepNewest + THINNING_WINDOW + 1);
      const { store, drop } = thinAfterWrite(stored, snapshots, rule);
      keep = store;
      if (drop.length > 0) {
        await tx.query(
          `DELETE FROM ${this.#q}.credit_snapshots WHERE ledger_id = $1 AND position_ms = ANY($2::bigint[])`,
          [ledgerId, drop.map(String)],
        );
      }
      if (keep.length === 0) return;
    }
    await tx.query(
      `INSERT INTO ${this.#q}.credit_snapshots (ledger_id, position_ms, state)
       SELECT $1, s.position_ms, s.state FROM jsonb_to_recordset($2::jsonb) AS s(position_ms bigint, state jsonb)
       ON CONFLICT (ledger_id, position_ms) DO NOTHING`,
      [
        ledgerId,
        JSON.stringify(
          keep.map((snapshot) => ({
            position_ms: snapshot.position,
            state: encodeLedgerSnapshot(snapshot),
          })),
        ),
      ],
    );
  }

  /** The positions and usage counts of the ledger's newest `limit` snapshots, oldest first. */
  async #newestSnapshots(
    tx: Queryable,
    ledgerId: string,
    limit: number,
  ): Promise<Array<{ position: number; count: number | undefined }>> {
    const { rows } = await tx.query(
      `SELECT position_ms::text AS p, state->>'count' AS c FROM ${this.#q}.credit_snapshots
       WHERE ledger_id = $1 ORDER BY position_ms DESC LIMIT $2`,
      [ledgerId, limit],
    );
    return (rows as Array<{ p: string; c: string | null }>)
      .map((r) => ({
        position: Number(r.p),
        // A count that is not a whole number (a hand-edited row) is as good as none: kept.
        count: r.c !== null && /^\d{1,15}$/.test(r.c) ? Number(r.c) : undefined,
      }))
      .reverse();
  }

  /** Drops the ledger's snapshots that a fact at `atMs` changes (the caller holds the lock). */
  async #dropSnapshotsAfter(tx: Queryable, ledgerId: string, atMs: number): Promise<void> {
    await tx.query(
      `DELETE FROM ${this.#q}.credit_snapshots WHERE ledger_id = $1 AND position_ms > $2::bigint`,
      [ledgerId, String(atMs)],
    );
  }

  /** The store's clock: the database's `clock_timestamp()` in epoch milliseconds. */
  async #now(tx: Queryable): Promise<number> {
    const { rows } = await tx.query(
      "SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint::text AS now_ms",
    );
    return Number((rows[0] as { now_ms: string }).now_ms);
  }

  /** The ledger's unexpired, unresolved holds at `now` (the caller holds the ledger's lock). */
  async #activeHolds(tx: Queryable, ledgerId: string, now: number): Promise<HoldFact[]> {
    const { rows } = await tx.query(
      `SELECT hold_id, feature_id, amount::text AS amount FROM ${this.#q}.credit_holds
       WHERE ledger_id = $1 AND status = 'held' AND expires_ms > $2::bigint`,
      [ledgerId, String(now)],
    );
    return (rows as Array<{ hold_id: string; feature_id: string; amount: string }>).map((r) => ({
      holdId: r.hold_id,
      featureId: r.feature_id,
      amount: toCreditUnits(r.amount),
    }));
  }

  /** Finds a hold, locks its ledger, then reads the hold afresh; unknown ⇒ invalid_input. */
  async #lockedHold(tx: Queryable, holdId: string, subject: string) {
    const { rows } = await tx.query(`SELECT ledger_id FROM ${this.#q}.credit_holds WHERE hold_id = $1`, [
      holdId,
    ]);
    const found = rows[0] as { ledger_id: string } | undefined;
    if (found === undefined) throw unknownId(subject, "holdId", "hold");
    await this.#lock(tx, found.ledger_id, subject);
    // A new statement after the lock: it sees every commit or void that finished before.
    const { rows: fresh } = await tx.query(
      `SELECT ledger_id, feature_id, status, expires_ms::text AS expires_ms, event_id, commit_hash
       FROM ${this.#q}.credit_holds WHERE hold_id = $1`,
      [holdId],
    );
    // Purged (past its retention) while we waited for the lock: unknown, as if never seen.
    if (fresh[0] === undefined) throw unknownId(subject, "holdId", "hold");
    return fresh[0] as {
      ledger_id: string;
      feature_id: string;
      status: "held" | "committed" | "voided";
      expires_ms: string;
      event_id: string | null;
      commit_hash: string | null;
    };
  }

  /**
   * Deletes the credit holds resolved at least `holdRetentionMs` ago by the database clock
   * (committed or voided then, or left unresolved and expired then), oldest first, in batches
   * of at most `limit` (one statement each: `credit_purge_resolved_holds`, migration 0010)
   * until one comes back short; returns how many. `reserve` already runs one batch every 200
   * reserves in the background (on a pool or PGlite). Holds are not usage, so no balance
   * changes; a hold that a commit or void has locked is skipped. A commit or void of a purged
   * hold throws `invalid_input` naming `holdId` (its usage event, if recorded, stays recorded
   * once).
   *
   * @example
   * await credits.purgeResolvedHolds(); // { purged: 0 }
   */
  purgeResolvedHolds(
    options: PurgeResolvedHoldsOptions = {},
    signal?: AbortSignal,
  ): Promise<{ purged: number }> {
    return this.#purge.purge(options, "PostgresCreditLedger.purgeResolvedHolds", signal);
  }

  async balance(ledgerId: string, at: string, signal?: AbortSignal): Promise<CreditBalance> {
    signal?.throwIfAborted();
    const id = parseLedgerIdArg(ledgerId, "CreditLedger.balance");
    const atMs = parseTimeArg(at, "CreditLedger.balance", "at");
    await assertMigrated(this.#db, this.#schema);
    const loaded = await this.#run((tx) => this.#load(tx, id, "CreditLedger.balance", atMs + 1, atMs));
    return balanceAt(id, loaded.facts, atMs, loaded.grants);
  }

  async history(query: CreditHistoryQuery, signal?: AbortSignal): Promise<CreditHistoryPage> {
    signal?.throwIfAborted();
    const q = parseCreditHistoryQuery(query);
    await assertMigrated(this.#db, this.#schema);
    const loaded = await this.#run((tx) =>
      this.#load(tx, q.ledgerId, "CreditHistoryQuery", q.fromMs, q.toMs),
    );
    return historyPage(loaded.facts, q.fromMs, q.toMs, q.limit, q.cursor);
  }

  async highWatermark(ledgerId: string, signal?: AbortSignal): Promise<string | undefined> {
    signal?.throwIfAborted();
    const id = parseLedgerIdArg(ledgerId, "CreditLedger.highWatermark");
    await assertMigrated(this.#db, this.#schema);
    const { rows } = await this.#query(
      `SELECT high_watermark_ms::text AS hw FROM ${this.#q}.credit_ledgers WHERE ledger_id = $1`,
      [id],
    );
    const row = rows[0] as { hw: string | null } | undefined;
    if (row === undefined) throw unknownId("CreditLedger.highWatermark", "ledgerId", "ledger");
    return row.hw === null ? undefined : iso(Number(row.hw));
  }

  /**
   * Runs a write in one transaction. A Latch error (bad input, conflict, high watermark) is
   * thrown before anything is written, so it leaves the transaction to commit empty and the
   * pooled connection in service; any other error (a busy database's `store_busy` included)
   * rolls back (and a pool drops the client).
   */
  async #write<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const outcome = await this.#run(async (tx) => {
      try {
        const value = await fn(tx);
        await this.#restoreSettings(tx);
        return { value };
      } catch (error) {
        if (LatchError.isInstance(error) && error.code !== "store_busy") {
          await this.#restoreSettings(tx);
          return { error };
        }
        // The transaction failed: the caller's transaction (if joined) is aborted or rolled
        // back to a savepoint of theirs, which undoes the settings too.
        this.#callerSettings.delete(tx);
        throw error;
      }
    });
    if ("error" in outcome) throw outcome.error;
    return outcome.value;
  }

  /** One statement in one transaction of this store (`READ COMMITTED`, its timeouts). */
  #query(text: string, params: unknown[]): Promise<QueryResultLike> {
    return transactQuery(this.#db, this.#settings, text, params);
  }

  /** One transaction of this store (`READ COMMITTED`, its timeouts). */
  #run<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return transact(this.#db, this.#settings, fn);
  }

  async #feature(featureId: string, db: Queryable) {
    const { rows } = await db.query(
      `SELECT hash, payload FROM ${this.#q}.credit_features WHERE feature_id = $1`,
      [featureId],
    );
    const row = rows[0] as { hash: string; payload: unknown } | undefined;
    if (row === undefined) return undefined;
    return {
      hash: row.hash,
      feature: parseStored(featureId, row.payload, (v) => parseCreditFeature(v).feature),
    };
  }

  /** Locks the ledger's row for the rest of the transaction; unknown ledger ⇒ invalid_input. */
  async #lock(tx: Queryable, ledgerId: string, subject: string) {
    const { rows } = await tx.query(
      `SELECT payload, high_watermark_ms::text AS hw, grant_count FROM ${this.#q}.credit_ledgers
       WHERE ledger_id = $1 FOR UPDATE`,
      [ledgerId],
    );
    const row = rows[0] as { payload: unknown; hw: string | null; grant_count: number } | undefined;
    if (row === undefined) throw unknownId(subject, "ledgerId", "ledger");
    return {
      info: parseStored(ledgerId, row.payload, (v) => parseCreditLedger(v).ledger),
      highWatermark: row.hw === null ? null : Number(row.hw),
      grantCount: Number(row.grant_count),
    };
  }

  async #grantRow(db: Queryable, grantId: string): Promise<{ hash: string; grant: CreditGrant } | undefined> {
    const { rows } = await db.query(
      `SELECT hash, payload, voided_ms::text AS voided_ms FROM ${this.#q}.credit_grants WHERE grant_id = $1`,
      [grantId],
    );
    const row = rows[0] as { hash: string; payload: CreditGrant; voided_ms: string | null } | undefined;
    if (row === undefined) return undefined;
    const grant: CreditGrant = { ...row.payload };
    if (row.voided_ms !== null) grant.voidedAt = iso(Number(row.voided_ms));
    return { hash: row.hash, grant };
  }

  /**
   * What a question about one ledger needs, in one statement (one MVCC snapshot): the ledger,
   * its grants and resets, the latest balance snapshot at or before `bound` (the earliest time
   * of the question's own events) and the usage from that snapshot's position on (all of it
   * without one), up to `upTo` inclusive when the question looks no further.
   *
   * A snapshot is derived data: one that does not parse is not a reason to refuse the ledger
   * (a burn refused `corrupt_record` would go unbilled). The question is answered again from
   * the whole history, without snapshots — slower, and exact.
   */
  async #load(
    db: Queryable,
    ledgerId: string,
    subject: string,
    bound: number,
    upTo = Number.MAX_SAFE_INTEGER,
    limit: number | null = null,
    useSnapshots = this.#snapshotEvery > 0,
  ): Promise<LoadedLedger> {
    const ms = (v: number) => String(Math.max(Math.min(v, Number.MAX_SAFE_INTEGER), Number.MIN_SAFE_INTEGER));
    if (limit !== null) await this.#orderedReads(db);
    const { rows } = await db.query(
      `WITH s AS (
         SELECT position_ms, state FROM ${this.#q}.credit_snapshots
         WHERE ledger_id = $1 AND position_ms <= $2::bigint AND $3::boolean
         ORDER BY position_ms DESC LIMIT 1)
       SELECT l.payload, l.high_watermark_ms::text AS high_watermark_ms,
         (SELECT s.state FROM s) AS snapshot,
         (SELECT coalesce(json_agg(json_build_object('payload', g.payload, 'amount', g.amount::text,
                   'rollover_max', g.rollover_max::text, 'voided_ms', g.voided_ms::text) ORDER BY g.sequence), '[]')
          FROM ${this.#q}.credit_grants g WHERE g.ledger_id = l.ledger_id) AS grants,
         (SELECT coalesce(json_agg(r.at_ms::text), '[]')
          FROM ${this.#q}.credit_resets r WHERE r.ledger_id = l.ledger_id) AS resets,
         (SELECT coalesce(json_agg(json_build_array(u.feature_id, u.event_id, u.amount::text, u.at_ms::text) ORDER BY u.at_ms), '[]')
          FROM (SELECT feature_id, event_id, amount, at_ms FROM ${this.#q}.credit_usage
                WHERE ledger_id = l.ledger_id
                  AND at_ms >= coalesce((SELECT position_ms FROM s), '-9223372036854775808'::bigint)
                  AND at_ms <= $4::bigint
                ORDER BY at_ms LIMIT $5::bigint) u) AS usage
       FROM ${this.#q}.credit_ledgers l WHERE l.ledger_id = $1`,
      [ledgerId, ms(bound), useSnapshots, ms(upTo), limit],
    );
    const row = rows[0] as FactsRow | undefined;
    if (row === undefined) throw unknownId(subject, "ledgerId", "ledger");
    let from: LedgerSnapshot | undefined;
    if (row.snapshot !== null) {
      try {
        from = decodeLedgerSnapshot(ledgerId, row.snapshot);
      } catch (error) {
        if (!CorruptRecordError.isInstance(error)) throw error;
        return this.#load(db, ledgerId, subject, bound, upTo, limit, false);
      }
    }
    const grants = row.grants.map((g) => {
      const grant: CreditGrant = { ...g.payload };
      if (g.voided_ms !== null) grant.voidedAt = iso(Number(g.voided_ms));
      return { grant, amount: g.amount, max: g.rollover_max };
    });
    return {
      info: parseStored(ledgerId, row.payload, (v) => parseCreditLedger(v).ledger),
      highWatermark: row.high_watermark_ms === null ? null : Number(row.high_watermark_ms),
      grants: grants.map((g) => g.grant),
      facts: {
        // The exact numeric columns are the amounts the engine burns.
        grants: grants.map(({ grant, amount, max }) => {
          const fact = grantFact(grant);
          fact.amount = toCreditUnits(amount);
          if (fact.rollover !== null) fact.rollover.max = max === null ? null : toCreditUnits(max);
          return fact;
        }),
        resets: row.resets.map(Number),
        usage: await usageFacts(row.usage),
        ...(from === undefined ? {} : { from }),
      },
      truncated: limit !== null && row.usage.length >= limit,
    };
  }
}
