import type { RatedRecordExporter } from "../contracts/exporter.js";
import type { ObservationStore } from "../contracts/observation-store.js";
import type { QuotaAuthorizer, QuotaReservator, UsageCounter } from "../contracts/quota.js";
import type { RatedRecordStore } from "../contracts/rated-record-store.js";
import type { CreditLedger } from "../credits/contract.js";
import type { PricingSource } from "../pricing/pricing-source.js";
import type { RatingEngine } from "../rating/engine.js";
import type { LinesPage, LinesQuery, SummaryQuery, SummaryRow } from "../reports/query.js";
import type { MeterKind, MeterSet } from "../schemas/meters.js";
import type { UsageObservation, UsageObservationInput } from "../schemas/observation.js";
import type { RatedUsageRecord } from "../schemas/rating.js";
import type { IngestLog } from "./ingest.js";
import type { ProviderUsageInput, ProviderUsageInputOf, UsageApi } from "./provider-usage.js";
import type { RetryPolicy } from "./retry.js";

export type {
  ProviderObservationInput,
  ProviderUsageInput,
  ProviderUsageInputOf,
  UsageApi,
} from "./provider-usage.js";

/** Every input `record()` accepts: a ready observation, or a provider payload of any API. */
export type RecordInput = UsageObservationInput | ProviderUsageInput;

/**
 * What `record()` answers. It fails open: a call that happened is never lost, so only bad
 * input (and the other errors that no retry can fix) throws; everything else is one of four
 * statuses. Switch on `status`; pass the whole result to `settle()`.
 *
 * - `rated`: stored and priced; `record.total` is the exact cost (decimal string) in
 *   `record.currency`.
 * - `unpriced`: stored, no price yet (`reason`); `rerateUnpriced()` prices it later.
 * - `spooled`: the store was down; kept in the local spool for `flushSpool()`.
 * - `accepted`: published to the ingest log; a worker stores and rates it.
 *
 * @example
 * const result = await latch.record({ api: "openaiChat", usage: completion.usage, observation });
 * if (result.status === "rated") console.log(result.record.total, result.record.currency); // "0.008125" "USD"
 * await latch.settle(hold, result);
 */
export type RecordResult =
  /** Stored and priced: `record` is the rated record. */
  | { status: "rated"; record: RatedUsageRecord }
  /**
   * Stored, but not priced; `rerateUnpriced()` completes it once a price exists. `reason`:
   * `no_snapshot` (no model matched at that time), `no_snapshot_for_tier` (the model is priced,
   * not in the call's service tier), `ambiguous_model` (several models matched: `candidates`),
   * `no_price` (a used meter has no price: `meter`; or rating failed) or `store_error`.
   */
  | {
      status: "unpriced";
      eventId: string;
      reason: "no_snapshot" | "no_snapshot_for_tier" | "ambiguous_model" | "no_price" | "store_error";
      observation: UsageObservation;
      /** The meter without a price (`no_price`). */
      meter?: MeterKind;
      /** The models that matched (`ambiguous_model`), sorted. */
      candidates?: readonly string[];
    }
  /** The store was down: the observation waits in the local spool; `flushSpool()` replays it. */
  | { status: "spooled"; eventId: string; observation: UsageObservation }
  /**
   * With an ingest log (`LatchConfig.ingest`): the log holds the observation durably; an ingest
   * worker stores and rates it later (its rated record appears in reports once stored). `settle`
   * charges a quota hold from the observation alone, as for `spooled`, or leaves it open for
   * `reconcileQuota()` when `LatchConfig.quotaUnits` needs the rated record; a money credit
   * hold stays held until the worker's burn of the call commits it (record the call with it).
   */
  | { status: "accepted"; eventId: string; observation: UsageObservation };

/**
 * A quota reservation. `granted: false` carries the reason (fails closed). `amount` is in the
 * quota's integer units (tokens by default); `remaining` is what the account has left after it.
 */
