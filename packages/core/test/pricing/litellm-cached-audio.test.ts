/**
 * LiteLLM import and Gemini cached audio (`cached_audio_input_tokens`).
 *
 * LiteLLM's own cost code (litellm/litellm_core_utils/llm_cost_calc/utils.py,
 * `generic_cost_per_token` → `_calculate_input_cost`) bills every cache hit — one
 * `cached_tokens` count, whatever its modality — at `cache_read_input_token_cost` (above a
 * threshold, `cache_read_input_token_cost_above_<n>k_tokens`), and uncached audio at
 * `input_cost_per_audio_token`. The importer mirrors the cache-hit rule with
 * `cached_audio_input_tokens: { as: "cached_input_tokens" }` only where the entry has a cache-read
 * price, no cached-audio price and no audio input price apart from text (`cachedAudioAsCachedText`).
 *
 * Entries are hand-written with LiteLLM's field names and the numbers of its
 * gemini/gemini-2.5-pro and gemini-2.5-flash entries (price fields only; not its data file).
 * Payloads: the real recorded Gemini response
 * `fixtures/real/google/test_multimodal_tool_return_matrix-direct-url_force_download-video-google_2_5-.2.json`
 * (pydantic/pydantic-ai cassette, MIT, see fixtures/real/SOURCES.md and manifest.json): prompt
 * 3,297 = TEXT 83 + VIDEO 2,893 + AUDIO 321; cached 2,918 = TEXT 73 + VIDEO 2,561 + AUDIO 284;
 * 55 candidates + 95 thoughts. Latch's meters: input 342 (uncached text and video), cached 2,634,
 * audio 37, cached audio 284, output 55, reasoning 95. And the hand-written
 * `fixtures/providers/gemini.cached-audio.json` (all 32,000 audio tokens cached).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  createLatch,
  DefaultRatingEngine,
  InMemoryPricingSource,
  importLiteLLMCostMap,
  MemoryObservationStore,
  MemoryRatedRecordStore,
  type PriceSnapshot,
  type ProviderUsageInput,
} from "../../src/index.js";
import { ctx, observation, thrown } from "../support.js";

const FROM = "2026-01-01T00:00:00Z";

/** gemini/gemini-2.5-pro's price fields in LiteLLM's map (no audio and no cached-audio price). */
const PRO_FIELDS =
  '"cache_read_input_token_cost": 1.25e-07, "cache_read_input_token_cost_above_200k_tokens": 2.5e-07,' +
  ' "input_cost_per_token": 1.25e-06, "input_cost_per_token_above_200k_tokens": 2.5e-06,' +
  ' "input_cost_per_token_priority": 1.25e-06, "input_cost_per_token_above_200k_tokens_priority": 2.5e-06,' +
  ' "output_cost_per_token": 1e-05, "output_cost_per_token_above_200k_tokens": 1.5e-05,' +
  ' "output_cost_per_token_priority": 1e-05, "output_cost_per_token_above_200k_tokens_priority": 1.5e-05,' +
  ' "litellm_provider": "gemini", "mode": "chat"';

/** gemini-2.5-flash's: audio input priced apart from text (1e-06 against 3e-07). */
const FLASH_FIELDS =
  '"cache_read_input_token_cost": 7.5e-08, "input_cost_per_audio_token": 1e-06, "input_cost_per_token": 3e-07,' +
  ' "output_cost_per_reasoning_token": 2.5e-06, "output_cost_per_token": 2.5e-06,' +
  ' "litellm_provider": "gemini", "mode": "chat"';

function importOne(model: string, fields: string) {
  return importLiteLLMCostMap(`{"${model}": {${fields}}}`, { effectiveFrom: FROM });
}

function standardOf(snapshots: PriceSnapshot[], model: string): PriceSnapshot {
  const found = snapshots.find((s) => s.model.billableModel === model && s.model.tier === undefined);
  if (!found) throw new Error(`no standard snapshot for ${model}`);
  return found;
}

const REAL = JSON.parse(
  readFileSync(
    new URL(
      "../fixtures/real/google/test_multimodal_tool_return_matrix-direct-url_force_download-video-google_2_5-.2.json",
      import.meta.url,
    ),
    "utf8",
  ),
) as Record<string, unknown>;
const FULLY_CACHED = JSON.parse(
  readFileSync(new URL("../fixtures/providers/gemini.cached-audio.json", import.meta.url), "utf8"),
) as Record<string, unknown>;

/** Records a Gemini response through createLatch() against one imported snapshot. */
async function record(snapshot: PriceSnapshot, response: Record<string, unknown>) {
  const latch = createLatch({
    observations: new MemoryObservationStore(),
    rated: new MemoryRatedRecordStore(),
    pricing: new InMemoryPricingSource([snapshot]),
  });
  const result = await latch.record({
    api: "gemini",
    response,
    observation: {
      eventId: "e1",
      subject: { tenantId: "t" },
      model: snapshot.model,
      source: { kind: "provider_reported" },
      outcome: { kind: "success" },
      timing: { startedAt: "2026-06-01T00:00:00Z", completedAt: "2026-06-01T00:00:01Z" },
    },
  } as ProviderUsageInput);
  await latch.close();
  return result;
}

