import { createHash, randomUUID } from "node:crypto";
import { z } from "zod";
import type { RatedRecordExporter } from "../contracts/exporter.js";
import { canonicalJson } from "../contracts/hashing.js";
import type { ObservationStore } from "../contracts/observation-store.js";
import type { QuotaAuthorizer, QuotaReservator, UsageCounter } from "../contracts/quota.js";
import type { RatedRecordStore } from "../contracts/rated-record-store.js";
import type { CreditLedger } from "../credits/contract.js";
import { creditUsageOf } from "../credits/features.js";
import { CreditAmountSchema, type CreditFeature, CreditIdSchema } from "../credits/schemas.js";
import { LatchError, LatchValidationError, type NoPriceForMeterError } from "../errors/index.js";
import { exportPending } from "../export/run-export.js";
import { parseObservation } from "../observation/parse.js";
import { compileSnapshot } from "../pricing/compiled-snapshot.js";
import type { PricingSource } from "../pricing/pricing-source.js";
import { modelMatchOf, type PriceRequest, resolvePriceFrom } from "../pricing/resolution.js";
import { DefaultRatingEngine, type RatingEngine } from "../rating/engine.js";
import type { LinesPage, LinesQuery, SummaryQuery, SummaryRow } from "../reports/query.js";
import {
  type MeterKind,
  type MeterSet,
  MeterSetSchema,
  PROMPT_METERS,
  TOKEN_METERS,
} from "../schemas/meters.js";
import type { UsageObservation, UsageObservationInput } from "../schemas/observation.js";
import { parseWith } from "../schemas/parse.js";
import type { PriceSnapshot } from "../schemas/pricing.js";
import type { BaselineKey, RatedUsageRecord, RatingContext } from "../schemas/rating.js";
import { type ProviderUsageInput, toObservation } from "./provider-usage.js";
import { linkHold, reconcileQuota } from "./quota-reconcile.js";
import { type RetryPolicy, withRetry } from "./retry.js";
import { Spool, type SpoolSetAside, spoolLocation } from "./spool.js";

export type { ProviderObservationInput, ProviderUsageInput, UsageApi } from "./provider-usage.js";

export type RecordResult =
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
  | { status: "spooled"; eventId: string; observation: UsageObservation };

/** A quota reservation. `granted: false` carries the reason (fails closed). */
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

/** What `reserve()` returns: a quota hold, or a credit hold when credits back `reserve()`. */
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
 * amount as the event's next version, which replaces the burn (up or down).
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
   * hold) as the call's usage event, or voids the hold. Default false.
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
    | "credit_burn_failed";
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
   * Quota units a call consumed, charged at `settle`. Default: its total tokens. `record` is
   * there when the call was rated (e.g. to charge cost in minor units); unpriced and spooled
   * calls are charged from the observation alone.
   */
  quotaUnits?: (observation: UsageObservation, record?: RatedUsageRecord) => number;
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
   * Pass the call's quota `hold` so the stored observation names it (`correlation.holdId`):
   * `reconcileQuota()` can then commit it if the settle is lost.
   */
  record(input: UsageObservationInput | ProviderUsageInput, options?: { hold?: Hold }): Promise<RecordResult>;
  /** After the call: commit the rated usage against the hold, or void it when the call failed. */
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
  /** Resolves when the start-up replay of an earlier spool has finished. */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

/** The change-log consumer `reconcileCredits` walks. */
const CREDITS_CURSOR = "latch:credits";

const ConfigSchema = z.looseObject({
  observations: z.custom<ObservationStore>(
    (v) => typeof v === "object" && v !== null,
    "expected an ObservationStore",
  ),
  rated: z.custom<RatedRecordStore>(
    (v) => typeof v === "object" && v !== null,
    "expected a RatedRecordStore",
  ),
  pricing: z.custom<PricingSource>(
    (v) => typeof v === "object" && v !== null && typeof (v as PricingSource).resolve === "function",
    "expected a PricingSource with resolve()",
  ),
  spoolDir: z.string().min(1).optional(),
  spoolPath: z.string().min(1).optional(),
  holdTtlMs: z.number().int().positive().max(2_147_483_647).optional(),
  credits: z
    .strictObject({
      ledger: z.custom<CreditLedger>(
        (v) =>
          typeof v === "object" &&
          v !== null &&
          typeof (v as CreditLedger).recordUsage === "function" &&
          typeof (v as CreditLedger).reserve === "function",
        "expected a CreditLedger",
      ),
      featureId: CreditIdSchema.optional(),
      route: z
        .custom<NonNullable<LatchCreditsConfig["route"]>>(
          (v) => typeof v === "function",
          "expected a function",
        )
        .optional(),
      enforce: z.boolean({ error: "expected a boolean" }).optional(),
    })
    .optional(),
});

