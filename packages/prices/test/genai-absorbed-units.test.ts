/**
 * Units genai-prices prices apart but Latch's usage parsers count inside another meter (cached
 * image in `cached_input_tokens`, Gemini video and image input in `input_tokens`, video output in
 * `output_tokens`). Priced differently, they made the converted catalog bill those tokens at the
 * other meter's rate, so that meter is left unpriced for the model (`conflictingPrice`): the call
 * is reported unpriced, never billed at the wrong rate.
 *
 * Cached audio used to be one of them: a Gemini 2.5 Flash call with cached audio was billed
 * 0.03/Mtok for audio genai-prices prices at 0.1/Mtok, then (conflictingPrice) every cached call
 * of the model was unpriced. It now has its own meter, `cached_audio_input_tokens`
 * (`cache_audio_read_mtok`), and such calls price exactly.
 */
import {
  createLatch,
  MemoryObservationStore,
  MemoryRatedRecordStore,
  type ProviderUsageInput,
} from "@latch/core";
import { describe, expect, it } from "vitest";
import {
  convertGenaiPrices,
  type GenaiProvider,
  type PriceCatalogSource,
  pricingSourceOf,
} from "../src/index.js";

// Hand-written in genai-prices' shape (the numbers of its Gemini 2.5 Flash entry; not its data file).
const source: PriceCatalogSource = {
  name: "test data",
  url: "https://example.test/genai-prices",
  fetchedAt: "2026-12-01T00:00:00Z",
  licence: "MIT",
  copyright: "test",
};
const flash: GenaiProvider = {
  id: "google",
  models: [
    {
      id: "flash",
      match: { equals: "flash" },
      prices: {
        input_mtok: 0.3,
        cache_read_mtok: 0.03,
        output_mtok: 2.5,
        input_audio_mtok: 1,
        cache_audio_read_mtok: 0.1,
      },
    },
    {
      id: "live",
      match: { equals: "live" },
      prices: { input_mtok: 0.75, output_mtok: 4.5, input_image_mtok: 1, input_video_mtok: 1 },
    },
    {
      id: "omni",
      match: { equals: "omni" },
      prices: { input_mtok: 1.5, output_mtok: 9, output_video_mtok: 17.5 },
    },
  ],
};
const realtime: GenaiProvider = {
  id: "openai",
  models: [
    {
      id: "rt",
      match: { equals: "rt" },
      prices: { input_mtok: 5, cache_read_mtok: 2.5, output_mtok: 20, cache_audio_read_mtok: 2.5 },
    },
    {
      id: "img",
      match: { equals: "img" },
      // gpt-image-1's numbers: cached image tokens priced apart from cached text
      prices: {
        input_mtok: 5,
        cache_read_mtok: 1.25,
        output_mtok: 40,
        input_image_mtok: 10,
        cache_image_read_mtok: 2.5,
      },
    },
  ],
};
// A price list with no cached-audio price (a sheet written before the meter existed).
const noCachedAudio: GenaiProvider = {
  id: "google",
  models: [
    {
      id: "flash-old",
      match: { equals: "flash-old" },
      prices: { input_mtok: 0.3, cache_read_mtok: 0.03, output_mtok: 2.5, input_audio_mtok: 1 },
    },
  ],
};

const convert = (providers: GenaiProvider[]) =>
  convertGenaiPrices(providers, { source, providers: providers.map((p) => p.id) });
const pricesOf = (r: ReturnType<typeof convert>, model: string) =>
  r.catalog.entries.find((e) => e.snapshot.model.billableModel === model)?.snapshot.prices;

