/**
 * The facade with an ingest log (`LatchConfig.ingest`): record publishes instead of storing,
 * answers `accepted`, spools while the log is down and replays by publishing; and the record
 * path of an ingest worker (`createIngestRecorder`). The real log is `@latch/nats`'s, tested
 * there against JetStream; here an in-memory log stands in for it.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createIngestRecorder } from "../../src/adapter.js";
import {
  createLatch,
  type IngestLog,
  InMemoryPricingSource,
  LatchError,
  MemoryObservationStore,
  MemoryQuotaReservator,
  MemoryRatedRecordStore,
  parseObservation,
  type UsageObservation,
} from "../../src/index.js";
import { observation, snapshot } from "../support.js";

/** A log in memory: what was published, keyed by eventId; `down` makes every publish fail. */
class MemoryLog implements IngestLog {
  readonly published = new Map<string, UsageObservation>();
  down = false;
  async publish(obs: UsageObservation) {
    if (this.down) throw new Error("connection refused");
    const duplicate = this.published.has(obs.eventId);
    if (!duplicate) this.published.set(obs.eventId, obs);
    return { duplicate };
  }
}

const pricing = () =>
  new InMemoryPricingSource([
    snapshot({ prices: { input_tokens: { perMillion: "1" }, output_tokens: { perMillion: "2" } } }),
  ]);
const call = (id = "req-1:0:openai") =>
  parseObservation(observation({ input_tokens: 1_000, output_tokens: 100 }, { eventId: id }));

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-ingest-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function setup() {
  const log = new MemoryLog();
  const observations = new MemoryObservationStore();
  const rated = new MemoryRatedRecordStore();
  const quota = new MemoryQuotaReservator();
  const warnings: string[] = [];
  const latch = createLatch({
    observations,
    rated,
    pricing: pricing(),
    quota,
    ingest: log,
    spoolDir: join(dir, "spool"),
    retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
    onWarning: (w) => warnings.push(w.code),
  });
  return { log, observations, rated, quota, latch, warnings };
}

describe("createLatch({ ingest })", () => {
  it("publishes the observation with its hold, answers accepted, and stores nothing itself", async () => {
    const { log, observations, quota, latch } = setup();
    await quota.setLimit("acme", 5_000);
    const hold = await latch.reserve({ account: "acme", amount: 2_000 });
    const result = await latch.record(call(), { hold });
    expect(result.status).toBe("accepted");
    expect(result).toMatchObject({ eventId: "req-1:0:openai" });
    expect(log.published.get("req-1:0:openai")?.correlation?.holdId).toBe(hold.holdId);
    expect(await observations.get("req-1:0:openai")).toBeUndefined();
    // settle charges the call's units (1,100 tokens) from the observation, as for a spooled call.
    expect(await latch.settle(hold, result)).toEqual({ settled: true });
    expect(await quota.balance("acme")).toMatchObject({ spent: 1_100, held: 0 });
    await latch.close();
  });

  it("throws invalid input and publishes nothing", async () => {
    const { log, latch } = setup();
    const bad = { ...call(), meters: { input_tokens: -1 } };
    await expect(latch.record(bad)).rejects.toSatisfy((e) => LatchError.is(e, "invalid_input"));
    expect(log.published.size).toBe(0);
    await latch.close();
  });

  it("spools while the log is down, and flushSpool publishes (not stores) what was spooled", async () => {
    const { log, observations, latch, warnings } = setup();
    log.down = true;
    expect((await latch.record(call("a:0:openai"))).status).toBe("spooled");
    expect((await latch.record(call("b:0:openai"))).status).toBe("spooled");
    expect(warnings).toContain("spooled");
    expect(await latch.flushSpool()).toMatchObject({ replayed: 0, remaining: 2 });
    log.down = false;
    expect(await latch.flushSpool()).toMatchObject({ replayed: 2, remaining: 0 });
    expect([...log.published.keys()].sort()).toEqual(["a:0:openai", "b:0:openai"]);
    expect(await observations.get("a:0:openai")).toBeUndefined();
    await latch.close();
  });

  it("refuses an ingest log without publish(), naming the field", () => {
    const stores = { observations: new MemoryObservationStore(), rated: new MemoryRatedRecordStore() };
    expect(() => createLatch({ ...stores, pricing: pricing(), ingest: {} as IngestLog })).toThrow(/ingest/);
  });
});

describe("createIngestRecorder", () => {
  it("stores and rates like the facade, once however often a message is redelivered", async () => {
    const observations = new MemoryObservationStore();
    const rated = new MemoryRatedRecordStore();
    const recorder = createIngestRecorder({ observations, rated, pricing: pricing(), onWarning: () => {} });
    const first = await recorder.record(call());
    const again = await recorder.record(call());
    expect(first.status).toBe("rated");
    expect(again).toEqual(first);
    // 1,000 × 1/M + 100 × 2/M = 0.0012 USD
    expect(first.status === "rated" && first.record.total).toBe("0.0012");
    expect((await rated.listSince(undefined, 10)).items).toHaveLength(1);
  });

  it("throws a store error (to redeliver) and calls a conflicting payload permanent (to dead-letter)", async () => {
    const observations = new MemoryObservationStore();
    const failing = new Proxy(observations, {
      get(target, key) {
        if (key === "append") return async () => Promise.reject(new Error("connection reset"));
        const value = Reflect.get(target, key, target) as unknown;
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const retry = { attempts: 1 };
    const down = createIngestRecorder({
      observations: failing,
      rated: new MemoryRatedRecordStore(),
      pricing: pricing(),
      retry,
    });
    const storeError = await down.record(call()).catch((e: unknown) => e);
    expect(storeError).toBeInstanceOf(Error);
    expect(down.permanent(storeError)).toBe(false);

    const recorder = createIngestRecorder({
      observations,
      rated: new MemoryRatedRecordStore(),
      pricing: pricing(),
      retry,
    });
    await recorder.record(call());
    const other = parseObservation(observation({ input_tokens: 9 }, { eventId: "req-1:0:openai" }));
    const conflict = await recorder.record(other).catch((e: unknown) => e);
    expect(LatchError.is(conflict, "idempotency_conflict")).toBe(true);
    expect(recorder.permanent(conflict)).toBe(true);
  });

  it("checks its configuration as createLatch does, naming the field", () => {
    const stores = { observations: new MemoryObservationStore(), rated: new MemoryRatedRecordStore() };
    expect(() => createIngestRecorder({ ...stores, pricing: {} as InMemoryPricingSource })).toThrow(
      /pricing/,
    );
  });
});
