import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileSnapshot } from "../../src/pricing/compiled-snapshot.js";
import { importLiteLLMCostMap, type LiteLLMImportResult } from "../../src/pricing/litellm.js";
import { DefaultRatingEngine } from "../../src/rating/engine.js";
import type { PriceSnapshot } from "../../src/schemas/pricing.js";
import { ctx, observation } from "../support.js";

// Entries below are copied from LiteLLM's model_prices_and_context_window.json (price fields
// only, in the map's own number text); every expectation is the source number × 10^6 per
// million tokens (or as written per unit), worked out by hand in the comment beside it.
const FROM = "2026-01-01T00:00:00Z";
const load = (entries: string, includeFree = false) =>
  importLiteLLMCostMap(`{${entries}}`, { effectiveFrom: FROM, includeFree });

function snap(r: LiteLLMImportResult, model: string, tier?: string): PriceSnapshot {
  const found = r.snapshots.find((s) => s.model.billableModel === model && s.model.tier === tier);
  if (!found) throw new Error(`no ${tier ?? "standard"} snapshot for ${model}`);
  return found;
}
const skips = (r: LiteLLMImportResult) =>
  r.skipped.map((s) => (s.tier ? [s.model, s.field, s.code, s.tier] : [s.model, s.field, s.code]));

