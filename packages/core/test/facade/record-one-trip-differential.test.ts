/**
 * The one-trip record path rates with `rateResolvedNow` since 87cf995 (it awaited
 * `rateResolved`). Differential against that path as it was (copied here): same answer, same
 * warnings, same record handed to the writer, same fallbacks to the step-by-step path, for
 * every rating outcome and every way pricing or rating can fail.
 */
import { describe, expect, it } from "vitest";
import type { RecordWriter } from "../../src/contracts/record-writer.js";
import { IdempotencyConflictError, NoPriceForMeterError } from "../../src/errors/index.js";
import type { CreditBurns } from "../../src/facade/credit-burns.js";
import { isCode } from "../../src/facade/error-code.js";
import {
  type RatingOutcome,
  type RatingStepDeps,
  rateResolved,
  rateResolvedNow,
  resolvePrice,
} from "../../src/facade/rating-step.js";
import { createOneTripRecord } from "../../src/facade/record-one-trip.js";
import { mayPassLater, withRetry } from "../../src/facade/retry.js";
import type { LatchWarning, RecordResult } from "../../src/facade/types.js";
import {
  DefaultRatingEngine,
  InMemoryPricingSource,
  type PriceSnapshot,
  parseObservation,
  type UsageObservation,
} from "../../src/index.js";
import { compileSnapshot } from "../../src/pricing/compiled-snapshot.js";
import type { PricingSource } from "../../src/pricing/pricing-source.js";
import type { PriceResolution } from "../../src/pricing/resolution.js";
import type { RatingEngine } from "../../src/rating/engine.js";
import { observation } from "../support.js";

/** `createOneTripRecord` before 87cf995. */
function oldOneTrip(
  deps: RatingStepDeps & {
    writer: RecordWriter;
    burns: CreditBurns;
    spool: (o: UsageObservation) => Promise<void>;
  },
) {
  const { writer, retry, burns } = deps;
  const STEP_BY_STEP = ["idempotency_conflict", "corrupt_record", "invalid_input"] as const;
  return async (obs: UsageObservation, mayspool: boolean): Promise<RecordResult | undefined> => {
    let rating: RatingOutcome;
    try {
      const resolution = await resolvePrice(obs, deps);
      if (
        resolution.status === "priced" &&
        compileSnapshot(resolution.snapshot).tiers.some((t) => t.scope === "period")
      ) {
        return undefined;
      }
      rating = await rateResolved(obs, resolution, deps);
    } catch {
      return undefined;
    }
    const record = rating.status === "rated" ? rating.record : undefined;
    let current: RecordResult | undefined;
    try {
      const written = await withRetry(() => writer.write(obs, record), retry);
      current = written.current === undefined ? undefined : { status: "rated", record: written.current };
    } catch (error) {
      if (STEP_BY_STEP.some((code) => isCode(error, code))) return undefined;
      if (!mayPassLater(error) || !mayspool) throw error;
      deps.warn({
        code: "store_retry_exhausted",
        message: `recording ${obs.eventId} failed; spooling`,
        eventId: obs.eventId,
        cause: error,
      });
      await deps.spool(obs);
      return { status: "spooled", eventId: obs.eventId, observation: obs };
    }
    const result: RecordResult = current ?? rating;
    await burns.burnRecorded(obs, result, mayspool);
    return result;
  };
}

const flat: PriceSnapshot = {
  snapshotId: "test-model:2026",
  model: { billableModel: "test-model" },
  aliases: ["house-model"],
  currency: "USD",
  effectiveFrom: "2026-01-01T00:00:00Z",
  prices: { input_tokens: { perMillion: "2" }, output_tokens: { perMillion: "8" } },
};
const inputOnly: PriceSnapshot = {
  ...flat,
  snapshotId: "input-only",
  model: { billableModel: "input-only" },
  aliases: undefined,
  prices: { input_tokens: { perMillion: "3" } },
};
const monthly: PriceSnapshot = {
  ...flat,
  snapshotId: "tiered:2026",
  model: { billableModel: "tiered" },
  aliases: undefined,
  tiers: [
    {
      scope: "period",
      mode: "graduated",
      baseline: "total_tokens",
      boundaries: [
        { upTo: 2_000, prices: { input_tokens: { perMillion: "2" }, output_tokens: { perMillion: "8" } } },
        { upTo: null, prices: { input_tokens: { perMillion: "1" }, output_tokens: { perMillion: "4" } } },
      ],
    },
  ],
};
const memory = new InMemoryPricingSource([flat, inputOnly, monthly]);

