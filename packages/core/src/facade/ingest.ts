import type { ObservationStore } from "../contracts/observation-store.js";
import type { UsageCounter } from "../contracts/quota.js";
import type { RatedRecordStore } from "../contracts/rated-record-store.js";
import type { PricingSource } from "../pricing/pricing-source.js";
import { DefaultRatingEngine, type RatingEngine } from "../rating/engine.js";
import type { UsageObservation } from "../schemas/observation.js";
import { createCreditBurns } from "./credit-burns.js";
import { createRecorder } from "./record.js";
import { isDeploymentFault, mayPassLater, type RetryPolicy, withRetry } from "./retry.js";
import { parseLatchConfig } from "./schemas.js";
import type { LatchConfig, LatchCreditsConfig, LatchWarning, RecordResult, Warn } from "./types.js";

/**
 * A durable log in front of the stores (`LatchConfig.ingest`), for a fleet of gateways: the
 * facade's `record()` publishes the parsed observation to it and answers
 * `{ status: "accepted" }`; ingest workers read the log and rate and store each observation
 * through {@link createIngestRecorder}. `@latch/nats` implements it on NATS JetStream.
 *
 * Contract: `publish` resolves only once the log holds the observation durably, keyed by its
 * `eventId` (a second publish of the same eventId must not deliver it twice while the log can
 * tell — the stores' idempotent append covers the rest); it rejects when it cannot, and the
 * facade then retries and spools (fails open), replaying by publishing again.
 *
 * @example
 * const latch = createLatch({ observations, rated, pricing, ingest: natsIngestLog({ connection, stream: "LATCH_INGEST" }) });
 * await latch.record(observation); // { status: "accepted", eventId, observation }
 */
export interface IngestLog {
  publish(observation: UsageObservation, options?: { signal?: AbortSignal }): Promise<IngestPublishResult>;
}

/** What {@link IngestLog.publish} answers: `duplicate` when the log already held this eventId. */
export interface IngestPublishResult {
  duplicate: boolean;
}

export interface IngestPublisherDeps {
  log: IngestLog;
  retry: RetryPolicy;
  warn: Warn;
  /** Keeps an observation the log could not take (see `spoolingTo`). */
  spool: (obs: UsageObservation) => Promise<void>;
}

/**
 * The record path when an ingest log is configured: publish (retried), answer `accepted`; when
 * the log stays unreachable, spool like a store outage when `mayspool` (a caller's `record()`)
 * and throw when not (a spool replay, which keeps the entry spooled).
 */
export function createIngestPublisher({
  log,
  retry,
  warn,
  spool,
}: IngestPublisherDeps): (obs: UsageObservation, mayspool: boolean) => Promise<RecordResult> {
  return async (obs, mayspool) => {
    try {
      await withRetry(() => log.publish(obs), retry);
    } catch (error) {
      if (!mayPassLater(error) || !mayspool) throw error;
      warn({
        code: "store_retry_exhausted",
        message: `publishing ${obs.eventId} to the ingest log failed; spooling`,
        eventId: obs.eventId,
        cause: error,
      });
      await spool(obs);
      return { status: "spooled", eventId: obs.eventId, observation: obs };
    }
    return { status: "accepted", eventId: obs.eventId, observation: obs };
  };
}

/** What {@link createIngestRecorder} needs: the stores and pricing an ingest worker writes with. */
export interface IngestRecorderConfig {
  observations: ObservationStore;
  rated: RatedRecordStore;
  pricing: PricingSource;
  /** The usage counter period tiers read (as `LatchConfig.counter`). */
  counter?: UsageCounter;
  /** Burns credits for each stored call, as the facade does (`LatchConfig.credits`). */
  credits?: LatchCreditsConfig;
  engine?: RatingEngine;
  /** Injected time source (`ratedAt`); default `() => new Date()`. */
  clock?: () => Date;
  /** Retries of each store call before `record` throws. Default as `LatchConfig.retry`. */
  retry?: RetryPolicy;
  /** Where warnings go. Default `console.warn`. */
  onWarning?: (warning: LatchWarning) => void;
}

/** An ingest worker's record path (see {@link createIngestRecorder}). */
export interface IngestRecorder {
  /**
   * Stores the observation (idempotent by eventId), rates it and stores the rated record, and
   * burns its credits: the facade's own record path, without a spool. Resolves with the
   * facade's `RecordResult` once all of it is committed; `unpriced` with reason `store_error`
   * means the observation is stored but rating hit a store error (redeliver it: the second
   * attempt finds the observation and rates it). Throws on a store error before the
   * observation is stored, and on input no attempt can store (see `permanent`).
   */
  record(observation: UsageObservation): Promise<RecordResult>;
  /**
   * Whether an error `record` threw will fail the same way on every redelivery (bad input, an
   * eventId stored with another payload, a corrupt stored record): such a message belongs in a
   * dead letter, not back in the log. A deployment fault (`schema_not_migrated`,
   * `schema_incompatible`) is not: it fails every message alike until someone migrates or
   * upgrades, so the message is redelivered, never dead-lettered.
   */
  permanent(error: unknown): boolean;
}

/**
 * The record path of an ingest worker (`@latch/nats`'s `runIngestWorker`, or your own consumer
 * of an {@link IngestLog}): the same code the facade's `record()` runs without an ingest log, so
 * a call stored through the log is stored, rated and burned exactly as an inline one.
 *
 * @example
 * const recorder = createIngestRecorder({ observations, rated, pricing });
 * const result = await recorder.record(parseObservation(JSON.parse(message)));
 * if (result.status !== "unpriced" || result.reason !== "store_error") ack(message);
 */
export function createIngestRecorder(config: IngestRecorderConfig): IngestRecorder {
  // The same checks as createLatch (stores, pricing, credits), naming the bad field.
  parseLatchConfig(config as LatchConfig);
  const retry = config.retry ?? {};
  const warn = config.onWarning ?? ((w: LatchWarning) => console.warn(`[latch] ${w.code}: ${w.message}`));
  // Nothing spools in a worker: a failed message stays in the log and is redelivered.
  const noSpool = () => Promise.reject(new Error("an ingest worker does not spool"));
  const burns = createCreditBurns({ credits: config.credits, retry, warn, spool: noSpool });
  const recorder = createRecorder({
    observations: config.observations,
    rated: config.rated,
    pricing: config.pricing,
    engine: config.engine ?? new DefaultRatingEngine(),
    clock: config.clock ?? (() => new Date()),
    retry,
    warn,
    counter: config.counter,
    burns,
    spool: noSpool,
    // A corrupt stored record fails every redelivery alike: thrown, so `permanent` dead-letters it.
    corruptIsFinal: true,
  });
  return {
    record: (observation) => recorder.record(observation, false),
    permanent: (error) => !mayPassLater(error) && !isDeploymentFault(error),
  };
}
