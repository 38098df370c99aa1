import { readFileSync } from "node:fs";
import { LatchValidationError } from "@latch/core";
import { describe, expect, it } from "vitest";
import { convertLiteLlmCostMap, LITELLM_MAP_URL } from "../src/index.js";

/** Hand-written in LiteLLM's format (see fixtures/README.md), not copied from LiteLLM. */
const MAP = readFileSync(new URL("fixtures/litellm-handwritten.json", import.meta.url), "utf8");
const FETCHED = "2026-12-01T00:00:00Z";

const convert = () =>
  convertLiteLlmCostMap(MAP, { source: { fetchedAt: FETCHED, commit: "abc123", etag: 'W/"e1"' } });
const snapshot = (model: string, tier?: string) =>
  convert().catalog.entries.find(
    (e) => e.snapshot.model.billableModel === model && e.snapshot.model.tier === tier,
  )?.snapshot;

describe("convertLiteLlmCostMap", () => {
  it("converts per-token prices exactly from their text: exponent, plain decimal and 0", () => {
    expect(snapshot("example-chat-model")?.prices).toEqual({
      input_tokens: { perMillion: "2.5" }, // 2.5e-06
      output_tokens: { perMillion: "10" }, // 1e-05
      cached_input_tokens: { perMillion: "1.25" },
      // No audio prices: a cached-audio hit is billed at the cache-read price, as LiteLLM bills it.
      cached_audio_input_tokens: { as: "cached_input_tokens" },
      reasoning_tokens: { as: "output_tokens" },
    });
    expect(snapshot("example-completion")?.prices).toMatchObject({
      input_tokens: { perMillion: "1.5" }, // 0.0000015
      output_tokens: { perMillion: "2" }, // 2E-6
    });
    expect(snapshot("example-flex")?.prices.input_tokens).toEqual({ perMillion: "1.1" }); // not 1.0999999999999999
    expect(snapshot("example-embedding")?.prices).toMatchObject({
      input_tokens: { perMillion: "0.02" },
      output_tokens: { perMillion: "0" },
    });
    expect(snapshot("example-image")?.prices).toEqual({ image_count: { perUnit: "0.04" } });
  });

  it("maps cache writes (5 minutes and 1 hour), long-context tiers and service-tier variants", () => {
    expect(snapshot("example-anthropic")?.prices).toMatchObject({
      cache_write_tokens: { perMillion: "3.75" },
      cache_write_1h_tokens: { perMillion: "6" },
      cached_input_tokens: { perMillion: "0.3" },
    });
    const long = snapshot("example-long-context");
    expect(long?.tiers?.[0]?.boundaries.map((b) => [b.upTo, b.prices?.input_tokens])).toEqual([
      [200_000, { perMillion: "1.25" }],
      [null, { perMillion: "2.5" }],
    ]);
    expect(snapshot("example-chat-model", "batch")?.prices.input_tokens).toEqual({ perMillion: "1.25" });
    expect(snapshot("example-chat-model", "priority")?.prices.cached_input_tokens).toEqual({
      perMillion: "2.125",
    });
    expect(snapshot("example-flex", "flex")?.prices.output_tokens).toEqual({ perMillion: "2.2" });
  });

  it("keeps chat, completion, responses, embedding, image and mode-less entries; reports the rest once", () => {
    const { catalog, skipped } = convert();
    const models = new Set(catalog.entries.map((e) => e.snapshot.model.billableModel));
    expect([...models].sort()).toEqual([
      "example-anthropic",
      "example-chat-model",
      "example-completion",
      "example-embedding",
      "example-flex",
      "example-image",
      "example-long-context",
      "example-no-mode",
      "example-string-price",
    ]);
    const modeSkips = skipped.filter((s) => s.code === "unsupportedMode").map((s) => s.model);
    expect(modeSkips.sort()).toEqual(["example-rerank", "example-speech", "example-unknown-mode"]);
    const codes = Object.fromEntries(skipped.filter((s) => s.field === "*").map((s) => [s.model, s.code]));
    expect(codes).toEqual({
      sample_spec: "sampleSpec",
      "example-missing-fields": "noPrice",
      "example-free-placeholder": "allZero",
      "hostile\u0000model": "invalidSnapshot",
    });
    // A price given as a string is reported, never billed as $0; the entry's other prices stay.
    expect(skipped).toContainEqual(
      expect.objectContaining({
        model: "example-string-price",
        field: "input_cost_per_token",
        code: "notANumber",
      }),
    );
    expect(catalog.entries.some((e) => e.snapshot.model.billableModel.includes("\u0000"))).toBe(false);
  });

  it("records where the map came from beside every snapshot, dated at the fetch by default", () => {
    const { catalog } = convert();
    expect(catalog.sources).toEqual([
      {
        name: "LiteLLM model cost map",
        url: LITELLM_MAP_URL,
        commit: "abc123",
        etag: 'W/"e1"',
        fetchedAt: FETCHED,
        licence: "MIT",
        copyright: "Copyright (c) 2023 Berri AI",
      },
    ]);
    expect(catalog.entries.every((e) => e.source === 0 && e.snapshot.effectiveFrom === FETCHED)).toBe(true);
    const dated = convertLiteLlmCostMap(MAP, {
      source: { fetchedAt: FETCHED, url: "https://mirror.example/map.json" },
      effectiveFrom: "2026-01-01T00:00:00Z",
    });
    expect(dated.catalog.entries[0]?.snapshot.effectiveFrom).toBe("2026-01-01T00:00:00Z");
    expect(dated.catalog.sources[0]?.url).toBe("https://mirror.example/map.json");
  });

  it("refuses text that is not a cost map, and a malformed fetch time, naming the field", () => {
    expect(() => convertLiteLlmCostMap("[1, 2]", { source: { fetchedAt: FETCHED } })).toThrow(
      LatchValidationError,
    );
    expect(() => convertLiteLlmCostMap("{", { source: { fetchedAt: FETCHED } })).toThrow(
      LatchValidationError,
    );
    const e = (() => {
      try {
        convertLiteLlmCostMap(MAP, { source: { fetchedAt: "yesterday" } });
      } catch (error) {
        return error as LatchValidationError;
      }
    })();
    expect(e?.issues).toEqual([{ path: "source.fetchedAt", message: "expected an ISO 8601 UTC timestamp" }]);
  });
});