const answering = (resolution: PriceResolution): PricingSource => ({
  resolve: async () => undefined,
  resolvePrice: async () => resolution,
});

class Boom extends Error {}

interface Scenario {
  name: string;
  model?: string;
  pricing?: PricingSource;
  engine?: () => RatingEngine;
  clock?: () => Date;
  current?: boolean;
  writerError?: unknown;
}

const match = { rule: "exact" as const, matchedModel: "test-model" };
const SCENARIOS: Scenario[] = [
  { name: "rated, exact model" },
  { name: "rated, alias", model: "house-model" },
  { name: "a meter without a price", model: "input-only" },
  { name: "no snapshot", model: "nobody" },
  { name: "period tiers: step by step", model: "tiered" },
  {
    name: "no_snapshot_for_tier",
    pricing: answering({
      status: "unpriced",
      reason: "no_snapshot_for_tier",
      match,
      tier: "flex",
      pricedTiers: ["standard"],
    }),
  },
  {
    name: "ambiguous_model",
    pricing: answering({
      status: "unpriced",
      reason: "ambiguous_model",
      rule: "alias",
      candidates: ["a", "b"],
    }),
  },
  {
    name: "pricing source throws at once",
    pricing: {
      resolve: () => {
        throw new Boom("sync");
      },
    } as unknown as PricingSource,
  },
  {
    name: "pricing source rejects",
    pricing: {
      resolve: async () => {
        throw new Boom("async");
      },
    },
  },
  {
    name: "pricing source resolves later",
    pricing: { resolve: () => new Promise((r) => setTimeout(() => r(flat), 5)) },
  },
  {
    name: "engine throws",
    engine: () => ({
      rate: () => {
        throw new Boom("engine");
      },
    }),
  },
  {
    name: "engine throws a string",
    engine: () => ({
      rate: () => {
        throw "no";
      },
    }),
  },
  {
    name: "engine: no price for a meter",
    engine: () => ({
      rate: () => {
        throw new NoPriceForMeterError({ meter: "output_tokens", snapshotId: "x" });
      },
    }),
  },
  {
    name: "engine: no snapshot for tier (coded)",
    engine: () => ({
      rate: () => {
        throw Object.assign(new Error("t"), { code: "no_snapshot_for_tier" });
      },
    }),
  },
  {
    name: "custom engine record",
    engine: () => ({ rate: (o, s, c) => ({ ...new DefaultRatingEngine().rate(o, s, c) }) }),
  },
  { name: "invalid clock", clock: () => new Date(Number.NaN) },
  {
    name: "throwing clock",
    clock: () => {
      throw new Boom("clock");
    },
  },
  { name: "stored record wins", current: true },
  {
    name: "writer conflict: step by step",
    writerError: new IdempotencyConflictError({
      id: "req-1:0:openai",
      existingHash: "sha256:a",
      incomingHash: "sha256:b",
    }),
  },
  { name: "writer fault thrown", writerError: new TypeError("bad") },
];

const EXPECTED: Record<string, string> = {
  "rated, exact model": "rated",
  "rated, alias": "rated",
  "a meter without a price": "unpriced no_price output_tokens",
  "no snapshot": "unpriced no_snapshot",
  "period tiers: step by step": "step by step",
  no_snapshot_for_tier: "unpriced no_snapshot_for_tier",
  ambiguous_model: "unpriced ambiguous_model",
  "pricing source throws at once": "step by step",
  "pricing source rejects": "step by step",
  "pricing source resolves later": "rated",
  "engine throws": "unpriced no_price rating_failed",
  "engine throws a string": "unpriced no_price rating_failed",
  "engine: no price for a meter": "unpriced no_price output_tokens",
  "engine: no snapshot for tier (coded)": "unpriced no_price rating_failed",
  "custom engine record": "rated",
  "invalid clock": "unpriced no_price rating_failed",
  "throwing clock": "unpriced no_price rating_failed",
  "stored record wins": "rated",
  "writer conflict: step by step": "step by step",
  "writer fault thrown": "thrown",
};