const CreditReserveRequestSchema = z.strictObject({
  account: CreditIdSchema,
  amount: z.union(
    [z.number().int().positive().max(Number.MAX_SAFE_INTEGER).transform(String), CreditAmountSchema],
    { error: "expected a decimal string > 0 such as 4000 or 2.5, or a positive safe integer" },
  ),
  featureId: CreditIdSchema.optional(),
  holdId: z.string().min(1).max(256).optional(),
  ttlMs: z.number().int().positive().max(2_147_483_647).optional(),
});

const ReserveSchema = z.strictObject({
  account: z.string().min(1).max(256),
  amount: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  holdId: z.string().min(1).max(256).optional(),
  ttlMs: z.number().int().positive().max(2_147_483_647).optional(),
});

function sumMeters(meters: MeterSet, which: readonly MeterKind[]): number {
  let sum = 0;
  for (const meter of which) sum += meters[meter] ?? 0;
  return sum;
}

function totalTokens(observation: UsageObservation): number {
  return sumMeters(observation.meters, TOKEN_METERS);
}

/**
 * The counter of one tenant, model and baseline meter: `tenant|model|meter`, as before, when
 * that names one pair (the meter has no `|`, so a model without `|` splits it at the last
 * one) and fits a counter key; otherwise a digest of the three ids. `a|b` on `c` and `a` on
 * `b|c` would share `a|b|c|…`; 256-character ids would pass the key's 512 characters and never
 * price. Existing counters keep their keys.
 */
function periodCounterKey(tenantId: string, billableModel: string, meter: string): string {
  const plain = `${tenantId}|${billableModel}|${meter}`;
  if (!billableModel.includes("|") && plain.length <= 512) return plain;
  return `sha256:${createHash("sha256")
    .update(JSON.stringify([tenantId, billableModel, meter]))
    .digest("hex")}`;
}

/** UTC month of a timestamp: the billing period of period-scoped tiers. */
function periodOf(iso: string): string {
  return iso.slice(0, 7);
}

/** Two recordings of one call that differ only in the quota hold they name. */
function sameCallOtherHold(stored: UsageObservation, incoming: UsageObservation): boolean {
  const holdA = stored.correlation?.holdId;
  const holdB = incoming.correlation?.holdId;
  if (holdA === undefined || holdB === undefined || holdA === holdB) return false;
  const strip = (o: UsageObservation) => {
    const { holdId: _ignored, ...correlation } = o.correlation ?? {};
    return canonicalJson({ ...o, correlation });
  };
  return strip(stored) === strip(incoming);
}

function isCode(error: unknown, code: string): boolean {
  return LatchError.isInstance(error) && error.code === code;
}

/**
 * The one-call API: reserve quota before a model call, record what it consumed after, settle
 * the hold, and export rated usage for billing.
 *
 * - `record` stores the raw observation first (idempotent by eventId), resolves the snapshot in
 *   effect at `completedAt`, rates it and stores the rated record. Usage without a price is kept
 *   and reported as `unpriced` — never billed as $0 — and `rerateUnpriced()` prices it later.
 * - Recording fails open: a store error is retried with backoff and jitter, then the observation
 *   is spooled to a local directory (`spoolDir`) and replayed by `flushSpool()` (and on the next start); the
 *   caller's request never fails because metering did. Bad input still throws `invalid_input`.
 * - Quota fails closed: when the quota store cannot answer, `reserve` denies with reason
 *   `unavailable`.
 *
 * @example
 * const latch = createLatch({ observations, rated, pricing, quota });
 * const hold = await latch.reserve({ account: "acme", amount: 4_000 });
 * if (!hold.granted) return deny(hold.message);
 * const response = await openai.chat.completions.create(…);
 * const result = await latch.record({ api: "openaiChat", usage: response.usage, observation: { … } });
 * await latch.settle(hold, result);
 */
