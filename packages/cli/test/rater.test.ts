/**
 * `latch rate` reads `{ api, usage, observation }` lines "exactly what `latch.record()` takes":
 * the line's observation must come out as the facade's would — the tier an Anthropic or Gemini
 * usage object reports, caller meters added, usage billed at another model's rates refused.
 */
import { InMemoryPricingSource, type PriceSnapshotInput } from "@latch/core";
import { describe, expect, it } from "vitest";
import { LineRater } from "../src/rater.js";

const sonnet = (tier?: string, input = "3", output = "15"): PriceSnapshotInput => ({
  snapshotId: `claude-sonnet-4-5:${tier ?? "standard"}`,
  model:
    tier === undefined
      ? { billableModel: "claude-sonnet-4-5" }
      : { billableModel: "claude-sonnet-4-5", tier },
  currency: "USD",
  effectiveFrom: "2026-01-01T00:00:00Z",
  prices: {
    input_tokens: { perMillion: input },
    output_tokens: { perMillion: output },
    "custom:moderation_calls": { perUnit: "0.001" },
  },
});
const rater = () =>
  new LineRater(
    new InMemoryPricingSource([sonnet(), sonnet("priority", "6", "30")] as never),
    "2026-03-02T00:00:00Z",
  );
const observation = {
  eventId: "msg-1:0:anthropic",
  subject: { tenantId: "acme" },
  model: { billableModel: "claude-sonnet-4-5" },
  provider: { providerId: "anthropic" },
  source: { kind: "provider_reported" },
  outcome: { kind: "success" },
  timing: { startedAt: "2026-03-01T12:00:00Z", completedAt: "2026-03-01T12:00:01Z" },
};
const line = (usage: unknown, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ api: "anthropic", usage, observation: { ...observation, ...extra } });

describe("LineRater: provider lines as record() takes them", () => {
  it("an Anthropic usage that reports the priority tier is priced at the priority snapshot", () => {
    const result = rater().rate(line({ input_tokens: 1000, output_tokens: 100, service_tier: "priority" }));
    // 1,000 × 6 + 100 × 30 per million = 0.009 (the standard price would be 0.0045)
    expect(result).toMatchObject({
      ok: true,
      record: {
        snapshotId: "claude-sonnet-4-5:priority",
        total: "0.009",
        observation: { model: { tier: "priority" } },
      },
    });
  });

  it("caller meters are added to the normalized ones, not dropped", () => {
    const result = rater().rate(
      line({ input_tokens: 1000, output_tokens: 100 }, { meters: { "custom:moderation_calls": 2 } }),
    );
    // 0.0045 + 2 × 0.001
    expect(result).toMatchObject({ ok: true, record: { total: "0.0065" } });
  });

  it("usage billed at another model's rates (an advisor turn) is rejected naming it, not dropped", () => {
    const result = rater().rate(
      line({
        input_tokens: 1000,
        output_tokens: 100,
        iterations: [
          { type: "message", input_tokens: 1000, output_tokens: 100 },
          { type: "advisor_message", model: "claude-opus-4-6", input_tokens: 5000, output_tokens: 300 },
        ],
      }),
    );
    expect(result).toMatchObject({
      ok: false,
      rejection: { code: "invalid_input", field: "usage.iterations.1" },
    });
  });

  it("a bad field of the observation is still named under observation.", () => {
    const result = rater().rate(
      line({ input_tokens: 1, output_tokens: 1 }, { timing: { startedAt: "x", completedAt: "y" } }),
    );
    expect(result).toMatchObject({
      ok: false,
      rejection: { code: "invalid_input", field: "observation.timing.startedAt" },
    });
  });
});
