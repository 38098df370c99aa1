import { randomUUID } from "node:crypto";
import {
  DefaultRatingEngine,
  type MeterSet,
  type PriceSnapshot,
  type RatedUsageRecord,
  type UsageObservation,
} from "@latch/core";
import type { ModelMatch, RatingContext } from "@latch/core/adapter";

const engine = new DefaultRatingEngine();

/**
 * A fresh id for one test, e.g. `obs-3f9c1a2b7d`: lowercase letters, digits and `-` only
 * (valid in event ids, Redis keys and S3 keys, and ordered the same under any collation), so
 * suites never collide on a shared backend.
 */
export function uniqueId(label = "t"): string {
  return `${label}-${randomUUID().replaceAll("-", "").slice(0, 12)}`;
}

/**
 * A valid, realistic observation (an OpenAI chat call with cached input and reasoning) with
 * a fresh `eventId`; any top-level field can be overridden, and an override of `undefined`
 * removes an optional field. The result is a plain mutable object, not yet parsed.
 *
 * @example
 * const obs = makeObservation({ subject: { tenantId: "acme" }, meters: { input_tokens: 10 } });
 */
export function makeObservation(overrides: Partial<UsageObservation> = {}): UsageObservation {
  const observation: UsageObservation = {
    eventId: `${uniqueId("req")}:0:openai`,
    subject: { tenantId: "tenant-testkit", projectId: "project-1" },
    meters: { input_tokens: 1_200, cached_input_tokens: 300, output_tokens: 450, reasoning_tokens: 50 },
    model: { billableModel: "gpt-4o", vendor: "openai" },
    provider: { providerId: "openai" },
    source: { kind: "provider_reported" },
    outcome: { kind: "success" },
    timing: { startedAt: "2026-03-01T12:00:00Z", completedAt: "2026-03-01T12:00:01.250Z" },
    correlation: { requestId: "chatcmpl-testkit" },
    ...overrides,
  };
  // An override of `undefined` removes the field (e.g. `provider: undefined`).
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) delete (observation as Partial<UsageObservation>)[key as keyof UsageObservation];
  }
  return observation;
}

/**
 * A price snapshot for `billableModel` in `currency` that prices every built-in meter,
 * in effect from 2020: any observation from {@link makeObservation} can be rated against it.
 */
export function makeSnapshot(billableModel = "gpt-4o", currency = "USD"): PriceSnapshot {
  return {
    snapshotId: `testkit:${billableModel}:${currency}`,
    model: { billableModel },
    currency,
    effectiveFrom: "2020-01-01T00:00:00Z",
    prices: {
      input_tokens: { perMillion: "2.5" },
      cached_input_tokens: { perMillion: "1.25" },
      cache_write_tokens: { perMillion: "3.125" },
      cache_write_1h_tokens: { perMillion: "5" },
      output_tokens: { perMillion: "10" },
      reasoning_tokens: { as: "output_tokens" },
      audio_input_tokens: { perMillion: "40" },
      audio_output_tokens: { perMillion: "80" },
      image_count: { perUnit: "0.04" },
    },
  };
}

export interface MakeRatedRecordOptions {
  /** Overrides for {@link makeObservation} (a fresh eventId unless given). */
  observation?: Partial<UsageObservation>;
  /** Currency of the snapshot the record is rated against. Default `USD`. */
  currency?: string;
  /** When the rating happened. Default `2026-03-01T12:00:05Z`. */
  ratedAt?: string;
  /**
   * Rate against a snapshot of `modelMatch.matchedModel`, matched by `modelMatch.rule` (the
   * record then carries `modelMatch`). Default: the observation's own model, exactly.
   */
  modelMatch?: ModelMatch;
}

/**
 * A version-1 rated record, produced by the real `DefaultRatingEngine` from an observation
 * built by {@link makeObservation}, so totals and line items are realistic.
 *
 * @example
 * const v1 = makeRatedRecord({ observation: { subject: { tenantId: "acme" } }, currency: "EUR" });
 * const v2 = makeCorrection(v1, { input_tokens: 900, output_tokens: 450 });
 */
export function makeRatedRecord(options: MakeRatedRecordOptions = {}): RatedUsageRecord {
  const observation = makeObservation(options.observation);
  const match = options.modelMatch;
  const model = match?.matchedModel ?? observation.model.billableModel;
  const context: RatingContext = { ratedAt: options.ratedAt ?? "2026-03-01T12:00:05Z" };
  if (match !== undefined) context.modelMatch = match;
  return engine.rate(observation, makeSnapshot(model, options.currency ?? "USD"), context);
}

/**
 * The next version of `previous`: the same event with corrected meters, rated again in
 * `previous`'s currency (or `options.currency`, e.g. to check that stores refuse a correction
 * in another currency) and against the model it was matched to, superseding it (`version + 1`,
 * `supersedes = previous.ratedRecordId`).
 */
export function makeCorrection(
  previous: RatedUsageRecord,
  meters: MeterSet,
  options: { ratedAt?: string; currency?: string } = {},
): RatedUsageRecord {
  const observation: UsageObservation = {
    ...structuredClone(previous.observation),
    meters,
    source: { kind: "corrected", correctionOf: previous.eventId },
  };
  const version = previous.version + 1;
  const match = previous.modelMatch;
  const context: RatingContext = {
    ratedAt: options.ratedAt ?? "2026-03-02T08:00:00Z",
    version,
    supersedes: previous.ratedRecordId,
  };
  if (match !== undefined) context.modelMatch = match;
  const model = match?.matchedModel ?? observation.model.billableModel;
  return engine.rate(observation, makeSnapshot(model, options.currency ?? previous.currency), context);
}