export type QuotaHold =
  | { granted: true; kind: "quota"; holdId: string; account: string; amount: number; remaining: number }
  | {
      granted: false;
      kind: "quota";
      holdId: string;
      account: string;
      amount: number;
      reason: "insufficient" | "unavailable";
      remaining?: number;
      /** Human-readable, e.g. "quota store unavailable: denied (quota fails closed)". */
      message: string;
    };

/**
 * A credit reservation (`createLatch({ credits: { enforce: true } })`): `account` is the
 * ledgerId, `amount` and `available` are exact decimal strings of the feature's credits.
 * `granted: false` carries the reason (fails closed).
 */
export type CreditHold =
  | {
      granted: true;
      kind: "credits";
      holdId: string;
      account: string;
      featureId: string;
      amount: string;
      /** The feature's credits still free after this hold and every other unexpired one. */
      available: string;
    }
  | {
      granted: false;
      kind: "credits";
      holdId: string;
      account: string;
      featureId: string;
      amount: string;
      reason: "insufficient" | "unavailable";
      available?: string;
      /** Human-readable, e.g. "credit ledger unavailable: denied (credits fail closed)". */
      message: string;
    };

/**
 * What `reserve()` returns: a quota hold, or a credit hold when credits back `reserve()`
 * (`credits.enforce`); `kind` says which. Check `granted` before the model call (a denied hold
 * has `reason` and a human-readable `message`), pass the hold to `record(input, { hold })` and
 * always to `settle()` (a failed call settles with `{ status: "failed" }`, freeing it).
 *
 * @example
 * const hold = await latch.reserve({ account: "acme", amount: 4_000 });
 * if (!hold.granted) throw new Error(hold.message); // reason: "insufficient" | "unavailable"
 * const result = await latch.record(input, { hold });
 * await latch.settle(hold, result); // commits what the call used, frees the rest
 */
export type Hold = QuotaHold | CreditHold;

/** Which ledger and feature an observation's usage burns. */
export interface CreditRoute {
  ledgerId: string;
  featureId: string;
}

/**
 * Prepaid credits in the facade. Every recorded call burns credits: once its observation is
 * stored, each {@link CreditRoute} it maps to gets a usage event keyed by the observation's
 * eventId (so retries, spool replays and re-rating never burn twice), of the amount the
 * feature counts (`creditUsageOf`: meters for a quantity feature, the rated total for a money
 * feature, which therefore burns once the call is rated). `correct()` records the corrected
 * amount as the event's next version, which replaces the burn (up or down). A call recorded
 * with a credit hold (`record(input, { hold })`) of a feature no route burns on the hold's
 * ledger (a hold-only feature) burns that feature there too, like a route, in the call's later
 * burn once the ledger checked the hold's link: the same usage event as the hold's commit (so
 * once), also when the hold was voided first; not when it was purged first (nothing can check
 * the link then); not replaced by a correction (see
 * `correlation.holdLedgerId`).
 *
 * @example
 * const latch = createLatch({ observations, rated, pricing,
 *   credits: { ledger, featureId: "tokens", enforce: true } });
 * const hold = await latch.reserve({ account: "acme", amount: 4_000 }); // holds 4,000 tokens of ledger "acme"
 * await latch.settle(hold, await latch.record(observation));          // burns what the call used, once
 */
export interface LatchCreditsConfig {
  ledger: CreditLedger;
  /**
   * The feature usage burns (default route) and `reserve()` holds against (unless the request
   * names one). Required unless `route` is given and every reserve names its feature.
   */
  featureId?: string;
  /**
   * Which ledger(s) and feature(s) an observation burns; `undefined` or `[]` burns nothing.
   * Default: `{ ledgerId: observation.subject.tenantId, featureId }`.
   */
  route?: (observation: UsageObservation) => CreditRoute | readonly CreditRoute[] | undefined;
  /**
   * `reserve()` holds credits instead of quota (then `quota` must not be configured):
   * `account` is the ledgerId (the ledger the call's observation routes to), `amount` the
   * credits to hold; `settle()` commits what the call actually used (in full, even above the
   * hold) as the call's usage event, or voids the hold. A money feature's hold on a call not
   * rated yet (`accepted`, `spooled`) stays held at `settle()`: pass the hold to
   * `record(input, { hold })` and the call's later burn (ingest worker, spool replay,
   * `rerateUnpriced()`, `reconcileCredits()`) commits it, so the call never counts as both held
   * and burned; recorded without it, the hold is released only at its TTL
   * (`credit_hold_unresolved`). A hold of a feature none of the call's routes burns on the
   * hold's ledger (e.g. a `usd` hold on calls routed to `tokens`) is burned on that ledger by
   * the call's later burn as if it were a route, once the ledger checked the hold's link
   * (`correlation.holdLedgerId`). Default false.
   */
  enforce?: boolean;
}

