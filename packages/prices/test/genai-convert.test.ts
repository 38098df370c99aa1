import { createLatch, MemoryObservationStore, MemoryRatedRecordStore } from "@latch/core";
import { describe, expect, it } from "vitest";
import {
  convertGenaiPrices,
  type GenaiProvider,
  genaiPriceText,
  type PriceCatalogSource,
  pricingSourceOf,
} from "../src/index.js";

// Hand-written in genai-prices' shape (not copied from its data).
const source: PriceCatalogSource = {
  name: "test data",
  url: "https://example.test/genai-prices",
  fetchedAt: "2026-12-01T00:00:00Z",
  licence: "MIT",
  copyright: "test",
};
const provider = (id: string, models: GenaiProvider["models"]): GenaiProvider => ({ id, models });
const convert = (providers: GenaiProvider[], more: Record<string, unknown> = {}) =>
  convertGenaiPrices(providers, { source, providers: providers.map((p) => p.id), ...more });
const snapshot = (r: ReturnType<typeof convert>, model: string) =>
  r.catalog.entries.filter((e) => e.snapshot.model.billableModel === model).map((e) => e.snapshot);

describe("genaiPriceText: floats per Mtok → exact decimal text", () => {
  it.each([
    [0.075, "0.075"],
    [1.1, "1.1"],
    [2.5, "2.5"],
    [0.0375, "0.0375"],
    [0.1 + 0.2, "0.30000000000000004"], // the float's own shortest text, never re-rounded
    [1e-7, "0.0000001"],
    [15, "15"],
  ])("%s → %s", (n, text) => {
    expect(genaiPriceText(n)).toBe(text);
  });
  it("per thousand → per unit by decimal division", () => {
    expect(genaiPriceText(10, "thousand")).toBe("0.01");
    expect(genaiPriceText(2.5, "thousand")).toBe("0.0025");
    expect(genaiPriceText(0.035, "thousand")).toBe("0.000035");
  });
  it.each([[-1], [Number.NaN], [Number.POSITIVE_INFINITY], ["2.5"]])("refuses %s", (v) => {
    expect(genaiPriceText(v)).toBeUndefined();
  });
});

