import { describe, expect, it } from "vitest";
import { NoPriceForMeterError } from "../../src/errors/index.js";
import {
  DefaultRatingEngine,
  LatchError,
  LatchValidationError,
  type MeterSet,
  type PriceSnapshotInput,
  type RatedUsageRecord,
  sumDecimals,
} from "../../src/index.js";
import { ctx, observation, snapshot, thrown } from "../support.js";

const engine = new DefaultRatingEngine();
const rate = (meters: MeterSet, snap: PriceSnapshotInput, context: Parameters<typeof engine.rate>[2] = ctx) =>
  engine.rate(observation(meters), snap as never, context);
const lines = (r: RatedUsageRecord) => r.lineItems.map((l) => [l.meter, l.quantity, l.subtotal, l.tier]);

// gpt-4o-like sheet: $2.50 / 1M input, $1.25 / 1M cached input, $10 / 1M output.
const openaiSheet = snapshot({
  prices: {
    input_tokens: { perMillion: "2.5" },
    cached_input_tokens: { perMillion: "1.25" },
    output_tokens: { perMillion: "10" },
    reasoning_tokens: { as: "output_tokens" },
  },
});

describe("flat prices", () => {
  it("prices each meter per million and sums the subtotals", () => {
    // 500 × 2.5 = 1250 → 0.00125; 1500 × 1.25 = 1875 → 0.001875; 500 × 10 = 5000 → 0.005
    const r = rate({ input_tokens: 500, cached_input_tokens: 1500, output_tokens: 500 }, openaiSheet);
    expect(lines(r)).toEqual([
      ["input_tokens", 500, "0.00125", undefined],
      ["cached_input_tokens", 1500, "0.001875", undefined],
      ["output_tokens", 500, "0.005", undefined],
    ]);
    expect(r.total).toBe("0.008125");
    expect(r.currency).toBe("USD");
    expect(r.ratedRecordId).toBe("req-1:0:openai:v1");
    expect(r.version).toBe(1);
    expect(r.supersedes).toBeUndefined();
  });

  it("bills reasoning tokens once, at the output price through the alias", () => {
    // visible output 400 × 10 = 4000 → 0.004; reasoning 600 × 10 = 6000 → 0.006
    const r = rate({ output_tokens: 400, reasoning_tokens: 600 }, openaiSheet);
    expect(lines(r)).toEqual([
      ["output_tokens", 400, "0.004", undefined],
      ["reasoning_tokens", 600, "0.006", undefined],
    ]);
    expect(r.lineItems[1]?.unitPrice).toBe("10");
    expect(r.total).toBe("0.01");
  });

  it("prices per-unit meters per unit", () => {
    const r = rate({ image_count: 3 }, snapshot({ prices: { image_count: { perUnit: "0.04" } } }));
    expect(r.lineItems).toEqual([
      { meter: "image_count", quantity: 3, unitPrice: "0.04", per: "unit", subtotal: "0.12" },
    ]);
    expect(r.total).toBe("0.12");
  });

  it("rates zero usage to an empty record with total 0", () => {
    const r = rate({}, openaiSheet);
    expect(r.lineItems).toEqual([]);
    expect(r.total).toBe("0");
    // A zero meter needs no price.
    expect(rate({ image_count: 0, "custom:searches": 0 }, openaiSheet).total).toBe("0");
  });

  it("refuses a non-zero meter without a price instead of billing it as $0", () => {
    const e = thrown(() => rate({ input_tokens: 10, image_count: 1 }, openaiSheet));
    expect(e).toBeInstanceOf(NoPriceForMeterError);
    expect(LatchError.isInstance(e) && e.code).toBe("no_price_for_meter");
    expect((e as NoPriceForMeterError).meter).toBe("image_count");
    expect((e as NoPriceForMeterError).snapshotId).toBe("snap-1");
  });

  it("keeps token counts near 2^53 exact", () => {
    const max = Number.MAX_SAFE_INTEGER; // 9007199254740991
    // 9007199254740991 × 3 = 27021597764222973 → / 10^6
    expect(
      rate({ input_tokens: max }, snapshot({ prices: { input_tokens: { perMillion: "3" } } })).total,
    ).toBe("27021597764.222973");
    // 9007199254740991 × 0.075 = 675539944105574325 / 10^9
    expect(
      rate({ input_tokens: max }, snapshot({ prices: { input_tokens: { perMillion: "0.075" } } })).total,
    ).toBe("675539944.105574325");
    // Two near-max subtotals still add exactly: 2 × 27021597764.222973
    const two = rate(
      { input_tokens: max, output_tokens: max },
      snapshot({ prices: { input_tokens: { perMillion: "3" }, output_tokens: { perMillion: "3" } } }),
    );
    expect(two.total).toBe("54043195528.445946");
  });

  it("never rounds: tiny prices keep every digit", () => {
    // 7 × 0.000000000000000001 per million = 7e-24
    const r = rate(
      { input_tokens: 7 },
      snapshot({ prices: { input_tokens: { perMillion: "0.000000000000000001" } } }),
    );
    expect(r.total).toBe("0.000000000000000000000007");
  });
});

