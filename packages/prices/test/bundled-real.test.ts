/**
 * The bundled genai-prices catalog rating REAL recorded provider responses (core's
 * test/fixtures/real, MIT / Apache-2.0, see its SOURCES.md) through createLatch(), with totals
 * computed here by hand from genai-prices' per-million prices (written out beside each case).
 */
import { readFileSync } from "node:fs";
import {
  createLatch,
  MemoryObservationStore,
  MemoryRatedRecordStore,
  type ProviderUsageInput,
} from "@latch/core";
import { describe, expect, it } from "vitest";
import { bundledPriceCatalog, convertBundledGenaiPrices } from "../src/index.js";

const REAL = new URL("../../core/test/fixtures/real/", import.meta.url);
const load = (file: string) =>
  JSON.parse(readFileSync(new URL(file, REAL), "utf8")) as Record<string, unknown>;

async function rate(api: string, file: string, model: string, providerId: string, at: string) {
  return rateBody(api, load(file), model, providerId, at);
}

async function rateBody(
  api: string,
  body: Record<string, unknown>,
  model: string,
  providerId: string,
  at: string,
) {
  const latch = createLatch({
    observations: new MemoryObservationStore(),
    rated: new MemoryRatedRecordStore(),
    pricing: await bundledPriceCatalog(),
  });
  const result = await latch.record({
    api,
    response: body,
    observation: {
      eventId: `real:${model}`,
      subject: { tenantId: "t1" },
      model: { billableModel: model },
      provider: { providerId },
      source: { kind: "provider_reported" },
      outcome: { kind: "success" },
      timing: { startedAt: at, completedAt: at },
    },
  } as ProviderUsageInput);
  await latch.close();
  return result;
}