describe("LiteLLM import: cached audio billed as LiteLLM bills it", () => {
  it("gemini-2.5-pro (no audio price): the alias, and a fully cached audio file is priced at the cache-read price", async () => {
    const { snapshots } = importOne("gemini/gemini-2.5-pro", PRO_FIELDS);
    const pro = standardOf(snapshots, "gemini/gemini-2.5-pro");
    expect(pro.prices.cached_audio_input_tokens).toEqual({ as: "cached_input_tokens" });
    const result = await record(pro, FULLY_CACHED);
    expect(result.status).toBe("rated");
    if (result.status !== "rated") return;
    expect(result.record.observation.meters).toMatchObject({
      input_tokens: 980,
      cached_input_tokens: 20,
      cached_audio_input_tokens: 32_000,
      output_tokens: 9,
    });
    // 980 × 1.25 + (20 + 32,000) × 0.125 + 9 × 10 = 1,225 + 4,002.5 + 90 = 5,317.5 / 1e6.
    // (LiteLLM: 980 text × 1.25e-06 + 32,020 cache hits × 1.25e-07 + 9 × 1e-05, the same sum.)
    expect(result.record.total).toBe("0.0053175");
  });

  it("gemini-2.5-pro, the real recorded payload: cached audio priced; its 37 uncached audio tokens have no LiteLLM price (LiteLLM bills them $0), so the call is unpriced on audio_input_tokens", async () => {
    const { snapshots } = importOne("gemini/gemini-2.5-pro", PRO_FIELDS);
    const result = await record(standardOf(snapshots, "gemini/gemini-2.5-pro"), REAL);
    expect(result).toMatchObject({ status: "unpriced", reason: "no_price", meter: "audio_input_tokens" });
  });

  it("gemini-2.5-pro with an audio input price equal to the text one: the real recorded payload, rated by hand", async () => {
    const { snapshots, skipped } = importOne(
      "gemini/gemini-2.5-pro",
      `${PRO_FIELDS}, "input_cost_per_audio_token": 1.25e-06, "input_cost_per_audio_token_above_200k_tokens": 2.5e-06`,
    );
    const pro = standardOf(snapshots, "gemini/gemini-2.5-pro");
    expect(pro.prices.cached_audio_input_tokens).toEqual({ as: "cached_input_tokens" });
    expect(skipped.filter((s) => s.tier === undefined)).toEqual([]);
    const result = await record(pro, REAL);
    expect(result.status).toBe("rated");
    if (result.status !== "rated") return;
    expect(result.record.observation.meters).toEqual({
      input_tokens: 342,
      cached_input_tokens: 2634,
      audio_input_tokens: 37,
      cached_audio_input_tokens: 284,
      output_tokens: 55,
      reasoning_tokens: 95,
    });
    // 3,297 prompt tokens: the lower tier. 342 × 1.25 + 2,634 × 0.125 + 37 × 1.25 + 284 × 0.125
    // + 55 × 10 + 95 × 10 = 427.5 + 329.25 + 46.25 + 35.5 + 550 + 950 = 2,338.5 / 1e6.
    // LiteLLM's own sum: 2,918 cache hits × 0.125 + 379 uncached × 1.25 + 150 output × 10 = 2,338.5.
    expect(result.record.total).toBe("0.0023385");
  });

  it("no alias where audio input is priced apart (gemini-2.5-flash): the real recorded payload is unpriced on cached_audio_input_tokens, never billed at the cached text price", async () => {
    const { snapshots } = importOne("gemini/gemini-2.5-flash", FLASH_FIELDS);
    const flash = standardOf(snapshots, "gemini/gemini-2.5-flash");
    expect(flash.prices).toEqual({
      cached_input_tokens: { perMillion: "0.075" },
      audio_input_tokens: { perMillion: "1" },
      input_tokens: { perMillion: "0.3" },
      reasoning_tokens: { perMillion: "2.5" },
      output_tokens: { perMillion: "2.5" },
    });
    const result = await record(flash, REAL);
    expect(result).toMatchObject({
      status: "unpriced",
      reason: "no_price",
      meter: "cached_audio_input_tokens",
    });
  });

  it("no alias without a cache-read price, with a cached-audio price of its own (read or not), or with audio priced per second or unreadably", () => {
    const prices = (fields: string) => standardOf(importOne("m", fields).snapshots, "m").prices;
    const base = '"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06';
    expect(prices(base).cached_audio_input_tokens).toBeUndefined();
    expect(
      prices(`${base}, "cache_read_input_token_cost": 1e-07, "cache_read_input_audio_token_cost": 3e-07`)
        .cached_audio_input_tokens,
    ).toEqual({ perMillion: "0.3" });
    // Present but unreadable: left unpriced (reported), not replaced by the cached text price.
    expect(
      prices(`${base}, "cache_read_input_token_cost": 1e-07, "cache_read_input_audio_token_cost": -1`)
        .cached_audio_input_tokens,
    ).toBeUndefined();
    expect(
      prices(`${base}, "cache_read_input_token_cost": 1e-07, "input_cost_per_audio_per_second": 3e-05`)
        .cached_audio_input_tokens,
    ).toBeUndefined();
    expect(
      prices(`${base}, "cache_read_input_token_cost": 1e-07, "input_cost_per_audio_token": "1e-06"`)
        .cached_audio_input_tokens,
    ).toBeUndefined();
    // The same price written another way is still the text price: alias.
    expect(
      prices(`${base}, "cache_read_input_token_cost": 1e-07, "input_cost_per_audio_token": 0.000001`)
        .cached_audio_input_tokens,
    ).toEqual({ as: "cached_input_tokens" });
  });
});

