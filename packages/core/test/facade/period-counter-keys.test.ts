/**
 * The facade's period-counter keys: one counter per (tenant, billable model, baseline meter),
 * whatever characters the ids hold and however long they are.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLatch } from "../../src/facade/create-latch.js";
import { InMemoryPricingSource, type PriceSnapshot, type UsageObservationInput } from "../../src/index.js";
import {
  MemoryObservationStore,
  MemoryRatedRecordStore,
  MemoryUsageCounter,
} from "../../src/memory/index.js";

/** $2 per million input tokens up to 1M tokens in the month, then $1. */
const tiered = (billableModel: string): PriceSnapshot => ({
  snapshotId: `tiered:${billableModel.length}:${billableModel.slice(0, 40)}`,
  model: { billableModel },
  currency: "USD",
  effectiveFrom: "2026-01-01T00:00:00Z",
  prices: { input_tokens: { perMillion: "2" } },
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
});

const call = (
  eventId: string,
  tenantId: string,
  billableModel: string,
  input: number,
): UsageObservationInput => ({
  eventId,
  subject: { tenantId },
  meters: { input_tokens: input },
  model: { billableModel },
  source: { kind: "provider_reported" },
  outcome: { kind: "success" },
  timing: { startedAt: "2026-03-01T12:00:00Z", completedAt: "2026-03-01T12:00:01Z" },
});

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-counter-keys-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("period counter keys", () => {
  it("two tenants whose tenant and model ids join to the same string keep separate period totals", async () => {
    const latch = createLatch({
      observations: new MemoryObservationStore(),
      rated: new MemoryRatedRecordStore(),
      pricing: new InMemoryPricingSource([tiered("b|c"), tiered("c")]),
      counter: new MemoryUsageCounter(),
      spoolPath: join(dir, "spool.jsonl"),
    });
    const first = await latch.record(call("e1", "a", "b|c", 600_000));
    expect(first.status === "rated" && first.record.total).toBe("1.2");
    // Tenant "a|b" on model "c": its own month starts at 0, so 600,000 tokens cost 600,000 × $2/M.
    const second = await latch.record(call("e2", "a|b", "c", 600_000));
    expect(second.status === "rated" && second.record.total).toBe("1.2");
  });

  it("a 256-character tenant on a 256-character model is priced through its period tiers", async () => {
    const model = "m".repeat(256);
    const latch = createLatch({
      observations: new MemoryObservationStore(),
      rated: new MemoryRatedRecordStore(),
      pricing: new InMemoryPricingSource([tiered(model)]),
      counter: new MemoryUsageCounter(),
      spoolPath: join(dir, "spool.jsonl"),
      onWarning: () => {},
    });
    const tenant = "t".repeat(256);
    const first = await latch.record(call("e1", tenant, model, 600_000));
    expect(first.status).toBe("rated");
    const second = await latch.record(call("e2", tenant, model, 600_000));
    // 400,000 tokens at $2/M and 200,000 past the boundary at $1/M.
    expect(second.status === "rated" && second.record.total).toBe("1");
  });
});
