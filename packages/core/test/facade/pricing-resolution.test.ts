import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLatch, type LatchWarning } from "../../src/facade/create-latch.js";
import {
  InMemoryPricingSource,
  type PriceSnapshot,
  type PricingSource,
  type UsageObservationInput,
} from "../../src/index.js";
import {
  MemoryObservationStore,
  MemoryRatedRecordStore,
  MemoryUsageCounter,
} from "../../src/memory/index.js";

const gpt5 = (tier?: string, input = "1.25", output = "10"): PriceSnapshot => ({
  snapshotId: `gpt-5:${tier ?? "standard"}`,
  model: tier === undefined ? { billableModel: "gpt-5" } : { billableModel: "gpt-5", tier },
  currency: "USD",
  effectiveFrom: "2026-01-01T00:00:00Z",
  prices: { input_tokens: { perMillion: input }, output_tokens: { perMillion: output } },
});

const call = (
  i: number,
  billableModel: string,
  tier?: string,
  providerId = "openai",
): UsageObservationInput => ({
  eventId: `req-${i}:0:${providerId}`,
  subject: { tenantId: "acme" },
  meters: { input_tokens: 1000, output_tokens: 100 },
  model: tier === undefined ? { billableModel } : { billableModel, tier },
  provider: { providerId },
  source: { kind: "provider_reported" },
  outcome: { kind: "success" },
  timing: { startedAt: "2026-03-01T12:00:00Z", completedAt: "2026-03-01T12:00:01Z" },
});

let dir: string;
let warnings: LatchWarning[];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-facade-pricing-"));
  warnings = [];
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function setup(pricing: PricingSource) {
  const observations = new MemoryObservationStore();
  const rated = new MemoryRatedRecordStore();
  const latch = createLatch({
    observations,
    rated,
    pricing,
    clock: () => new Date("2026-03-01T12:00:05Z"),
    spoolPath: join(dir, "spool.jsonl"),
    retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
    onWarning: (w) => warnings.push(w),
  });
  return { latch, observations, rated };
}

describe("createLatch: why a call is unpriced", () => {
  it("no_snapshot: no rule matches a priced model", async () => {
    const { latch } = setup(new InMemoryPricingSource([gpt5()]));
    expect(await latch.record(call(1, "gpt-9"))).toMatchObject({
      status: "unpriced",
      eventId: "req-1:0:openai",
      reason: "no_snapshot",
    });
  });

  it("no_snapshot_for_tier: a priority call with only a standard price is kept, not billed at standard; priced once its tier is", async () => {
    const pricing = new InMemoryPricingSource([gpt5()]);
    const { latch, observations } = setup(pricing);
    expect(await latch.record(call(2, "gpt-5", "priority"))).toMatchObject({
      status: "unpriced",
      reason: "no_snapshot_for_tier",
    });
    expect((await observations.listUnpriced({ limit: 10 })).items.map((o) => o.eventId)).toEqual([
      "req-2:0:openai",
    ]);
    pricing.add(gpt5("priority", "2.5", "20"));
    expect(await latch.rerateUnpriced()).toEqual({ rated: 1, stillUnpriced: 0 });
    // 1,000 × 2.5 + 100 × 20 per million
    const again = await latch.record(call(2, "gpt-5", "priority"));
    expect(again).toMatchObject({
      status: "rated",
      record: { snapshotId: "gpt-5:priority", total: "0.0045" },
    });
  });

  it("ambiguous_model: names the candidates", async () => {
    const { latch } = setup(
      new InMemoryPricingSource([
        { ...gpt5(), aliases: ["house-model"] },
        { ...gpt5(), snapshotId: "o3", model: { billableModel: "o3" }, aliases: ["house-model"] },
      ]),
    );
    const result = await latch.record(call(3, "house-model"));
    expect(result).toMatchObject({
      status: "unpriced",
      reason: "ambiguous_model",
      candidates: ["gpt-5", "o3"],
    });
  });

  it("no_price: names the meter", async () => {
    const { latch } = setup(new InMemoryPricingSource([gpt5()]));
    const result = await latch.record({ ...call(4, "gpt-5"), meters: { input_tokens: 10, image_count: 1 } });
    expect(result).toMatchObject({ status: "unpriced", reason: "no_price", meter: "image_count" });
  });
});