export interface LatchWarning {
  code:
    | "store_retry_exhausted"
    | "spooled"
    | "spool_torn_line"
    | "spool_replay_failed"
    /** A spooled line of a newer Latch's format: kept in the spool for a drain that reads it. */
    | "spool_newer_version"
    | "rating_failed"
    /** A settle could not commit or void its hold; `reconcileQuota()` commits it from the record. */
    | "settle_failed"
    /** `reconcileQuota()` met a hold it cannot commit (voided, committed with other units, unknown). */
    | "quota_reconcile_skipped"
    /**
     * Burning a call's credits failed: spooled for replay when a retry can help, else dropped.
     * Also a money feature met with a call rated in another currency (`cause`:
     * `CurrencyMismatchError`): nothing of it burns from that feature, never a silent 0.
     */
    | "credit_burn_failed"
    /**
     * A credit hold the call's burn does not resolve: a later burn (ingest worker, spool replay,
     * `rerateUnpriced()`, `reconcileCredits()`) found the hold the call links purged before the
     * call first burned (resolved or expired longer ago than the ledger's hold retention) or
     * committed for another call or amount (the call burned through its routes, once; `cause`
     * says which), or `settle()` left a money hold open for a call not rated yet that was recorded
     * without it (`record(input, { hold })`), so it is released at its TTL, not by the burn.
     */
    | "credit_hold_unresolved";
  message: string;
  eventId?: string;
  cause?: unknown;
}