describe("cached tokens are never counted twice", () => {
  // The same 2,000-token prompt with 1,500 tokens from cache, as each provider reports it.
  it("OpenAI: cached tokens are a subset of prompt_tokens", async () => {
    const { normalize } = await import("../../src/index.js");
    const meters = normalize.openaiChat({
      prompt_tokens: 2000,
      completion_tokens: 500,
      total_tokens: 2500,
      prompt_tokens_details: { cached_tokens: 1500 },
    });
    expect(meters).toEqual({ input_tokens: 500, cached_input_tokens: 1500, output_tokens: 500 });
    // 500 × 2.5 + 1500 × 1.25 + 500 × 10 = 1250 + 1875 + 5000 = 8125 → 0.008125 (not 0.011875)
    expect(rate(meters, openaiSheet).total).toBe("0.008125");
  });

  it("Anthropic: cache reads and writes sit beside input_tokens", async () => {
    const { normalize } = await import("../../src/index.js");
    const meters = normalize.anthropic({
      input_tokens: 500,
      output_tokens: 500,
      cache_read_input_tokens: 1500,
      cache_creation_input_tokens: 0,
    });
    expect(meters).toEqual({ input_tokens: 500, cached_input_tokens: 1500, output_tokens: 500 });
    // Claude Sonnet-like: 3 / 0.30 / 15 per million.
    // 500 × 3 + 1500 × 0.3 + 500 × 15 = 1500 + 450 + 7500 = 9450 → 0.00945
    const claude = snapshot({
      prices: {
        input_tokens: { perMillion: "3" },
        cached_input_tokens: { perMillion: "0.30" },
        cache_write_tokens: { perMillion: "3.75" },
        cache_write_1h_tokens: { perMillion: "6" },
        output_tokens: { perMillion: "15" },
      },
    });
    expect(rate(meters, claude).total).toBe("0.00945");
    // 5-minute and 1-hour writes at their own prices: 1000 × 3.75 + 2000 × 6 = 3750 + 12000 → 0.01575
    expect(rate({ cache_write_tokens: 1000, cache_write_1h_tokens: 2000 }, claude).total).toBe("0.01575");
  });

  it("OpenAI reasoning tokens are carved out of completion_tokens, not added to them", async () => {
    const { normalize } = await import("../../src/index.js");
    const meters = normalize.openaiChat({
      prompt_tokens: 0,
      completion_tokens: 1000,
      total_tokens: 1000,
      completion_tokens_details: { reasoning_tokens: 600 },
    });
    expect(meters).toEqual({ output_tokens: 400, reasoning_tokens: 600 });
    // 400 × 10 + 600 × 10 = 10000 → 0.01 (billing reasoning on top would give 0.016)
    expect(rate(meters, openaiSheet).total).toBe("0.01");
  });
});

describe("request tiers: prompt > 200k tokens moves the whole request to the higher rate", () => {
  // Gemini 2.5 Pro-like: ≤ 200k prompt: 1.25 in / 10 out; above: 2.5 in / 15 out.
  const sheet = snapshot({
    prices: { cached_input_tokens: { perMillion: "0.31" } },
    tiers: [
      {
        scope: "request",
        mode: "volume",
        baseline: "prompt_tokens",
        boundaries: [
          {
            upTo: 200_000,
            prices: { input_tokens: { perMillion: "1.25" }, output_tokens: { perMillion: "10" } },
          },
          {
            upTo: null,
            prices: { input_tokens: { perMillion: "2.5" }, output_tokens: { perMillion: "15" } },
          },
        ],
      },
    ],
  });

  it("199,999 prompt tokens: lower tier", () => {
    // 199999 × 1.25 = 249998.75 → 0.24999875; 1000 × 10 → 0.01
    const r = rate({ input_tokens: 199_999, output_tokens: 1000 }, sheet);
    expect(lines(r)).toEqual([
      ["input_tokens", 199_999, "0.24999875", 0],
      ["output_tokens", 1000, "0.01", 0],
    ]);
    expect(r.total).toBe("0.25999875");
  });

  it("200,000 prompt tokens: still the lower tier (upTo is inclusive, the switch is strict >)", () => {
    const r = rate({ input_tokens: 200_000, output_tokens: 1000 }, sheet);
    expect(lines(r)).toEqual([
      ["input_tokens", 200_000, "0.25", 0],
      ["output_tokens", 1000, "0.01", 0],
    ]);
    expect(r.total).toBe("0.26");
  });

  it("200,001 prompt tokens: every token of the request at the higher rate", () => {
    // 200001 × 2.5 = 500002.5 → 0.5000025; 1000 × 15 → 0.015
    const r = rate({ input_tokens: 200_001, output_tokens: 1000 }, sheet);
    expect(lines(r)).toEqual([
      ["input_tokens", 200_001, "0.5000025", 1],
      ["output_tokens", 1000, "0.015", 1],
    ]);
    expect(r.total).toBe("0.5150025");
  });

  it("cached tokens count toward prompt tokens even when priced flat", () => {
    // prompt = 150000 + 50001 = 200001 > 200k ⇒ tier 1.
    // 150000 × 2.5 = 375000 → 0.375; 50001 × 0.31 = 15500.31 → 0.01550031
    const r = rate({ input_tokens: 150_000, cached_input_tokens: 50_001 }, sheet);
    expect(lines(r)).toEqual([
      ["input_tokens", 150_000, "0.375", 1],
      ["cached_input_tokens", 50_001, "0.01550031", undefined],
    ]);
    expect(r.total).toBe("0.39050031");
  });
});

