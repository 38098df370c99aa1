import type { MeterSet, PriceSnapshotInput } from "@latch/core";

/**
 * The benchmark's price sheets: the same per-million prices @pydantic/genai-prices ships
 * for these models, written as Latch snapshots (decimal strings, 200k-token request tiers).
 */
const tiered = (base: Record<string, string>, above: Record<string, string>) => ({
  scope: "request" as const,
  mode: "volume" as const,
  baseline: "prompt_tokens" as const,
  boundaries: [
    {
      upTo: 200_000,
      prices: Object.fromEntries(Object.entries(base).map(([m, p]) => [m, { perMillion: p }])),
    },
    { upTo: null, prices: Object.fromEntries(Object.entries(above).map(([m, p]) => [m, { perMillion: p }])) },
  ],
});

export const SNAPSHOTS: Record<string, PriceSnapshotInput> = {
  "gpt-4o": {
    snapshotId: "bench:gpt-4o",
    model: { billableModel: "gpt-4o", vendor: "openai" },
    currency: "USD",
    effectiveFrom: "2024-01-01T00:00:00Z",
    prices: {
      input_tokens: { perMillion: "2.5" },
      cached_input_tokens: { perMillion: "1.25" },
      output_tokens: { perMillion: "10" },
      reasoning_tokens: { as: "output_tokens" },
    },
  },
  "claude-sonnet-4-5": {
    snapshotId: "bench:claude-sonnet-4-5",
    model: { billableModel: "claude-sonnet-4-5", vendor: "anthropic" },
    currency: "USD",
    effectiveFrom: "2024-01-01T00:00:00Z",
    prices: {},
    tiers: [
      tiered(
        {
          input_tokens: "3",
          cache_write_tokens: "3.75",
          cache_write_1h_tokens: "6",
          cached_input_tokens: "0.3",
          output_tokens: "15",
        },
        {
          input_tokens: "6",
          cache_write_tokens: "7.5",
          cache_write_1h_tokens: "12",
          cached_input_tokens: "0.6",
          output_tokens: "22.5",
        },
      ),
    ],
  },
  "gemini-2.5-pro": {
    snapshotId: "bench:gemini-2.5-pro",
    model: { billableModel: "gemini-2.5-pro", vendor: "google" },
    currency: "USD",
    effectiveFrom: "2024-01-01T00:00:00Z",
    prices: { reasoning_tokens: { as: "output_tokens" } },
    tiers: [
      tiered(
        { input_tokens: "1.25", cached_input_tokens: "0.125", output_tokens: "10" },
        { input_tokens: "2.5", cached_input_tokens: "0.25", output_tokens: "15" },
      ),
    ],
  },
};

export const PROVIDER: Record<string, string> = {
  "gpt-4o": "openai",
  "claude-sonnet-4-5": "anthropic",
  "gemini-2.5-pro": "google",
};

export interface Usage {
  model: string;
  meters: MeterSet;
}

/** A small deterministic PRNG (mulberry32), so every run rates the same usages. */
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

/**
 * `n` mixed usages: three models, cached and uncached prompts, reasoning, cache writes, and
 * about 5% of prompts above 200k tokens (never exactly 200,000, where peers disagree on `>` vs `≥`).
 */
export function makeUsages(n: number, seed = 42): Usage[] {
  const random = rng(seed);
  const int = (max: number) => Math.floor(random() * max);
  const models = Object.keys(SNAPSHOTS);
  const out: Usage[] = [];
  for (let i = 0; i < n; i++) {
    const model = models[i % models.length] as string;
    let prompt = random() < 0.05 ? 200_001 + int(600_000) : 50 + int(150_000);
    if (prompt === 200_000) prompt++;
    const cached = random() < 0.4 ? int(prompt) : 0;
    const output = 1 + int(8_000);
    const meters: Record<string, number> = { input_tokens: prompt - cached, output_tokens: output };
    if (cached > 0) meters.cached_input_tokens = cached;
    if (model === "claude-sonnet-4-5" && random() < 0.3) {
      // Cache writes come out of the uncached input so the prompt total stays the same.
      const write = int(meters.input_tokens as number);
      meters.input_tokens = (meters.input_tokens as number) - write;
      if (random() < 0.5) meters.cache_write_tokens = write;
      else meters.cache_write_1h_tokens = write;
    }
    if (model === "gpt-4o" && random() < 0.3) meters.reasoning_tokens = int(4_000);
    out.push({ model, meters: meters as MeterSet });
  }
  return out;
}
