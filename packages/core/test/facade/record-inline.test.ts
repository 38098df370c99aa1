/**
 * The embedded default's inline record path (`facade/record-inline.ts`): taken only for the
 * memory stores and `InMemoryPricingSource` themselves (not a Proxy, a subclass override or a
 * replaced method), and answering exactly what the step-by-step path answers — the same
 * results, the same errors, the same stored state — for the same calls.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import type { RatedRecordStore } from "../../src/contracts/rated-record-store.js";
import type { RecordWriter } from "../../src/contracts/record-writer.js";
import { createLatch } from "../../src/facade/create-latch.js";
import type { LatchWarning } from "../../src/facade/types.js";
import {
  InMemoryPricingSource,
  type PriceSnapshot,
  type RatedUsageRecord,
  type UsageObservation,
} from "../../src/index.js";
import {
  MemoryObservationStore,
  MemoryRatedRecordStore,
  MemoryUsageCounter,
} from "../../src/memory/index.js";
import { inlineObservationStore } from "../../src/memory/observation-store.js";
import { inlineRatedStore } from "../../src/memory/rated-record-store.js";
import { inlinePricingSource } from "../../src/pricing/pricing-source.js";
import { isoTimestampMs } from "../../src/schemas/time.js";
import { observation } from "../support.js";

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

const priced: PriceSnapshot = {
  snapshotId: "test-model:2026",
  model: { billableModel: "test-model" },
  currency: "USD",
  effectiveFrom: "2026-01-01T00:00:00Z",
  prices: { input_tokens: { perMillion: "2" }, output_tokens: { perMillion: "8" } },
};

/** Passes every call through: the facade cannot tell what is behind it, so it goes step by step. */
const wrapped = <T extends object>(target: T): T =>
  new Proxy(target, {
    get(obj, key) {
      const value = Reflect.get(obj, key, obj) as unknown;
      return typeof value === "function" ? value.bind(obj) : value;
    },
  });

async function setup(inline: boolean) {
  const dir = await mkdtemp(join(tmpdir(), "latch-inline-"));
  dirs.push(dir);
  const observations = new MemoryObservationStore();
  const rated = new MemoryRatedRecordStore();
  const pricing = new InMemoryPricingSource([priced]);
  const warnings: LatchWarning[] = [];
  const latch = createLatch({
    observations: inline ? observations : wrapped(observations),
    rated: inline ? rated : wrapped(rated),
    pricing: inline ? pricing : wrapped(pricing),
    clock: () => new Date("2026-03-01T12:00:05Z"),
    spoolDir: dir,
    onWarning: (w) => warnings.push(w),
  });
  await latch.ready();
  return { latch, observations, rated, warnings };
}

/** Every call's answer, or the code it was refused with, and what the stores hold after. */
async function script(inline: boolean) {
  const { latch, observations, rated, warnings } = await setup(inline);
  const answers: unknown[] = [];
  const run = async (input: unknown) => {
    try {
      answers.push(await latch.record(input as never));
    } catch (error) {
      answers.push({ refused: (error as { code?: string }).code, message: (error as Error).message });
    }
  };
  const a = observation({ input_tokens: 1_000, output_tokens: 500 }, { eventId: "a:0:openai" });
  await run(a);
  await run({ ...a }); // a replay: the stored record
  await run({ ...a, meters: { input_tokens: 1_001, output_tokens: 500 } }); // a conflict
  await run(observation({ input_tokens: 5 }, { eventId: "b:0:openai", model: { billableModel: "other" } }));
  await run(observation({ reasoning_tokens: 5 }, { eventId: "c:0:openai" })); // a meter without a price
  await run({ ...a, eventId: "d:0:openai", subject: { tenantId: "x\u0000" } }); // invalid, names the field
  await run({ ...a, eventId: "e:0:openai", correlation: { holdId: "h1" } }); // a hold not passed as one
  // Concurrent calls of one eventId: the first is stored, the other replays or conflicts.
  const f = observation({ input_tokens: 7 }, { eventId: "f:0:openai" });
  const both = await Promise.allSettled([
    latch.record(f),
    latch.record({ ...f }),
    latch.record({ ...f, meters: { input_tokens: 8 } }),
  ]);
  answers.push(both.map((r) => (r.status === "fulfilled" ? r.value : (r.reason as { code?: string }).code)));
  const unpriced = await observations.listUnpriced({ limit: 100 });
  const log = await rated.listSince(undefined, 100);
  await latch.close();
  return { answers, unpriced: unpriced.items.map((o: UsageObservation) => o.eventId), log, warnings };
}

