import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { LatchError, LatchValidationError } from "../../src/errors/index.js";
import { compileSnapshot } from "../../src/pricing/compiled-snapshot.js";
import { JsonParseError } from "../../src/pricing/json-decimal.js";
import {
  importLiteLLMCostMap,
  type LiteLLMImportResult,
  LITELLM_SKIP_REASONS as R,
} from "../../src/pricing/litellm.js";
import { DefaultRatingEngine } from "../../src/rating/engine.js";
import type { MeterSet } from "../../src/schemas/meters.js";
import { type PriceSnapshot, PriceSnapshotSchema } from "../../src/schemas/pricing.js";
import { ctx, observation, thrown } from "../support.js";

const fixture = readFileSync(
  new URL("../fixtures/litellm/model_prices_sample.json", import.meta.url),
  "utf8",
);
const FROM = "2026-01-01T00:00:00Z";

function snapshotOf(result: LiteLLMImportResult, model: string): PriceSnapshot {
  const found = result.snapshots.find((s) => s.model.billableModel === model);
  if (!found) throw new Error(`no snapshot for ${model}`);
  return found;
}
const skipsOf = (result: LiteLLMImportResult, model: string) =>
  result.skipped
    .filter((s) => s.model === model)
    .map((s) => (s.tier ? [s.field, s.code, s.tier] : [s.field, s.code]));
function tierSnapshotOf(result: LiteLLMImportResult, model: string, tier: string): PriceSnapshot {
  const found = result.snapshots.find((s) => s.model.billableModel === model && s.model.tier === tier);
  if (!found) throw new Error(`no ${tier} snapshot for ${model}`);
  return found;
}

/** Imports one entry given as a JSON text fragment (so prices keep their exact text). */
const one = (entryJson: string, model = "m") => importLiteLLMCostMap(`{"${model}": ${entryJson}}`);
const perMillion = (perToken: string) => {
  const r = importLiteLLMCostMap(`{"m": {"input_cost_per_token": ${perToken}}}`, { includeFree: true });
  return r.snapshots[0]?.prices.input_tokens;
};

describe("exact per-token → per-million conversion", () => {
  const cases: Array<[string, string]> = [
    ["3e-06", "3"],
    ["1.5e-05", "15"],
    ["7.5e-07", "0.75"],
    ["1.25e-07", "0.125"],
    ["0.0000025", "2.5"],
    ["1E-6", "1"],
    ["2.25e-05", "22.5"],
    ["0.0000001234567891234", "0.1234567891234"],
    ["1.23456789012345678901234e-7", "0.123456789012345678901234"],
    ["9.99999999999999999999999999999e-7", "0.999999999999999999999999999999"],
    ["2.9999900000000002e-06", "2.9999900000000002"],
    ["0.000015000000000000000000000001", "15.000000000000000000000001"],
    ["1.50e-06", "1.5"],
    ["0.0", "0"],
    ["-0.0", "0"],
    ["0", "0"],
    ["12", "12000000"],
  ];
  for (const [source, expected] of cases) {
    it(`${source} per token → "${expected}" per million`, () => {
      expect(perMillion(source)).toEqual({ perMillion: expected });
    });
  }

  it("never goes through a double: 1.1e-06 → 1.1 and 3.3e-06 → 3.3 exactly", () => {
    // The doubles are not the decimal texts, and scaling them drifts:
    expect((1.1e-6).toPrecision(25)).toBe("0.000001100000000000000056102041");
    expect(String(3.3e-6 * 1e6)).toBe("3.3000000000000003");
    expect(String(1.234567891234e-7 * 1e6)).toBe("0.12345678912339998");
    expect(perMillion("1.1e-06")).toEqual({ perMillion: "1.1" });
    expect(perMillion("3.3e-06")).toEqual({ perMillion: "3.3" });
    expect(perMillion("1.234567891234e-7")).toEqual({ perMillion: "0.1234567891234" });
  });

  it("keeps per-unit (image) prices as written, canonically", () => {
    const r = one('{"output_cost_per_image": 4.0e-02, "mode": "image_generation"}');
    expect(r.snapshots[0]?.prices).toEqual({ image_count: { perUnit: "0.04" } });
  });
});

