import { describe, expect, it } from "vitest";
import { convertLiteLlmCostMap, type PriceCatalog, updatePriceCatalog } from "../src/index.js";

// Hand-written maps in LiteLLM's format, applied out of order (a stale download, two cron jobs).
const map = (json: string, fetchedAt: string): PriceCatalog =>
  convertLiteLlmCostMap(json, { source: { fetchedAt } }).catalog;
const MN = `{"m": {"input_cost_per_token": 1e-06}, "n": {"input_cost_per_token": 1e-06}}`;
const N = `{"n": {"input_cost_per_token": 1e-06}}`;
const MN2 = `{"m": {"input_cost_per_token": 1e-06}, "n": {"input_cost_per_token": 2e-06}}`;

describe("updatePriceCatalog: dates never go backwards", () => {
  const jan = updatePriceCatalog(undefined, map(MN, "2026-01-01T00:00:00Z")).catalog;
  const mar = updatePriceCatalog(jan, map(MN2, "2026-03-01T00:00:00Z")).catalog;

  it("refuses an older map that only adds a model (it would price calls before the catalog's last change)", () => {
    const older = map(`${MN2.slice(0, -1)}, "z": {"input_cost_per_token": 1e-06}}`, "2026-02-01T00:00:00Z");
    expect(() => updatePriceCatalog(mar, older)).toThrow(
      "incoming.effectiveFrom: must not be before 2026-03-01T00:00:00Z, the catalog's last change",
    );
  });

  it("refuses re-adding a removed model before its removal, naming the date (not an internal overlap)", () => {
    const feb = updatePriceCatalog(jan, map(N, "2026-02-01T00:00:00Z")).catalog;
    expect(() => updatePriceCatalog(feb, map(MN, "2026-01-15T00:00:00Z"))).toThrow(
      "incoming.effectiveFrom: must not be before 2026-02-01T00:00:00Z, the catalog's last change",
    );
    // At or after the removal it is re-added as a new interval.
    const readded = updatePriceCatalog(feb, map(MN, "2026-02-01T00:00:00Z"));
    expect(readded.diff.added).toEqual([{ key: "m" }]);
  });

  it("an older map that changes nothing is still a no-op, not an error", () => {
    const again = updatePriceCatalog(mar, map(MN2, "2025-06-01T00:00:00Z"));
    expect(again.changed).toBe(false);
    expect(again.catalog).toBe(mar);
  });
});
