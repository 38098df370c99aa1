import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { LatchDecimal } from "../src/money/decimal.js";
import { compileSnapshot } from "../src/pricing/compiled-snapshot.js";
import { isJsonObject, JsonNumber, type JsonObject, parseJsonExact } from "../src/pricing/json-decimal.js";
import {
  importLiteLLMCostMap,
  LITELLM_SKIP_KINDS,
  LITELLM_SKIP_REASONS,
  type LiteLLMSkipCode,
} from "../src/pricing/litellm.js";
import type { PriceSnapshot } from "../src/schemas/pricing.js";

// Today's complete LiteLLM cost map, given by path: the map is not committed to this
// repository (see test/fixtures/litellm/README.md for the copy this check was last run on).
// Run: LATCH_LITELLM_MAP=/path/to/model_prices_and_context_window.json[.gz] pnpm --filter @latch/core check:litellm-map
// Without the variable the check reads the copy the steering side keeps beside the
// repository, `../shared/data/litellm/model_prices_and_context_window.json[.gz]`; `.ci/run`
// runs this check whenever that copy exists.
const SHARED_MAP = fileURLToPath(
  new URL("../../../../shared/data/litellm/model_prices_and_context_window.json", import.meta.url),
);

function loadFullMap(): string {
  const candidates =
    process.env.LATCH_LITELLM_MAP !== undefined
      ? [process.env.LATCH_LITELLM_MAP]
      : [SHARED_MAP, `${SHARED_MAP}.gz`];
  const path = candidates.find((p) => existsSync(p));
  if (path === undefined) {
    throw new Error(
      "LATCH_LITELLM_MAP must name LiteLLM's model_prices_and_context_window.json (optionally .gz), or ../shared/data/litellm/ must hold it",
    );
  }
  const bytes = readFileSync(path);
  return (path.endsWith(".gz") ? gunzipSync(bytes) : bytes).toString("utf8");
}

/** Skips that are by design: prices of things no Latch meter measures. */
const NO_METER_EXPECTED: ReadonlySet<LiteLLMSkipCode> = new Set([
  "perSecond",
  "perCharacter",
  "perQuery",
  "perStorage",
  "perPixel",
  "perPage",
  "perCredit",
  "inputImage",
  "videoToken",
  "citationToken",
  "audioCacheRead",
  "audioCacheWrite",
  "searchContextSize",
  "searchPerPrompt",
  "dbu",
  "tierUnmapped",
  "serviceTierUnmapped",
]);

/** A price-like field of an entry: what the importer must import or report. */
const isPriceField = (field: string, value: unknown) =>
  /cost|price|multiplier|uplift/.test(field) ||
  (field === "provider_specific_entry" &&
    isJsonObject(value as never) &&
    Object.values(value as JsonObject).some((v) => v instanceof JsonNumber));

/** Every price of a snapshot (flat and in every tier boundary) as "<n> per million" / "<n> per unit". */
function pricesOf(snapshots: PriceSnapshot[]): Set<string> {
  const out = new Set<string>();
  const add = (table: PriceSnapshot["prices"]) => {
    for (const p of Object.values(table)) {
      if (p && "perMillion" in p) out.add(`${p.perMillion} per million`);
      if (p && "perUnit" in p) out.add(`${p.perUnit} per unit`);
    }
  };
  for (const s of snapshots) {
    add(s.prices);
    for (const t of s.tiers ?? []) for (const b of t.boundaries) add(b.prices);
  }
  return out;
}

const perMillion = (n: JsonNumber) => `${new LatchDecimal(n.text).times(1_000_000).toFixed()} per million`;
const perUnit = (n: JsonNumber) => `${new LatchDecimal(n.text).toFixed()} per unit`;