describe("record() inline on the embedded default", () => {
  it("recognises only the memory stores and pricing source themselves", () => {
    const observations = new MemoryObservationStore();
    const rated = new MemoryRatedRecordStore();
    const pricing = new InMemoryPricingSource([priced]);
    expect(inlineObservationStore(observations)).toBe(observations);
    expect(inlineRatedStore(rated)).toBe(rated);
    expect(inlinePricingSource(pricing)).toBe(pricing);

    expect(inlineObservationStore(wrapped(observations))).toBeUndefined();
    expect(inlineRatedStore(wrapped(rated))).toBeUndefined();
    expect(inlinePricingSource(wrapped(pricing))).toBeUndefined();

    class Counting extends MemoryObservationStore {
      override append(obs: UsageObservation) {
        return super.append(obs);
      }
    }
    expect(inlineObservationStore(new Counting())).toBeUndefined();
    const patched = new MemoryRatedRecordStore();
    patched.put = async () => "stored";
    expect(inlineRatedStore(patched)).toBeUndefined();
    const patchedPricing = new InMemoryPricingSource([priced]);
    patchedPricing.resolvePrice = async () => ({ status: "unpriced", reason: "no_snapshot" });
    expect(inlinePricingSource(patchedPricing)).toBeUndefined();
    class Repricing extends InMemoryPricingSource {
      override resolvePriceSync(request: Parameters<InMemoryPricingSource["resolvePriceSync"]>[0]) {
        return super.resolvePriceSync(request);
      }
    }
    expect(inlinePricingSource(new Repricing([priced]))).toBeUndefined();
    for (const other of [undefined, null, {}, { append: MemoryObservationStore.prototype.append }])
      expect(inlineObservationStore(other)).toBeUndefined();
  });

  it("is taken by createLatch: the call is stored before record() returns (step by step: only later)", async () => {
    for (const inline of [true, false]) {
      const { latch, rated } = await setup(inline);
      await latch.record(observation({ input_tokens: 1 }, { eventId: "warm:0:openai" })); // start-up done
      const pending = latch.record(observation({ input_tokens: 1 }, { eventId: "now:0:openai" }));
      // listSince reads the store before its first await: what is stored at this very point.
      const seen = rated.listSince(undefined, 10);
      expect((await seen).items.length, `inline ${inline}`).toBe(inline ? 2 : 1);
      expect(await pending).toMatchObject({ status: "rated" });
      await latch.close();
    }
  });

  it("answers every call as the step-by-step path does, and leaves the same stored state", async () => {
    const inline = await script(true);
    const stepwise = await script(false);
    expect(inline).toEqual(stepwise);
    // What the script covers, so that equality means something.
    const [first, replay, conflict, unknown, noPrice, invalid, hold] = inline.answers as Array<
      Record<string, unknown>
    >;
    expect(first).toMatchObject({ status: "rated", record: { total: "0.006", eventId: "a:0:openai" } });
    expect(replay).toEqual(first);
    expect(conflict).toMatchObject({ refused: "idempotency_conflict" });
    expect(unknown).toMatchObject({ status: "unpriced", reason: "no_snapshot" });
    expect(noPrice).toMatchObject({ status: "unpriced", reason: "no_price", meter: "reasoning_tokens" });
    expect(invalid).toMatchObject({ refused: "invalid_input" });
    expect(invalid?.message).toContain("subject.tenantId");
    expect(hold).toMatchObject({ refused: "invalid_input" });
    expect(inline.answers[7]).toEqual([
      expect.objectContaining({ status: "rated" }),
      expect.objectContaining({ status: "rated" }),
      "idempotency_conflict",
    ]);
    expect(inline.unpriced).toEqual(["b:0:openai", "c:0:openai"]);
    expect(inline.log.items.map((e) => e.record.ratedRecordId)).toEqual(["a:0:openai:v1", "f:0:openai:v1"]);
  });
});

