/**
 * A `quotaUnits` that needs the rated record (cost): `settle` of a call without one (`accepted`
 * by an ingest log, `spooled`, `unpriced`) leaves the hold open when it answers `undefined`, and
 * `reconcileQuota()` commits it from the record once stored — exactly the record's cost, once,
 * with no `quota_reconcile_skipped` warning. Units it cannot give are `invalid_input` naming
 * `LatchConfig.quotaUnits`, thrown by settle, reported and skipped by reconcile, and never
 * reach the quota store. On the embedded default (memory) stores.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createIngestRecorder, type ObservationStore } from "../../src/adapter.js";
import {
  createLatch,
  type IngestLog,
  InMemoryPricingSource,
  type LatchConfig,
  LatchDecimal,
  type LatchWarning,
  MemoryObservationStore,
  MemoryQuotaReservator,
  MemoryRatedRecordStore,
  type PriceSnapshotInput,
  parseObservation,
  type QuotaHold,
  type RatedUsageRecord,
  type UsageObservation,
} from "../../src/index.js";
import { observation, snapshot } from "../support.js";

/** 1 USD per million input tokens, 2 per million output tokens. */
const prices: PriceSnapshotInput = snapshot({
  prices: { input_tokens: { perMillion: "1" }, output_tokens: { perMillion: "2" } },
});

/** The documented cost-based quotaUnits: micro-dollars of the rated record, `undefined` without one. */
const micros = (record: RatedUsageRecord) =>
  new LatchDecimal(record.total).times(1_000_000).ceil().toNumber();
const costUnits: NonNullable<LatchConfig["quotaUnits"]> = (_o, r) =>
  r === undefined ? undefined : micros(r);

/** 1,000 input + 100 output tokens: 0.0012 USD, 1,200 micro-dollars (1,100 tokens). */
const call = (eventId = "req-1:0:openai") =>
  parseObservation(observation({ input_tokens: 1_000, output_tokens: 100 }, { eventId }));

/** A log in memory (as in ingest.test.ts): what was published, keyed by eventId. */
class MemoryLog implements IngestLog {
  readonly published = new Map<string, UsageObservation>();
  async publish(obs: UsageObservation) {
    const duplicate = this.published.has(obs.eventId);
    if (!duplicate) this.published.set(obs.eventId, obs);
    return { duplicate };
  }
}