describe("importing today's complete LiteLLM cost map", () => {
  const text = loadFullMap();
  const map = parseJsonExact(text) as JsonObject;
  const result = importLiteLLMCostMap(text, { effectiveFrom: "2026-12-01T00:00:00Z" });

  it("prints the skips per reason (what `latch prices import` reports)", () => {
    const counts = new Map<LiteLLMSkipCode, number>();
    for (const s of result.skipped) counts.set(s.code, (counts.get(s.code) ?? 0) + 1);
    const rows = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    console.log(
      `LiteLLM full map: ${Object.keys(map).length} entries → ${result.snapshots.length} snapshots, ` +
        `${result.skipped.length} skips\n${rows
          .map(
            ([code, n]) =>
              `${String(n).padStart(6)}  ${code} [${LITELLM_SKIP_KINDS[code]}]: ${LITELLM_SKIP_REASONS[code]}`,
          )
          .join("\n")}`,
    );
    expect(rows.length).toBeGreaterThan(0);
    for (const s of result.skipped) expect(s.reason).toBe(LITELLM_SKIP_REASONS[s.code]);
  });

  it("recognises every price field: nothing is skipped as unknown, and by-design skips are only prices no meter can express", () => {
    expect(result.skipped.filter((s) => s.code === "unknown")).toEqual([]);
    const noMeter = new Set(
      result.skipped.map((s) => s.code).filter((c) => LITELLM_SKIP_KINDS[c] === "noMeter"),
    );
    for (const code of noMeter) expect(NO_METER_EXPECTED).toContain(code);
    // The one kind of price that is expressible but not imported yet: region/speed multipliers.
    const variants = result.skipped.filter((s) => LITELLM_SKIP_KINDS[s.code] === "variant");
    expect(new Set(variants.map((s) => s.field))).toEqual(
      new Set([
        "provider_specific_entry",
        "regional_processing_uplift_multiplier_eu",
        "regional_processing_uplift_multiplier_us",
      ]),
    );
  });

  it("imports or reports every price field of every entry (an imported one is found at its exact price)", () => {
    const snapshotsOf = new Map<string, PriceSnapshot[]>();
    for (const s of result.snapshots) {
      const list = snapshotsOf.get(s.model.billableModel) ?? [];
      snapshotsOf.set(s.model.billableModel, list);
      list.push(s);
    }
    // A field is reported when skipped itself, or when its whole (standard) entry is skipped.
    const reported = new Set<string>();
    // A tier's own field (`…_priority`, `…_flex`, `…_batches`) is reported by its tier's skips.
    for (const s of result.skipped)
      if (s.tier === undefined || /_(priority|flex|batches)$/.test(s.field))
        reported.add(`${s.model}\u0000${s.field}`);

    let checked = 0;
    const missing: string[] = [];
    for (const [model, entry] of Object.entries(map)) {
      if (!isJsonObject(entry)) {
        if (!reported.has(`${model}\u0000*`)) missing.push(`${model}: not an object, not reported`);
        continue;
      }
      const found = pricesOf(snapshotsOf.get(model) ?? []);
      for (const [field, value] of Object.entries(entry)) {
        const tiered = field === "tiered_pricing" || field === "search_context_cost_per_query";
        if (!tiered && !isPriceField(field, value)) continue;
        checked++;
        if (reported.has(`${model}\u0000${field}`) || reported.has(`${model}\u0000*`)) continue;
        const expected: string[] = [];
        if (field === "search_context_cost_per_query" && isJsonObject(value)) {
          for (const v of Object.values(value)) if (v instanceof JsonNumber) expected.push(perUnit(v));
        } else if (field === "tiered_pricing" && Array.isArray(value)) {
          for (const tier of value)
            if (isJsonObject(tier))
              for (const [k, v] of Object.entries(tier))
                if (k !== "range" && v instanceof JsonNumber) expected.push(perMillion(v));
        } else if (value instanceof JsonNumber) {
          expected.push(
            /per_image$|per_image_/.test(field) && !field.includes("token")
              ? perUnit(value)
              : perMillion(value),
          );
        }
        if (expected.length === 0 || !expected.every((p) => found.has(p))) missing.push(`${model}: ${field}`);
      }
    }
    expect(missing).toEqual([]);
    expect(checked).toBe(8459);
  });

  it("service tiers: about 700 priority, flex and batch prices become tier snapshots", () => {
    const byTier = new Map<string, number>();
    for (const s of result.snapshots)
      byTier.set(s.model.tier ?? "standard", (byTier.get(s.model.tier ?? "standard") ?? 0) + 1);
    // Fewer than the tier fields would make: a tier whose prices lack a long-context price the
    // standard entry has is left unpriced for that meter (tierIncomplete), and a tier left with
    // no meter priced makes no snapshot (e.g. gpt-5.4's priority, flex and batch).
    expect(byTier.get("priority")).toBe(80);
    expect(byTier.get("flex")).toBe(21);
    expect(byTier.get("batch")).toBe(85);
    let tierFields = 0;
    for (const entry of Object.values(map))
      if (isJsonObject(entry))
        for (const f of Object.keys(entry)) if (/_(priority|flex|batches)$/.test(f)) tierFields++;
    expect(tierFields).toBe(703);
    expect(result.skipped.filter((s) => s.code === "serviceTierUnmapped")).toEqual([]);
    for (const s of result.snapshots) expect(() => compileSnapshot(s)).not.toThrow();
  });

  it("all-zero placeholders are skipped (127 standard entries); includeFree brings them back", () => {
    const zero = result.skipped.filter((s) => s.code === "allZero" && s.tier === undefined);
    expect(zero).toHaveLength(127);
    const free = importLiteLLMCostMap(loadFullMap(), {
      effectiveFrom: "2026-12-01T00:00:00Z",
      includeFree: true,
    });
    expect(free.snapshots.length - result.snapshots.length).toBe(
      result.skipped.filter((s) => s.code === "allZero").length,
    );
  });

  it("the 8 DeepSeek entries with only input_cost_per_token_cache_hit now have a cache price", () => {
    const deepseek = Object.entries(map).filter(
      ([, e]) =>
        isJsonObject(e) &&
        Object.hasOwn(e, "input_cost_per_token_cache_hit") &&
        !Object.hasOwn(e, "cache_read_input_token_cost"),
    );
    expect(deepseek).toHaveLength(8);
    for (const [model, entry] of deepseek) {
      const s = result.snapshots.find((x) => x.model.billableModel === model && x.model.tier === undefined);
      expect(s?.prices.cached_input_tokens).toEqual({
        perMillion: new LatchDecimal(
          ((entry as JsonObject).input_cost_per_token_cache_hit as JsonNumber).text,
        )
          .times(1_000_000)
          .toFixed(),
      });
    }
  });

  it("long-context tiers without a price for a meter are reported, never kept at the base price", () => {
    const incomplete = result.skipped.filter((s) => s.code === "tierIncomplete");
    expect(incomplete.length).toBeGreaterThan(0);
    for (const s of incomplete) {
      const snap = result.snapshots.find((x) => x.model.billableModel === s.model && x.model.tier === s.tier);
      const meterOf: Record<string, string> = {
        cache_creation_input_token_cost_above_1hr: "cache_write_1h_tokens",
        cache_creation_input_token_cost: "cache_write_tokens",
        cache_read_input_token_cost: "cached_input_tokens",
        input_cost_per_audio_token: "audio_input_tokens",
        input_cost_per_token: "input_tokens",
        output_cost_per_token: "output_tokens",
      };
      const meter =
        meterOf[s.field.replace(/_(priority|flex|batches)$/, "").replace(/_above_\d+k?_tokens$/, "")];
      expect(meter).toBeDefined();
      expect(snap?.prices[meter as keyof PriceSnapshot["prices"]]).toBeUndefined();
    }
  });
});