async function run(s: Scenario, which: "old" | "new") {
  const warnings: LatchWarning[] = [];
  const written: unknown[] = [];
  const burned: unknown[] = [];
  const obs = parseObservation(
    observation(
      { input_tokens: 1_000, output_tokens: 500 },
      { model: { billableModel: s.model ?? "test-model" } },
    ),
  );
  const writer: RecordWriter = {
    write: async (o, record) => {
      written.push(record);
      if (s.writerError !== undefined) throw s.writerError;
      return {
        observation: { status: "appended" } as never,
        current: s.current
          ? new DefaultRatingEngine().rate(o, flat, { ratedAt: "2026-03-01T00:00:00Z" })
          : undefined,
      };
    },
  };
  const deps = {
    pricing: s.pricing ?? memory,
    engine: s.engine?.() ?? new DefaultRatingEngine(),
    clock: s.clock ?? (() => new Date("2026-03-01T12:00:05Z")),
    retry: { attempts: 2, baseDelayMs: 0, maxDelayMs: 0 },
    warn: (w: LatchWarning) => warnings.push(w),
    counter: undefined,
    writer,
    burns: { burnRecorded: async (_o: unknown, r: unknown) => void burned.push(r) } as unknown as CreditBurns,
    spool: async () => {},
  };
  const f = which === "old" ? oldOneTrip(deps) : createOneTripRecord(deps);
  let answer: unknown;
  let error: unknown;
  try {
    answer = await f(obs, false);
  } catch (e) {
    error = e;
  }
  const shape = (w: LatchWarning) => ({ ...w, cause: String((w as { cause?: unknown }).cause) });
  return { answer, error, warnings: warnings.map(shape), written, burned };
}

describe("one-trip record path: rateResolvedNow answers as the awaited rateResolved did", () => {
  for (const s of SCENARIOS) {
    it(s.name, async () => {
      const [before, now] = [await run(s, "old"), await run(s, "new")];
      expect(now).toEqual(before);
      const a = now.answer as { status: string; reason?: string; meter?: string } | undefined;
      const status =
        now.error !== undefined
          ? "thrown"
          : a === undefined
            ? "step by step"
            : [a.status, a.reason, a.meter, ...now.warnings.map((w) => w.code)].filter(Boolean).join(" ");
      expect(status).toBe(EXPECTED[s.name]);
    });
  }

  it("rateResolvedNow equals rateResolved for every resolution and failure without period tiers", async () => {
    for (const s of SCENARIOS) {
      if (s.model === "tiered") continue;
      const obs = parseObservation(
        observation(
          { input_tokens: 1_000, output_tokens: 500 },
          { model: { billableModel: s.model ?? "test-model" } },
        ),
      );
      let resolution: PriceResolution;
      try {
        resolution = await (s.pricing?.resolvePrice ?? ((r) => memory.resolvePrice(r)))({
          model: obs.model,
          at: obs.timing.completedAt,
          providerId: obs.provider?.providerId,
        });
      } catch {
        continue;
      }
      const outcome = async (now: boolean) => {
        const warnings: unknown[] = [];
        const deps: RatingStepDeps = {
          pricing: memory,
          engine: s.engine?.() ?? new DefaultRatingEngine(),
          clock: s.clock ?? (() => new Date("2026-03-01T12:00:05Z")),
          retry: { attempts: 1 },
          warn: (w) => warnings.push({ ...w, cause: String(w.cause) }),
          counter: undefined,
        };
        const answer = now
          ? rateResolvedNow(obs, resolution, deps)
          : await rateResolved(obs, resolution, deps);
        return { answer, warnings };
      };
      expect(await outcome(true)).toEqual(await outcome(false));
    }
  });
});