export function createLatch(config: LatchConfig): Latch {
  parseWith(ConfigSchema, config, "LatchConfig", "config");
  const engine = config.engine ?? new DefaultRatingEngine();
  const clock = config.clock ?? (() => new Date());
  const retry = config.retry ?? {};
  const warn = config.onWarning ?? ((w: LatchWarning) => console.warn(`[latch] ${w.code}: ${w.message}`));
  const spool = new Spool(spoolLocation(config));
  const quotaUnits = config.quotaUnits ?? totalTokens;
  const holdTtlMs = config.holdTtlMs ?? 600_000;
  const { observations, rated, pricing } = config;
  const credits = config.credits;
  if (credits !== undefined) {
    if (credits.featureId === undefined && credits.route === undefined)
      throw LatchValidationError.at("LatchConfig", "credits.featureId", "give a featureId or a route");
    if (credits.enforce === true && config.quota !== undefined)
      throw LatchValidationError.at(
        "LatchConfig",
        "credits.enforce",
        "reserve() is backed by quota or by credits, not both: drop quota or enforce",
      );
  }
  /** Features never change once created (idempotent by id): each is read once. */
  const features = new Map<string, CreditFeature>();

  async function creditFeature(ledger: CreditLedger, featureId: string): Promise<CreditFeature> {
    const known = features.get(featureId);
    if (known !== undefined) return known;
    const feature = await withRetry(() => ledger.getFeature(featureId), retry);
    if (feature === undefined)
      throw LatchValidationError.at("LatchConfig", "credits.featureId", `no credit feature ${featureId}`);
    features.set(featureId, feature);
    return feature;
  }

  function routesOf(obs: UsageObservation): readonly CreditRoute[] {
    if (credits === undefined) return [];
    if (credits.route === undefined)
      return [{ ledgerId: obs.subject.tenantId, featureId: credits.featureId as string }];
    const routed = credits.route(obs);
    if (routed === undefined) return [];
    return Array.isArray(routed) ? routed : [routed as CreditRoute];
  }

  /**
   * Burns the credits of a stored observation: one usage event per route, keyed by eventId and
   * versioned by the rated record's version, so any number of retries burn once and a
   * correction replaces the burn. A money feature burns only once `record` is there.
   */
  async function burnCredits(obs: UsageObservation, record?: RatedUsageRecord): Promise<void> {
    if (credits === undefined) return;
    let mismatch: unknown; // a money feature in another currency: thrown once the other routes burned
    for (const route of routesOf(obs)) {
      const feature = await creditFeature(credits.ledger, route.featureId);
      let amount: string | undefined;
      try {
        amount = creditUsageOf(feature, obs, record);
      } catch (error) {
        mismatch ??= error;
        continue;
      }
      if (amount === undefined) continue;
      await withRetry(
        () =>
          credits.ledger.recordUsage({
            ledgerId: route.ledgerId,
            featureId: route.featureId,
            eventId: obs.eventId,
            amount,
            at: obs.timing.completedAt,
            version: record?.version ?? 1,
          }),
        retry,
      );
    }
    if (mismatch !== undefined) throw mismatch;
  }

  /**
   * `burnCredits` that fails open like recording: a store error spools the observation (its
   * replay finds it stored and rated, and burns again, idempotently); a caller-side error (an
   * unknown ledger, a conflict) cannot be fixed by a retry and is only reported.
   */
  async function burnRecorded(obs: UsageObservation, result: RecordResult, mayspool: boolean): Promise<void> {
    try {
      await burnCredits(obs, result.status === "rated" ? result.record : undefined);
    } catch (error) {
      const retryable = isRetryableStoreError(error);
      warn({
        code: "credit_burn_failed",
        message: retryable
          ? `burning credits for ${obs.eventId} failed${mayspool ? "; spooling" : ""}`
          : `burning credits for ${obs.eventId} failed and a retry cannot help: ${(error as Error).message}`,
        eventId: obs.eventId,
        cause: error,
      });
      if (!retryable) return;
      if (!mayspool) throw error;
      await spool.append(obs);
      warn({
        code: "spooled",
        message: `observation ${obs.eventId} spooled to ${spool.path}`,
        eventId: obs.eventId,
      });
    }
  }

  /** Period baselines for a snapshot's period tiers, from the usage counter (atomic add). */
  async function periodBaseline(
    obs: UsageObservation,
    snapshot: PriceSnapshot,
  ): Promise<RatingContext["periodBaseline"]> {
    const compiled = compileSnapshot(snapshot);
    const periodTiers = compiled.tiers.filter((t) => t.scope === "period");
    if (periodTiers.length === 0) return undefined;
    const counter = config.counter;
    if (!counter) {
      throw LatchValidationError.at(
        "LatchConfig",
        "counter",
        `snapshot ${snapshot.snapshotId} has period tiers: a UsageCounter is required`,
      );
    }
    const keys = new Set<BaselineKey>();
    for (const tier of periodTiers) {
      keys.add(tier.baselineKey);
      for (const m of tier.meters) keys.add(m);
    }
    const baseline: Partial<Record<BaselineKey, number>> = {};
    const period = periodOf(obs.timing.completedAt);
    for (const key of keys) {
      const quantity =
        key === "prompt_tokens"
          ? sumMeters(obs.meters, PROMPT_METERS)
          : key === "total_tokens"
            ? sumMeters(obs.meters, TOKEN_METERS)
            : (obs.meters[key] ?? 0);
      // Keyed by the priced model, not the call's spelling of it: `gpt-5` and `gpt-5-2025-08-07`
      // matched to one snapshot move one period baseline.
      const counterKey = periodCounterKey(obs.subject.tenantId, snapshot.model.billableModel, key);
      // Idempotent by event: a retried add, a re-rating or a second worker recording the same
      // event gets the first add's answer and counts nothing again.
      baseline[key] = await withRetry(
        () => counter.add(counterKey, period, quantity, { opId: obs.eventId }),
        retry,
      );
    }
    return baseline;
  }

  /** What the pricing source is asked for an observation: its model and tier, when it completed, who served it. */
  function priceRequestOf(obs: UsageObservation): PriceRequest {
    return { model: obs.model, at: obs.timing.completedAt, providerId: obs.provider?.providerId };
  }

  /** Rates a stored observation and stores the record; marks it priced. */
  async function rateStored(obs: UsageObservation): Promise<RecordResult> {
    const existing = await withRetry(() => rated.current(obs.eventId), retry);
    if (existing) {
      await withRetry(() => observations.markPriced([obs.eventId]), retry);
      return { status: "rated", record: existing };
    }
    const resolution = await withRetry(() => resolvePriceFrom(pricing, priceRequestOf(obs)), retry);
    if (resolution.status === "unpriced") {
      const unpriced = {
        status: "unpriced",
        eventId: obs.eventId,
        reason: resolution.reason,
        observation: obs,
      } as const;
      return resolution.reason === "ambiguous_model"
        ? { ...unpriced, candidates: resolution.candidates }
        : unpriced;
    }
    const snapshot = resolution.snapshot;
    let record: RatedUsageRecord;
    try {
      const context: RatingContext = { ratedAt: clock().toISOString() };
      const modelMatch = modelMatchOf(resolution);
      if (modelMatch) context.modelMatch = modelMatch;
      const baseline = await periodBaseline(obs, snapshot);
      if (baseline) context.periodBaseline = baseline;
      record = engine.rate(obs, snapshot, context);
    } catch (error) {
      if (isCode(error, "no_price_for_meter")) {
        const meter = (error as NoPriceForMeterError).meter as MeterKind;
        return { status: "unpriced", eventId: obs.eventId, reason: "no_price", observation: obs, meter };
      }
      if (isCode(error, "no_snapshot_for_tier"))
        return { status: "unpriced", eventId: obs.eventId, reason: "no_snapshot_for_tier", observation: obs };
      warn({
        code: "rating_failed",
        message: `rating ${obs.eventId} failed: ${(error as Error).message}`,
        eventId: obs.eventId,
        cause: error,
      });
      return { status: "unpriced", eventId: obs.eventId, reason: "no_price", observation: obs };
    }
    try {
      await withRetry(() => rated.put(record), retry);
    } catch (error) {
      // Another worker (a concurrent rerate, a retry racing its original) stored v1 first,
      // against another snapshot: theirs stands, and is what this call returns.
      if (!isCode(error, "idempotency_conflict")) throw error;
      const winner = await withRetry(() => rated.current(obs.eventId), retry);
      if (!winner) throw error;
      record = winner;
    }
    await withRetry(() => observations.markPriced([obs.eventId]), retry);
    return { status: "rated", record };
  }

  async function recordParsed(obs: UsageObservation, mayspool: boolean): Promise<RecordResult> {
    try {
      await withRetry(() => observations.append(obs), retry);
    } catch (error) {
      if (isCode(error, "idempotency_conflict")) {
        // The same call recorded before under another hold (a handler re-run after a crash
        // between record and settle): a duplicate. The stored call keeps its hold, and
        // settle() voids the new one (see settle), so the call is charged once.
        const stored = await withRetry(() => observations.get(obs.eventId), retry);
        if (stored !== undefined && sameCallOtherHold(stored, obs)) return recordParsed(stored, mayspool);
        throw error;
      }
      if (!isRetryableStoreError(error)) throw error;
      if (!mayspool) throw error;
      warn({
        code: "store_retry_exhausted",
        message: `append ${obs.eventId} failed; spooling`,
        eventId: obs.eventId,
        cause: error,
      });
      await spool.append(obs);
      warn({
        code: "spooled",
        message: `observation ${obs.eventId} spooled to ${spool.path}`,
        eventId: obs.eventId,
      });
      return { status: "spooled", eventId: obs.eventId, observation: obs };
    }
    let result: RecordResult;
    try {
      result = await rateStored(obs);
    } catch (error) {
      if (!isRetryableStoreError(error)) throw error;
      // The raw observation is stored and still unpriced: rerateUnpriced() completes it.
      warn({
        code: "store_retry_exhausted",
        message: `rating ${obs.eventId} deferred: store error`,
        eventId: obs.eventId,
        cause: error,
      });
      result = { status: "unpriced", eventId: obs.eventId, reason: "store_error", observation: obs };
    }
    await burnRecorded(obs, result, mayspool);
    return result;
  }

  /** Store failures, not caller mistakes: validation errors and conflicts go to the caller. */
  function isRetryableStoreError(error: unknown): boolean {
    return (
      !isCode(error, "invalid_input") &&
      !isCode(error, "idempotency_conflict") &&
      !isCode(error, "currency_mismatch")
    );
  }

  /**
   * Drains the spool (see `Spool`): each entry is recorded again (idempotent by eventId). An
   * invalid or conflicting entry is set aside in `rejected/`, never dropped; a store error stops
   * the flush and leaves that entry and the rest of its segment spooled.
   */
  async function flushSpool(): Promise<{ replayed: number; skipped: number; remaining: number }> {
    const report = await spool.drain(async (entry, at) => {
      let obs: UsageObservation;
      try {
        obs = parseObservation(entry);
      } catch (error) {
        return { rejected: "not a valid observation", cause: error };
      }
      try {
        await recordParsed(obs, false);
        return "stored";
      } catch (error) {
        if (isCode(error, "idempotency_conflict"))
          return { rejected: `${obs.eventId} conflicts with the stored observation`, cause: error };
        warn({
          code: "spool_replay_failed",
          message: `replay stopped at ${obs.eventId} (${at.segment} line ${at.line}); it stays spooled`,
          eventId: obs.eventId,
          cause: error,
        });
        throw error;
      }
    }, warnSetAside);
    return { replayed: report.replayed, skipped: report.setAside, remaining: report.handedBack };
  }

  function warnSetAside(aside: SpoolSetAside): void {
    const where = `spool ${aside.segment} line ${aside.line}`;
    const what = {
      torn: "is incomplete (torn by a crash)",
      not_json: "is not JSON",
      not_an_entry: `is not a spool entry${aside.detail === undefined ? "" : ` (${aside.detail})`}`,
      newer_version: "was written by a newer version of Latch",
      rejected: `was refused: ${aside.detail ?? ""}`,
    }[aside.reason];
    warn({
      code:
        aside.reason === "newer_version"
          ? "spool_newer_version"
          : aside.reason === "rejected"
            ? "spool_replay_failed"
            : "spool_torn_line",
      message: `${where} ${what}; moved to ${aside.movedTo}`,
      ...(aside.cause === undefined ? {} : { cause: aside.cause }),
    });
  }

  /**
   * The burn of a correction. A store error throws (the record is stored: a retried correct()
   * with the same meters burns again, idempotently); an error no retry can fix (a tenant without
   * a ledger) is reported, as `record` does.
   */
  async function burnCorrected(record: RatedUsageRecord): Promise<void> {
    try {
      await burnCredits(record.observation, record);
    } catch (error) {
      if (isRetryableStoreError(error)) throw error;
      warn({
        code: "credit_burn_failed",
        message: `burning credits for ${record.eventId} failed and a retry cannot help: ${(error as Error).message}`,
        eventId: record.eventId,
        cause: error,
      });
    }
  }

  /** `reserve()` backed by credits: fails closed like quota. */
  async function reserveCredits(request: unknown): Promise<CreditHold> {
    const r = parseWith(CreditReserveRequestSchema, request, "reserve request");
    const ledger = (credits as LatchCreditsConfig).ledger;
    const featureId = r.featureId ?? credits?.featureId;
    if (featureId === undefined)
      throw LatchValidationError.at("reserve request", "featureId", "no featureId and no credits.featureId");
    const holdId = r.holdId ?? randomUUID();
    const base = { kind: "credits" as const, holdId, account: r.account, featureId, amount: r.amount };
    try {
      const answer = await ledger.reserve({
        holdId,
        ledgerId: r.account,
        featureId,
        amount: r.amount,
        ttlMs: r.ttlMs ?? holdTtlMs,
      });
      if (answer.granted) return { granted: true, ...base, available: answer.available };
      return {
        granted: false,
        ...base,
        reason: "insufficient",
        available: answer.available,
        message: `credits exhausted for ${r.account}: ${answer.available} ${featureId} available, ${r.amount} requested`,
      };
    } catch (error) {
      if (isCode(error, "invalid_input") || isCode(error, "idempotency_conflict")) throw error;
      return {
        granted: false,
        ...base,
        reason: "unavailable",
        message: "credit ledger unavailable: denied (credits fail closed)",
      };
    }
  }

  /**
   * Commits what the call used as its usage event (the same event `record` burned, so it
   * burns once), or voids the hold for a failed call, or when the feature counts nothing of
   * the call yet (a money feature before the call is rated: it burns when rated).
   */
  async function settleCredits(
    hold: Extract<CreditHold, { granted: true }>,
    result: RecordResult | { status: "failed" },
  ): Promise<{ settled: boolean }> {
    if (credits === undefined)
      throw LatchValidationError.at("LatchConfig", "credits", "no credit ledger configured");
    const ledger = credits.ledger;
    try {
      if (result.status === "failed") {
        await withRetry(() => ledger.voidHold(hold.holdId), retry);
        return { settled: true };
      }
      const record = result.status === "rated" ? result.record : undefined;
      const obs = record?.observation ?? (result as { observation: UsageObservation }).observation;
      const feature = await creditFeature(ledger, hold.featureId);
      let amount: string | undefined;
      try {
        amount = creditUsageOf(feature, obs, record);
      } catch (error) {
        // Rated in another currency than the feature's: nothing burns here. Reported, hold released.
        warn({
          code: "credit_burn_failed",
          message: (error as Error).message,
          eventId: obs.eventId,
          cause: error,
        });
      }
      if (amount === undefined) {
        await withRetry(() => ledger.voidHold(hold.holdId), retry);
        return { settled: true };
      }
      await withRetry(
        () =>
          ledger.commitHold({
            holdId: hold.holdId,
            eventId: obs.eventId,
            amount,
            at: obs.timing.completedAt,
            version: record?.version ?? 1,
          }),
        retry,
      );
      return { settled: true };
    } catch (error) {
      if (
        isCode(error, "invalid_input") ||
        isCode(error, "idempotency_conflict") ||
        isCode(error, "hold_already_resolved")
      )
        throw error;
      warn({ code: "settle_failed", message: `settling credit hold ${hold.holdId} failed`, cause: error });
      return { settled: false };
    }
  }

  const ready = flushSpool().then(
    () => undefined,
    (error: unknown) =>
      warn({ code: "spool_replay_failed", message: "start-up spool replay failed", cause: error }),
  );

  return {
    ready,

    async reserve(request) {
      if (credits?.enforce === true) return reserveCredits(request);
      const r = parseWith(ReserveSchema, request, "reserve request");
      const quota = config.quota;
      if (!quota) throw LatchValidationError.at("LatchConfig", "quota", "no QuotaReservator configured");
      const holdId = r.holdId ?? randomUUID();
      try {
        const answer = await quota.reserve({
          holdId,
          account: r.account,
          amount: r.amount,
          ttlMs: r.ttlMs ?? holdTtlMs,
        });
        if (answer.granted)
          return {
            granted: true,
            kind: "quota",
            holdId,
            account: r.account,
            amount: r.amount,
            remaining: answer.remaining,
          };
        return {
          granted: false,
          kind: "quota",
          holdId,
          account: r.account,
          amount: r.amount,
          reason: answer.reason,
          ...(answer.remaining === undefined ? {} : { remaining: answer.remaining }),
          message:
            answer.reason === "insufficient"
              ? `quota exceeded for ${r.account}: ${answer.remaining ?? 0} units left, ${r.amount} requested`
              : "quota store unavailable: denied (quota fails closed)",
        };
      } catch (error) {
        if (isCode(error, "invalid_input") || isCode(error, "idempotency_conflict")) throw error;
        return {
          granted: false,
          kind: "quota",
          holdId,
          account: r.account,
          amount: r.amount,
          reason: "unavailable",
          message: "quota store unavailable: denied (quota fails closed)",
        };
      }
    },

    async record(input, options) {
      await ready;
      const hold = options?.hold;
      const holdId = hold !== undefined && hold.kind === "quota" && hold.granted ? hold.holdId : undefined;
      return recordParsed(linkHold(toObservation(input), holdId), true);
    },

    async settle(hold, result) {
      if (typeof hold !== "object" || hold === null || typeof hold.holdId !== "string") {
        throw LatchValidationError.at("settle", "hold", "expected the Hold returned by reserve()");
      }
      if (typeof result !== "object" || result === null || typeof result.status !== "string") {
        throw LatchValidationError.at("settle", "result", 'expected a RecordResult or { status: "failed" }');
      }
      if (!hold.granted) return { settled: true };
      if (hold.kind === "credits") return settleCredits(hold, result);
      const quota = config.quota;
      if (!quota) throw LatchValidationError.at("LatchConfig", "quota", "no QuotaReservator configured");
      // A call recorded under another hold (a retried handler) is charged through that hold:
      // this one is voided, never charged a second time.
      const recordedHold =
        result.status === "failed"
          ? undefined
          : (result.status === "rated" ? result.record.observation : result.observation).correlation?.holdId;
      const chargedElsewhere = recordedHold !== undefined && recordedHold !== hold.holdId;
      try {
        if (result.status === "failed" || chargedElsewhere) {
          await withRetry(() => quota.void(hold.holdId), retry);
        } else {
          // Rated, unpriced or spooled: the call happened, so its usage counts against the quota.
          const units =
            result.status === "rated"
              ? quotaUnits(result.record.observation, result.record)
              : quotaUnits(result.observation);
          await withRetry(() => quota.commit(hold.holdId, units), retry);
        }
        return { settled: true };
      } catch (error) {
        if (
          isCode(error, "invalid_input") ||
          isCode(error, "idempotency_conflict") ||
          isCode(error, "hold_already_resolved")
        )
          throw error;
        warn({
          code: "settle_failed",
          message: `settling hold ${hold.holdId} failed; reconcileQuota() commits it from the record when record() was given the hold`,
          cause: error,
        });
        return { settled: false };
      }
    },

    async correct(eventId, meters) {
      if (typeof eventId !== "string" || eventId.length === 0)
        throw LatchValidationError.at("correct", "eventId", "expected an eventId");
      const corrected = parseWith(MeterSetSchema, meters, "correct", "meters");
      const current = await withRetry(() => rated.current(eventId), retry);
      if (!current)
        throw LatchValidationError.at(
          "correct",
          "eventId",
          "no rated record for this event; nothing to correct",
        );
      // A retried correction (its response lost) must not add another version: correcting to
      // the meters the current version already has is a no-op that returns it.
      if (current.version > 1 && canonicalJson(current.observation.meters) === canonicalJson(corrected)) {
        await burnCorrected(current); // finishes a burn the first try lost
        return current;
      }
      const { observation } = current;
      const obs = parseObservation({
        ...observation,
        meters: corrected,
        source: { kind: "corrected", correctionOf: eventId },
      });
      const resolution = await withRetry(() => resolvePriceFrom(pricing, priceRequestOf(obs)), retry);
      if (resolution.status === "unpriced")
        throw new LatchValidationError({
          subject: "correct",
          issues: [{ path: "eventId", message: `no price snapshot for the event (${resolution.reason})` }],
        });
      const context: RatingContext = {
        ratedAt: clock().toISOString(),
        version: current.version + 1,
        supersedes: current.ratedRecordId,
      };
      const modelMatch = modelMatchOf(resolution);
      if (modelMatch) context.modelMatch = modelMatch;
      const record = engine.rate(obs, resolution.snapshot, context);
      await withRetry(() => rated.put(record), retry);
      // The event's next usage version replaces its burn. A store error throws: the record is
      // stored, and a retried correct() (same meters) burns again, idempotently.
      await burnCorrected(record);
      return record;
    },

    async rerateUnpriced() {
      let ratedCount = 0;
      let stillUnpriced = 0;
      let after: string | undefined;
      for (;;) {
        const page = await withRetry(
          () => observations.listUnpriced(after === undefined ? { limit: 500 } : { after, limit: 500 }),
          retry,
        );
        for (const obs of page.items) {
          const result = await rateStored(obs);
          if (result.status === "rated") {
            ratedCount++;
            await burnRecorded(obs, result, true); // a money feature burns once rated
          } else stillUnpriced++;
        }
        if (page.next === undefined) break;
        after = page.next;
      }
      return { rated: ratedCount, stillUnpriced };
    },

    async reconcileCredits() {
      if (credits === undefined)
        throw LatchValidationError.at("LatchConfig", "credits", "no credit ledger configured");
      let versions = 0;
      let cursor = await withRetry(() => rated.getCursor(CREDITS_CURSOR), retry);
      for (;;) {
        const page = await withRetry(() => rated.listSince(cursor, 1_000), retry);
        if (page.items.length === 0 || page.cursor === undefined) break;
        for (const { record } of page.items) {
          try {
            await burnCredits(record.observation, record);
          } catch (error) {
            // A store error stops the run (the cursor stays: the next run retries this page);
            // an error a retry cannot fix (no ledger for the tenant) is reported, as in record().
            if (isRetryableStoreError(error)) throw error;
            warn({
              code: "credit_burn_failed",
              message: `burning credits for ${record.eventId} failed and a retry cannot help: ${(error as Error).message}`,
              eventId: record.eventId,
              cause: error,
            });
          }
        }
        const next = page.cursor;
        await withRetry(() => rated.saveCursor(CREDITS_CURSOR, next), retry);
        cursor = next;
        versions += page.items.length;
      }
      return { versions };
    },

    async reconcileQuota() {
      const quota = config.quota;
      if (quota === undefined)
        throw LatchValidationError.at("LatchConfig", "quota", "no QuotaReservator configured");
      return reconcileQuota({
        rated,
        quota,
        retry,
        quotaUnits,
        skipped: (record, error) =>
          warn({
            code: "quota_reconcile_skipped",
            message: `the hold of ${record.eventId} cannot be committed: ${(error as Error).message}`,
            eventId: record.eventId,
            cause: error,
          }),
      });
    },

    async exportPending() {
      const exporter = config.exporter;
      if (!exporter)
        throw LatchValidationError.at("LatchConfig", "exporter", "no RatedRecordExporter configured");
      return exportPending({ store: rated, exporter });
    },

    summary: (query) => withRetry(() => rated.summary(query), retry),
    lines: (query) => withRetry(() => rated.lines(query), retry),
    flushSpool,

    async close() {
      await ready;
      await spool.close();
    },
  };
}