describe("bundledPriceCatalog() prices real responses out of the box", () => {
  it("OpenAI Responses, gpt-4o-2024-08-06 (an alias of gpt-4o: $2.5 in, $10 out per Mtok)", async () => {
    // usage: input_tokens 15 (cached 0), output_tokens 9 (reasoning 0)
    // 15 × 2.5 / 1e6 = 0.0000375; 9 × 10 / 1e6 = 0.00009; total 0.0001275
    const r = await rate(
      "openaiResponses",
      "openai/test_background_mode_streaming_continuation_vcr.1.json",
      "gpt-4o-2024-08-06",
      "openai",
      "2026-02-23T21:21:10Z",
    );
    expect(r.status).toBe("rated");
    if (r.status !== "rated") return;
    expect(r.record.total).toBe("0.0001275");
    expect(r.record.modelMatch).toEqual({ rule: "alias", matchedModel: "gpt-4o" });
    expect(r.record.snapshotId).toBe("genai-prices:gpt-4o:1970-01-01T00:00:00Z");
  });

  it("Anthropic, claude-sonnet-4-20250514 with a web search ($3 in, $15 out per Mtok, $10 per 1,000 searches)", async () => {
    // usage: input_tokens 8984, output_tokens 520, 1 web search, no cache
    // 8984 × 3 / 1e6 = 0.026952; 520 × 15 / 1e6 = 0.0078; 1 × 10 / 1000 = 0.01; total 0.044752
    const r = await rate(
      "anthropic",
      "anthropic/test_anthropic_web_search_tool.0.json",
      "claude-sonnet-4-20250514",
      "anthropic",
      "2025-09-18T22:37:50Z",
    );
    expect(r.status).toBe("rated");
    if (r.status !== "rated") return;
    expect(r.record.total).toBe("0.044752");
    // claude-sonnet-4-20250514 → (date suffix) claude-sonnet-4, an alias of genai-prices' claude-sonnet-4-0
    expect(r.record.modelMatch).toMatchObject({ rule: "dated_suffix", matchedModel: "claude-sonnet-4-0" });
  });

  it("Gemini, gemini-2.5-pro with cached tokens and thinking ($1.25 in, $0.125 cached, $10 out per Mtok, under 200k)", async () => {
    // usage: promptTokenCount 373 of which cachedContentTokenCount 204; candidates 89; thoughts 167
    // (373 − 204) × 1.25 / 1e6 = 0.00021125; 204 × 0.125 / 1e6 = 0.0000255;
    // (89 + 167) × 10 / 1e6 = 0.00256 (thinking billed as output); total 0.00279675
    const r = await rate(
      "gemini",
      "google/test_mixed_content_ordering-google_2_5-.1.json",
      "gemini-2.5-pro",
      "google",
      "2026-03-17T02:08:55Z",
    );
    expect(r.status).toBe("rated");
    if (r.status !== "rated") return;
    expect(r.record.total).toBe("0.00279675");
    expect(r.record.modelMatch).toBeUndefined(); // exact
  });

  it("Gemini, gemini-2.5-flash with cached text and image: priced ($0.3 in, $0.03 cached, $2.5 out per Mtok)", async () => {
    // Before cached_audio_input_tokens, genai-prices' cache_audio_read_mtok (0.1) ≠ cache_read_mtok
    // (0.03) left cached_input_tokens unpriced for the model (conflictingPrice): every cached call
    // of Gemini 2.5 Flash, text-only included, came back unpriced.
    // usage (pydantic/pydantic-ai cassette, MIT): promptTokenCount 373, cachedContentTokenCount 204
    // (cacheTokensDetails TEXT 63 + IMAGE 141, no AUDIO), candidates 89, thoughts 167
    // (373 − 204) × 0.3 / 1e6 = 0.0000507; 204 × 0.03 / 1e6 = 0.00000612;
    // (89 + 167) × 2.5 / 1e6 = 0.00064 (thinking billed as output); total 0.00069682
    const r = await rate(
      "gemini",
      "google/test_mixed_content_ordering-google_2_5-.1.json",
      "gemini-2.5-flash",
      "google",
      "2026-03-17T02:08:55Z",
    );
    expect(r.status).toBe("rated");
    if (r.status !== "rated") return;
    expect(r.record.total).toBe("0.00069682");
    expect(r.record.observation.meters).toEqual({
      input_tokens: 169,
      cached_input_tokens: 204,
      output_tokens: 89,
      reasoning_tokens: 167,
    });
    expect(r.record.snapshotId).toBe("genai-prices:gemini-2.5-flash:1970-01-01T00:00:00Z");
  });

  it("Gemini, gemini-2.5-flash with cached audio: cached audio at $0.1, cached text and video at $0.03 per Mtok", async () => {
    // usage (pydantic/pydantic-ai cassette, MIT): a video with its audio track, mostly cached.
    // promptTokenCount 3297 = TEXT 83 + VIDEO 2893 + AUDIO 321; cachedContentTokenCount 2918 =
    // AUDIO 284 + TEXT 73 + VIDEO 2561; candidates 55; thoughts 95; total 3447.
    // cached audio 284; cached text/video 2918 − 284 = 2634; uncached audio 321 − 284 = 37;
    // input 3297 − 2918 − 37 = 342 (Google bills video at the text rate).
    // 342 × 0.3 = 102.6; 2634 × 0.03 = 79.02; 284 × 0.1 = 28.4; 37 × 1 = 37;
    // (55 + 95) × 2.5 = 375; Σ 622.02 / 1e6 = 0.00062202
    const r = await rate(
      "gemini",
      "google/test_multimodal_tool_return_matrix-direct-url_force_download-video-google_2_5-.2.json",
      "gemini-2.5-flash",
      "google",
      "2026-03-17T02:08:55Z",
    );
    expect(r.status).toBe("rated");
    if (r.status !== "rated") return;
    expect(r.record.observation.meters).toEqual({
      input_tokens: 342,
      cached_input_tokens: 2634,
      cached_audio_input_tokens: 284,
      audio_input_tokens: 37,
      output_tokens: 55,
      reasoning_tokens: 95,
    });
    expect(r.record.total).toBe("0.00062202");
  });

  it("Gemini, gemini-2.5-pro with fully cached audio: cached audio at the cache-read price, as genai-prices' own calcPrice", async () => {
    // gemini-2.5-pro has no cache_audio_read_mtok: genai-prices bills cached audio at
    // cache_read_mtok ($0.125 per Mtok, $0.25 above 200k prompt tokens), as Google does for Pro.
    // core's fixture (an audio file in an explicit cache, illustrative counts): prompt 33,000 =
    // 32,000 cached audio + 20 cached text + 980 uncached text; 9 out.
    // 980 × 1.25 + 32,020 × 0.125 + 9 × 10 = 1225 + 4002.5 + 90 = 5317.5 / 1e6 = 0.0053175
    const body = JSON.parse(
      readFileSync(new URL("../providers/gemini.cached-audio.json", REAL), "utf8"),
    ) as Record<string, unknown>;
    const small = await rateBody("gemini", body, "gemini-2.5-pro", "google", "2026-06-01T00:00:00Z");
    expect(small.status).toBe("rated");
    if (small.status !== "rated") return;
    expect(small.record.observation.meters).toMatchObject({ cached_audio_input_tokens: 32_000 });
    expect(small.record.total).toBe("0.0053175");
    // The same usage through genai-prices' own calcPrice (the installed package).
    const { calcPrice } = await import("@pydantic/genai-prices");
    const oracle = (usage: Record<string, number>) =>
      calcPrice(usage, "gemini-2.5-pro", {
        providerId: "google",
        timestamp: new Date("2026-06-01T00:00:00Z"),
      });
    expect(
      oracle({
        input_tokens: 33_000,
        cache_read_tokens: 32_020,
        cache_audio_read_tokens: 32_000,
        input_audio_tokens: 32_000,
        output_tokens: 9,
      })?.total_price,
    ).toBeCloseTo(0.0053175, 12);

    // Above 200k prompt tokens the cached audio joins the tier (counted once in prompt_tokens):
    // prompt 250,000 = 200,000 cached audio + 40,000 cached text + 10,000 uncached text; 1,000 out.
    // 10,000 × 2.5 + 240,000 × 0.25 + 1,000 × 15 = 25,000 + 60,000 + 15,000 = 100,000 / 1e6 = 0.1
    const big = await rateBody(
      "gemini",
      {
        usageMetadata: {
          promptTokenCount: 250_000,
          cachedContentTokenCount: 240_000,
          candidatesTokenCount: 1_000,
          totalTokenCount: 251_000,
          promptTokensDetails: [
            { modality: "TEXT", tokenCount: 50_000 },
            { modality: "AUDIO", tokenCount: 200_000 },
          ],
          cacheTokensDetails: [
            { modality: "TEXT", tokenCount: 40_000 },
            { modality: "AUDIO", tokenCount: 200_000 },
          ],
        },
      },
      "gemini-2.5-pro",
      "google",
      "2026-06-01T00:00:00Z",
    );
    expect(big.status).toBe("rated");
    if (big.status !== "rated") return;
    expect(big.record.total).toBe("0.1");
    expect(
      oracle({
        input_tokens: 250_000,
        cache_read_tokens: 240_000,
        cache_audio_read_tokens: 200_000,
        input_audio_tokens: 200_000,
        output_tokens: 1_000,
      })?.total_price,
    ).toBeCloseTo(0.1, 12);
  });

  it("records the attribution of the installed package", async () => {
    const { catalog } = await convertBundledGenaiPrices({ fetchedAt: "2026-12-02T00:00:00Z" });
    const pkg = JSON.parse(
      readFileSync(new URL("../node_modules/@pydantic/genai-prices/package.json", import.meta.url), "utf8"),
    ) as { version: string };
    expect(catalog.sources).toEqual([
      {
        name: "genai-prices (Pydantic)",
        url: `https://www.npmjs.com/package/@pydantic/genai-prices/v/${pkg.version}`,
        package: `@pydantic/genai-prices@${pkg.version}`,
        fetchedAt: "2026-12-02T00:00:00Z",
        licence: "MIT",
        copyright: "Copyright (c) Pydantic Services Inc. 2025 to present",
      },
    ]);
    expect(catalog.entries.every((e) => e.source === 0)).toBe(true);
  });
});
