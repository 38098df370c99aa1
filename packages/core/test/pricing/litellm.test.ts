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
  result.skipped.filter((s) => s.model === model).map((s) => [s.field, s.reason]);

/** Imports one entry given as a JSON text fragment (so prices keep their exact text). */
const one = (entryJson: string, model = "m") => importLiteLLMCostMap(`{"${model}": ${entryJson}}`);
const perMillion = (perToken: string) => {
  const r = one(`{"input_cost_per_token": ${perToken}}`);
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
    expect(result.snapshots.map((s) => s.model.billableModel)).toEqual([
      "aiml/dall-e-3",
      "claude-sonnet-4-5-20250929-v1:0",
      "claude-opus-4-1",
      "claude-opus-4-6",
      "claude-sonnet-4-20250514",
      "cloudflare/@cf/google/gemma-2b-it-lora",
      "cohere.embed-v4:0",
      "cohere.rerank-v3-5:0",
      "databricks/databricks-claude-sonnet-4",
      "gemini-1.5-pro",
      "gemini-3-pro-image",
      "gemini/gemini-2.5-flash-preview-09-2025",
      "gemini/gemini-2.5-pro",
      "gpt-4o",
      "gpt-4o-audio-preview",
      "gpt-4o-mini",
      "gpt-4o-mini-2024-07-18",
      "gpt-5.4",
      "openrouter/openai/o1",
      "openrouter/openai/o3-mini",
      "openrouter/qwen/qwen3.5-plus-02-15",
    ]);
    for (const s of result.snapshots) {
      expect(PriceSnapshotSchema.parse(s)).toEqual(s);
      expect(() => compileSnapshot(s)).not.toThrow();
      expect(s.snapshotId).toBe(`litellm:${s.model.billableModel}:${FROM}`);
      expect(s.currency).toBe("USD");
      expect(s.effectiveFrom).toBe(FROM);
    }
  });

  it("gpt-4o: input, cached input, output; reasoning billed as output; service tiers skipped", () => {
    expect(snapshotOf(result, "gpt-4o")).toEqual({
      snapshotId: `litellm:gpt-4o:${FROM}`,
      model: { billableModel: "gpt-4o", vendor: "openai" },
      currency: "USD",
      effectiveFrom: FROM,
      prices: {
        cached_input_tokens: { perMillion: "1.25" },
        input_tokens: { perMillion: "2.5" },
        output_tokens: { perMillion: "10" },
        reasoning_tokens: { as: "output_tokens" },
      },
    });
    expect(skipsOf(result, "gpt-4o")).toEqual([
      ["cache_read_input_token_cost_priority", R.priority],
      ["input_cost_per_token_batches", R.batch],
      ["input_cost_per_token_priority", R.priority],
      ["output_cost_per_token_batches", R.batch],
      ["output_cost_per_token_priority", R.priority],
    ]);
  });

  it("gpt-4o-mini and its dated version (with search context prices skipped)", () => {
    for (const model of ["gpt-4o-mini", "gpt-4o-mini-2024-07-18"]) {
      expect(snapshotOf(result, model).prices).toEqual({
        cached_input_tokens: { perMillion: "0.075" },
        input_tokens: { perMillion: "0.15" },
        output_tokens: { perMillion: "0.6" },
        reasoning_tokens: { as: "output_tokens" },
      });
    }
    expect(skipsOf(result, "gpt-4o-mini-2024-07-18")).toEqual([
      ["input_cost_per_token_batches", R.batch],
      ["output_cost_per_token_batches", R.batch],
      ["search_context_cost_per_query", R.perQuery],
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
      cached_input_tokens: { perMillion: "7.5" },
      input_tokens: { perMillion: "15" },
      output_tokens: { perMillion: "60" },
      reasoning_tokens: { as: "output_tokens" },
    });
    expect(skipsOf(result, "openrouter/openai/o3-mini")).toEqual([]);
  });

  it("an explicit reasoning price wins over the alias; audio input is its own meter", () => {
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

  it("claude-sonnet-4: 5-minute and 1-hour cache writes, and a > 200k request-scoped volume tier", () => {
    const s = snapshotOf(result, "claude-sonnet-4-20250514");
    expect(s.model).toEqual({ billableModel: "claude-sonnet-4-20250514", vendor: "anthropic" });
    expect(s.prices).toEqual({
      cache_write_tokens: { perMillion: "3.75" },
      cache_write_1h_tokens: { perMillion: "6" },
      cached_input_tokens: { perMillion: "0.3" },
      input_tokens: { perMillion: "3" },
      output_tokens: { perMillion: "15" },
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
    expect(skipsOf(result, "claude-sonnet-4-20250514")).toEqual([
      ["search_context_cost_per_query", R.perQuery],
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

  it("gemini-2.5-pro: tiers above 200k; priority prices (also above 200k) skipped", () => {
    const s = snapshotOf(result, "gemini/gemini-2.5-pro");
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
    expect(skipsOf(result, "gemini/gemini-2.5-pro")).toEqual([
      ["input_cost_per_token_priority", R.priority],
      ["input_cost_per_token_above_200k_tokens_priority", R.priority],
      ["output_cost_per_token_priority", R.priority],
      ["output_cost_per_token_above_200k_tokens_priority", R.priority],
      ["search_context_cost_per_query", R.perQuery],
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
      ["input_cost_per_audio_per_second", R.perSecond],
      ["input_cost_per_audio_per_second_above_128k_tokens", R.perSecond],
      ["input_cost_per_character", R.perCharacter],
      ["input_cost_per_character_above_128k_tokens", R.perCharacter],
      ["input_cost_per_image", R.inputImage],
      ["input_cost_per_image_above_128k_tokens", R.inputImage],
      ["input_cost_per_video_per_second", R.perSecond],
      ["input_cost_per_video_per_second_above_128k_tokens", R.perSecond],
      ["output_cost_per_character", R.perCharacter],
      ["output_cost_per_character_above_128k_tokens", R.perCharacter],
    ]);
  });

  it("other thresholds (272k, 256k) become tiers at their own boundary", () => {
    const gpt = snapshotOf(result, "gpt-5.4");
    expect(gpt.tiers?.[0]?.boundaries.map((b) => [b.upTo, b.prices.input_tokens])).toEqual([
      [272000, { perMillion: "2.5" }],
      [null, { perMillion: "5" }],
    ]);
    expect(skipsOf(result, "gpt-5.4").map(([field, reason]) => `${field}: ${reason}`)).toEqual([
      `cache_read_input_token_cost_flex: ${R.flex}`,
      `cache_read_input_token_cost_priority: ${R.priority}`,
      `input_cost_per_token_flex: ${R.flex}`,
      `input_cost_per_token_batches: ${R.batch}`,
      `input_cost_per_token_priority: ${R.priority}`,
      `output_cost_per_token_flex: ${R.flex}`,
      `output_cost_per_token_batches: ${R.batch}`,
      `output_cost_per_token_priority: ${R.priority}`,
      `regional_processing_uplift_multiplier_eu: ${R.multiplier}`,
      `regional_processing_uplift_multiplier_us: ${R.multiplier}`,
    ]);
    const qwen = snapshotOf(result, "openrouter/qwen/qwen3.5-plus-02-15");
    expect(qwen.tiers?.[0]?.boundaries).toEqual([
      { upTo: 256000, prices: { input_tokens: { perMillion: "0.4" }, output_tokens: { perMillion: "2.4" } } },
      { upTo: null, prices: { input_tokens: { perMillion: "0.5" }, output_tokens: { perMillion: "3" } } },
    ]);
  });

  it("image generation: output_cost_per_image → image_count per unit; input images and image tokens skipped", () => {
    expect(snapshotOf(result, "aiml/dall-e-3").prices).toEqual({ image_count: { perUnit: "0.052" } });
    expect(snapshotOf(result, "gemini-3-pro-image").prices).toEqual({
      input_tokens: { perMillion: "2" },
      image_count: { perUnit: "0.134" },
      output_tokens: { perMillion: "12" },
      reasoning_tokens: { as: "output_tokens" },
    });
    expect(skipsOf(result, "gemini-3-pro-image")).toEqual([
      ["input_cost_per_image", R.inputImage],
      ["input_cost_per_token_batches", R.batch],
      ["output_cost_per_image_token", R.imageToken],
      ["output_cost_per_token_batches", R.batch],
      ["search_context_cost_per_query", R.perQuery],
    ]);
    expect(skipsOf(result, "1024-x-1024/dall-e-2")).toEqual([
      ["input_cost_per_pixel", R.perPixel],
      ["output_cost_per_pixel", R.perPixel],
      ["*", R.noPrice],
    ]);
  });

  it("embeddings, rerank and free models keep their zero prices (a real $0, not a missing one)", () => {
    expect(snapshotOf(result, "cohere.embed-v4:0").prices).toEqual({
      input_tokens: { perMillion: "0.12" },
      output_tokens: { perMillion: "0" },
      reasoning_tokens: { as: "output_tokens" },
    });
    expect(snapshotOf(result, "cohere.rerank-v3-5:0").prices.input_tokens).toEqual({ perMillion: "0" });
    expect(skipsOf(result, "cohere.rerank-v3-5:0")).toEqual([["input_cost_per_query", R.perQuery]]);
    expect(snapshotOf(result, "cloudflare/@cf/google/gemma-2b-it-lora").prices).toMatchObject({
      input_tokens: { perMillion: "0" },
      output_tokens: { perMillion: "0" },
    });
  });

  it("keeps long source digits exactly and skips DBU rates", () => {
    expect(snapshotOf(result, "databricks/databricks-claude-sonnet-4").prices).toEqual({
      input_tokens: { perMillion: "2.9999900000000002" },
      output_tokens: { perMillion: "15.000020000000002" },
      reasoning_tokens: { as: "output_tokens" },
    });
    expect(skipsOf(result, "databricks/databricks-claude-sonnet-4")).toEqual([
      ["input_dbu_cost_per_token", R.dbu],
      ["output_dbu_cost_per_token", R.dbu],
    ]);
  });

  it("skips multipliers, tiered_pricing, per-second-only and sample_spec entries with reasons", () => {
    expect(skipsOf(result, "claude-opus-4-6")).toEqual([
      ["search_context_cost_per_query", R.perQuery],
      ["provider_specific_entry", R.multiplier],
    ]);
    expect(skipsOf(result, "dashscope/qwen3-vl-plus")).toEqual([
      ["tiered_pricing", R.tieredPricing],
      ["*", R.noPrice],
    ]);
    expect(skipsOf(result, "azure/whisper-1")).toEqual([
      ["input_cost_per_second", R.perSecond],
      ["output_cost_per_second", R.perSecond],
      ["*", R.noPrice],
    ]);
    expect(skipsOf(result, "sample_spec")).toEqual([["*", R.sampleSpec]]);
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
    expect(result.skipped).toHaveLength(60);
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
    expect(r.skipped).toEqual([{ model: "m", field: "input_cost_per_token", reason: R.negative }]);
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
    expect(r.skipped.map((s) => [s.field, s.reason])).toEqual([
      ["input_cost_per_token", R.notANumber],
      ["output_cost_per_token", R.notANumber],
      ["cache_read_input_token_cost", R.notANumber],
      ["cache_creation_input_token_cost", R.notANumber],
      ["output_cost_per_audio_token", R.notANumber],
    ]);
    expect(r.snapshots[0]?.prices).toEqual({ audio_input_tokens: { perMillion: "1" } });
  });

  it("prices that cannot be represented exactly are skipped, never rounded or flushed to 0", () => {
    const r = one(
      `{"input_cost_per_token": 1e-99999999999999999999, "output_cost_per_token": 1e99999999999999999999,` +
        ` "cache_read_input_token_cost": 1e-40, "cache_creation_input_token_cost": 1e400,` +
        ` "input_cost_per_audio_token": 1.0000000000000000000000000000000000000001, "output_cost_per_audio_token": 2e-7}`,
    );
    expect(r.skipped.map((s) => [s.field, s.reason])).toEqual([
      ["input_cost_per_token", R.outOfRange],
      ["output_cost_per_token", R.outOfRange],
      ["cache_read_input_token_cost", R.tooManyDigits],
      ["cache_creation_input_token_cost", R.tooManyDigits],
      ["input_cost_per_audio_token", R.tooPrecise],
    ]);
    expect(r.snapshots[0]?.prices).toEqual({ audio_output_tokens: { perMillion: "0.2" } });
  });

  it("unknown price fields are skipped; unknown metadata is ignored", () => {
    const r = one(
      '{"input_cost_per_token": 1e-6, "input_cost_per_token_cache_hit": 1e-7, "output_cost_per_request": 0.01,' +
        ' "vector_store_cost_per_gb_per_day": 0.1, "brand_new_field": 5, "supports_teleport": true}',
    );
    expect(r.skipped.map((s) => [s.field, s.reason])).toEqual([
      ["input_cost_per_token_cache_hit", R.unknown],
      ["output_cost_per_request", R.perQuery],
      ["vector_store_cost_per_gb_per_day", R.perStorage],
    ]);
  });

  it("an entry without a mappable price gives no snapshot; a non-object entry is skipped", () => {
    const r = importLiteLLMCostMap(
      '{"a": {"mode": "chat", "max_tokens": 10}, "b": 42, "c": {"output_cost_per_image": 0.04, "mode": "chat"}}',
    );
    expect(r.snapshots).toEqual([]);
    expect(r.skipped).toEqual([
      { model: "a", field: "*", reason: R.noPrice },
      { model: "b", field: "*", reason: R.notAnObject },
      { model: "c", field: "output_cost_per_image", reason: R.imageNotGeneration },
      { model: "c", field: "*", reason: R.noPrice },
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
      { model: "m", field: "*", reason: R.duplicateModel },
      { model: "n", field: "input_cost_per_token", reason: R.duplicateField },
    ]);
  });

  it("a model name too long for a snapshot id is skipped, not a crash", () => {
    const long = "x".repeat(300);
    const r = one('{"input_cost_per_token": 1e-6}', long);
    expect(r.snapshots).toEqual([]);
    expect(r.skipped).toHaveLength(1);
    expect(r.skipped[0]?.field).toBe("*");
    expect(r.skipped[0]?.reason).toContain("snapshot is invalid");
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
        ' "input_cost_per_token_above_200k_tokens": 2.5e-06,' +
        ' "cache_creation_input_token_cost_above_200k_tokens": 2.5e-07}',
    );
    expect(r.skipped).toEqual([
      { model: "m", field: "cache_creation_input_token_cost_above_200k_tokens", reason: R.tierWithoutBase },
    ]);
    expect(r.snapshots[0]?.tiers?.[0]?.boundaries).toEqual([
      { upTo: 200000, prices: { input_tokens: { perMillion: "1.25" } } },
      { upTo: null, prices: { input_tokens: { perMillion: "2.5" } } },
    ]);
    expect(r.snapshots[0]?.prices.cache_write_tokens).toBeUndefined();
  });

  it("several thresholds make one tier; a meter without a price at a threshold keeps the tier below's", () => {
    const r = one(
      '{"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06,' +
        ' "input_cost_per_token_above_272k_tokens": 4e-06, "input_cost_per_token_above_128k_tokens": 2e-06,' +
        ' "output_cost_per_token_above_128k_tokens": 3e-06}',
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
          { upTo: null, prices: { input_tokens: { perMillion: "4" }, output_tokens: { perMillion: "3" } } },
        ],
      },
    ]);
    expect(() => compileSnapshot(snap)).not.toThrow();
  });

  it("a bad threshold price leaves the meter unpriced instead of billing it at the lower tier", () => {
    const r = one(
      '{"input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,' +
        ' "input_cost_per_token_above_200k_tokens": -6e-06, "output_cost_per_token_above_200k_tokens": 2.25e-05}',
    );
    expect(r.skipped).toEqual([
      { model: "m", field: "input_cost_per_token_above_200k_tokens", reason: R.negative },
      { model: "m", field: "input_cost_per_token", reason: R.tierPriceInvalid },
    ]);
    expect(r.snapshots[0]?.prices.input_tokens).toBeUndefined();
    expect(r.snapshots[0]?.tiers?.[0]?.boundaries).toEqual([
      { upTo: 200000, prices: { output_tokens: { perMillion: "15" } } },
      { upTo: null, prices: { output_tokens: { perMillion: "22.5" } } },
    ]);
  });

  it("threshold variants of unmapped prices are skipped", () => {
    const r = one('{"input_cost_per_token": 1e-6, "output_cost_per_image_above_200k_tokens": 0.1}');
    expect(r.skipped).toEqual([
      { model: "m", field: "output_cost_per_image_above_200k_tokens", reason: R.tierUnmapped },
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
          ` "input_cost_per_token_batches": 1e-08, "litellm_provider": "vendor", "mode": "chat",` +
          ` "max_tokens": 128000, "supports_vision": true, "supports_function_calling": true,` +
          ` "source": "https://example.com/pricing/model-${i}"}`,
      );
    }
    const text = `{${parts.join(",\n")}}`;
    expect(text.length).toBeGreaterThan(1_900_000);
    const started = performance.now();
    const r = importLiteLLMCostMap(text);
    expect(performance.now() - started).toBeLessThan(5000);
    expect(r.snapshots).toHaveLength(5000);
    expect(r.skipped).toHaveLength(5000);
    expect(r.snapshots[4321]?.prices.output_tokens).toEqual({ perMillion: "1.4321" });
    expect(r.snapshots[4321]?.tiers?.[0]?.boundaries[1]?.prices.input_tokens).toEqual({
      perMillion: "43.23",
    });
  });
});