describe("service tiers", () => {
  const GPT5 =
    '"gpt-5": {"cache_read_input_token_cost": 1.25e-07, "cache_read_input_token_cost_flex": 6.25e-08,' +
    ' "cache_read_input_token_cost_priority": 2.5e-07, "input_cost_per_token": 1.25e-06,' +
    ' "input_cost_per_token_flex": 6.25e-07, "input_cost_per_token_priority": 2.5e-06,' +
    ' "litellm_provider": "openai", "mode": "chat", "output_cost_per_token": 1e-05,' +
    ' "output_cost_per_token_flex": 5e-06, "output_cost_per_token_priority": 2e-05}';

  it("gpt-5: standard, priority and flex snapshots, each with its own id and model.tier", () => {
    const r = load(GPT5);
    expect(r.snapshots.map((s) => s.snapshotId)).toEqual([
      `litellm:gpt-5:${FROM}`,
      `litellm:gpt-5:priority:${FROM}`,
      `litellm:gpt-5:flex:${FROM}`,
    ]);
    // priority: 2.5e-06 → 2.5, 2e-05 → 20, 2.5e-07 → 0.25 (twice standard's 1.25 / 10 / 0.125)
    expect(snap(r, "gpt-5", "priority")).toEqual({
      snapshotId: `litellm:gpt-5:priority:${FROM}`,
      model: { billableModel: "gpt-5", vendor: "openai", tier: "priority" },
      currency: "USD",
      effectiveFrom: FROM,
      prices: {
        // Priority cache hits (any modality) at the priority cache-read price, as LiteLLM bills them.
        cached_audio_input_tokens: { as: "cached_input_tokens" },
        cached_input_tokens: { perMillion: "0.25" },
        input_tokens: { perMillion: "2.5" },
        output_tokens: { perMillion: "20" },
        reasoning_tokens: { as: "output_tokens" },
      },
    });
    // flex: 6.25e-07 → 0.625, 5e-06 → 5, 6.25e-08 → 0.0625 (half of standard)
    expect(snap(r, "gpt-5", "flex").prices).toEqual({
      cached_audio_input_tokens: { as: "cached_input_tokens" },
      cached_input_tokens: { perMillion: "0.0625" },
      input_tokens: { perMillion: "0.625" },
      output_tokens: { perMillion: "5" },
      reasoning_tokens: { as: "output_tokens" },
    });
    expect(snap(r, "gpt-5").prices).toEqual({
      cached_audio_input_tokens: { as: "cached_input_tokens" },
      cached_input_tokens: { perMillion: "0.125" },
      input_tokens: { perMillion: "1.25" },
      output_tokens: { perMillion: "10" },
      reasoning_tokens: { as: "output_tokens" },
    });
    expect(r.skipped).toEqual([]);
  });

  it("o3 flex rates a call at the flex prices: 1,000,000 input + 200,000 output = $1 + $0.8", () => {
    const r = load(
      '"o3": {"cache_read_input_token_cost": 5e-07, "cache_read_input_token_cost_flex": 2.5e-07,' +
        ' "input_cost_per_token": 2e-06, "input_cost_per_token_flex": 1e-06, "litellm_provider": "openai",' +
        ' "mode": "chat", "output_cost_per_token": 8e-06, "output_cost_per_token_flex": 4e-06}',
    );
    const flex = snap(r, "o3", "flex");
    const rec = new DefaultRatingEngine().rate(
      observation({ input_tokens: 1_000_000, output_tokens: 200_000 }, { model: flex.model }),
      flex,
      ctx,
    );
    // 1,000,000 × 1/1M = 1; 200,000 × 4/1M = 0.8
    expect(rec.total).toBe("1.8");
    expect(rec.snapshotId).toBe(`litellm:o3:flex:${FROM}`);
  });

  it("claude batch (Vertex): no batch price above 200k prompt tokens, so the batch prices are unpriced and reported", () => {
    const r = load(
      '"vertex_ai/claude-sonnet-4-5": {"cache_creation_input_token_cost": 3.75e-06,' +
        ' "cache_creation_input_token_cost_above_1hr": 6e-06, "cache_read_input_token_cost": 3e-07,' +
        ' "input_cost_per_token": 3e-06, "input_cost_per_token_above_200k_tokens": 6e-06,' +
        ' "output_cost_per_token_above_200k_tokens": 2.25e-05, "cache_creation_input_token_cost_above_200k_tokens": 7.5e-06,' +
        ' "cache_read_input_token_cost_above_200k_tokens": 6e-07, "input_cost_per_token_batches": 1.5e-06,' +
        ' "litellm_provider": "vertex_ai-anthropic_models", "mode": "chat", "output_cost_per_token": 1.5e-05,' +
        ' "output_cost_per_token_batches": 7.5e-06}',
    );
    // Standard is tiered at 200,000 prompt tokens (3 → 6 input). The batch prices (1.5 / 7.5)
    // have no above-200k counterpart: a 300,000-token batch prompt billed at 1.5 would be half
    // the long-context batch rate, so there is no batch snapshot and every price is reported.
    expect(r.snapshots.map((s) => s.snapshotId)).toEqual([`litellm:vertex_ai/claude-sonnet-4-5:${FROM}`]);
    expect(skips(r)).toEqual([
      // standard: the 1-hour write has no _above_200k_tokens price
      ["vertex_ai/claude-sonnet-4-5", "cache_creation_input_token_cost_above_1hr", "tierIncomplete"],
      // batch: priced below the threshold only — never the base price above it
      ["vertex_ai/claude-sonnet-4-5", "input_cost_per_token_batches", "tierIncomplete", "batch"],
      ["vertex_ai/claude-sonnet-4-5", "output_cost_per_token_batches", "tierIncomplete", "batch"],
      // batch: no batch price for these meters — never the standard price
      ["vertex_ai/claude-sonnet-4-5", "cache_creation_input_token_cost", "serviceTierMissing", "batch"],
      ["vertex_ai/claude-sonnet-4-5", "cache_read_input_token_cost", "serviceTierMissing", "batch"],
    ]);
  });

  it("a threshold price inside a tier (…_above_200k_tokens_priority) tiers the tier snapshot", () => {
    const r = load(
      '"m": {"input_cost_per_token": 2e-06, "input_cost_per_token_above_200k_tokens": 4e-06,' +
        ' "input_cost_per_token_priority": 3.6e-06, "input_cost_per_token_above_200k_tokens_priority": 7.2e-06}',
    );
    // 3.6e-06 → 3.6 up to 200,000 prompt tokens, 7.2e-06 → 7.2 above
    expect(snap(r, "m", "priority").tiers?.[0]?.boundaries).toEqual([
      { upTo: 200000, prices: { input_tokens: { perMillion: "3.6" } } },
      { upTo: null, prices: { input_tokens: { perMillion: "7.2" } } },
    ]);
  });

  it("a service tier of a long-context entry without its own threshold prices: never its base price above the threshold", () => {
    // gpt-5.4 (the map's own entry, price fields only): standard input is 2.5e-06 → 2.5 up to
    // 272,000 prompt tokens and 5e-06 → 5 above; flex has only 1.25e-06 → 1.25. A flat flex
    // snapshot would bill a 300,000-token flex prompt 300,000 × 1.25 / 1M = 0.375 where the
    // long-context rate is twice that: left unpriced and reported instead.
    const r = load(
      '"gpt-5.4": {"cache_read_input_token_cost": 2.5e-07, "cache_read_input_token_cost_above_272k_tokens": 5e-07,' +
        ' "cache_read_input_token_cost_flex": 1.3e-07, "input_cost_per_token": 2.5e-06,' +
        ' "input_cost_per_token_above_272k_tokens": 5e-06, "input_cost_per_token_flex": 1.25e-06,' +
        ' "litellm_provider": "openai", "mode": "chat", "output_cost_per_token": 1.5e-05,' +
        ' "output_cost_per_token_above_272k_tokens": 2.25e-05, "output_cost_per_token_flex": 7.5e-06}',
    );
    expect(r.snapshots.map((s) => s.snapshotId)).toEqual([`litellm:gpt-5.4:${FROM}`]);
    expect(skips(r)).toEqual([
      ["gpt-5.4", "cache_read_input_token_cost_flex", "tierIncomplete", "flex"],
      ["gpt-5.4", "input_cost_per_token_flex", "tierIncomplete", "flex"],
      ["gpt-5.4", "output_cost_per_token_flex", "tierIncomplete", "flex"],
    ]);
    // A tier priced above the same threshold is kept, tiered like the standard snapshot.
    const tiered = load(
      '"m": {"input_cost_per_token": 2e-06, "input_cost_per_token_above_200k_tokens": 4e-06,' +
        ' "input_cost_per_token_batches": 1e-06, "input_cost_per_token_above_200k_tokens_batches": 2e-06}',
    );
    expect(snap(tiered, "m", "batch").tiers?.[0]?.boundaries).toEqual([
      { upTo: 200000, prices: { input_tokens: { perMillion: "1" } } },
      { upTo: null, prices: { input_tokens: { perMillion: "2" } } },
    ]);
    expect(skips(tiered)).toEqual([]);
  });

  it("a tier whose standard entry prices reasoning apart leaves tier reasoning unpriced (no guess)", () => {
    const r = load(
      '"m": {"input_cost_per_token": 1e-06, "output_cost_per_token": 4e-06, "output_cost_per_reasoning_token": 5e-06,' +
        ' "input_cost_per_token_batches": 5e-07, "output_cost_per_token_batches": 2e-06}',
    );
    expect(snap(r, "m", "batch").prices).toEqual({
      input_tokens: { perMillion: "0.5" },
      output_tokens: { perMillion: "2" },
    });
    expect(skips(r)).toEqual([["m", "output_cost_per_reasoning_token", "serviceTierMissing", "batch"]]);
  });

  it("property: a tier snapshot never holds a price that is not written for that tier in the map", () => {
    const fields = ["input_cost_per_token", "output_cost_per_token", "cache_read_input_token_cost"] as const;
    const suffix = { priority: "_priority", flex: "_flex", batch: "_batches" } as const;
    const price = fc.integer({ min: 1, max: 999 });
    fc.assert(
      fc.property(
        fc.record({
          input_cost_per_token: price,
          output_cost_per_token: price,
          cache_read_input_token_cost: price,
        }),
        fc.subarray([...fields]),
        fc.constantFrom("priority", "flex", "batch"),
        price,
        (standard, tierFields, tier, tierPrice) => {
          const parts = fields.map((f) => `"${f}": ${standard[f]}e-08`);
          for (const f of tierFields) parts.push(`"${f}${suffix[tier]}": ${tierPrice + 1000}e-08`);
          const r = load(`"m": {${parts.join(", ")}}`);
          const tierSnap = r.snapshots.find((s) => s.model.tier === tier);
          if (tierFields.length === 0) return tierSnap === undefined;
          // Every priced meter of the tier snapshot carries the tier's own price (≥ 1000e-08 → ≥ 10 per million).
          for (const p of Object.values(tierSnap?.prices ?? {})) {
            if (p && "perMillion" in p && Number(p.perMillion) < 10) return false;
          }
          // Aliases price nothing themselves; each points at a meter the tier snapshot prices
          // (cached audio → the tier's own cache-read price, never the standard one).
          const prices = Object.entries(tierSnap?.prices ?? {});
          for (const [, p] of prices)
            if (p && "as" in p && tierSnap?.prices[p.as] === undefined) return false;
          if (
            (tierSnap?.prices.cached_audio_input_tokens !== undefined) !==
            tierFields.includes("cache_read_input_token_cost")
          )
            return false;
          const priced = prices.filter(([, p]) => p && !("as" in p));
          return priced.length === tierFields.length;
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("new meters", () => {
  it("image tokens: gpt-image-1.5 input and output image tokens per million", () => {
    const r = load(
      '"gpt-image-1.5": {"cache_read_input_token_cost": 1.25e-06, "input_cost_per_token": 5e-06,' +
        ' "litellm_provider": "openai", "mode": "image_generation", "output_cost_per_token": 1e-05,' +
        ' "input_cost_per_image_token": 8e-06, "output_cost_per_image_token": 3.2e-05}',
    );
    // 8e-06 → 8, 3.2e-05 → 32
    expect(snap(r, "gpt-image-1.5").prices).toEqual({
      cached_audio_input_tokens: { as: "cached_input_tokens" },
      cached_input_tokens: { perMillion: "1.25" },
      input_tokens: { perMillion: "5" },
      output_tokens: { perMillion: "10" },
      image_input_tokens: { perMillion: "8" },
      image_output_tokens: { perMillion: "32" },
      reasoning_tokens: { as: "output_tokens" },
    });
    expect(r.skipped).toEqual([]);
  });

  it("Gemini image: output image tokens at 3e-05 → 30 per million (12× the 2.5 text output); the per-image fallback is not imported beside it", () => {
    const r = load(
      '"gemini-2.5-flash-image": {"cache_read_input_token_cost": 3e-08, "input_cost_per_audio_token": 1e-06,' +
        ' "input_cost_per_token": 3e-07, "litellm_provider": "vertex_ai-language-models", "mode": "image_generation",' +
        ' "output_cost_per_image": 0.039, "output_cost_per_image_token": 3e-05,' +
        ' "output_cost_per_reasoning_token": 2.5e-06, "output_cost_per_token": 2.5e-06}',
    );
    expect(snap(r, "gemini-2.5-flash-image").prices).toMatchObject({
      image_output_tokens: { perMillion: "30" },
      output_tokens: { perMillion: "2.5" },
    });
    expect(snap(r, "gemini-2.5-flash-image").prices.image_count).toBeUndefined();
    expect(skips(r)).toEqual([["gemini-2.5-flash-image", "output_cost_per_image", "imagePricedPerToken"]]);
  });

  it("cache_read_input_audio_token_cost → cached_audio_input_tokens (1e-07 → 0.1 per million, apart from cached text); an audio cache write is still skipped", () => {
    // LiteLLM's field names (its CacheCost schema: cache_read_input_audio_token_cost,
    // cache_creation_input_audio_token_cost); the numbers are Gemini 2.5 Flash's.
    const r = load(
      '"gemini/gemini-2.5-flash": {"cache_read_input_token_cost": 3e-08, "cache_read_input_audio_token_cost": 1e-07,' +
        ' "cache_creation_input_audio_token_cost": 1e-06, "input_cost_per_audio_token": 1e-06,' +
        ' "input_cost_per_token": 3e-07, "litellm_provider": "gemini", "mode": "chat", "output_cost_per_token": 2.5e-06}',
    );
    expect(snap(r, "gemini/gemini-2.5-flash").prices).toEqual({
      input_tokens: { perMillion: "0.3" },
      cached_input_tokens: { perMillion: "0.03" },
      cached_audio_input_tokens: { perMillion: "0.1" },
      audio_input_tokens: { perMillion: "1" },
      output_tokens: { perMillion: "2.5" },
      reasoning_tokens: { as: "output_tokens" },
    });
    expect(skips(r)).toEqual([
      ["gemini/gemini-2.5-flash", "cache_creation_input_audio_token_cost", "audioCacheWrite"],
    ]);
  });

  it("output_cost_per_image on a chat model → image_count per unit", () => {
    const r = load(
      '"gemini/lyria-3-clip-preview": {"litellm_provider": "gemini", "mode": "chat", "output_cost_per_image": 0.04}',
    );
    expect(snap(r, "gemini/lyria-3-clip-preview").prices).toEqual({ image_count: { perUnit: "0.04" } });
  });

  it("input_cost_per_image on image_generation (DALL·E): LiteLLM's price per generated image → image_count", () => {
    const r = load(
      '"dall-e-3": {"input_cost_per_image": 0.04, "litellm_provider": "openai", "mode": "image_generation"},' +
        ' "hd/1024-x-1792/dall-e-3": {"input_cost_per_image": 0.12, "litellm_provider": "openai", "mode": "image_generation"}',
    );
    expect(snap(r, "dall-e-3").prices).toEqual({ image_count: { perUnit: "0.04" } });
    expect(snap(r, "hd/1024-x-1792/dall-e-3").prices).toEqual({ image_count: { perUnit: "0.12" } });
    // Beside an output_cost_per_image it is an input-image price (Gemini image models): skipped.
    const gemini = load(
      '"gemini-3-pro-image": {"input_cost_per_image": 0.0011, "input_cost_per_token": 2e-06,' +
        ' "mode": "image_generation", "output_cost_per_image": 0.134}',
    );
    expect(snap(gemini, "gemini-3-pro-image").prices.image_count).toEqual({ perUnit: "0.134" });
    expect(skips(gemini)).toEqual([["gemini-3-pro-image", "input_cost_per_image", "inputImage"]]);
  });

  it("web search: one price for every context size → web_search_requests per unit (Anthropic $0.01)", () => {
    const r = load(
      '"claude-sonnet-4-5": {"input_cost_per_token": 3e-06, "litellm_provider": "anthropic", "mode": "chat",' +
        ' "output_cost_per_token": 1.5e-05, "search_context_cost_per_query": {"search_context_size_high": 0.01,' +
        ' "search_context_size_low": 0.01, "search_context_size_medium": 0.01}}',
    );
    expect(snap(r, "claude-sonnet-4-5").prices.web_search_requests).toEqual({ perUnit: "0.01" });
    const rec = new DefaultRatingEngine().rate(
      observation(
        { input_tokens: 1000, web_search_requests: 3 },
        { model: snap(r, "claude-sonnet-4-5").model },
      ),
      snap(r, "claude-sonnet-4-5"),
      ctx,
    );
    // 1000 × 3/1M + 3 × 0.01 = 0.003 + 0.03
    expect(rec.total).toBe("0.033");
  });

  it("web search: prices that differ by context size, and Gemini per-prompt grounding, are skipped with the reason", () => {
    const r = load(
      '"gpt-4o-search-preview": {"input_cost_per_token": 2.5e-06, "litellm_provider": "openai", "mode": "chat",' +
        ' "search_context_cost_per_query": {"search_context_size_high": 0.05, "search_context_size_low": 0.03,' +
        ' "search_context_size_medium": 0.035}},' +
        ' "gemini/gemini-2.5-flash": {"input_cost_per_token": 3e-07, "litellm_provider": "gemini", "mode": "chat",' +
        ' "search_context_cost_per_query": {"search_context_size_low": 0.035, "search_context_size_medium": 0.035,' +
        ' "search_context_size_high": 0.035}},' +
        ' "gemini/gemini-3-flash-preview": {"input_cost_per_token": 5e-07, "litellm_provider": "gemini", "mode": "chat",' +
        ' "search_context_cost_per_query": {"search_context_size_low": 0.014, "search_context_size_medium": 0.014,' +
        ' "search_context_size_high": 0.014}, "web_search_billing_unit": "per_query"}',
    );
    expect(skips(r)).toEqual([
      ["gpt-4o-search-preview", "search_context_cost_per_query", "searchContextSize"],
      ["gemini/gemini-2.5-flash", "search_context_cost_per_query", "searchPerPrompt"],
    ]);
    expect(snap(r, "gemini/gemini-3-flash-preview").prices.web_search_requests).toEqual({ perUnit: "0.014" });
  });

  it("DeepSeek input_cost_per_token_cache_hit → cached_input_tokens; equal to cache_read_input_token_cost it is one price", () => {
    const r = load(
      '"deepseek/deepseek-r1": {"input_cost_per_token": 5.5e-07, "input_cost_per_token_cache_hit": 1.4e-07,' +
        ' "litellm_provider": "deepseek", "mode": "chat", "output_cost_per_token": 2.19e-06},' +
        ' "deepseek/deepseek-chat": {"cache_creation_input_token_cost": 0.0, "cache_read_input_token_cost": 2.8e-08,' +
        ' "input_cost_per_token": 2.8e-07, "input_cost_per_token_cache_hit": 2.8e-08, "litellm_provider": "deepseek",' +
        ' "mode": "chat", "output_cost_per_token": 4.2e-07}',
    );
    // 1.4e-07 → 0.14; 2.8e-08 → 0.028
    expect(snap(r, "deepseek/deepseek-r1").prices.cached_input_tokens).toEqual({ perMillion: "0.14" });
    expect(snap(r, "deepseek/deepseek-chat").prices.cached_input_tokens).toEqual({ perMillion: "0.028" });
    expect(r.skipped).toEqual([]);
    const conflict = load(
      '"m": {"cache_read_input_token_cost": 2.8e-08, "input_cost_per_token_cache_hit": 1.4e-08, "input_cost_per_token": 1e-06}',
    );
    expect(snap(conflict, "m").prices.cached_input_tokens).toBeUndefined();
    expect(skips(conflict)).toEqual([
      ["m", "cache_read_input_token_cost", "conflictingPrices"],
      ["m", "input_cost_per_token_cache_hit", "conflictingPrices"],
    ]);
  });
});

describe("placeholders and hostile numbers", () => {
  it("an entry whose every price is 0 is skipped as a placeholder; includeFree imports it", () => {
    const entry =
      '"codestral/codestral-latest": {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0, "mode": "chat"}';
    expect(skips(load(entry))).toEqual([["codestral/codestral-latest", "*", "allZero"]]);
    expect(load(entry).snapshots).toEqual([]);
    expect(snap(load(entry, true), "codestral/codestral-latest").prices).toEqual({
      input_tokens: { perMillion: "0" },
      output_tokens: { perMillion: "0" },
      reasoning_tokens: { as: "output_tokens" },
    });
    // One non-zero price (here a tier above a threshold) makes it a real price sheet.
    const tiered = load('"m": {"input_cost_per_token": 0, "input_cost_per_token_above_200k_tokens": 1e-06}');
    expect(snap(tiered, "m").tiers?.[0]?.boundaries[1]?.prices.input_tokens).toEqual({ perMillion: "1" });
    // An all-zero service tier is skipped on its own.
    const freeBatch = load('"m": {"input_cost_per_token": 1e-06, "input_cost_per_token_batches": 0}');
    expect(skips(freeBatch)).toEqual([["m", "*", "allZero", "batch"]]);
  });

  it("exponent bombs are refused from the exponent alone: a map full of them imports in well under a second", () => {
    const parts: string[] = [];
    for (let i = 0; i < 2000; i++) {
      parts.push(
        `"bomb-${i}": {"input_cost_per_token": 1e99999999, "output_cost_per_token": 1e-99999999,` +
          ` "output_cost_per_image": 9e99999999, "mode": "image_generation",` +
          ` "search_context_cost_per_query": {"search_context_size_low": 1e99999999}}`,
      );
    }
    const started = performance.now();
    const r = importLiteLLMCostMap(`{${parts.join(",")}}`);
    const elapsed = performance.now() - started;
    // Generous for a loaded 2-core machine; expanding one bomb into digits alone takes seconds.
    expect(elapsed).toBeLessThan(10_000);
    expect(r.snapshots).toEqual([]);
    expect(new Set(r.skipped.map((s) => `${s.field}: ${s.code}`))).toEqual(
      new Set([
        "input_cost_per_token: tooManyDigits",
        "output_cost_per_token: tooManyDigits",
        "output_cost_per_image: tooManyDigits",
        "search_context_cost_per_query: tooManyDigits",
        "*: noPrice",
      ]),
    );
  });

  it("the largest and smallest prices that fit are still exact at the edges", () => {
    // 20 integer digits per million = 1e13 per token (99999999999999999999 / 10^6).
    const r = load('"m": {"input_cost_per_token": 99999999999999.999999, "output_cost_per_token": 1e-36}');
    expect(snap(r, "m").prices.input_tokens).toEqual({ perMillion: "99999999999999999999" });
    expect(snap(r, "m").prices.output_tokens).toEqual({ perMillion: "0.000000000000000000000000000001" });
    const over = load('"m": {"input_cost_per_token": 1e14, "output_cost_per_token": 1e-37}');
    expect(skips(over)).toEqual([
      ["m", "input_cost_per_token", "tooManyDigits"],
      ["m", "output_cost_per_token", "tooManyDigits"],
      ["m", "*", "noPrice"],
    ]);
  });

  it("range tiers by result count (search APIs) are a per-query price, skipped as such", () => {
    const r = load(
      '"exa_ai/search": {"litellm_provider": "exa_ai", "mode": "search", "tiered_pricing":' +
        ' [{"input_cost_per_query": 0.005, "max_results_range": [0, 25]}, {"input_cost_per_query": 0.025, "max_results_range": [26, 100]}]}',
    );
    expect(skips(r)).toEqual([
      ["exa_ai/search", "tiered_pricing", "perQuery"],
      ["exa_ai/search", "*", "noPrice"],
    ]);
    expect(() => compileSnapshot(snap(load('"m": {"input_cost_per_token": 1e-6}'), "m"))).not.toThrow();
  });
});
