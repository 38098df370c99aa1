import { LatchValidationError } from "../errors/index.js";
import { exportPending } from "../export/run-export.js";
import { DefaultRatingEngine } from "../rating/engine.js";
import { createCorrection } from "./correction.js";
import { createCreditBurns } from "./credit-burns.js";
import { createCreditHolds } from "./credit-holds.js";
import { createIngestPublisher } from "./ingest.js";
import { totalTokens } from "./period-baselines.js";
import { createQuotaHolds } from "./quota-holds.js";
import { createRecorder } from "./record.js";
import { createRecordEntry } from "./record-entry.js";
import { withRetry } from "./retry.js";
import { parseLatchConfig } from "./schemas.js";
import { Spool, spoolLocation } from "./spool.js";
import { createSpoolReplay, spoolingTo } from "./spool-replay.js";
import type { Latch, LatchConfig, LatchWarning } from "./types.js";

export type { IngestLog, IngestPublishResult } from "./ingest.js";
export type {
  CreditHold,
  CreditRoute,
  Hold,
  Latch,
  LatchConfig,
  LatchCreditsConfig,
  LatchWarning,
  ProviderObservationInput,
  ProviderUsageInput,
  QuotaHold,
  RecordResult,
  UsageApi,
} from "./types.js";

/** A store that can check up front that it will work (a schema version, a server setting). */
function hasReadyCheck(part: unknown): part is { ready(signal?: AbortSignal): Promise<void> } {
  return (
    typeof part === "object" && part !== null && typeof (part as { ready?: unknown }).ready === "function"
  );
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
 *   caller's request never fails because metering did. An error no later attempt can fix
 *   (`mayPassLater`: bad input, a conflict, a corrupt stored record) is thrown, not spooled; so
 *   is a deployment fault (`schema_not_migrated`, `schema_incompatible`), at the first call.
 * - `await latch.ready()` checks up front what the first call would find: every configured
 *   store with a `ready()` (the Postgres stores check their schema, `RedisQuota` the server's
 *   eviction policy) is asked, and the first failure is thrown.
 * - Quota fails closed: when the quota store cannot answer, `reserve` denies with reason
 *   `unavailable`.
 * - With an ingest log (`ingest`, e.g. `@latch/nats`), `record` publishes the observation instead
 *   and answers `accepted` once the log holds it; ingest workers store and rate it. An
 *   unreachable log spools, as a store outage does.
 *
 * @example
 * const latch = createLatch({ observations, rated, pricing, quota });
 * await latch.ready(); // throws schema_not_migrated before the first call when migrate() was forgotten
 * const hold = await latch.reserve({ account: "acme", amount: 4_000 });
 * if (!hold.granted) return deny(hold.message);
 * const response = await openai.chat.completions.create(…);
 * const result = await latch.record({ api: "openaiChat", usage: response.usage, observation: { … } });
 * await latch.settle(hold, result);
 */
export function createLatch(config: LatchConfig): Latch {
  parseLatchConfig(config);
  const { observations, rated, pricing, credits } = config;
  const engine = config.engine ?? new DefaultRatingEngine();
  const clock = config.clock ?? (() => new Date());
  const retry = config.retry ?? {};
  const warn = config.onWarning ?? ((w: LatchWarning) => console.warn(`[latch] ${w.code}: ${w.message}`));
  const holdTtlMs = config.holdTtlMs ?? 600_000;
  const spool = new Spool(spoolLocation(config));
  const toSpool = spoolingTo(spool, warn);

  const burns = createCreditBurns({ credits, retry, warn, spool: toSpool });
  const recorder = createRecorder({
    observations,
    rated,
    pricing,
    engine,
    clock,
    retry,
    warn,
    counter: config.counter,
    burns,
    spool: toSpool,
  });
  // With an ingest log, recording (and spool replay) publishes; workers store and rate.
  const recordParsed =
    config.ingest === undefined
      ? recorder.record
      : createIngestPublisher({ log: config.ingest, retry, warn, spool: toSpool });
  const quotaHolds = createQuotaHolds({
    quota: config.quota,
    rated,
    retry,
    warn,
    quotaUnits: config.quotaUnits ?? totalTokens,
    holdTtlMs,
  });
  const creditHolds = createCreditHolds({ credits, burns, retry, warn, holdTtlMs });
  const correct = createCorrection({ rated, pricing, engine, clock, retry, burns });
  const flushSpool = createSpoolReplay({ spool, warn, replay: (obs) => recordParsed(obs, false) });

  const startup = flushSpool().then(
    () => undefined,
    (error: unknown) =>
      warn({ code: "spool_replay_failed", message: "start-up spool replay failed", cause: error }),
  );
  const record = createRecordEntry({
    startup,
    recordParsed,
    assertHoldLedger: burns.assertHoldLedger,
    recordInline: config.ingest === undefined ? recorder.recordInline : undefined,
  });

  const parts: unknown[] = [
    observations,
    rated,
    pricing,
    config.quota,
    config.counter,
    credits?.ledger,
    config.exporter,
  ];
  const checks = [...new Set(parts)].filter(hasReadyCheck);

  return {
    async ready(signal) {
      await startup;
      // One after the other: the first failure (usually the observation store) is the one reported.
      for (const part of checks) await part.ready(signal);
    },

    reserve: (request) =>
      credits?.enforce === true ? creditHolds.reserve(request) : quotaHolds.reserve(request),

    record,

    async settle(hold, result) {
      if (typeof hold !== "object" || hold === null || typeof hold.holdId !== "string") {
        throw LatchValidationError.at("settle", "hold", "expected the Hold returned by reserve()");
      }
      if (typeof result !== "object" || result === null || typeof result.status !== "string") {
        throw LatchValidationError.at("settle", "result", 'expected a RecordResult or { status: "failed" }');
      }
      if (!hold.granted) return { settled: true };
      return hold.kind === "credits" ? creditHolds.settle(hold, result) : quotaHolds.settle(hold, result);
    },

    correct,
    rerateUnpriced: () => recorder.rerateUnpriced(),

    async reconcileCredits() {
      if (credits === undefined)
        throw LatchValidationError.at("LatchConfig", "credits", "no credit ledger configured");
      return burns.reconcile(rated);
    },

    reconcileQuota: () => quotaHolds.reconcile(),

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
      await startup;
      await spool.close();
    },
  };
}