describe("LiteLLM import: cached audio and the long-context tier", () => {
  const engine = new DefaultRatingEngine();

  it("the alias follows the cache-read tier: 0.125 up to 200,000 prompt tokens, 0.25 above (strict >)", () => {
    const pro = standardOf(importOne("gemini/gemini-2.5-pro", PRO_FIELDS).snapshots, "gemini/gemini-2.5-pro");
    const rate = (input: number) =>
      engine.rate(
        observation(
          {
            input_tokens: input,
            cached_input_tokens: 150_000,
            cached_audio_input_tokens: 40_000,
            output_tokens: 1_000,
          },
          { model: pro.model },
        ),
        pro,
        ctx,
      ).total;
    // 200,000 prompt tokens (cached audio counted once): lower tier.
    // 10,000 × 1.25 + (150,000 + 40,000) × 0.125 + 1,000 × 10 = 12,500 + 23,750 + 10,000 = 46,250 / 1e6
    expect(rate(10_000)).toBe("0.04625");
    // 200,001: upper tier. 10,001 × 2.5 + 190,000 × 0.25 + 1,000 × 15 = 25,002.5 + 47,500 + 15,000 = 87,502.5 / 1e6
    expect(rate(10_001)).toBe("0.0875025");
  });

  it("audio priced as text below the threshold only (no _above_200k audio price) is priced apart above it: no alias", () => {
    const r = importOne("gemini/gemini-2.5-pro", `${PRO_FIELDS}, "input_cost_per_audio_token": 1.25e-06`);
    const pro = standardOf(r.snapshots, "gemini/gemini-2.5-pro");
    expect(pro.prices.cached_audio_input_tokens).toBeUndefined();
    expect(pro.prices.audio_input_tokens).toBeUndefined();
    expect(r.skipped).toContainEqual({
      model: "gemini/gemini-2.5-pro",
      field: "input_cost_per_audio_token",
      code: "tierIncomplete",
      reason: expect.any(String),
    });
    const error = thrown(() =>
      engine.rate(
        observation(
          { input_tokens: 10, cached_input_tokens: 10, cached_audio_input_tokens: 10 },
          { model: pro.model },
        ),
        pro,
        ctx,
      ),
    );
    expect(error).toMatchObject({ code: "no_price_for_meter" });
  });

  it("a cached-audio price without its above-200k price leaves the meter unpriced (tierIncomplete), never aliased", () => {
    const r = importOne(
      "gemini/gemini-2.5-pro",
      `${PRO_FIELDS}, "cache_read_input_audio_token_cost": 1.25e-07`,
    );
    const pro = standardOf(r.snapshots, "gemini/gemini-2.5-pro");
    expect(pro.prices.cached_audio_input_tokens).toBeUndefined();
    expect(r.skipped.map((s) => [s.field, s.code])).toContainEqual([
      "cache_read_input_audio_token_cost",
      "tierIncomplete",
    ]);
  });

  it("service tiers: priority has no cache-read price on gemini-2.5-pro, so no alias; with one (and its 200k price) the alias prices at it", () => {
    const plain = importOne("gemini/gemini-2.5-pro", PRO_FIELDS).snapshots.find(
      (s) => s.model.tier === "priority",
    );
    expect(plain?.prices.cached_audio_input_tokens).toBeUndefined();
    const priority = importOne(
      "gemini/gemini-2.5-pro",
      `${PRO_FIELDS}, "cache_read_input_token_cost_priority": 2.5e-07, "cache_read_input_token_cost_above_200k_tokens_priority": 5e-07`,
    ).snapshots.find((s) => s.model.tier === "priority") as PriceSnapshot;
    expect(priority.prices.cached_audio_input_tokens).toEqual({ as: "cached_input_tokens" });
    const total = engine.rate(
      observation(
        { cached_input_tokens: 100_000, cached_audio_input_tokens: 100_001 },
        { model: priority.model },
      ),
      priority,
      ctx,
    ).total;
    // 200,001 prompt tokens: upper tier, 200,001 × 0.5 = 100,000.5 / 1e6
    expect(total).toBe("0.1000005");
  });
});
