/**
 * The record path on its own (`createRecorder`): store raw, price, rate, store the rated record,
 * and what a failure does — a failure a retry could fix spools, one it cannot fix is thrown.
 */
import { describe, expect, it } from "vitest";
import type { ObservationStore, RatedRecordStore } from "../../src/adapter.js";
import { CorruptRecordError, QuotaUnavailableError } from "../../src/errors/index.js";
import { createCreditBurns } from "../../src/facade/credit-burns.js";
import { createRecorder, type RecorderDeps } from "../../src/facade/record.js";
import type { LatchWarning } from "../../src/facade/types.js";
import {
  DefaultRatingEngine,
  InMemoryPricingSource,
  LatchError,
  type PriceSnapshot,
  parseObservation,
  type UsageObservation,
} from "../../src/index.js";
import { MemoryObservationStore, MemoryRatedRecordStore } from "../../src/memory/index.js";
import { observation } from "../support.js";

/** $2 per million input tokens, $8 per million output tokens. */
const priced: PriceSnapshot = {
  snapshotId: "test-model:2026",
  model: { billableModel: "test-model" },
  currency: "USD",
  effectiveFrom: "2026-01-01T00:00:00Z",
  prices: { input_tokens: { perMillion: "2" }, output_tokens: { perMillion: "8" } },
};

const call = (eventId = "req-1:0:openai"): UsageObservation =>
  parseObservation(observation({ input_tokens: 1_000, output_tokens: 500 }, { eventId }));

const connectionRefused = () =>
  Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });

/** `store` with `method` replaced by one that always throws `error()`. */
function failing<T extends object>(store: T, method: keyof T, error: () => unknown): T {
  return new Proxy(store, {
    get(target, key) {
      if (key === method) return async () => Promise.reject(error());
      const value = Reflect.get(target, key, target) as unknown;
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

function setup(overrides: Partial<RecorderDeps> = {}) {
  const warnings: LatchWarning[] = [];
  const spooled: UsageObservation[] = [];
  const warn = (w: LatchWarning) => warnings.push(w);
  const spool = async (obs: UsageObservation) => {
    spooled.push(obs);
  };
  const observations = new MemoryObservationStore();
  const rated = new MemoryRatedRecordStore();
  const retry = { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 };
  const recorder = createRecorder({
    observations,
    rated,
    pricing: new InMemoryPricingSource([priced]),
    engine: new DefaultRatingEngine(),
    clock: () => new Date("2026-03-01T12:00:05Z"),
    retry,
    warn,
    counter: undefined,
    burns: createCreditBurns({ credits: undefined, retry, warn, spool }),
    spool,
    ...overrides,
  });
  return { recorder, observations, rated, warnings, spooled };
}

describe("record path", () => {
  it("stores the observation, rates it and stores the rated record; recording it again returns the same record", async () => {
    const { recorder, observations, rated } = setup();
    const first = await recorder.record(call(), true);
    expect(first.status).toBe("rated");
    if (first.status !== "rated") return;
    // 1,000 × $2/M + 500 × $8/M = $0.002 + $0.004
    expect(first.record.total).toBe("0.006");
    expect(await observations.get("req-1:0:openai")).toBeDefined();
    expect((await rated.current("req-1:0:openai"))?.ratedRecordId).toBe(first.record.ratedRecordId);
    const again = await recorder.record(call(), true);
    expect(again).toEqual(first);
  });

  it("a call without a price is stored and reported unpriced, never rated at 0", async () => {
    const { recorder, observations, rated } = setup({ pricing: new InMemoryPricingSource([]) });
    const result = await recorder.record(call(), true);
    expect(result).toMatchObject({ status: "unpriced", reason: "no_snapshot" });
    expect(await observations.get("req-1:0:openai")).toBeDefined();
    expect(await rated.current("req-1:0:openai")).toBeUndefined();
  });

  it("an observation store that cannot be reached spools the call and says so", async () => {
    const { recorder, warnings, spooled } = setup({
      observations: failing(new MemoryObservationStore() as ObservationStore, "append", connectionRefused),
    });
    const result = await recorder.record(call(), true);
    expect(result).toMatchObject({ status: "spooled", eventId: "req-1:0:openai" });
    expect(spooled.map((o) => o.eventId)).toEqual(["req-1:0:openai"]);
    expect(warnings.map((w) => w.code)).toEqual(["store_retry_exhausted"]);
  });

  it("a Latch error that says a retry helps (quota_unavailable) spools like a connection error", async () => {
    const { recorder, spooled } = setup({
      observations: failing(
        new MemoryObservationStore() as ObservationStore,
        "append",
        () => new QuotaUnavailableError({ reason: "timeout" }),
      ),
    });
    expect(await recorder.record(call(), true)).toMatchObject({ status: "spooled" });
    expect(spooled).toHaveLength(1);
  });

  it("a corrupt stored record is thrown, not spooled: replaying it would fail the same way", async () => {
    const corrupt = () => new CorruptRecordError({ id: "req-1:0:openai", reason: "hash mismatch" });
    const { recorder, spooled } = setup({
      observations: failing(new MemoryObservationStore() as ObservationStore, "append", corrupt),
    });
    await expect(recorder.record(call(), true)).rejects.toMatchObject({ code: "corrupt_record" });
    expect(spooled).toEqual([]);
  });

  it("once the observation is stored, a corrupt rated record or a rated store that is down leaves the call unpriced (it can still be settled)", async () => {
    const corrupt = setup({
      rated: failing(
        new MemoryRatedRecordStore() as RatedRecordStore,
        "current",
        () => new CorruptRecordError({ id: "req-1:0:openai", reason: "hash mismatch" }),
      ),
    });
    expect(await corrupt.recorder.record(call(), true)).toMatchObject({
      status: "unpriced",
      reason: "store_error",
    });
    expect(corrupt.spooled).toEqual([]);
    expect(await corrupt.observations.get("req-1:0:openai")).toBeDefined();

    const down = setup({
      rated: failing(new MemoryRatedRecordStore() as RatedRecordStore, "current", connectionRefused),
    });
    expect(await down.recorder.record(call(), true)).toMatchObject({
      status: "unpriced",
      reason: "store_error",
    });
    expect(down.warnings.map((w) => w.code)).toEqual(["store_retry_exhausted"]);
    expect(await down.observations.get("req-1:0:openai")).toBeDefined();
  });

  it("an unmigrated schema is thrown at the first call, never spooled: a deployment fault, not an outage", async () => {
    const unmigrated = () =>
      new LatchError({
        code: "schema_not_migrated",
        message: 'Schema "latch" is at migration 10; run migrate()',
      });
    const { recorder, spooled, warnings } = setup({
      observations: failing(new MemoryObservationStore() as ObservationStore, "append", unmigrated),
    });
    await expect(recorder.record(call(), true)).rejects.toMatchObject({ code: "schema_not_migrated" });
    expect(spooled).toEqual([]);
    expect(warnings).toEqual([]);
  });

  it("a replay (mayspool false) throws a store error instead of spooling again", async () => {
    const { recorder, spooled } = setup({
      observations: failing(new MemoryObservationStore() as ObservationStore, "append", connectionRefused),
    });
    await expect(recorder.record(call(), false)).rejects.toThrow("ECONNREFUSED");
    expect(spooled).toEqual([]);
  });

  it("rerateUnpriced rates what was stored before its price existed", async () => {
    const snapshots: PriceSnapshot[] = [];
    const pricing = { resolve: async () => snapshots[0] };
    const { recorder } = setup({ pricing });
    await recorder.record(call("e1"), true);
    await recorder.record(call("e2"), true);
    expect(await recorder.rerateUnpriced()).toEqual({ rated: 0, stillUnpriced: 2 });
    snapshots.push(priced);
    expect(await recorder.rerateUnpriced()).toEqual({ rated: 2, stillUnpriced: 0 });
    expect(await recorder.rerateUnpriced()).toEqual({ rated: 0, stillUnpriced: 0 });
  });
});