export interface LatchConfig {
  observations: ObservationStore;
  rated: RatedRecordStore;
  pricing: PricingSource;
  quota?: QuotaReservator & QuotaAuthorizer;
  /** Prepaid credits: recorded usage burns them; with `enforce`, `reserve()` holds them. */
  credits?: LatchCreditsConfig;
  counter?: UsageCounter;
  exporter?: RatedRecordExporter;
  /**
   * A durable ingest log for a fleet (e.g. `natsIngestLog` of `@latch/nats`): `record()`
   * publishes the observation (keyed by eventId) instead of storing and rating it inline, and
   * answers `{ status: "accepted" }` once the log holds it; ingest workers store and rate it.
   * An unreachable log fails open into the spool, whose replay publishes again. The stores are
   * still what `settle`, reports, corrections and exports read.
   *
   * @example
   * createLatch({ observations, rated, pricing, ingest: natsIngestLog({ connection, stream: "LATCH_INGEST" }) });
   */
  ingest?: IngestLog;
  /** Injected time source; default `() => new Date()`. */
  clock?: () => Date;
  /**
   * Directory of the local spool where observations wait while the store is down; any number of
   * processes may share it (layout and guarantees: "The spool" in the `@latch/core` README).
   * Default `./.latch/spool` (relative to the working directory when `createLatch` runs); in a
   * container, put it on a volume that outlives the container.
   *
   * @example
   * createLatch({ observations, rated, pricing, spoolDir: "/var/lib/myapp/latch-spool" });
   */
  spoolDir?: string;
  /**
   * @deprecated The single-file spool of earlier versions. Still honoured: the file is migrated
   * (replayed) by every `flushSpool`, and without `spoolDir` the spool directory is this path
   * without `.jsonl` (`./data/spool.jsonl` → `./data/spool/`). Default `./.latch/spool.jsonl`
   * when `spoolDir` is not given either.
   */
  spoolPath?: string;
  engine?: RatingEngine;
  retry?: RetryPolicy;
  /**
   * Quota units a call consumed, charged at `settle`: a safe integer ≥ 0. Default: its total
   * tokens. `record` is the rated record when there is one (settle of a `rated` result, and
   * `reconcileQuota()`, which commits each stored record's hold with these units); for an
   * `unpriced`, `spooled` or `accepted` result settle passes the observation alone. Units that
   * need the record (cost, say) return `undefined` when it is not given: settle then leaves the
   * hold open (it keeps its amount held: early denial, never overspend) and `reconcileQuota()`
   * commits it from the record once a worker, the spool replay or `rerateUnpriced()` stored it
   * (after the hold's TTL too, within the quota store's hold retention) — run it on a schedule.
   * Reconcile finds the hold through the record, so record such a call with its hold
   * (`record(input, { hold })`): settle throws `invalid_input` when the observation names none.
   * Return the same units for the same record every time: reconcile commits a hold settle
   * already committed again, and other units are skipped (`quota_reconcile_skipped`).
   *
   * Anything else is a configuration bug, `invalid_input` naming `LatchConfig.quotaUnits` and
   * never sent to the quota store: `undefined` for a rated record, a number that is not a safe
   * integer ≥ 0 (NaN, Infinity, -1, 1.5), another type (a Promise: it must answer
   * synchronously), or an exception it throws (the error's `cause`).
   * `settle` throws it; `reconcileQuota()` reports it (`quota_reconcile_skipped`) and goes on.
   *
   * @example
   * // A budget in micro-dollars: cost needs the rated record (USD prices assumed).
   * createLatch({ observations, rated, pricing, quota,
   *   quotaUnits: (_observation, record) =>
   *     record === undefined ? undefined : new LatchDecimal(record.total).times(1_000_000).ceil().toNumber() });
   */
  quotaUnits?: (observation: UsageObservation, record?: RatedUsageRecord) => number | undefined;
  /** Default hold lifetime. Default 10 minutes. */
  holdTtlMs?: number;
  /** Where warnings go (retries exhausted, spooling, torn spool lines). Default `console.warn`. */
  onWarning?: (warning: LatchWarning) => void;
}

