/**
 * The facade's one-transaction record path (`ObservationStore.recordWriter`), on memory stores
 * that offer a writer with the contract's reference semantics (append, current, put,
 * markPriced), counting what the facade calls: the writer is used once per call; a rerun under
 * another hold, a period-tier snapshot and a store outage answer as the step-by-step path does.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import type { RatedRecordStore } from "../../src/contracts/rated-record-store.js";
import type { RecordWriter } from "../../src/contracts/record-writer.js";
import { createLatch } from "../../src/facade/create-latch.js";
import {
  InMemoryPricingSource,
  type PriceSnapshot,
  type RatedUsageRecord,
  type UsageObservation,
} from "../../src/index.js";
import {
  MemoryObservationStore,
  MemoryQuotaReservator,
  MemoryRatedRecordStore,
  MemoryUsageCounter,
} from "../../src/memory/index.js";

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** Memory stores whose observation store offers a writer for its own rated store. */
class WritingObservationStore extends MemoryObservationStore {
  writes = 0;
  appends = 0;
  failing = false;
  constructor(private readonly own: MemoryRatedRecordStore) {
    super();
  }
  override append(observation: UsageObservation, signal?: AbortSignal) {
    this.appends++;
    return super.append(observation, signal);
  }
  recordWriter(rated: RatedRecordStore): RecordWriter | undefined {
    if (rated !== this.own) return undefined;
    return {
      write: async (observation: UsageObservation, record: RatedUsageRecord | undefined) => {
        this.writes++;
        if (this.failing) throw new Error("connection reset");
        const result = await super.append(observation);
        let current = await rated.current(observation.eventId);
        if (current === undefined && record !== undefined) {
          await rated.put(record);
          current = record;
        }
        if (current !== undefined) await this.markPriced([observation.eventId]);
        return { observation: result, current };
      },
    };
  }
}

const snapshot = (extra: Partial<PriceSnapshot> = {}): PriceSnapshot => ({
  snapshotId: "s",
  model: { billableModel: "gpt-4o" },
  currency: "USD",
  effectiveFrom: "2026-01-01T00:00:00Z",
  prices: { input_tokens: { perMillion: "2.5" }, output_tokens: { perMillion: "10" } },
  ...extra,
});

const call = (eventId: string) => ({
  eventId,
  subject: { tenantId: "acme" },
  meters: { input_tokens: 1_000, output_tokens: 100 },
  model: { billableModel: "gpt-4o" },
  source: { kind: "provider_reported" as const },
  outcome: { kind: "success" as const },
  timing: { startedAt: "2026-03-01T12:00:00Z", completedAt: "2026-03-01T12:00:01Z" },
});

async function setup(snapshots: PriceSnapshot[] = [snapshot()]) {
  const dir = await mkdtemp(join(tmpdir(), "latch-writer-"));
  dirs.push(dir);
  const rated = new MemoryRatedRecordStore();
  const observations = new WritingObservationStore(rated);
  const quota = new MemoryQuotaReservator();
  await quota.setLimit("acme", 100_000);
  const latch = createLatch({
    observations,
    rated,
    pricing: new InMemoryPricingSource(snapshots),
    counter: new MemoryUsageCounter(),
    quota,
    spoolPath: join(dir, "spool.jsonl"),
    retry: { attempts: 2, baseDelayMs: 1 },
    onWarning: () => {},
  });
  return { latch, observations, rated, quota };
}

it("records through the writer, once per call; a retry answers the stored record; another payload conflicts", async () => {
  const { latch, observations, rated } = await setup();
  const first = await latch.record(call("req-1:0:openai"));
  expect(first).toMatchObject({ status: "rated", record: { ratedRecordId: "req-1:0:openai:v1" } });
  expect(await latch.record(call("req-1:0:openai"))).toEqual(first);
  expect({ writes: observations.writes, appends: observations.appends }).toEqual({ writes: 2, appends: 0 });
  expect(await rated.current("req-1:0:openai")).toEqual(first.status === "rated" ? first.record : undefined);
  await expect(
    latch.record({ ...call("req-1:0:openai"), meters: { input_tokens: 1 } }),
  ).rejects.toMatchObject({
    code: "idempotency_conflict",
  });
  await latch.close();
});

it("a rerun under another hold is a duplicate of the stored call (the step-by-step path decides it)", async () => {
  const { latch, observations } = await setup();
  const a = await latch.reserve({ account: "acme", amount: 5_000 });
  const first = await latch.record(call("req-2:0:openai"), { hold: a });
  const b = await latch.reserve({ account: "acme", amount: 5_000 });
  const again = await latch.record(call("req-2:0:openai"), { hold: b });
  expect(again).toEqual(first);
  expect(observations.appends).toBe(1); // the writer conflicted; the step-by-step path resolved it
  await latch.close();
});

it("a snapshot with period tiers goes step by step (the counter moves only for a stored observation)", async () => {
  const tiered = snapshot({
    tiers: [
      {
        scope: "period",
        mode: "graduated",
        baseline: { meter: "input_tokens" },
        boundaries: [
          { upTo: 1_000_000, prices: { input_tokens: { perMillion: "2" } } },
          { upTo: null, prices: { input_tokens: { perMillion: "1" } } },
        ],
      },
    ],
  } as Partial<PriceSnapshot>);
  const { latch, observations } = await setup([tiered]);
  const result = await latch.record(call("req-3:0:openai"));
  expect(result.status).toBe("rated");
  expect({ writes: observations.writes, appends: observations.appends }).toEqual({ writes: 0, appends: 1 });
  await latch.close();
});

it("a writer that keeps failing: retried, then spooled; the replay records it once", async () => {
  const { latch, observations, rated } = await setup();
  observations.failing = true;
  expect(await latch.record(call("req-4:0:openai"))).toMatchObject({ status: "spooled" });
  expect(observations.writes).toBe(2);
  expect(await rated.current("req-4:0:openai")).toBeUndefined();
  observations.failing = false;
  await latch.flushSpool();
  expect((await rated.current("req-4:0:openai"))?.ratedRecordId).toBe("req-4:0:openai:v1");
  await latch.close();
});