describe("period tiers", () => {
  const graduated = snapshot({
    tiers: [
      {
        scope: "period",
        mode: "graduated",
        baseline: { meter: "input_tokens" },
        boundaries: [
          { upTo: 1_000_000, prices: { input_tokens: { perMillion: "2" } } },
          { upTo: 5_000_000, prices: { input_tokens: { perMillion: "1" } } },
          { upTo: null, prices: { input_tokens: { perMillion: "0.5" } } },
        ],
      },
    ],
  });

  it("graduated: splits an event across a boundary using the cumulative baseline", () => {
    // Period had 999,000 before; this event adds 3,000 → 1,000 at 2 (0.002) and 2,000 at 1 (0.002).
    const r = rate({ input_tokens: 3000 }, graduated, { ...ctx, periodBaseline: { input_tokens: 999_000 } });
    expect(lines(r)).toEqual([
      ["input_tokens", 1000, "0.002", 0],
      ["input_tokens", 2000, "0.002", 1],
    ]);
    expect(r.total).toBe("0.004");
  });

  it("graduated: an event spanning three tiers", () => {
    // From 500,000: 500,000 at 2 (1), 4,000,000 at 1 (4), 500,000 at 0.5 (0.25).
    const r = rate({ input_tokens: 5_000_000 }, graduated, {
      ...ctx,
      periodBaseline: { input_tokens: 500_000 },
    });
    expect(lines(r)).toEqual([
      ["input_tokens", 500_000, "1", 0],
      ["input_tokens", 4_000_000, "4", 1],
      ["input_tokens", 500_000, "0.25", 2],
    ]);
    expect(r.total).toBe("5.25");
  });

  it("requires the period baseline, naming the missing field", () => {
    const e = thrown(() => rate({ input_tokens: 1 }, graduated));
    expect(e).toBeInstanceOf(LatchValidationError);
    expect((e as LatchValidationError).issues[0]?.path).toBe("periodBaseline.input_tokens");
  });

  const volume = snapshot({
    tiers: [
      {
        scope: "period",
        mode: "volume",
        baseline: { meter: "input_tokens" },
        boundaries: [
          { upTo: 1_000_000, prices: { input_tokens: { perMillion: "2" } } },
          { upTo: null, prices: { input_tokens: { perMillion: "1" } } },
        ],
      },
    ],
  });

  it("volume: inside one tier, the event is charged at that tier", () => {
    const r = rate({ input_tokens: 1000 }, volume, { ...ctx, periodBaseline: { input_tokens: 0 } });
    expect(lines(r)).toEqual([["input_tokens", 1000, "0.002", 0]]);
  });

  it("volume: crossing a boundary reprices the period and charges the difference", () => {
    // Before: 999,000 × 2 = 1.998. After: 1,002,000 × 1 = 1.002. Charge: 1.002 − 1.998 = −0.996.
    const r = rate({ input_tokens: 3000 }, volume, { ...ctx, periodBaseline: { input_tokens: 999_000 } });
    expect(lines(r)).toEqual([
      ["input_tokens", -999_000, "-1.998", 0],
      ["input_tokens", 1_002_000, "1.002", 1],
    ]);
    expect(r.total).toBe("-0.996");
  });

  it("volume: the event charges sum to the period's volume-priced total", () => {
    let baseline = 0;
    const totals: string[] = [];
    for (const q of [400_000, 400_000, 400_000, 10]) {
      const r = rate({ input_tokens: q }, volume, { ...ctx, periodBaseline: { input_tokens: baseline } });
      totals.push(r.total);
      baseline += q;
    }
    // 0.8 + 0.8 + (1.2 − 1.6) + 0.00001: 1,200,010 tokens, all at 1 per million = 1.20001
    expect(totals).toEqual(["0.8", "0.8", "-0.4", "0.00001"]);
    expect(sumDecimals(totals)).toBe("1.20001");
  });
});

describe("versions", () => {
  it("a correction is version n+1 and supersedes version n", () => {
    const r = rate({ input_tokens: 1 }, openaiSheet, { ...ctx, version: 2 });
    expect(r.ratedRecordId).toBe("req-1:0:openai:v2");
    expect(r.supersedes).toBe("req-1:0:openai:v1");
  });
});