describe("convertGenaiPrices", () => {
  it("maps units to meters exactly, equals to aliases, and reports every unit it cannot map", () => {
    const r = convert([
      provider("openai", [
        {
          id: "m-1",
          match: { or: [{ equals: "m-1" }, { equals: "m-1-2025-01-01" }] },
          prices: {
            input_mtok: 0.075,
            cache_read_mtok: 0.0375,
            cache_write_mtok: 1.1,
            cache_write_1h_mtok: 2.5,
            output_mtok: 0.3,
            input_audio_mtok: 40,
            output_audio_mtok: 80,
            input_image_mtok: 5,
            output_image_mtok: 30,
            web_searches_kcount: 10,
            // a meter of its own: priced apart from cached text
            cache_audio_read_mtok: 0.05,
            // at the price of the meter Latch counts it in (else: conflictingPrice, see genai-absorbed-units.test.ts)
            input_video_mtok: 0.075,
            storage_searches_kcount: 2.5,
          },
        },
      ]),
    ]);
    expect(snapshot(r, "m-1")).toEqual([
      {
        snapshotId: "genai-prices:m-1:1970-01-01T00:00:00Z",
        model: { billableModel: "m-1", vendor: "openai" },
        currency: "USD",
        effectiveFrom: "1970-01-01T00:00:00Z",
        prices: {
          input_tokens: { perMillion: "0.075" },
          cached_input_tokens: { perMillion: "0.0375" },
          cache_write_tokens: { perMillion: "1.1" },
          cache_write_1h_tokens: { perMillion: "2.5" },
          output_tokens: { perMillion: "0.3" },
          audio_input_tokens: { perMillion: "40" },
          audio_output_tokens: { perMillion: "80" },
          image_input_tokens: { perMillion: "5" },
          image_output_tokens: { perMillion: "30" },
          web_search_requests: { perUnit: "0.01" },
          cached_audio_input_tokens: { perMillion: "0.05" },
          reasoning_tokens: { as: "output_tokens" },
        },
        aliases: ["m-1-2025-01-01"],
      },
    ]);
    expect(r.skipped.map((s) => [s.field, s.code])).toEqual([
      ["input_video_mtok", "unsupportedUnit"],
      ["storage_searches_kcount", "unsupportedUnit"],
    ]);
    expect(r.catalog.sources).toEqual([source]);
  });

  it("a reasoning price of its own replaces reasoning-as-output", () => {
    const r = convert([
      provider("openai", [
        {
          id: "r",
          match: { equals: "r" },
          prices: { input_mtok: 1, output_mtok: 4, output_reasoning_mtok: 8 },
        },
      ]),
    ]);
    expect(snapshot(r, "r")[0]?.prices.reasoning_tokens).toEqual({ perMillion: "8" });
  });

  it("tiers: one volume tier on prompt tokens over the union of every meter's starts", () => {
    const r = convert([
      provider("google", [
        {
          id: "long",
          match: { equals: "long" },
          prices: {
            input_mtok: { base: 1.25, tiers: [{ start: 200_000, price: 2.5 }] },
            output_mtok: {
              base: 10,
              tiers: [
                { start: 128_000, price: 12 },
                { start: 200_000, price: 15 },
              ],
            },
            cache_read_mtok: 0.125,
          },
        },
      ]),
    ]);
    const [s] = snapshot(r, "long");
    expect(s?.prices).toEqual({
      cached_input_tokens: { perMillion: "0.125" },
      reasoning_tokens: { as: "output_tokens" },
      // no cache_audio_read_mtok: genai-prices bills cached audio at cache_read_mtok
      cached_audio_input_tokens: { as: "cached_input_tokens" },
    });
    expect(s?.tiers).toEqual([
      {
        scope: "request",
        mode: "volume",
        baseline: "prompt_tokens",
        boundaries: [
          {
            upTo: 128_000,
            prices: { input_tokens: { perMillion: "1.25" }, output_tokens: { perMillion: "10" } },
          },
          {
            upTo: 200_000,
            prices: { input_tokens: { perMillion: "1.25" }, output_tokens: { perMillion: "12" } },
          },
          {
            upTo: null,
            prices: { input_tokens: { perMillion: "2.5" }, output_tokens: { perMillion: "15" } },
          },
        ],
      },
    ]);
    expect(r.skipped).toEqual([]);
  });

  it("tiers rate as genai-prices does: strictly above start, the whole quantity at that tier", async () => {
    const r = convert([
      provider("openai", [
        {
          id: "t",
          match: { equals: "t" },
          prices: { input_mtok: { base: 2, tiers: [{ start: 1000, price: 4 }] }, output_mtok: 8 },
        },
      ]),
    ]);
    const latch = createLatch({
      observations: new MemoryObservationStore(),
      rated: new MemoryRatedRecordStore(),
      pricing: pricingSourceOf(r.catalog),
    });
    const totals: string[] = [];
    for (const input of [1000, 1001]) {
      const result = await latch.record({
        eventId: `t-${input}`,
        subject: { tenantId: "a" },
        model: { billableModel: "t" },
        source: { kind: "provider_reported" },
        outcome: { kind: "success" },
        timing: { startedAt: "2026-06-01T00:00:00Z", completedAt: "2026-06-01T00:00:01Z" },
        meters: { input_tokens: input, output_tokens: 10 },
      });
      totals.push(result.status === "rated" ? result.record.total : result.status);
    }
    await latch.close();
    // 1000 × 2 / 1e6 + 10 × 8 / 1e6 = 0.002 + 0.00008; 1001 × 4 / 1e6 + 0.00008 = 0.004004 + 0.00008
    expect(totals).toEqual(["0.00208", "0.004084"]);
  });

  it("refuses bad tiers and bad prices by code, never at $0", () => {
    const r = convert([
      provider("openai", [
        {
          id: "a",
          match: { equals: "a" },
          prices: { input_mtok: { base: 1, tiers: [{ start: 0, price: 2 }] } },
        },
        { id: "b", match: { equals: "b" }, prices: { input_mtok: -1, output_mtok: 2 } },
        { id: "c", match: { equals: "c" }, prices: { input_mtok: 0, output_mtok: 0 } },
        { id: "d", match: { equals: "d" }, prices: { audio_hours: 1 } },
      ]),
    ]);
    expect(snapshot(r, "a")).toEqual([]);
    expect(snapshot(r, "b")[0]?.prices).toEqual({
      output_tokens: { perMillion: "2" },
      reasoning_tokens: { as: "output_tokens" },
    });
    expect(snapshot(r, "c")).toEqual([]);
    expect(r.skipped.map((s) => [s.model, s.field, s.code])).toEqual([
      ["a", "input_mtok", "tierInvalid"],
      ["b", "input_mtok", "badPrice"],
      ["c", "prices", "allZero"],
      ["d", "audio_hours", "unsupportedUnit"],
      ["d", "prices", "noPrice"],
    ]);
    const free = convert(
      [provider("openai", [{ id: "c", match: { equals: "c" }, prices: { input_mtok: 0 } }])],
      {
        includeFree: true,
      },
    );
    expect(snapshot(free, "c")[0]?.prices.input_tokens).toEqual({ perMillion: "0" });
  });

  it("conditional start dates become dated snapshots; asOf keeps the price in effect then", () => {
    const models: GenaiProvider["models"] = [
      {
        id: "dated",
        match: { equals: "dated" },
        prices: [
          { prices: { input_mtok: 3, output_mtok: 15 } },
          {
            constraint: { type: "start_date", start_date: "2026-03-13" },
            prices: { input_mtok: 1, output_mtok: 5 },
          },
          {
            constraint: { type: "start_date", start_date: "2027-01-01" },
            prices: { input_mtok: 0.5, output_mtok: 2 },
          },
        ],
      },
    ];
    const history = convert([provider("anthropic", models)]);
    expect(
      snapshot(history, "dated").map((s) => [s.effectiveFrom, s.effectiveUntil, s.prices.input_tokens]),
    ).toEqual([
      ["1970-01-01T00:00:00Z", "2026-03-13T00:00:00Z", { perMillion: "3" }],
      ["2026-03-13T00:00:00Z", "2027-01-01T00:00:00Z", { perMillion: "1" }],
      ["2027-01-01T00:00:00Z", undefined, { perMillion: "0.5" }],
    ]);
    pricingSourceOf(history.catalog); // no overlap
    const later = convert([provider("anthropic", models)], { effectiveFrom: "2026-06-01T00:00:00Z" });
    expect(snapshot(later, "dated").map((s) => s.effectiveFrom)).toEqual([
      "2026-06-01T00:00:00Z",
      "2027-01-01T00:00:00Z",
    ]);
    const now = convert([provider("anthropic", models)], { asOf: "2026-12-01T00:00:00Z" });
    expect(
      snapshot(now, "dated").map((s) => [s.effectiveFrom, s.effectiveUntil, s.prices.input_tokens]),
    ).toEqual([["2026-12-01T00:00:00Z", undefined, { perMillion: "1" }]]);
    expect(now.skipped.map((s) => [s.code, s.value])).toEqual([["futurePrice", "2027-01-01T00:00:00Z"]]);
  });

  it("leaves out time-of-day prices and out-of-order dates", () => {
    const r = convert([
      provider("openai", [
        {
          id: "tod",
          match: { equals: "tod" },
          prices: [
            { prices: { input_mtok: 1 } },
            {
              constraint: { type: "time_of_date", start_time: "16:30:00Z", end_time: "00:30:00Z" },
              prices: { input_mtok: 0.5 },
            },
          ],
        },
        {
          id: "order",
          match: { equals: "order" },
          prices: [
            { prices: { input_mtok: 1 } },
            { constraint: { type: "start_date", start_date: "2026-05-01" }, prices: { input_mtok: 2 } },
            { constraint: { type: "start_date", start_date: "2026-01-01" }, prices: { input_mtok: 3 } },
          ],
        },
      ]),
    ]);
    expect(r.catalog.entries).toEqual([]);
    expect(r.skipped.map((s) => [s.model, s.code])).toEqual([
      ["tod", "timeOfDayPrice"],
      ["order", "conditionalOrder"],
    ]);
  });

  it("match rules: prefixes become aliases, regex/contains are reported, first match wins", () => {
    const r = convert([
      provider("openai", [
        {
          id: "fam-2",
          match: { or: [{ starts_with: "fam-2" }, { equals: "fam-2-mini-special" }] },
          prices: { input_mtok: 2 },
        },
        {
          id: "fam-2-mini",
          match: { or: [{ equals: "fam-2-mini" }, { regex: "^fam-2-mini-\\d+$" }, { contains: "mini-fam" }] },
          prices: { input_mtok: 1 },
        },
        { id: "fam-3", match: { starts_with: "fam-3" }, prices: { input_mtok: 3 } },
        { id: "ft:x", match: { starts_with: "ft:x:" }, prices: { input_mtok: 3 } },
      ]),
    ]);
    expect(snapshot(r, "fam-2")[0]?.aliases).toEqual(["fam-2-mini-special"]);
    // genai-prices prices "fam-2-mini" with fam-2 (an earlier starts_with): so does Latch
    expect(snapshot(r, "fam-2-mini")).toEqual([]);
    expect(snapshot(r, "fam-3")).toHaveLength(1);
    expect(snapshot(r, "ft:x")).toEqual([]);
    expect(r.skipped.map((s) => [s.model, s.code, s.value])).toEqual([
      ["fam-2", "prefixMatch", "fam-2"],
      ["fam-2-mini", "unsupportedMatch", '{"regex":"^fam-2-mini-\\\\d+$"}'],
      ["fam-2-mini", "unsupportedMatch", '{"contains":"mini-fam"}'],
      ["fam-2-mini", "noExactId", undefined],
      ["fam-3", "prefixMatch", "fam-3"],
      ["ft:x", "prefixMatch", "ft:x:"],
      ["ft:x", "noExactId", undefined],
    ]);
  });

  it("an id or alias an earlier provider prices is not priced again; other providers are prefixed", () => {
    const r = convert([
      provider("anthropic", [
        { id: "claude-x", match: { equals: "claude-x" }, prices: { input_mtok: 3 } },
        { id: "claude-z", match: { equals: "claude-z" }, prices: { input_mtok: 5 } },
      ]),
      provider("google", [
        { id: "claude-x", match: { equals: "claude-x" }, prices: { input_mtok: 4 } },
        { id: "gem", match: { or: [{ equals: "gem" }, { equals: "claude-x" }] }, prices: { input_mtok: 1 } },
        {
          id: "gem-3",
          match: { or: [{ equals: "gem-3" }, { equals: "claude-z" }] },
          prices: { input_mtok: 2 },
        },
      ]),
      provider("openrouter", [
        { id: "anthropic/claude-x", match: { equals: "anthropic/claude-x" }, prices: { input_mtok: 3.3 } },
      ]),
    ]);
    expect(
      r.catalog.entries.map((e) => [e.snapshot.model.billableModel, e.snapshot.prices.input_tokens]),
    ).toEqual([
      ["claude-x", { perMillion: "3" }],
      ["claude-z", { perMillion: "5" }],
      ["gem", { perMillion: "1" }],
      ["gem-3", { perMillion: "2" }],
      ["openrouter/anthropic/claude-x", { perMillion: "3.3" }],
    ]);
    expect(r.skipped.map((s) => [s.provider, s.model, s.code, s.value])).toEqual([
      ["google", "claude-x", "idTaken", "claude-x"],
      // genai-prices prices "claude-x" with google's own claude-x, first in its list
      ["google", "gem", "shadowedMatch", "claude-x"],
      ["google", "gem-3", "aliasTaken", "claude-z"],
    ]);
  });

  it("reports a provider the data does not have, and names bad options", () => {
    const r = convertGenaiPrices([], { source, providers: ["nope"] });
    expect(r.skipped).toEqual([
      expect.objectContaining({ provider: "nope", model: "*", code: "unknownProvider" }),
    ]);
    expect(() => convertGenaiPrices([], { source, asOf: "yesterday" })).toThrow(/options\.asOf/);
    expect(() => convertGenaiPrices([], { source, effectiveFrom: "2026-01-01" })).toThrow(
      /options\.effectiveFrom/,
    );
  });
});
