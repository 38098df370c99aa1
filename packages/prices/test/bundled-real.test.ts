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
  const latch = createLatch({
    observations: new MemoryObservationStore(),
    rated: new MemoryRatedRecordStore(),
    pricing: await bundledPriceCatalog(),
  });
  const result = await latch.record({
    api,
    response: load(file),
    observation: {
      eventId: `real:${file}`,
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

  it("Gemini, gemini-2.5-flash with cached tokens: unpriced (cached audio $0.1, cached text $0.03 per Mtok share one meter)", async () => {
    // genai-prices prices Gemini 2.5 Flash's cached audio (cache_audio_read_mtok 0.1) apart from
    // its cached text (0.03); Latch counts both as cached_input_tokens, so that meter is left
    // unpriced (conflictingPrice) rather than billing cached audio at the text rate.
    const r = await rate(
      "gemini",
      "google/test_mixed_content_ordering-google_2_5-.1.json",
      "gemini-2.5-flash",
      "google",
      "2026-03-17T02:08:55Z",
    );
    expect(r.status).toBe("unpriced");
    expect(r).toMatchObject({ reason: "no_price", meter: "cached_input_tokens" });
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