describe("importing the LiteLLM sample (real entries)", () => {
  const result = importLiteLLMCostMap(fixture, { effectiveFrom: FROM });

  it("produces one valid snapshot per priced entry, in the file's order", () => {
    expect(
      result.snapshots.map((s) => s.model.billableModel + (s.model.tier ? `@${s.model.tier}` : "")),
    ).toEqual([
      "aiml/dall-e-3",
      "claude-sonnet-4-5-20250929-v1:0",
      "claude-opus-4-1",
      "claude-opus-4-6",
      "claude-sonnet-4-20250514",
      "cohere.embed-v4:0",
      "dashscope/qwen3-vl-plus",
      "databricks/databricks-claude-sonnet-4",
      "gemini-1.5-pro",
      "gemini-3-pro-image",
      "gemini-3-pro-image@batch",
      "gemini/gemini-2.5-flash-preview-09-2025",
      "gemini/gemini-2.5-pro",
      "gemini/gemini-2.5-pro@priority",
      "gpt-4o",
      "gpt-4o@priority",
      "gpt-4o@batch",
      "gpt-4o-audio-preview",
      "gpt-4o-mini",
      "gpt-4o-mini@priority",
      "gpt-4o-mini@batch",
      "gpt-4o-mini-2024-07-18",
      "gpt-4o-mini-2024-07-18@batch",
      "gpt-5.4", // its tier prices have no long-context (above 272k) price: unpriced, see below
      "openrouter/openai/o1",
      "openrouter/openai/o3-mini",
      "openrouter/qwen/qwen3.5-plus-02-15",
    ]);
    for (const s of result.snapshots) {
      expect(PriceSnapshotSchema.parse(s)).toEqual(s);
      expect(() => compileSnapshot(s)).not.toThrow();
      const tier = s.model.tier === undefined ? "" : `${s.model.tier}:`;
      expect(s.snapshotId).toBe(`litellm:${s.model.billableModel}:${tier}${FROM}`);
      expect(s.currency).toBe("USD");
      expect(s.effectiveFrom).toBe(FROM);
    }
  });

  it("gpt-4o: input, cached input, output; reasoning billed as output; priority and batch snapshots", () => {
    expect(snapshotOf(result, "gpt-4o")).toEqual({
      snapshotId: `litellm:gpt-4o:${FROM}`,
      model: { billableModel: "gpt-4o", vendor: "openai" },
      currency: "USD",
      effectiveFrom: FROM,
      prices: {
        // A cache hit of any modality is billed at the cache-read price (no audio price apart).
        cached_audio_input_tokens: { as: "cached_input_tokens" },
        cached_input_tokens: { perMillion: "1.25" },
        input_tokens: { perMillion: "2.5" },
        output_tokens: { perMillion: "10" },
        reasoning_tokens: { as: "output_tokens" },
      },
    });
    // Source: cache_read_input_token_cost_priority 2.125e-06, input_cost_per_token_priority
    // 4.25e-06, output_cost_per_token_priority 1.7e-05; *_batches 1.25e-06 and 5e-06.
    expect(tierSnapshotOf(result, "gpt-4o", "priority")).toEqual({
      snapshotId: `litellm:gpt-4o:priority:${FROM}`,
      model: { billableModel: "gpt-4o", vendor: "openai", tier: "priority" },
      currency: "USD",
      effectiveFrom: FROM,
      prices: {
        cached_audio_input_tokens: { as: "cached_input_tokens" },
        cached_input_tokens: { perMillion: "2.125" },
        input_tokens: { perMillion: "4.25" },
        output_tokens: { perMillion: "17" },
        reasoning_tokens: { as: "output_tokens" },
      },
    });
    // No batch cache-read price: neither cached text nor cached audio is priced in batch.
    expect(tierSnapshotOf(result, "gpt-4o", "batch").prices).toEqual({
      input_tokens: { perMillion: "1.25" },
      output_tokens: { perMillion: "5" },
      reasoning_tokens: { as: "output_tokens" },
    });
    // No batch cache-read price in the map: the batch snapshot leaves cached input unpriced.
    expect(skipsOf(result, "gpt-4o")).toEqual([
      ["cache_read_input_token_cost", "serviceTierMissing", "batch"],
    ]);
  });

  it("gpt-4o-mini and its dated version (search priced by context size is skipped)", () => {
    for (const model of ["gpt-4o-mini", "gpt-4o-mini-2024-07-18"]) {
      expect(snapshotOf(result, model).prices).toEqual({
        cached_audio_input_tokens: { as: "cached_input_tokens" },
        cached_input_tokens: { perMillion: "0.075" },
        input_tokens: { perMillion: "0.15" },
        output_tokens: { perMillion: "0.6" },
        reasoning_tokens: { as: "output_tokens" },
      });
    }
    expect(skipsOf(result, "gpt-4o-mini-2024-07-18")).toEqual([
      ["search_context_cost_per_query", "searchContextSize"],
      ["cache_read_input_token_cost", "serviceTierMissing", "batch"],
    ]);
  });

  it("reasoning models: o1 and o3-mini (1.1e-06 stays 1.1), reasoning billed as output", () => {
    expect(snapshotOf(result, "openrouter/openai/o3-mini")).toMatchObject({
      model: { billableModel: "openrouter/openai/o3-mini", vendor: "openrouter" },
      prices: {
        input_tokens: { perMillion: "1.1" },
        output_tokens: { perMillion: "4.4" },
        reasoning_tokens: { as: "output_tokens" },
      },
    });
    expect(snapshotOf(result, "openrouter/openai/o1").prices).toEqual({
      cached_audio_input_tokens: { as: "cached_input_tokens" },
      cached_input_tokens: { perMillion: "7.5" },
      input_tokens: { perMillion: "15" },
      output_tokens: { perMillion: "60" },
      reasoning_tokens: { as: "output_tokens" },
    });
    expect(skipsOf(result, "openrouter/openai/o3-mini")).toEqual([]);
  });

  it("an explicit reasoning price wins over the alias; audio input is its own meter", () => {
    // Audio input priced apart from text (1e-06 against 3e-07) and no cached-audio price: the
    // missing price is the cached-audio one, so cached audio stays unpriced (no alias).
    expect(snapshotOf(result, "gemini/gemini-2.5-flash-preview-09-2025").prices).toEqual({
      cached_input_tokens: { perMillion: "0.075" },
      audio_input_tokens: { perMillion: "1" },
      input_tokens: { perMillion: "0.3" },
      reasoning_tokens: { perMillion: "2.5" },
      output_tokens: { perMillion: "2.5" },
    });
    expect(snapshotOf(result, "gpt-4o-audio-preview").prices).toEqual({
      audio_input_tokens: { perMillion: "40" },
      input_tokens: { perMillion: "2.5" },
      audio_output_tokens: { perMillion: "80" },
      output_tokens: { perMillion: "10" },
      reasoning_tokens: { as: "output_tokens" },
    });
  });

  it("claude-sonnet-4: 5-minute cache writes, web search per unit, a > 200k volume tier; the 1-hour write has no > 200k price", () => {
    const s = snapshotOf(result, "claude-sonnet-4-20250514");
    expect(s.model).toEqual({ billableModel: "claude-sonnet-4-20250514", vendor: "anthropic" });
    expect(s.prices).toEqual({
      cache_write_tokens: { perMillion: "3.75" },
      cached_input_tokens: { perMillion: "0.3" },
      // Follows cached_input_tokens into its tier: 0.3 up to 200k prompt tokens, 0.6 above.
      cached_audio_input_tokens: { as: "cached_input_tokens" },
      input_tokens: { perMillion: "3" },
      output_tokens: { perMillion: "15" },
      // search_context_cost_per_query: 0.01 for every context size → $0.01 per search.
      web_search_requests: { perUnit: "0.01" },
      reasoning_tokens: { as: "output_tokens" },
    });
    expect(s.tiers).toEqual([
      {
        scope: "request",
        mode: "volume",
        baseline: "prompt_tokens",
        boundaries: [
          {
            upTo: 200000,
            prices: {
              input_tokens: { perMillion: "3" },
              output_tokens: { perMillion: "15" },
              cache_write_tokens: { perMillion: "3.75" },
              cached_input_tokens: { perMillion: "0.3" },
            },
          },
          {
            upTo: null,
            prices: {
              input_tokens: { perMillion: "6" },
              output_tokens: { perMillion: "22.5" },
              cache_write_tokens: { perMillion: "7.5" },
              cached_input_tokens: { perMillion: "0.6" },
            },
          },
        ],
      },
    ]);
    // cache_creation_input_token_cost_above_1hr (6e-06) has no _above_200k_tokens price:
    // left unpriced and reported, never billed at $6 above 200k prompt tokens.
    expect(skipsOf(result, "claude-sonnet-4-20250514")).toEqual([
      ["cache_creation_input_token_cost_above_1hr", "tierIncomplete"],
    ]);
  });

  it("claude-sonnet-4.5 on Bedrock: the 1-hour cache write is tiered too (_above_1hr_above_200k_tokens)", () => {
    const tier = snapshotOf(result, "claude-sonnet-4-5-20250929-v1:0").tiers?.[0];
    expect(tier?.boundaries.map((b) => b.upTo)).toEqual([200000, null]);
    expect(tier?.boundaries[0]?.prices.cache_write_1h_tokens).toEqual({ perMillion: "6" });
    expect(tier?.boundaries[1]?.prices).toEqual({
      cache_write_1h_tokens: { perMillion: "12" },
      input_tokens: { perMillion: "6" },
      output_tokens: { perMillion: "22.5" },
      cache_write_tokens: { perMillion: "7.5" },
      cached_input_tokens: { perMillion: "0.6" },
    });
  });

  it("gemini-2.5-pro: tiers above 200k; a priority snapshot with its own tiers; grounding per prompt skipped", () => {
    const s = snapshotOf(result, "gemini/gemini-2.5-pro");
    // No cached-audio and no audio input price: a cached-audio hit is billed at the (tiered)
    // cache-read price, as LiteLLM bills it. The priority snapshot has no cache-read price: no alias.
    expect(s.prices).toEqual({
      cached_audio_input_tokens: { as: "cached_input_tokens" },
      cached_input_tokens: { perMillion: "0.125" },
      input_tokens: { perMillion: "1.25" },
      output_tokens: { perMillion: "10" },
      reasoning_tokens: { as: "output_tokens" },
    });
    expect(tierSnapshotOf(result, "gemini/gemini-2.5-pro", "priority").prices).toEqual({
      input_tokens: { perMillion: "1.25" },
      output_tokens: { perMillion: "10" },
      reasoning_tokens: { as: "output_tokens" },
    });
    expect(s.tiers?.[0]?.boundaries).toEqual([
      {
        upTo: 200000,
        prices: {
          cached_input_tokens: { perMillion: "0.125" },
          input_tokens: { perMillion: "1.25" },
          output_tokens: { perMillion: "10" },
        },
      },
      {
        upTo: null,
        prices: {
          cached_input_tokens: { perMillion: "0.25" },
          input_tokens: { perMillion: "2.5" },
          output_tokens: { perMillion: "15" },
        },
      },
    ]);
    expect(tierSnapshotOf(result, "gemini/gemini-2.5-pro", "priority").tiers?.[0]?.boundaries).toEqual([
      { upTo: 200000, prices: { input_tokens: { perMillion: "1.25" }, output_tokens: { perMillion: "10" } } },
      { upTo: null, prices: { input_tokens: { perMillion: "2.5" }, output_tokens: { perMillion: "15" } } },
    ]);
    expect(skipsOf(result, "gemini/gemini-2.5-pro")).toEqual([
      ["search_context_cost_per_query", "searchPerPrompt"],
      ["cache_read_input_token_cost", "serviceTierMissing", "priority"],
    ]);
  });

  it("gemini-1.5-pro: a 128k tier; per-second, per-character and input-image prices skipped", () => {
    const s = snapshotOf(result, "gemini-1.5-pro");
    expect(s.prices).toEqual({
      input_tokens: { perMillion: "1.25" },
      output_tokens: { perMillion: "5" },
      reasoning_tokens: { as: "output_tokens" },
    });
    expect(s.tiers?.[0]?.boundaries).toEqual([
      { upTo: 128000, prices: { input_tokens: { perMillion: "1.25" }, output_tokens: { perMillion: "5" } } },
      { upTo: null, prices: { input_tokens: { perMillion: "2.5" }, output_tokens: { perMillion: "10" } } },
    ]);
    expect(skipsOf(result, "gemini-1.5-pro")).toEqual([
      ["input_cost_per_audio_per_second", "perSecond"],
      ["input_cost_per_audio_per_second_above_128k_tokens", "perSecond"],
      ["input_cost_per_character", "perCharacter"],
      ["input_cost_per_character_above_128k_tokens", "perCharacter"],
      ["input_cost_per_image", "inputImage"],
      ["input_cost_per_image_above_128k_tokens", "inputImage"],
      ["input_cost_per_video_per_second", "perSecond"],
      ["input_cost_per_video_per_second_above_128k_tokens", "perSecond"],
      ["output_cost_per_character", "perCharacter"],
      ["output_cost_per_character_above_128k_tokens", "perCharacter"],
    ]);
  });

  it("other thresholds (272k, 256k) become tiers at their own boundary", () => {
    const gpt = snapshotOf(result, "gpt-5.4");
    expect(gpt.tiers?.[0]?.boundaries.map((b) => [b.upTo, b.prices.input_tokens])).toEqual([
      [272000, { perMillion: "2.5" }],
      [null, { perMillion: "5" }],
    ]);
    expect(skipsOf(result, "gpt-5.4")).toEqual([
      ["regional_processing_uplift_multiplier_eu", "multiplier"],
      ["regional_processing_uplift_multiplier_us", "multiplier"],
      // Standard is tiered at 272,000 prompt tokens; no tier has an above-272k price, so no tier
      // price is imported (a flex prompt of 300,000 tokens is never billed at the flex base price).
      ["cache_read_input_token_cost_priority", "tierIncomplete", "priority"],
      ["input_cost_per_token_priority", "tierIncomplete", "priority"],
      ["output_cost_per_token_priority", "tierIncomplete", "priority"],
      ["cache_read_input_token_cost_flex", "tierIncomplete", "flex"],
      ["input_cost_per_token_flex", "tierIncomplete", "flex"],
      ["output_cost_per_token_flex", "tierIncomplete", "flex"],
      ["input_cost_per_token_batches", "tierIncomplete", "batch"],
      ["output_cost_per_token_batches", "tierIncomplete", "batch"],
      ["cache_read_input_token_cost", "serviceTierMissing", "batch"],
    ]);
    const qwen = snapshotOf(result, "openrouter/qwen/qwen3.5-plus-02-15");
    expect(qwen.tiers?.[0]?.boundaries).toEqual([
      { upTo: 256000, prices: { input_tokens: { perMillion: "0.4" }, output_tokens: { perMillion: "2.4" } } },
      { upTo: null, prices: { input_tokens: { perMillion: "0.5" }, output_tokens: { perMillion: "3" } } },
    ]);
  });

  it("image generation: per-image and per-image-token prices; input-image prices skipped", () => {
    expect(snapshotOf(result, "aiml/dall-e-3").prices).toEqual({ image_count: { perUnit: "0.052" } });
    // output_cost_per_image_token 0.00012 → $120 per million image tokens; the per-image 0.134
    // is LiteLLM's fallback for the same images, so it is not imported beside it.
    // search_context_cost_per_query 0.014 at every size with web_search_billing_unit per_query.
    expect(snapshotOf(result, "gemini-3-pro-image").prices).toEqual({
      input_tokens: { perMillion: "2" },
      image_output_tokens: { perMillion: "120" },
      output_tokens: { perMillion: "12" },
      web_search_requests: { perUnit: "0.014" },
      reasoning_tokens: { as: "output_tokens" },
    });
    expect(tierSnapshotOf(result, "gemini-3-pro-image", "batch").prices).toEqual({
      input_tokens: { perMillion: "1" },
      output_tokens: { perMillion: "6" },
      reasoning_tokens: { as: "output_tokens" },
    });
    expect(skipsOf(result, "gemini-3-pro-image")).toEqual([
      ["input_cost_per_image", "inputImage"],
      ["output_cost_per_image", "imagePricedPerToken"],
      ["output_cost_per_image_token", "serviceTierMissing", "batch"],
      ["search_context_cost_per_query", "serviceTierMissing", "batch"],
    ]);
    expect(skipsOf(result, "1024-x-1024/dall-e-2")).toEqual([
      ["input_cost_per_pixel", "perPixel"],
      ["output_cost_per_pixel", "perPixel"],
      ["*", "noPrice"],
    ]);
  });

  it("a zero price beside a real one is kept; an entry whose every price is 0 is a placeholder, skipped", () => {
    expect(snapshotOf(result, "cohere.embed-v4:0").prices).toEqual({
      input_tokens: { perMillion: "0.12" },
      output_tokens: { perMillion: "0" },
      reasoning_tokens: { as: "output_tokens" },
    });
    expect(skipsOf(result, "cohere.rerank-v3-5:0")).toEqual([
      ["input_cost_per_query", "perQuery"],
      ["*", "allZero"],
    ]);
    expect(skipsOf(result, "cloudflare/@cf/google/gemma-2b-it-lora")).toEqual([["*", "allZero"]]);
    const free = importLiteLLMCostMap(fixture, { effectiveFrom: FROM, includeFree: true });
    expect(snapshotOf(free, "cloudflare/@cf/google/gemma-2b-it-lora").prices).toMatchObject({
      input_tokens: { perMillion: "0" },
      output_tokens: { perMillion: "0" },
    });
    expect(snapshotOf(free, "cohere.rerank-v3-5:0").prices).toEqual({
      input_tokens: { perMillion: "0" },
      output_tokens: { perMillion: "0" },
      reasoning_tokens: { as: "output_tokens" },
    });
    expect(skipsOf(free, "cohere.rerank-v3-5:0")).toEqual([["input_cost_per_query", "perQuery"]]);
  });

  it("keeps long source digits exactly and skips DBU rates", () => {
    expect(snapshotOf(result, "databricks/databricks-claude-sonnet-4").prices).toEqual({
      input_tokens: { perMillion: "2.9999900000000002" },
      output_tokens: { perMillion: "15.000020000000002" },
      reasoning_tokens: { as: "output_tokens" },
    });
    expect(skipsOf(result, "databricks/databricks-claude-sonnet-4")).toEqual([
      ["input_dbu_cost_per_token", "dbu"],
      ["output_dbu_cost_per_token", "dbu"],
    ]);
  });

  it("skips multipliers, per-second-only and sample_spec entries with reasons", () => {
    expect(skipsOf(result, "claude-opus-4-6")).toEqual([["provider_specific_entry", "multiplier"]]);
    expect(skipsOf(result, "azure/whisper-1")).toEqual([
      ["input_cost_per_second", "perSecond"],
      ["output_cost_per_second", "perSecond"],
      ["*", "noPrice"],
    ]);
    expect(skipsOf(result, "sample_spec")).toEqual([["*", "sampleSpec"]]);
    for (const s of result.skipped) expect(s.reason).toBe(R[s.code]);
  });

  it("dashscope tiered_pricing: one request volume tier on prompt tokens at the range ends", () => {
    // range [0, 32000] 2e-07 / 1.6e-06, [32000, 128000] 3e-07 / 2.4e-06, [128000, 256000] 6e-07 / 4.8e-06;
    // LiteLLM picks the range with start < prompt tokens ≤ end, and the last one above it.
    const s = snapshotOf(result, "dashscope/qwen3-vl-plus");
    expect(s.prices).toEqual({
      input_tokens: { perMillion: "0.2" },
      output_tokens: { perMillion: "1.6" },
      reasoning_tokens: { as: "output_tokens" },
    });
    expect(s.tiers).toEqual([
      {
        scope: "request",
        mode: "volume",
        baseline: "prompt_tokens",
        boundaries: [
          {
            upTo: 32000,
            prices: { input_tokens: { perMillion: "0.2" }, output_tokens: { perMillion: "1.6" } },
          },
          {
            upTo: 128000,
            prices: { input_tokens: { perMillion: "0.3" }, output_tokens: { perMillion: "2.4" } },
          },
          {
            upTo: null,
            prices: { input_tokens: { perMillion: "0.6" }, output_tokens: { perMillion: "4.8" } },
          },
        ],
      },
    ]);
    expect(skipsOf(result, "dashscope/qwen3-vl-plus")).toEqual([]);
  });

  it("reports every skipped price and never lists metadata", () => {
    const entries = JSON.parse(fixture) as Record<string, Record<string, unknown>>;
    for (const { model, field } of result.skipped) {
      expect(Object.keys(entries)).toContain(model);
      if (field !== "*") expect(Object.keys(entries[model] ?? {})).toContain(field);
      expect(field).not.toMatch(
        /^(max_|supports_|supported_|litellm_provider$|mode$|source$|rpm$|tpm$|metadata$)/,
      );
    }
    expect(result.skipped).toHaveLength(46);
  });

  it("rates through the engine: 200,000 prompt tokens is the lower tier, 200,001 the higher (strict >)", () => {
    const engine = new DefaultRatingEngine();
    const snap = snapshotOf(result, "claude-sonnet-4-20250514");
    const rate = (meters: MeterSet) => {
      const rec = engine.rate(observation(meters, { model: snap.model }), snap, ctx);
      return [rec.total, rec.lineItems.map((l) => [l.meter, l.unitPrice, l.subtotal])];
    };
    // 190,000 input + 10,000 cache reads = 200,000 prompt tokens: 0.57 + 0.003 + 1000 × 15/1M = 0.588
    expect(rate({ input_tokens: 190_000, cached_input_tokens: 10_000, output_tokens: 1000 })).toEqual([
      "0.588",
      [
        ["input_tokens", "3", "0.57"],
        ["cached_input_tokens", "0.3", "0.003"],
        ["output_tokens", "15", "0.015"],
      ],
    ]);
    // One more prompt token moves every tiered meter of the request to the higher price.
    // 190,001 × 6/1M + 10,000 × 0.6/1M + 1000 × 22.5/1M = 1.140006 + 0.006 + 0.0225
    expect(rate({ input_tokens: 190_001, cached_input_tokens: 10_000, output_tokens: 1000 })).toEqual([
      "1.168506",
      [
        ["input_tokens", "6", "1.140006"],
        ["cached_input_tokens", "0.6", "0.006"],
        ["output_tokens", "22.5", "0.0225"],
      ],
    ]);
  });
});