/** A memory observation store whose appends fail with a connection error while `state.down`. */
function downWhile(store: MemoryObservationStore, state: { down: boolean }): ObservationStore {
  return new Proxy(store, {
    get(target, key) {
      const value = Reflect.get(target, key, target) as unknown;
      if (key === "append")
        return async (...args: unknown[]) => {
          if (state.down)
            throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });
          return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        };
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

function granted(hold: unknown): Extract<QuotaHold, { granted: true }> {
  const h = hold as QuotaHold;
  if (!h.granted) throw new Error(`expected a granted hold: ${h.message}`);
  return h;
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-quota-units-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function setup(overrides: Partial<LatchConfig> & { now?: { ms: number } } = {}) {
  const { now, ...config } = overrides;
  const quota = new MemoryQuotaReservator(now ? { clock: () => now.ms } : {});
  const observations = new MemoryObservationStore();
  const rated = new MemoryRatedRecordStore();
  const pricing = new InMemoryPricingSource([prices]);
  const warnings: LatchWarning[] = [];
  const commits: Array<[string, number]> = [];
  // The real memory store, with its commits listed (to show what reached it).
  const counted = new Proxy(quota, {
    get(target, key) {
      const value = Reflect.get(target, key, target) as unknown;
      if (key === "commit")
        return (holdId: string, actual: number) => {
          commits.push([holdId, actual]);
          return target.commit(holdId, actual);
        };
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const latch = createLatch({
    observations,
    rated,
    pricing,
    quota: counted,
    quotaUnits: costUnits,
    spoolDir: join(dir, "spool"),
    retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
    onWarning: (w) => warnings.push(w),
    ...config,
  });
  const skipped = () => warnings.filter((w) => w.code === "quota_reconcile_skipped");
  return { latch, quota, observations, rated, pricing, warnings, skipped, commits };
}

describe("quotaUnits that needs the rated record", () => {
  it("accepted (ingest log): settle leaves the hold open; reconcile commits the stored record's cost, once", async () => {
    const log = new MemoryLog();
    const { latch, quota, observations, rated, pricing, skipped, commits } = setup({ ingest: log });
    await quota.setLimit("acme", 1_000_000);
    const hold = granted(await latch.reserve({ account: "acme", amount: 5_000, holdId: "h1" }));
    const result = await latch.record(call(), { hold });
    expect(result.status).toBe("accepted");
    expect(await latch.settle(hold, result)).toEqual({ settled: true });
    // Settling again changes nothing either: still open, nothing sent to the store.
    expect(await latch.settle(hold, result)).toEqual({ settled: true });
    expect(commits).toEqual([]);
    expect(await quota.balance("acme")).toMatchObject({ spent: 0, held: 5_000 });
    // Before a worker stored it, reconcile has nothing to commit.
    expect(await latch.reconcileQuota()).toEqual({ versions: 0, holds: 0 });

    // The ingest worker stores and rates what the log holds.
    const worker = createIngestRecorder({ observations, rated, pricing, onWarning: () => {} });
    const stored = await worker.record(log.published.get("req-1:0:openai") as UsageObservation);
    if (stored.status !== "rated") throw new Error(`expected rated, got ${stored.status}`);
    expect(stored.record.total).toBe("0.0012");
    expect(await latch.reconcileQuota()).toEqual({ versions: 1, holds: 1 });
    expect(commits).toEqual([["h1", 1_200]]);
    expect(await quota.balance("acme")).toMatchObject({ spent: 1_200, held: 0 });
    expect(skipped()).toEqual([]);
    // Once: a second run charges nothing more.
    expect(await latch.reconcileQuota()).toEqual({ versions: 0, holds: 0 });
    expect((await quota.balance("acme")).spent).toBe(1_200);
    await latch.close();
  });

  it("spooled (store down): the hold stays open; once the spool replay stored it, reconcile commits its cost", async () => {
    const state = { down: true };
    const observations = new MemoryObservationStore();
    const { latch, quota, skipped } = setup({ observations: downWhile(observations, state) });
    await quota.setLimit("acme", 1_000_000);
    const hold = granted(await latch.reserve({ account: "acme", amount: 5_000, holdId: "h1" }));
    const result = await latch.record(call(), { hold });
    expect(result.status).toBe("spooled");
    expect(await latch.settle(hold, result)).toEqual({ settled: true });
    expect(await quota.balance("acme")).toMatchObject({ spent: 0, held: 5_000 });
    state.down = false;
    expect(await latch.flushSpool()).toMatchObject({ replayed: 1, remaining: 0 });
    expect(await latch.reconcileQuota()).toEqual({ versions: 1, holds: 1 });
    expect(await quota.balance("acme")).toMatchObject({ spent: 1_200, held: 0 });
    expect(await latch.reconcileQuota()).toEqual({ versions: 0, holds: 0 });
    expect((await quota.balance("acme")).spent).toBe(1_200);
    expect(skipped()).toEqual([]);
    await latch.close();
  });

  it("unpriced: the hold stays open; once rerateUnpriced() rated it, reconcile commits its cost", async () => {
    const pricing = new InMemoryPricingSource([]);
    const { latch, quota, skipped } = setup({ pricing });
    await quota.setLimit("acme", 1_000_000);
    const hold = granted(await latch.reserve({ account: "acme", amount: 5_000, holdId: "h1" }));
    const result = await latch.record(call(), { hold });
    expect(result).toMatchObject({ status: "unpriced", reason: "no_snapshot" });
    expect(await latch.settle(hold, result)).toEqual({ settled: true });
    expect(await latch.reconcileQuota()).toEqual({ versions: 0, holds: 0 });
    expect(await quota.balance("acme")).toMatchObject({ spent: 0, held: 5_000 });
    pricing.add(prices as Parameters<InMemoryPricingSource["add"]>[0]);
    expect(await latch.rerateUnpriced()).toEqual({ rated: 1, stillUnpriced: 0 });
    expect(await latch.reconcileQuota()).toEqual({ versions: 1, holds: 1 });
    expect(await quota.balance("acme")).toMatchObject({ spent: 1_200, held: 0 });
    expect(skipped()).toEqual([]);
    await latch.close();
  });

  it("a hold that expired before the record was stored is still charged the record's cost", async () => {
    const now = { ms: Date.parse("2026-03-01T12:00:00Z") };
    const log = new MemoryLog();
    const { latch, quota, observations, rated, pricing, skipped } = setup({ ingest: log, now });
    await quota.setLimit("acme", 1_000_000);
    const hold = granted(await latch.reserve({ account: "acme", amount: 5_000, holdId: "h1", ttlMs: 1_000 }));
    const result = await latch.record(call(), { hold });
    expect(await latch.settle(hold, result)).toEqual({ settled: true });
    now.ms += 60_000; // the worker was slow: the hold expired and freed its amount
    expect(await quota.balance("acme")).toMatchObject({ spent: 0, held: 0 });
    const worker = createIngestRecorder({ observations, rated, pricing, onWarning: () => {} });
    await worker.record(log.published.get("req-1:0:openai") as UsageObservation);
    expect(await latch.reconcileQuota()).toEqual({ versions: 1, holds: 1 });
    expect(await quota.balance("acme")).toMatchObject({ spent: 1_200, held: 0 });
    expect(skipped()).toEqual([]);
    await latch.close();
  });

  it("a rated call settles with the record's cost and reconcile commits the same: no warning", async () => {
    const { latch, quota, skipped } = setup();
    await quota.setLimit("acme", 1_000_000);
    const hold = granted(await latch.reserve({ account: "acme", amount: 5_000, holdId: "h1" }));
    const result = await latch.record(call(), { hold });
    expect(result.status).toBe("rated");
    expect(await latch.settle(hold, result)).toEqual({ settled: true });
    expect(await quota.balance("acme")).toMatchObject({ spent: 1_200, held: 0 });
    expect(await latch.reconcileQuota()).toEqual({ versions: 1, holds: 1 });
    expect((await quota.balance("acme")).spent).toBe(1_200);
    expect(skipped()).toEqual([]);
    await latch.close();
  });
});

describe("units quotaUnits cannot give are invalid_input naming LatchConfig.quotaUnits", () => {
  const bad: Array<[string, NonNullable<LatchConfig["quotaUnits"]>, RegExp]> = [
    [
      "undefined for a rated record",
      () => undefined,
      /returned undefined for the rated record of event req-1/,
    ],
    ["NaN", () => Number.NaN, /returned NaN for event req-1:0:openai: expected a safe integer ≥ 0/],
    ["Infinity", () => Number.POSITIVE_INFINITY, /returned Infinity for/],
    ["-1", () => -1, /returned a negative number for/],
    ["1.5", () => 1.5, /returned a fraction for/],
    ["2^53", () => 2 ** 53, /returned a number above 2\^53 - 1 for/],
    ["a string", () => "12" as unknown as number, /returned a value of type string for/],
    [
      "a Promise",
      (async () => 12) as unknown as NonNullable<LatchConfig["quotaUnits"]>,
      /returned a Promise \(quotaUnits must answer synchronously\)/,
    ],
    [
      "a throw",
      () => {
        throw new TypeError("Cannot read properties of undefined (reading 'total')");
      },
      /^threw a TypeError for event req-1:0:openai \(the error is the cause\)$/,
    ],
  ];

  it.each(
    bad,
  )("%s: settle of a rated call throws, nothing reaches the store; reconcile reports it and goes on", async (_name, quotaUnits, message) => {
    const { latch, quota, commits, skipped } = setup({ quotaUnits });
    await quota.setLimit("acme", 1_000_000);
    const hold = granted(await latch.reserve({ account: "acme", amount: 5_000, holdId: "h1" }));
    const result = await latch.record(call(), { hold });
    expect(result.status).toBe("rated");
    const error = await latch.settle(hold, result).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({
      code: "invalid_input",
      subject: "LatchConfig",
      issues: [{ path: "quotaUnits", message: expect.stringMatching(message) }],
    });
    expect((error as Error).message).toMatch(/^Invalid LatchConfig: quotaUnits: /);
    expect(commits).toEqual([]);
    expect(await quota.balance("acme")).toMatchObject({ spent: 0, held: 5_000 });
    // Reconcile: reported and skipped (the cursor moves on, the next run does not stop there).
    expect(await latch.reconcileQuota()).toEqual({ versions: 1, holds: 0 });
    expect(skipped()).toHaveLength(1);
    expect(skipped()[0]?.message).toMatch(/cannot be committed: Invalid LatchConfig: quotaUnits: /);
    expect(skipped()[0]?.cause).toMatchObject({ code: "invalid_input", issues: [{ path: "quotaUnits" }] });
    expect(await latch.reconcileQuota()).toEqual({ versions: 0, holds: 0 });
    expect(commits).toEqual([]);
    await latch.close();
  });

  it("a bad number for a call without a record is refused as well (undefined is the one way to wait)", async () => {
    const log = new MemoryLog();
    const { latch, quota, commits } = setup({ ingest: log, quotaUnits: () => Number.NaN });
    await quota.setLimit("acme", 1_000_000);
    const hold = granted(await latch.reserve({ account: "acme", amount: 5_000, holdId: "h1" }));
    const result = await latch.record(call(), { hold });
    expect(result.status).toBe("accepted");
    await expect(latch.settle(hold, result)).rejects.toMatchObject({
      code: "invalid_input",
      issues: [
        {
          path: "quotaUnits",
          message: expect.stringContaining("or undefined when the units need the rated record"),
        },
      ],
    });
    expect(commits).toEqual([]);
    await latch.close();
  });

  it("a thrown error is the cause, and no amount is in the message", async () => {
    const boom = new TypeError("Cannot read properties of undefined (reading 'total')");
    const { latch, quota } = setup({
      quotaUnits: () => {
        throw boom;
      },
    });
    await quota.setLimit("acme", 1_000_000);
    const hold = granted(await latch.reserve({ account: "acme", amount: 5_000 }));
    const error = await latch.settle(hold, await latch.record(call(), { hold })).catch((e: unknown) => e);
    expect((error as Error).cause).toBe(boom);
    expect((error as Error).message).not.toContain("total");
    await latch.close();
  });

  it("undefined for a call whose observation does not name the hold: settle throws (reconcile could never find it)", async () => {
    const log = new MemoryLog();
    const { latch, quota, commits } = setup({ ingest: log });
    await quota.setLimit("acme", 1_000_000);
    const hold = granted(await latch.reserve({ account: "acme", amount: 5_000, holdId: "h1" }));
    const result = await latch.record(call()); // the hold not passed to record()
    expect(result.status).toBe("accepted");
    await expect(latch.settle(hold, result)).rejects.toMatchObject({
      code: "invalid_input",
      issues: [
        {
          path: "result.observation.correlation.holdId",
          message: expect.stringContaining("pass the hold to record(input, { hold })"),
        },
      ],
    });
    expect(commits).toEqual([]);
    await latch.close();
  });

  it("a failed call's hold is voided without asking quotaUnits", async () => {
    const { latch, quota } = setup({
      quotaUnits: () => {
        throw new Error("never called");
      },
    });
    await quota.setLimit("acme", 1_000_000);
    const hold = granted(await latch.reserve({ account: "acme", amount: 5_000 }));
    expect(await latch.settle(hold, { status: "failed" })).toEqual({ settled: true });
    expect(await quota.balance("acme")).toMatchObject({ spent: 0, held: 0 });
    await latch.close();
  });
});