export interface Latch {
  /**
   * Reserve quota (or, with `credits.enforce`, credits) before a model call. Fails closed: a
   * store error denies, saying so. For credits, `account` is the ledgerId, `amount` a decimal
   * string or a safe integer, and `featureId` defaults to `credits.featureId`.
   */
  reserve(request: {
    account: string;
    amount: number | string;
    featureId?: string;
    holdId?: string;
    ttlMs?: number;
  }): Promise<Hold>;
  /**
   * Record what a call consumed: stored raw first, then priced. Fails open (see RecordResult).
   * Pass the call's granted `hold` so the stored observation names it (`correlation.holdId`,
   * and a credit hold's feature and ledger, `correlation.holdFeatureId` and `holdLedgerId`,
   * its `account`): `reconcileQuota()` can then commit
   * a quota hold if the settle is lost, and the later burn of a credit hold's call (an ingest
   * worker, the spool replay, `rerateUnpriced()`, `reconcileCredits()`) commits the hold (and
   * burns a hold-only feature on the hold's ledger). The link is part of the observation: a
   * retry with the same hold is a duplicate (also when only one of the two, recorded by an
   * older release, lacks `holdLedgerId`: the stored one stands); an observation naming a hold
   * itself, or another hold, feature or ledger than `hold`'s, is `invalid_input`, and so
   * is a credit hold whose `account` is none of the ledgers the call burns (`credits.route`):
   * committing it would burn the call there too (`options.hold.account`; `settle()` refuses it
   * the same way, naming `hold.account`).
   */
  record<A extends UsageApi>(
    input: ProviderUsageInputOf<A>,
    options?: { hold?: Hold },
  ): Promise<RecordResult>;
  record(input: RecordInput, options?: { hold?: Hold }): Promise<RecordResult>;
  /**
   * After the call: commit the call's usage against the hold (`LatchConfig.quotaUnits`), or void
   * it when the call failed. `{ settled: true }` also when the units need a rated record that is
   * not stored yet: the hold then stays open and `reconcileQuota()` commits it from the record.
   * `{ settled: false }`: a store error, reported (`settle_failed`); `reconcileQuota()` commits it.
   * A credit hold of a money feature on a call not rated yet (`accepted`, `spooled`) also stays
   * open (`{ settled: true }`): the call's later burn commits it when the call was recorded with
   * it; recorded without it, `credit_hold_unresolved` is reported and the hold frees at its TTL.
   * So does one of an `unpriced` call recorded with it when the hold's feature is none of the
   * call's routes (held only): `rerateUnpriced()` commits it once the call is priced.
   */
  settle(hold: Hold, result: RecordResult | { status: "failed" }): Promise<{ settled: boolean }>;
  /**
   * A corrected version of an event's meters: version n+1, superseding version n. With credits,
   * the event's burn is replaced by the corrected amount (usage version n+1).
   */
  correct(eventId: string, meters: MeterSet): Promise<RatedUsageRecord>;
  /** Rate every stored observation that has no rated record yet (new prices, earlier failures). */
  rerateUnpriced(): Promise<{ rated: number; stillUnpriced: number }>;
  /**
   * Burns the credits of every rated-record version stored since the last call (the change
   * log consumer `latch:credits`), idempotently: each version is burned once per event and
   * version, and an earlier version never undoes a later one. Run it after a crash (a process
   * that died between storing a call and burning its credits left that burn undone) or on a
   * schedule; each page's cursor is saved only after its burns. Requires `credits`.
   */
  reconcileCredits(): Promise<{ versions: number }>;
  /**
   * Commits the quota hold of every rated-record version stored since the last call whose
   * observation names one (`record(input, { hold })`): a settle lost to a quota store error or
   * a crash between record and settle is charged after all (commit after expiry still charges,
   * and a commit repeated with the same units charges once). The change-log consumer is
   * `latch:quota`; each page's cursor is saved after its commits. Run it at start-up and on a
   * schedule. Requires `quota`.
   *
   * @example
   * const hold = await latch.reserve({ account: "acme", amount: 4_000 });
   * const result = await latch.record(call, { hold });
   * await latch.settle(hold, result);   // { settled: false } when the quota store was down
   * await latch.reconcileQuota();       // later: commits what that settle could not
   */
  reconcileQuota(): Promise<{ versions: number; holds: number }>;
  /** Export every rated-record version not exported yet. */
  exportPending(): Promise<{ batches: number; rows: number; keys: string[] }>;
  summary(query: SummaryQuery): Promise<SummaryRow[]>;
  lines(query: LinesQuery): Promise<LinesPage>;
  /**
   * Replay spooled observations into the store; safe while other processes spool and flush.
   * `skipped` counts lines set aside (torn, invalid, conflicting: moved to `rejected/` with a
   * warning; a newer format: kept), `remaining` the entries left spooled by a store error.
   */
  flushSpool(): Promise<{ replayed: number; skipped: number; remaining: number }>;
  /**
   * Resolves when the start-up replay of an earlier spool has finished and every configured
   * store that can check itself up front (has a `ready()`: the Postgres stores check their
   * schema version, `RedisQuota` the server's eviction policy) says it is ready. Throws the
   * first store's error, e.g. `schema_not_migrated` when `migrate()` was not run — call it at
   * start-up so a deployment fault shows before the first request.
   *
   * @example
   * const latch = createLatch({ observations, rated, pricing });
   * await latch.ready(); // SchemaNotMigratedError: … run migrate(db, { schema: "latch" })
   */
  ready(signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** Where the facade's units report what they could not do (`LatchConfig.onWarning`). */
export type Warn = (warning: LatchWarning) => void;
