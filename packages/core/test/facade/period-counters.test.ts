/**
 * Period tiers under a real deployment's faults: two workers record the same 1,000 events
 * (each event twice, concurrently, in different orders), while the stores fail now and then —
 * before a write, or after it (the answer lost) — the price only arrives half-way (so half the
 * events are stored unpriced) and both workers run `rerateUnpriced()` again and again. At the
 * end the period counter equals the sum of the events (each counted once) and every record is
 * priced as if each event had arrived once: with graduated period tiers, the sum of the
 * per-event totals equals the price of the period's total through the tiers, whatever the
 * order — it would not if any event moved the baseline twice.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type {
  CounterAddOptions,
  ObservationStore,
  RatedRecordStore,
  UsageCounter,
} from "../../src/adapter.js";
import { createLatch, type Latch } from "../../src/facade/create-latch.js";
import {
  type PriceSnapshot,
  type PricingSource,
  sumDecimals,
  type UsageObservationInput,
} from "../../src/index.js";
import {
  MemoryObservationStore,
  MemoryRatedRecordStore,
  MemoryUsageCounter,
} from "../../src/memory/index.js";

const EVENTS = 1_000;

const tiered: PriceSnapshot = {
  snapshotId: "tiered:2026",
  model: { billableModel: "tiered" },
  currency: "USD",
  effectiveFrom: "2026-01-01T00:00:00Z",
  prices: { input_tokens: { perMillion: "2" }, output_tokens: { perMillion: "8" } },
  tiers: [
    {
      scope: "period",
      mode: "graduated",
      baseline: { meter: "input_tokens" },
      boundaries: [
        { upTo: 1_000_000, prices: { input_tokens: { perMillion: "2" } } },
        { upTo: 2_500_000, prices: { input_tokens: { perMillion: "1.5" } } },
        { upTo: null, prices: { input_tokens: { perMillion: "1.1" } } },
      ],
    },
  ],
};

/** The exact USD price of `input` period tokens through the tiers, plus `output` tokens. */
function expectedTotal(input: number, output: number): string {
  // In units of 10^-7 USD: tokens × (price per million × 10).
  const slices: Array<[number, bigint]> = [
    [Math.min(input, 1_000_000), 20n],
    [Math.max(0, Math.min(input, 2_500_000) - 1_000_000), 15n],
    [Math.max(0, input - 2_500_000), 11n],
  ];
  let units = BigInt(output) * 80n;
  for (const [tokens, price] of slices) units += BigInt(tokens) * price;
  return sumDecimals([`${units / 10_000_000n}.${(units % 10_000_000n).toString().padStart(7, "0")}`]);
}

/** A deterministic PRNG (mulberry32), so a failure can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class InjectedFault extends Error {
  override name = "InjectedFault";
}

/**
 * Wraps `target` so that each call of the named methods fails with probability `p`: half of
 * the failures before the call reaches the store, half after it was applied (the answer lost,
 * as when a connection drops after the commit).
 */
function flaky<T extends object>(
  target: T,
  methods: readonly (keyof T)[],
  p: number,
  random: () => number,
): T {
  return new Proxy(target, {
    get(obj, prop, receiver) {
      const value = Reflect.get(obj, prop, receiver);
      if (typeof value !== "function") return value;
      if (!methods.includes(prop as keyof T)) return value.bind(obj);
      return async (...args: unknown[]) => {
        const roll = random();
        if (roll < p / 2) throw new InjectedFault(`${String(prop)} failed before the store`);
        const result = await value.apply(obj, args);
        if (roll < p) throw new InjectedFault(`${String(prop)} failed after the store (answer lost)`);
        return result;
      };
    },
  });
}