describe("createLatch: model matching", () => {
  it("rates a dated id at the undated price and stores the rule on the record; a correction keeps it", async () => {
    const { latch, rated } = setup(new InMemoryPricingSource([gpt5()]));
    const result = await latch.record(call(5, "gpt-5-2025-08-07"));
    expect(result).toMatchObject({
      status: "rated",
      record: { total: "0.00225", modelMatch: { rule: "dated_suffix", matchedModel: "gpt-5" } },
    });
    expect((await rated.current("req-5:0:openai"))?.modelMatch).toEqual({
      rule: "dated_suffix",
      matchedModel: "gpt-5",
    });
    const v2 = await latch.correct("req-5:0:openai", { input_tokens: 2000, output_tokens: 100 });
    expect(v2).toMatchObject({ version: 2, total: "0.0035", modelMatch: { rule: "dated_suffix" } });
  });

  it("passes the provider: an OpenRouter call finds OpenRouter's price", async () => {
    const { latch } = setup(
      new InMemoryPricingSource([
        {
          ...gpt5(),
          snapshotId: "gpt-5:or",
          model: { billableModel: "openrouter/openai/gpt-5" },
          prices: { input_tokens: { perMillion: "1.3" }, output_tokens: { perMillion: "10" } },
        },
        gpt5(),
      ]),
    );
    const result = await latch.record(call(6, "openai/gpt-5", undefined, "openrouter"));
    expect(result).toMatchObject({
      status: "rated",
      record: {
        total: "0.0023",
        modelMatch: { rule: "provider_prefix", matchedModel: "openrouter/openai/gpt-5" },
      },
    });
  });

  it("period tiers count the matched model's usage, whatever id each call spells it with", async () => {
    // Graduated over the month on input tokens: 2 per million up to 1,500 tokens, 1 above.
    const tiered: PriceSnapshot = {
      ...gpt5(),
      snapshotId: "gpt-5:period",
      prices: { output_tokens: { perMillion: "10" } },
      tiers: [
        {
          scope: "period",
          mode: "graduated",
          baseline: { meter: "input_tokens" },
          boundaries: [
            { upTo: 1500, prices: { input_tokens: { perMillion: "2" } } },
            { upTo: null, prices: { input_tokens: { perMillion: "1" } } },
          ],
        },
      ],
    };
    const latch = createLatch({
      observations: new MemoryObservationStore(),
      rated: new MemoryRatedRecordStore(),
      pricing: new InMemoryPricingSource([tiered]),
      counter: new MemoryUsageCounter(),
      clock: () => new Date("2026-03-01T12:00:05Z"),
      spoolPath: join(dir, "spool.jsonl"),
      onWarning: (w) => warnings.push(w),
    });
    const first = await latch.record(call(11, "gpt-5"));
    // 1,000 × 2 + 100 × 10 = 3,000 µ$
    expect(first).toMatchObject({ status: "rated", record: { total: "0.003" } });
    // The same model, dated: the period is at 1,000, so 500 tokens at 2 and 500 at 1 (+ 1,000 output) = 2,500 µ$.
    const second = await latch.record(call(12, "gpt-5-2025-08-07"));
    expect(second).toMatchObject({
      status: "rated",
      record: { total: "0.0025", modelMatch: { rule: "dated_suffix", matchedModel: "gpt-5" } },
    });
  });
});

describe("createLatch: a pricing source with only resolve()", () => {
  const only = (snapshot: PriceSnapshot): PricingSource => ({ resolve: async () => snapshot });

  it("a snapshot of another tier is refused (no_snapshot_for_tier), not used silently", async () => {
    const { latch } = setup(only(gpt5()));
    expect(await latch.record(call(7, "gpt-5", "flex"))).toMatchObject({
      status: "unpriced",
      reason: "no_snapshot_for_tier",
    });
  });

  it("a snapshot of an unrelated model is not used (no_snapshot); one a rule links is, with the rule", async () => {
    const { latch } = setup(only(gpt5()));
    expect(await latch.record(call(8, "claude-3-7-sonnet"))).toMatchObject({ reason: "no_snapshot" });
    expect(await latch.record(call(9, "openai/gpt-5"))).toMatchObject({
      status: "rated",
      record: { modelMatch: { rule: "provider_prefix", matchedModel: "gpt-5" } },
    });
  });

  it("defence in depth: a resolvePrice() that answers with the wrong tier is refused by the engine", async () => {
    const wrong: PricingSource = {
      resolve: async () => gpt5(),
      resolvePrice: async () => ({
        status: "priced",
        snapshot: gpt5(),
        match: { rule: "exact", matchedModel: "gpt-5" },
        tier: "standard",
        tierFallback: false,
      }),
    };
    const { latch } = setup(wrong);
    expect(await latch.record(call(10, "gpt-5", "priority"))).toMatchObject({
      status: "unpriced",
      reason: "no_snapshot_for_tier",
    });
  });
});