async function recordGemini(
  providers: GenaiProvider[],
  model: string,
  usageMetadata: Record<string, unknown>,
) {
  const latch = createLatch({
    observations: new MemoryObservationStore(),
    rated: new MemoryRatedRecordStore(),
    pricing: pricingSourceOf(convert(providers).catalog),
  });
  const result = await latch.record({
    api: "gemini",
    response: { usageMetadata },
    observation: {
      eventId: `g-${model}-${JSON.stringify(usageMetadata).length}`,
      subject: { tenantId: "t1" },
      model: { billableModel: model },
      provider: { providerId: "google" },
      source: { kind: "provider_reported" },
      outcome: { kind: "success" },
      timing: { startedAt: "2026-06-01T00:00:00Z", completedAt: "2026-06-01T00:00:01Z" },
    },
  } as ProviderUsageInput);
  await latch.close();
  return result;
}

describe("units Latch counts inside another meter", () => {
  it("a cached-audio price prices cached_audio_input_tokens: cached_input_tokens keeps the cached text price", () => {
    const r = convert([flash]);
    expect(pricesOf(r, "flash")).toEqual({
      input_tokens: { perMillion: "0.3" },
      cached_input_tokens: { perMillion: "0.03" },
      cached_audio_input_tokens: { perMillion: "0.1" },
      output_tokens: { perMillion: "2.5" },
      audio_input_tokens: { perMillion: "1" },
      reasoning_tokens: { as: "output_tokens" },
    });
    expect(
      r.skipped.filter((s) => s.code === "conflictingPrice").map((s) => [s.model, s.field, s.value]),
    ).toEqual([
      ["live", "input_video_mtok", "input_tokens"],
      ["live", "input_image_mtok", "input_tokens"],
      ["omni", "output_video_mtok", "output_tokens"],
    ]);
  });

  it("Gemini video/image input and video output priced apart leave input_tokens / output_tokens unpriced", () => {
    const r = convert([flash]);
    expect(pricesOf(r, "live")).toEqual({
      output_tokens: { perMillion: "4.5" },
      image_input_tokens: { perMillion: "1" },
      reasoning_tokens: { as: "output_tokens" },
    });
    // no output price left: reasoning is not aliased to a missing one
    expect(pricesOf(r, "omni")).toEqual({ input_tokens: { perMillion: "1.5" } });
  });

  it("cached audio at the cache price is a price like any other; a cached-image price unlike it still conflicts", () => {
    const r = convert([realtime]);
    expect(pricesOf(r, "rt")).toMatchObject({
      cached_input_tokens: { perMillion: "2.5" },
      cached_audio_input_tokens: { perMillion: "2.5" },
    });
    // No parser splits cached image tokens out of cached_input_tokens (see the prices README):
    // gpt-image-1's cached image price leaves that meter unpriced for the model.
    expect(pricesOf(r, "img")?.cached_input_tokens).toBeUndefined();
    expect(r.skipped.map((s) => [s.model, s.field, s.code, s.value])).toEqual([
      ["img", "cache_image_read_mtok", "unsupportedUnit", undefined],
      ["img", "cache_image_read_mtok", "conflictingPrice", "cached_input_tokens"],
    ]);
  });

  it("a Gemini call with cached audio bills the cached audio at the cached-audio rate", async () => {
    // 10,000 prompt tokens: 4,000 text + 6,000 audio, all 6,000 audio cached; 100 out.
    // genai-prices: 4,000 × 0.3 + 6,000 × 0.1 (cached audio) + 100 × 2.5, /1e6
    // = 0.0012 + 0.0006 + 0.00025 = 0.00205 (never the text cache rate: 0.00163).
    const result = await recordGemini([flash], "flash", {
      promptTokenCount: 10_000,
      cachedContentTokenCount: 6_000,
      candidatesTokenCount: 100,
      totalTokenCount: 10_100,
      promptTokensDetails: [
        { modality: "TEXT", tokenCount: 4_000 },
        { modality: "AUDIO", tokenCount: 6_000 },
      ],
      cacheTokensDetails: [{ modality: "AUDIO", tokenCount: 6_000 }],
    });
    expect(result.status).toBe("rated");
    if (result.status !== "rated") return;
    expect(result.record.total).toBe("0.00205");
    expect(result.record.observation.meters).toEqual({
      input_tokens: 4_000,
      cached_audio_input_tokens: 6_000,
      output_tokens: 100,
    });
  });

  it("a model that prices audio as text and has no cached-audio price bills cached audio at its cache-read price, as genai-prices does", async () => {
    // genai-prices (ModelPrice.calc_price) prices cache_audio_read_tokens at cache_read_mtok when
    // the model has no cache_audio_read_mtok; gemini-2.5-pro's numbers (no audio price of its own).
    const pro: GenaiProvider = {
      id: "google",
      models: [
        {
          id: "pro",
          match: { equals: "pro" },
          prices: { input_mtok: 1.25, cache_read_mtok: 0.125, output_mtok: 10 },
        },
        {
          id: "same",
          match: { equals: "same" },
          prices: { input_mtok: 1, input_audio_mtok: 1.0, cache_read_mtok: 0.1, output_mtok: 2 },
        },
      ],
    };
    const r = convert([pro]);
    expect(pricesOf(r, "pro")?.cached_audio_input_tokens).toEqual({ as: "cached_input_tokens" });
    // audio input at the text input price: audio is priced as text, so is cached audio
    expect(pricesOf(r, "same")?.cached_audio_input_tokens).toEqual({ as: "cached_input_tokens" });
    // 10,000 prompt: 4,000 uncached text, 6,000 cached audio; 100 out.
    // 4,000 × 1.25 + 6,000 × 0.125 + 100 × 10, /1e6 = 0.005 + 0.00075 + 0.001 = 0.00675
    const result = await recordGemini([pro], "pro", {
      promptTokenCount: 10_000,
      cachedContentTokenCount: 6_000,
      candidatesTokenCount: 100,
      totalTokenCount: 10_100,
      promptTokensDetails: [
        { modality: "TEXT", tokenCount: 4_000 },
        { modality: "AUDIO", tokenCount: 6_000 },
      ],
      cacheTokensDetails: [{ modality: "AUDIO", tokenCount: 6_000 }],
    });
    expect(result.status).toBe("rated");
    if (result.status !== "rated") return;
    expect(result.record.total).toBe("0.00675");
    expect(result.record.observation.meters).toMatchObject({ cached_audio_input_tokens: 6_000 });
  });

  it("tiered audio input: the alias only when audio is the text price at every tier (the rule shared with the LiteLLM importer)", () => {
    const tier = (base: number, above: number) => ({ base, tiers: [{ start: 200_000, price: above }] });
    const tiered: GenaiProvider = {
      id: "google",
      models: [
        {
          id: "same-tiers",
          match: { equals: "same-tiers" },
          prices: {
            input_mtok: tier(1.25, 2.5),
            input_audio_mtok: tier(1.25, 2.5),
            cache_read_mtok: tier(0.125, 0.25),
          },
        },
        {
          // audio at the text price below 200k only: priced apart above it
          id: "flat-audio",
          match: { equals: "flat-audio" },
          prices: { input_mtok: tier(1.25, 2.5), input_audio_mtok: 1.25, cache_read_mtok: tier(0.125, 0.25) },
        },
        {
          id: "other-start",
          match: { equals: "other-start" },
          prices: {
            input_mtok: tier(1.25, 2.5),
            input_audio_mtok: { base: 1.25, tiers: [{ start: 128_000, price: 2.5 }] },
            cache_read_mtok: tier(0.125, 0.25),
          },
        },
      ],
    };
    const r = convert([tiered]);
    expect(pricesOf(r, "same-tiers")?.cached_audio_input_tokens).toEqual({ as: "cached_input_tokens" });
    expect(pricesOf(r, "flat-audio")?.cached_audio_input_tokens).toBeUndefined();
    expect(pricesOf(r, "other-start")?.cached_audio_input_tokens).toBeUndefined();
  });

  it("a model that prices audio input apart but has no cached-audio price: cached audio unpriced naming the meter (never $0, never the text rate)", async () => {
    expect(pricesOf(convert([noCachedAudio]), "flash-old")?.cached_audio_input_tokens).toBeUndefined();
    const usage = {
      promptTokenCount: 10_000,
      cachedContentTokenCount: 7_000,
      candidatesTokenCount: 100,
      totalTokenCount: 10_100,
      promptTokensDetails: [
        { modality: "TEXT", tokenCount: 4_000 },
        { modality: "AUDIO", tokenCount: 6_000 },
      ],
      cacheTokensDetails: [
        { modality: "TEXT", tokenCount: 1_000 },
        { modality: "AUDIO", tokenCount: 6_000 },
      ],
    };
    const result = await recordGemini([noCachedAudio], "flash-old", usage);
    expect(result.status).toBe("unpriced");
    if (result.status !== "unpriced") return;
    expect(result.reason).toBe("no_price");
    expect(result).toMatchObject({ meter: "cached_audio_input_tokens" });

    // The same sheet still prices a cached text-only call:
    // 3,000 × 0.3 + 1,000 × 0.03 + 100 × 2.5, /1e6 = 0.0009 + 0.00003 + 0.00025 = 0.00118
    const text = await recordGemini([noCachedAudio], "flash-old", {
      promptTokenCount: 4_000,
      cachedContentTokenCount: 1_000,
      candidatesTokenCount: 100,
      totalTokenCount: 4_100,
      cacheTokensDetails: [{ modality: "TEXT", tokenCount: 1_000 }],
    });
    expect(text.status).toBe("rated");
    if (text.status !== "rated") return;
    expect(text.record.total).toBe("0.00118");
  });

  it("no alias where the model has no cache-read price, or its cached-audio price is unreadable: unpriced naming the meter", async () => {
    const noCache: GenaiProvider = {
      id: "google",
      models: [
        { id: "nocache", match: { equals: "nocache" }, prices: { input_mtok: 0.3, output_mtok: 2.5 } },
        {
          id: "badaudio",
          match: { equals: "badaudio" },
          prices: { input_mtok: 0.3, cache_read_mtok: 0.03, output_mtok: 2.5, cache_audio_read_mtok: -1 },
        },
      ],
    };
    const r = convert([noCache]);
    expect(pricesOf(r, "nocache")?.cached_audio_input_tokens).toBeUndefined();
    expect(pricesOf(r, "badaudio")?.cached_audio_input_tokens).toBeUndefined();
    const usage = {
      promptTokenCount: 10_000,
      cachedContentTokenCount: 6_000,
      candidatesTokenCount: 100,
      totalTokenCount: 10_100,
      promptTokensDetails: [{ modality: "AUDIO", tokenCount: 6_000 }],
      cacheTokensDetails: [{ modality: "AUDIO", tokenCount: 6_000 }],
    };
    for (const model of ["nocache", "badaudio"]) {
      const result = await recordGemini([noCache], model, usage);
      expect(result.status).toBe("unpriced");
      expect(result).toMatchObject({ reason: "no_price", meter: "cached_audio_input_tokens" });
    }
  });

  it("the same model still bills calls without cache exactly", async () => {
    // 3,000 text + 1,000 uncached audio in, 200 out: 3,000 × 0.3 + 1,000 × 1 + 200 × 2.5, /1e6
    // = 0.0009 + 0.001 + 0.0005 = 0.0024
    const result = await recordGemini([flash], "flash", {
      promptTokenCount: 4_000,
      candidatesTokenCount: 200,
      totalTokenCount: 4_200,
      promptTokensDetails: [
        { modality: "TEXT", tokenCount: 3_000 },
        { modality: "AUDIO", tokenCount: 1_000 },
      ],
    });
    expect(result.status).toBe("rated");
    if (result.status !== "rated") return;
    expect(result.record.total).toBe("0.0024");
  });
});