/** A pricing source whose price arrives when the test says so. */
function latePricing(): PricingSource & { publish(): void } {
  let published = false;
  return {
    publish: () => {
      published = true;
    },
    resolve: async (model) => (published && model.billableModel === "tiered" ? tiered : undefined),
  };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-period-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("period counters under retries, races, failures and re-rating", () => {
  it(
    "2 workers × 1,000 events: the counter equals the sum of events and records are priced as if each arrived once",
    {
      timeout: 120_000,
    },
    async () => {
      const random = rng(20_261_201);
      const observations = new MemoryObservationStore();
      const rated = new MemoryRatedRecordStore();
      const counter = new MemoryUsageCounter();
      const adds = { calls: 0 };
      const countingCounter: UsageCounter = {
        add: (key: string, period: string, quantity: number, options?: CounterAddOptions | AbortSignal) => {
          adds.calls++;
          return counter.add(key, period, quantity, options);
        },
        get: (key, period, signal) => counter.get(key, period, signal),
      };
      const pricing = latePricing();
      const events: UsageObservationInput[] = Array.from({ length: EVENTS }, (_, i) => ({
        eventId: `evt-${i}:0:openai`,
        subject: { tenantId: "acme" },
        meters: { input_tokens: 1_000 + Math.floor(random() * 5_000), output_tokens: 10 + (i % 90) },
        model: { billableModel: "tiered" },
        provider: { providerId: "openai" },
        source: { kind: "provider_reported" },
        outcome: { kind: "success" },
        timing: { startedAt: "2026-03-10T12:00:00Z", completedAt: "2026-03-10T12:00:01Z" },
      }));

      const worker = (n: number): Latch =>
        createLatch({
          observations: flaky<ObservationStore>(observations, ["append", "markPriced"], 0.06, random),
          rated: flaky<RatedRecordStore>(rated, ["put", "current"], 0.06, random),
          counter: flaky<UsageCounter>(countingCounter, ["add"], 0.1, random),
          pricing,
          spoolPath: join(dir, `worker-${n}.spool.jsonl`),
          retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 2 },
          onWarning: () => {},
        });
      const workers = [worker(1), worker(2)];

      // Each worker records every event, in its own order; the price arrives half-way; both
      // workers re-rate the unpriced ones while recording goes on.
      const orders = [events, [...events].reverse()];
      let recorded = 0;
      const record = async (w: number) => {
        for (const obs of orders[w] as UsageObservationInput[]) {
          try {
            await (workers[w] as Latch).record(obs);
          } catch (error) {
            // A fault after every retry, outside the fail-open paths: the caller retries the call.
            if (!(error instanceof InjectedFault)) throw error;
            await (workers[w] as Latch).record(obs).catch((again: unknown) => {
              if (!(again instanceof InjectedFault)) throw again;
            });
          }
          if (++recorded === EVENTS) pricing.publish();
        }
      };
      const rerate = async (w: number) => {
        for (let i = 0; i < 5; i++) {
          await (workers[w] as Latch).rerateUnpriced().catch((error: unknown) => {
            if (!(error instanceof InjectedFault)) throw error;
          });
        }
      };
      await Promise.all([record(0), record(1), rerate(0), rerate(1)]);

      // Settle everything: replay the spools and re-rate until nothing is left unpriced.
      pricing.publish();
      for (let round = 0; round < 50; round++) {
        for (const w of workers) {
          await w.flushSpool().catch((error: unknown) => {
            if (!(error instanceof InjectedFault)) throw error;
          });
          await w.rerateUnpriced().catch((error: unknown) => {
            if (!(error instanceof InjectedFault)) throw error;
          });
        }
        const left = await observations.listUnpriced({ limit: 10 });
        const missing = [];
        for (const obs of events) if (!(await rated.current(obs.eventId))) missing.push(obs);
        if (left.items.length === 0 && missing.length === 0) break;
        // An event whose both recordings were lost to faults: its caller retries once more.
        for (const obs of missing) await (workers[0] as Latch).record(obs).catch(() => {});
      }

      const sumInput = events.reduce((n, e) => n + (e.meters.input_tokens ?? 0), 0);
      const sumOutput = events.reduce((n, e) => n + (e.meters.output_tokens ?? 0), 0);
      // Every event counted once, however often it was recorded, retried or re-rated.
      expect(await counter.get("acme|tiered|input_tokens", "2026-03")).toBe(sumInput);
      expect(adds.calls).toBeGreaterThan(EVENTS); // the replays really happened
      // One current record per event, each version 1.
      const records = [];
      for (const obs of events) {
        const current = await rated.current(obs.eventId);
        expect(current, obs.eventId).toBeDefined();
        expect(current?.version).toBe(1);
        records.push(current);
      }
      // Priced as if each event arrived once: the per-event totals sum to the tiered price of
      // the period's total (the tiers are crossed: 1,000 × ~3,500 input tokens ≈ 3.5 M).
      expect(sumInput).toBeGreaterThan(2_500_000);
      expect(sumDecimals(records.map((r) => r?.total ?? "0"))).toBe(expectedTotal(sumInput, sumOutput));
    },
  );
});
