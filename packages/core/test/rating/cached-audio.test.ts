/**
 * Gemini cached audio (`cached_audio_input_tokens`) through createLatch(): counted once in a
 * request tier's prompt tokens, priced through `as` chains, and never at $0 when a sheet lacks
 * the price of a meter the call uses. Payload: the hand-written `providers/gemini.cached-audio.json`
 * (prompt 33,000 = 980 text + 20 cached text + 32,000 cached audio; 9 out).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  createLatch,
  InMemoryPricingSource,
  MemoryObservationStore,
  MemoryRatedRecordStore,
  type PriceSnapshotInput,
  type ProviderUsageInput,
} from "../../src/index.js";

const response = JSON.parse(
  readFileSync(new URL("../fixtures/providers/gemini.cached-audio.json", import.meta.url), "utf8"),
) as Record<string, unknown>;

async function rate(
  snapshot: Omit<PriceSnapshotInput, "snapshotId" | "model" | "currency" | "effectiveFrom">,
) {
  const latch = createLatch({
    observations: new MemoryObservationStore(),
    rated: new MemoryRatedRecordStore(),
    pricing: new InMemoryPricingSource([
      {
        snapshotId: "test:m",
        model: { billableModel: "m" },
        currency: "USD",
        effectiveFrom: "2026-01-01T00:00:00Z",
        ...snapshot,
      } as PriceSnapshotInput,
    ]),
  });
  const result = await latch.record({
    api: "gemini",
    response,
    observation: {
      eventId: "e1",
      subject: { tenantId: "t" },
      model: { billableModel: "m" },
      source: { kind: "provider_reported" },
      outcome: { kind: "success" },
      timing: { startedAt: "2026-06-01T00:00:00Z", completedAt: "2026-06-01T00:00:01Z" },
    },
  } as ProviderUsageInput);
  await latch.close();
  return result;
}

describe("cached_audio_input_tokens in rating", () => {
  it("is counted once in a request tier's prompt tokens (33,000: still the first boundary)", async () => {
    const result = await rate({
      prices: {
        cached_audio_input_tokens: { as: "cached_input_tokens" },
        output_tokens: { perMillion: "2.5" },
      },
      tiers: [
        {
          scope: "request",
          mode: "volume",
          baseline: "prompt_tokens",
          boundaries: [
            {
              upTo: 33_000,
              prices: { input_tokens: { perMillion: "1" }, cached_input_tokens: { perMillion: "0.1" } },
            },
            {
              upTo: null,
              prices: { input_tokens: { perMillion: "2" }, cached_input_tokens: { perMillion: "0.2" } },
            },
          ],
        },
      ],
    });
    expect(result.status).toBe("rated");
    if (result.status !== "rated") return;
    // 980 × 1 + (20 + 32,000) × 0.1 + 9 × 2.5 = 980 + 3202 + 22.5 = 4204.5 / 1e6.
    // Counted twice (65,000 prompt tokens) it would be the second boundary: 0.0083865.
    expect(result.record.total).toBe("0.0042045");
  });

  it("prices through an alias chain (cached audio → cached text → input)", async () => {
    const result = await rate({
      prices: {
        input_tokens: { perMillion: "0.3" },
        cached_input_tokens: { as: "input_tokens" },
        cached_audio_input_tokens: { as: "cached_input_tokens" },
        output_tokens: { perMillion: "2.5" },
      },
    });
    expect(result.status).toBe("rated");
    if (result.status !== "rated") return;
    // 33,000 × 0.3 + 9 × 2.5 = 9900 + 22.5 = 9922.5 / 1e6
    expect(result.record.total).toBe("0.0099225");
  });

  it("a sheet with the cached-audio price but none for cached text is unpriced on cached_input_tokens, never $0", async () => {
    const result = await rate({
      prices: {
        input_tokens: { perMillion: "0.3" },
        cached_audio_input_tokens: { perMillion: "0.1" },
        output_tokens: { perMillion: "2.5" },
      },
    });
    expect(result).toMatchObject({ status: "unpriced", reason: "no_price", meter: "cached_input_tokens" });
  });
});
