/**
 * Period baselines (`periodBaseline`): what a call's period tiers rate against is the tenant's
 * usage of the priced model this month before the call, counted once per event.
 */
import { describe, expect, it } from "vitest";
import { periodBaseline } from "../../src/facade/period-baselines.js";
import {
  MemoryUsageCounter,
  type PriceSnapshot,
  parseObservation,
  type UsageObservation,
} from "../../src/index.js";
import { observation } from "../support.js";

const retry = { attempts: 1 };

/** Period tiers on total tokens (input, cached input and output count; nothing else of the call). */
const monthly: PriceSnapshot = {
  snapshotId: "monthly",
  model: { billableModel: "test-model" },
  currency: "USD",
  effectiveFrom: "2026-01-01T00:00:00Z",
  prices: { input_tokens: { perMillion: "2" }, output_tokens: { perMillion: "8" } },
  tiers: [
    {
      scope: "period",
      mode: "graduated",
      baseline: "total_tokens",
      boundaries: [
        {
          upTo: 1_000_000,
          prices: { input_tokens: { perMillion: "2" }, output_tokens: { perMillion: "8" } },
        },
        { upTo: null, prices: { input_tokens: { perMillion: "1" }, output_tokens: { perMillion: "4" } } },
      ],
    },
  ],
};

const call = (eventId: string, completedAt = "2026-03-01T12:00:01Z"): UsageObservation =>
  parseObservation(
    observation(
      { input_tokens: 1_000, output_tokens: 300 },
      { eventId, timing: { startedAt: completedAt, completedAt } },
    ),
  );

describe("period baselines", () => {
  it("a snapshot without period tiers needs no counter and has no baseline", async () => {
    const flat = { ...monthly, tiers: undefined };
    expect(await periodBaseline(call("e1"), flat, { counter: undefined, retry })).toBeUndefined();
  });

  it("a snapshot with period tiers and no counter is invalid_input naming LatchConfig.counter", async () => {
    await expect(periodBaseline(call("e1"), monthly, { counter: undefined, retry })).rejects.toMatchObject({
      code: "invalid_input",
      issues: [{ path: "counter" }],
    });
  });

  it("each call's baseline is the month's usage before it; a new month starts at 0", async () => {
    const counter = new MemoryUsageCounter();
    const deps = { counter, retry };
    // Every call is 1,000 input + 300 output = 1,300 total tokens.
    expect(await periodBaseline(call("e1"), monthly, deps)).toMatchObject({ total_tokens: 0 });
    // The meters the tier prices are counted beside its baseline meter.
    expect(await periodBaseline(call("e2"), monthly, deps)).toEqual({
      total_tokens: 1_300,
      input_tokens: 1_000,
      output_tokens: 300,
    });
    expect(await periodBaseline(call("e3"), monthly, deps)).toMatchObject({ total_tokens: 2_600 });
    expect(await periodBaseline(call("e4", "2026-04-01T00:00:01Z"), monthly, deps)).toMatchObject({
      total_tokens: 0,
    });
  });

  it("the same event counted again (a retry, a re-rating) gets its first answer and adds nothing", async () => {
    const counter = new MemoryUsageCounter();
    const deps = { counter, retry };
    await periodBaseline(call("e1"), monthly, deps);
    expect(await periodBaseline(call("e2"), monthly, deps)).toMatchObject({ total_tokens: 1_300 });
    expect(await periodBaseline(call("e2"), monthly, deps)).toMatchObject({ total_tokens: 1_300 });
    expect(await periodBaseline(call("e3"), monthly, deps)).toMatchObject({ total_tokens: 2_600 });
  });

  it("tenants have separate months", async () => {
    const counter = new MemoryUsageCounter();
    const deps = { counter, retry };
    await periodBaseline(call("e1"), monthly, deps);
    const other = parseObservation({ ...call("e2"), subject: { tenantId: "globex" } });
    expect(await periodBaseline(other, monthly, deps)).toMatchObject({ total_tokens: 0 });
  });
});