describe("fields that are not imported", () => {
  it("a negative price is skipped, the rest of the entry is kept", () => {
    const r = one('{"input_cost_per_token": -3e-06, "output_cost_per_token": 1.5e-05}');
    expect(r.snapshots[0]?.prices).toEqual({
      output_tokens: { perMillion: "15" },
      reasoning_tokens: { as: "output_tokens" },
    });
    expect(r.skipped).toEqual([
      { model: "m", field: "input_cost_per_token", code: "negative", reason: R.negative },
    ]);
  });

  it("a negative output price leaves output and reasoning unpriced (never $0)", () => {
    const r = one('{"input_cost_per_token": 3e-06, "output_cost_per_token": -1}');
    expect(r.snapshots[0]?.prices).toEqual({ input_tokens: { perMillion: "3" } });
  });

  it("non-number prices are skipped", () => {
    const r = one(
      '{"input_cost_per_token": "3e-06", "output_cost_per_token": null, "cache_read_input_token_cost": true,' +
        ' "cache_creation_input_token_cost": {"a": 1}, "output_cost_per_audio_token": [1], "input_cost_per_audio_token": 1e-6}',
    );
    expect(r.skipped.map((s) => [s.field, s.code])).toEqual([
      ["input_cost_per_token", "notANumber"],
      ["output_cost_per_token", "notANumber"],
      ["cache_read_input_token_cost", "notANumber"],
      ["cache_creation_input_token_cost", "notANumber"],
      ["output_cost_per_audio_token", "notANumber"],
    ]);
    expect(r.snapshots[0]?.prices).toEqual({ audio_input_tokens: { perMillion: "1" } });
  });

  it("prices that cannot be represented exactly are skipped, never rounded or flushed to 0", () => {
    const r = one(
      `{"input_cost_per_token": 1e-99999999999999999999, "output_cost_per_token": 1e99999999999999999999,` +
        ` "cache_read_input_token_cost": 1e-40, "cache_creation_input_token_cost": 1e400,` +
        ` "input_cost_per_audio_token": 1.0000000000000000000000000000000000000001, "output_cost_per_audio_token": 2e-7}`,
    );
    expect(r.skipped.map((s) => [s.field, s.code])).toEqual([
      ["input_cost_per_token", "outOfRange"],
      ["output_cost_per_token", "outOfRange"],
      ["cache_read_input_token_cost", "tooManyDigits"],
      ["cache_creation_input_token_cost", "tooManyDigits"],
      ["input_cost_per_audio_token", "tooPrecise"],
    ]);
    expect(r.snapshots[0]?.prices).toEqual({ audio_output_tokens: { perMillion: "0.2" } });
  });

  it("unknown price fields are skipped; unknown metadata is ignored", () => {
    const r = one(
      '{"input_cost_per_token": 1e-6, "input_cost_per_teleport": 1e-7, "output_cost_per_request": 0.01,' +
        ' "vector_store_cost_per_gb_per_day": 0.1, "brand_new_field": 5, "supports_teleport": true}',
    );
    expect(r.skipped.map((s) => [s.field, s.code])).toEqual([
      ["input_cost_per_teleport", "unknown"],
      ["output_cost_per_request", "perQuery"],
      ["vector_store_cost_per_gb_per_day", "perStorage"],
    ]);
  });

  it("an entry without a mappable price gives no snapshot; a non-object entry is skipped", () => {
    const r = importLiteLLMCostMap(
      '{"a": {"mode": "chat", "max_tokens": 10}, "b": 42, "c": {"input_cost_per_second": 0.04, "mode": "chat"}}',
    );
    expect(r.snapshots).toEqual([]);
    expect(r.skipped).toEqual([
      { model: "a", field: "*", code: "noPrice", reason: R.noPrice },
      { model: "b", field: "*", code: "notAnObject", reason: R.notAnObject },
      { model: "c", field: "input_cost_per_second", code: "perSecond", reason: R.perSecond },
      { model: "c", field: "*", code: "noPrice", reason: R.noPrice },
    ]);
  });

  it("a model listed twice, or a price listed twice in one entry, is ambiguous and skipped", () => {
    const r = importLiteLLMCostMap(
      '{"m": {"input_cost_per_token": 1e-6}, "n": {"input_cost_per_token": 1e-6, "input_cost_per_token": 2e-6,' +
        ' "output_cost_per_token": 4e-6, "max_tokens": 1, "max_tokens": 2}, "m": {"input_cost_per_token": 2e-6}}',
    );
    expect(r.snapshots.map((s) => [s.model.billableModel, s.prices])).toEqual([
      ["n", { output_tokens: { perMillion: "4" }, reasoning_tokens: { as: "output_tokens" } }],
    ]);
    expect(r.skipped).toEqual([
      { model: "m", field: "*", code: "duplicateModel", reason: R.duplicateModel },
      { model: "n", field: "input_cost_per_token", code: "duplicateField", reason: R.duplicateField },
    ]);
  });

  it("a model name too long for a snapshot id is skipped, not a crash", () => {
    const long = "x".repeat(300);
    const r = one('{"input_cost_per_token": 1e-6}', long);
    expect(r.snapshots).toEqual([]);
    expect(r.skipped).toHaveLength(1);
    expect(r.skipped[0]).toMatchObject({ field: "*", code: "invalidSnapshot" });
  });

  it("vendor comes from litellm_provider only when it is a non-empty string", () => {
    expect(one('{"input_cost_per_token": 1e-6, "litellm_provider": 7}').snapshots[0]?.model).toEqual({
      billableModel: "m",
    });
    expect(one('{"input_cost_per_token": 1e-6, "litellm_provider": ""}').snapshots[0]?.model).toEqual({
      billableModel: "m",
    });
  });

  it("no reasoning alias without an output price", () => {
    expect(one('{"input_cost_per_token": 1e-6}').snapshots[0]?.prices).toEqual({
      input_tokens: { perMillion: "1" },
    });
  });
});

