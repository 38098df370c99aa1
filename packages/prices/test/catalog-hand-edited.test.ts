/**
 * A catalog file edited by hand: text a store would refuse (U+0000, an unpaired surrogate) or a
 * `fetchedAt` that is no timestamp is refused at load, naming the field, not carried to a
 * backend (a Postgres jsonb refuses U+0000) or printed as attribution.
 */
import { describe, expect, it } from "vitest";
import { PRICE_CATALOG_FORMAT, type PriceCatalog, parsePriceCatalog } from "../src/index.js";

const catalog = (): PriceCatalog => ({
  format: PRICE_CATALOG_FORMAT,
  sources: [
    {
      name: "hand",
      url: "https://example.test/prices",
      fetchedAt: "2026-12-01T00:00:00Z",
      licence: "MIT",
      copyright: "test",
    },
  ],
  entries: [
    {
      source: 0,
      snapshot: {
        snapshotId: "hand:m:2026-12-01",
        model: { billableModel: "m", vendor: "openai" },
        currency: "USD",
        effectiveFrom: "2026-12-01T00:00:00Z",
        prices: { input_tokens: { perMillion: "2.5" }, output_tokens: { perMillion: "10" } },
        aliases: ["m-2026-12-01"],
      },
    },
  ],
});

describe("parsePriceCatalog: a hand-edited file", () => {
  it("accepts the well-formed catalog", () => {
    expect(parsePriceCatalog(catalog()).entries[0]?.snapshot.aliases).toEqual(["m-2026-12-01"]);
  });

  it.each([
    ["U+0000", "m\u0000"],
    ["a lone surrogate", "m\ud800"],
  ])("refuses an alias with %s, naming it", (_, alias) => {
    const c = catalog();
    (c.entries[0] as { snapshot: { aliases?: string[] } }).snapshot.aliases = [alias];
    expect(() => parsePriceCatalog(c)).toThrow(/entries\.0\.snapshot\.aliases\.0: must not contain U\+0000/);
  });

  it.each([
    ["name", "genai\u0000"],
    ["copyright", "\udc00 Pydantic"],
    ["package", "@pydantic/genai-prices@0.1.8\u0000"],
  ])("refuses source %s with U+0000 or a lone surrogate", (field, value) => {
    const c = catalog();
    (c.sources[0] as unknown as Record<string, string>)[field] = value;
    expect(() => parsePriceCatalog(c)).toThrow(`sources.0.${field}: must not contain U+0000`);
  });

  it.each([["yesterday"], ["2026-12-01"], ["2026-13-01T00:00:00Z"]])("refuses fetchedAt %s", (fetchedAt) => {
    const c = catalog();
    (c.sources[0] as { fetchedAt: string }).fetchedAt = fetchedAt;
    expect(() => parsePriceCatalog(c)).toThrow("sources.0.fetchedAt: expected an ISO 8601 UTC timestamp");
  });
});