/** Period tiers: a call priced by it goes step by step (its usage counter is async). */
const tiered: PriceSnapshot = {
  ...priced,
  snapshotId: "tiered:2026",
  model: { billableModel: "tiered" },
  tiers: [
    {
      scope: "period",
      mode: "graduated",
      baseline: "total_tokens",
      boundaries: [
        { upTo: 1_000, prices: { input_tokens: { perMillion: "2" } } },
        { upTo: null, prices: { input_tokens: { perMillion: "1" } } },
      ],
    },
  ],
};

describe("record() inline beside the step-by-step path", () => {
  it("does not overtake a call of the same eventId already on its way step by step: the first call's payload is stored", async () => {
    for (const inline of [true, false]) {
      const dir = await mkdtemp(join(tmpdir(), "latch-inline-"));
      dirs.push(dir);
      const observations = new MemoryObservationStore();
      const rated = new MemoryRatedRecordStore();
      const pricing = new InMemoryPricingSource([priced, tiered]);
      const latch = createLatch({
        observations: inline ? observations : wrapped(observations),
        rated: inline ? rated : wrapped(rated),
        pricing: inline ? pricing : wrapped(pricing),
        counter: new MemoryUsageCounter(),
        spoolDir: dir,
        onWarning: () => {},
      });
      await latch.ready();
      // The first names a model with period tiers (step by step), the second one priced flat (inline).
      const first = observation(
        { input_tokens: 10 },
        { eventId: "x:0:openai", model: { billableModel: "tiered" } },
      );
      const second = { ...first, model: { billableModel: "test-model" } };
      const [a, b] = await Promise.allSettled([latch.record(first), latch.record(second)]);
      expect(a, `inline ${inline}`).toMatchObject({
        status: "fulfilled",
        value: { status: "rated", record: { snapshotId: "tiered:2026" } },
      });
      expect(b, `inline ${inline}`).toMatchObject({
        status: "rejected",
        reason: { code: "idempotency_conflict" },
      });
      expect((await observations.get("x:0:openai"))?.model.billableModel).toBe("tiered");
      await latch.close();
    }
  });

  it("latch.record is still named record (it was an async method)", async () => {
    const { latch } = await setup(true);
    expect(latch.record.name).toBe("record");
    expect(latch.record.length).toBe(2);
    await latch.close();
  });

  it("a memory store subclass that adds only a recordWriter is written through its writer, as step by step", async () => {
    class WriterOnly extends MemoryObservationStore {
      writes = 0;
      recordWriter(rated: RatedRecordStore): RecordWriter {
        return {
          write: async (obs: UsageObservation, record: RatedUsageRecord | undefined) => {
            this.writes++;
            const appended = await this.append(obs);
            let current = await rated.current(obs.eventId);
            if (current === undefined && record !== undefined) {
              await rated.put(record);
              current = record;
            }
            if (current !== undefined) await this.markPriced([obs.eventId]);
            return { observation: appended, current };
          },
        };
      }
    }
    const dir = await mkdtemp(join(tmpdir(), "latch-inline-"));
    dirs.push(dir);
    const observations = new WriterOnly();
    const latch = createLatch({
      observations,
      rated: new MemoryRatedRecordStore(),
      pricing: new InMemoryPricingSource([priced]),
      spoolDir: dir,
      onWarning: () => {},
    });
    await latch.ready();
    expect(await latch.record(observation({ input_tokens: 1 }, { eventId: "w:0:openai" }))).toMatchObject({
      status: "rated",
    });
    expect(observations.writes).toBe(1);
    await latch.close();
  });
});

describe("isoTimestampMs", () => {
  it("is Date.parse for every timestamp the schema accepts, with and without a fraction", () => {
    const min = Date.UTC(1970, 0, 1);
    const max = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
    fc.assert(
      fc.property(fc.integer({ min, max }), fc.constantFrom(0, 1, 3, 6, 9), (ms, fraction) => {
        const iso = new Date(ms).toISOString(); // …ss.sssZ
        const text =
          fraction === 0
            ? `${iso.slice(0, 19)}Z`
            : `${iso.slice(0, 19)}.${`${iso.slice(20, 23)}000000`.slice(0, fraction)}Z`;
        expect(isoTimestampMs(text)).toBe(Date.parse(text));
      }),
      { numRuns: 5_000 },
    );
  });
});