describe("tiers", () => {
  it("a meter priced at a threshold but without a base price is not tiered (the lower tier would be unpriced)", () => {
    // Gemini shape: cache writes priced only above 200k.
    const r = one(
      '{"input_cost_per_token": 1.25e-06, "output_cost_per_token": 1e-05,' +
        ' "input_cost_per_token_above_200k_tokens": 2.5e-06, "output_cost_per_token_above_200k_tokens": 1.5e-05,' +
        ' "cache_creation_input_token_cost_above_200k_tokens": 2.5e-07}',
    );
    expect(r.skipped.map((s) => [s.field, s.code])).toEqual([
      ["cache_creation_input_token_cost_above_200k_tokens", "tierWithoutBase"],
    ]);
    expect(r.snapshots[0]?.tiers?.[0]?.boundaries).toEqual([
      { upTo: 200000, prices: { input_tokens: { perMillion: "1.25" }, output_tokens: { perMillion: "10" } } },
      { upTo: null, prices: { input_tokens: { perMillion: "2.5" }, output_tokens: { perMillion: "15" } } },
    ]);
    expect(r.snapshots[0]?.prices.cache_write_tokens).toBeUndefined();
  });

  it("several thresholds make one tier, ascending", () => {
    const r = one(
      '{"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06,' +
        ' "input_cost_per_token_above_272k_tokens": 4e-06, "input_cost_per_token_above_128k_tokens": 2e-06,' +
        ' "output_cost_per_token_above_128k_tokens": 3e-06, "output_cost_per_token_above_272k_tokens": 5e-06}',
    );
    const snap = r.snapshots[0] as PriceSnapshot;
    expect(snap.tiers).toEqual([
      {
        scope: "request",
        mode: "volume",
        baseline: "prompt_tokens",
        boundaries: [
          { upTo: 128000, prices: { input_tokens: { perMillion: "1" }, output_tokens: { perMillion: "2" } } },
          { upTo: 272000, prices: { input_tokens: { perMillion: "2" }, output_tokens: { perMillion: "3" } } },
          { upTo: null, prices: { input_tokens: { perMillion: "4" }, output_tokens: { perMillion: "5" } } },
        ],
      },
    ]);
    expect(r.skipped).toEqual([]);
    expect(() => compileSnapshot(snap)).not.toThrow();
  });

  it("a meter without a price at one threshold is reported and left unpriced, never kept at a lower price", () => {
    // Output is priced above 128k but not above 272k; the 1-hour cache write above no threshold.
    const r = one(
      '{"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06, "cache_creation_input_token_cost_above_1hr": 2e-06,' +
        ' "input_cost_per_token_above_272k_tokens": 4e-06, "input_cost_per_token_above_128k_tokens": 2e-06,' +
        ' "output_cost_per_token_above_128k_tokens": 3e-06}',
    );
    expect(r.skipped.map((s) => [s.field, s.code])).toEqual([
      ["output_cost_per_token", "tierIncomplete"],
      ["output_cost_per_token_above_128k_tokens", "tierIncomplete"],
      ["cache_creation_input_token_cost_above_1hr", "tierIncomplete"],
    ]);
    const snap = r.snapshots[0] as PriceSnapshot;
    expect(snap.prices).toEqual({ input_tokens: { perMillion: "1" } });
    expect(snap.tiers?.[0]?.boundaries.map((b) => b.prices)).toEqual([
      { input_tokens: { perMillion: "1" } },
      { input_tokens: { perMillion: "2" } },
      { input_tokens: { perMillion: "4" } },
    ]);
  });

  it("a bad threshold price leaves the meter unpriced instead of billing it at the lower tier", () => {
    const r = one(
      '{"input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,' +
        ' "input_cost_per_token_above_200k_tokens": -6e-06, "output_cost_per_token_above_200k_tokens": 2.25e-05}',
    );
    expect(r.skipped.map((s) => [s.field, s.code])).toEqual([
      ["input_cost_per_token_above_200k_tokens", "negative"],
      ["input_cost_per_token", "tierPriceInvalid"],
    ]);
    expect(r.snapshots[0]?.prices.input_tokens).toBeUndefined();
    expect(r.snapshots[0]?.tiers?.[0]?.boundaries).toEqual([
      { upTo: 200000, prices: { output_tokens: { perMillion: "15" } } },
      { upTo: null, prices: { output_tokens: { perMillion: "22.5" } } },
    ]);
  });

  it("threshold variants of unmapped prices are skipped", () => {
    const r = one('{"input_cost_per_token": 1e-6, "output_cost_per_image_above_200k_tokens": 0.1}');
    expect(r.skipped.map((s) => [s.field, s.code])).toEqual([
      ["output_cost_per_image_above_200k_tokens", "tierUnmapped"],
    ]);
  });
});

describe("options and errors", () => {
  it("applies effectiveFrom, currency and snapshotIdPrefix", () => {
    const r = importLiteLLMCostMap('{"gpt-4o": {"input_cost_per_token": 2.5e-06}}', {
      effectiveFrom: "2025-06-01T12:30:00.5Z",
      currency: "EUR",
      snapshotIdPrefix: "acme-sheet",
    });
    expect(r.snapshots[0]).toMatchObject({
      snapshotId: "acme-sheet:gpt-4o:2025-06-01T12:30:00.5Z",
      currency: "EUR",
      effectiveFrom: "2025-06-01T12:30:00.5Z",
    });
  });

  it("defaults to USD from 1970-01-01T00:00:00Z with prefix litellm", () => {
    expect(importLiteLLMCostMap('{"m": {"input_cost_per_token": 1e-6}}').snapshots[0]).toMatchObject({
      snapshotId: "litellm:m:1970-01-01T00:00:00Z",
      currency: "USD",
      effectiveFrom: "1970-01-01T00:00:00Z",
    });
  });

  const badOpts: Array<[string, Record<string, unknown>, string]> = [
    ["a date without time", { effectiveFrom: "2026-01-01" }, "opts.effectiveFrom"],
    ["a non-UTC offset", { effectiveFrom: "2026-01-01T00:00:00+02:00" }, "opts.effectiveFrom"],
    ["a number for effectiveFrom", { effectiveFrom: 0 }, "opts.effectiveFrom"],
    ["a lower-case currency", { currency: "usd" }, "opts.currency"],
    ["an unknown currency", { currency: "XYZ" }, "opts.currency"],
    ["an empty prefix", { snapshotIdPrefix: "" }, "opts.snapshotIdPrefix"],
    ["an unknown option", { effectivefrom: "2026-01-01T00:00:00Z" }, "opts"],
  ];
  for (const [what, opts, path] of badOpts) {
    it(`rejects ${what}, naming ${path}`, () => {
      const e = thrown(() => importLiteLLMCostMap("{}", opts as never));
      expect(e).toBeInstanceOf(LatchValidationError);
      const err = e as LatchValidationError;
      expect(err.code).toBe("invalid_input");
      expect(err.issues[0]?.path).toBe(path);
      expect(err.message).toContain(path);
    });
  }

  it("bad JSON is a LatchValidationError with line, column and JSON pointer", () => {
    const text =
      '{\n  "gpt-4o": {\n    "input_cost_per_token": 2.5e-06,\n    "output_cost_per_token": NaN\n  }\n}';
    const e = thrown(() => importLiteLLMCostMap(text));
    expect(e).toBeInstanceOf(JsonParseError);
    expect(e).toBeInstanceOf(LatchValidationError);
    expect(LatchError.isInstance(e)).toBe(true);
    const err = e as JsonParseError;
    expect(err.subject).toBe("LiteLLM cost map");
    expect([err.line, err.column]).toEqual([4, 30]);
    expect(err.issues).toEqual([
      {
        path: "/gpt-4o/output_cost_per_token",
        message: "unexpected character 'N': expected a JSON value at line 4, column 30",
      },
    ]);
  });

  it("a trailing comma (common in hand-edited maps) is reported, not tolerated", () => {
    const e = thrown(() => importLiteLLMCostMap('{"m": {"input_cost_per_token": 1e-6,}}')) as JsonParseError;
    expect(e.issues[0]?.path).toBe("/m");
    expect(e.issues[0]?.message).toContain("trailing comma before '}' at line 1, column 37");
  });

  it("the top level must be an object", () => {
    const e = thrown(() => importLiteLLMCostMap("[1, 2]")) as LatchValidationError;
    expect(e).toBeInstanceOf(LatchValidationError);
    expect(e.issues).toEqual([
      { path: "", message: "expected a JSON object mapping model names to their prices" },
    ]);
    expect(thrown(() => importLiteLLMCostMap(42 as unknown as string))).toBeInstanceOf(LatchValidationError);
  });

  it("imports a LiteLLM-sized map (about 2 MB) in linear time", () => {
    const parts: string[] = [];
    for (let i = 0; i < 5000; i++) {
      parts.push(
        `"vendor/model-${i}": {"input_cost_per_token": ${i + 1}e-08, "output_cost_per_token": 1.${i}e-06,` +
          ` "cache_read_input_token_cost": 3e-08, "input_cost_per_token_above_200k_tokens": ${i + 2}e-08,` +
          ` "output_cost_per_token_above_200k_tokens": 3e-06, "cache_read_input_token_cost_above_200k_tokens": 6e-08,` +
          ` "input_cost_per_token_batches": 1e-08, "output_cost_per_token_batches": 1e-06,` +
          ` "input_cost_per_token_above_200k_tokens_batches": 2e-08, "output_cost_per_token_above_200k_tokens_batches": 2e-06,` +
          ` "litellm_provider": "vendor", "mode": "chat",` +
          ` "max_tokens": 128000, "supports_vision": true, "supports_function_calling": true,` +
          ` "source": "https://example.com/pricing/model-${i}"}`,
      );
    }
    const text = `{${parts.join(",\n")}}`;
    expect(text.length).toBeGreaterThan(1_900_000);
    const started = performance.now();
    const r = importLiteLLMCostMap(text);
    // About 1 s alone; 15 s was seen with ~20 processes on the two cores. Quadratic work on
    // 15,000 entries would take many minutes.
    expect(performance.now() - started).toBeLessThan(45_000);
    // A standard and a batch snapshot per entry; the batch one has no cache-read price.
    expect(r.snapshots).toHaveLength(10000);
    expect(r.skipped).toHaveLength(5000);
    expect(new Set(r.skipped.map((s) => `${s.field} ${s.code} ${s.tier}`))).toEqual(
      new Set(["cache_read_input_token_cost serviceTierMissing batch"]),
    );
    expect(r.snapshots[2 * 4321]?.prices.output_tokens).toEqual({ perMillion: "1.4321" });
    expect(r.snapshots[2 * 4321]?.tiers?.[0]?.boundaries[1]?.prices.input_tokens).toEqual({
      perMillion: "43.23",
    });
  });
});
