import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  DefaultRatingEngine,
  LatchDecimal,
  type MeterKind,
  type MeterSet,
  type PriceSnapshotInput,
} from "../../src/index.js";
import { ctx, observation, snapshot } from "../support.js";

const engine = new DefaultRatingEngine();
/** An independent exact sum (decimal.js at 40 digits is plenty for these magnitudes). */
const sumDecimals = (xs: readonly string[]) => xs.reduce((a, x) => a.plus(x), new LatchDecimal(0)).toFixed();
const METERS: MeterKind[] = [
  "input_tokens",
  "cached_input_tokens",
  "output_tokens",
  "reasoning_tokens",
  "image_count",
];

/** A plain decimal price with up to 12 decimal places. */
const price = fc
  .tuple(fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 0, max: 12 }))
  .map(([units, scale]) => new LatchDecimal(units).dividedBy(new LatchDecimal(10).pow(scale)).toFixed());
const quantity = fc.oneof(
  fc.integer({ min: 0, max: 10_000_000 }),
  fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
);
const meters = fc.dictionary(fc.constantFrom(...METERS), quantity, {
  minKeys: 0,
  maxKeys: 5,
}) as fc.Arbitrary<MeterSet>;
const sheet = fc
  .record({
    input_tokens: price,
    cached_input_tokens: price,
    output_tokens: price,
    reasoning_tokens: price,
    image_count: price,
  })
  .map(
    (p): PriceSnapshotInput =>
      snapshot({
        prices: {
          input_tokens: { perMillion: p.input_tokens },
          cached_input_tokens: { perMillion: p.cached_input_tokens },
          output_tokens: { perMillion: p.output_tokens },
          reasoning_tokens: { perMillion: p.reasoning_tokens },
          image_count: { perUnit: p.image_count },
        },
      }),
  );

describe("rating properties", () => {
  it("total = the exact sum of the line items' subtotals", () => {
    fc.assert(
      fc.property(meters, sheet, (m, s) => {
        const r = engine.rate(observation(m), s as never, ctx);
        expect(r.total).toBe(sumDecimals(r.lineItems.map((l) => l.subtotal)));
      }),
    );
  });

  it("each subtotal equals quantity × price computed independently with decimal.js", () => {
    fc.assert(
      fc.property(meters, sheet, (m, s) => {
        const r = engine.rate(observation(m), s as never, ctx);
        for (const item of r.lineItems) {
          const divisor = item.per === "million" ? 1_000_000 : 1;
          const expected = new LatchDecimal(item.quantity).times(item.unitPrice).dividedBy(divisor);
          expect(item.subtotal).toBe(expected.toFixed());
        }
        expect(r.lineItems.map((l) => l.meter)).toEqual(METERS.filter((k) => (m[k] ?? 0) > 0));
      }),
    );
  });

  it("the same input rated twice gives byte-identical JSON, even from equal copies", () => {
    fc.assert(
      fc.property(meters, sheet, (m, s) => {
        const first = JSON.stringify(engine.rate(observation(m), s as never, ctx));
        const copy = structuredClone(s);
        const second = JSON.stringify(
          new DefaultRatingEngine().rate(observation({ ...m }), copy as never, ctx),
        );
        expect(second).toBe(first);
      }),
    );
  });

  it("graduated period tiers: rating in two parts with the baseline = rating in one part", () => {
    const bounds = fc
      .uniqueArray(fc.integer({ min: 1, max: 2_000_000 }), { minLength: 1, maxLength: 4 })
      .map((xs) => xs.sort((a, b) => a - b));
    fc.assert(
      fc.property(
        bounds,
        fc.array(price, { minLength: 5, maxLength: 5 }),
        fc.integer({ min: 0, max: 1_500_000 }),
        fc.integer({ min: 0, max: 1_500_000 }),
        fc.integer({ min: 0, max: 1_500_000 }),
        (upTos, prices, before, q1, q2) => {
          const s = snapshot({
            tiers: [
              {
                scope: "period",
                mode: "graduated",
                baseline: { meter: "input_tokens" },
                boundaries: [...upTos, null].map((upTo, i) => ({
                  upTo,
                  prices: { input_tokens: { perMillion: prices[i] as string } },
                })),
              },
            ],
          });
          const at = (q: number, base: number) =>
            engine.rate(observation({ input_tokens: q }), s as never, {
              ...ctx,
              periodBaseline: { input_tokens: base },
            });
          const whole = at(q1 + q2, before);
          const parts = [at(q1, before), at(q2, before + q1)];
          expect(sumDecimals(parts.map((p) => p.total))).toBe(whole.total);
          const sliced = whole.lineItems.reduce((n, l) => n + l.quantity, 0);
          expect(sliced).toBe(q1 + q2);
        },
      ),
    );
  });

  it("volume period tiers: event charges sum to the period's volume-priced total", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000_000 }),
        price,
        price,
        fc.array(fc.integer({ min: 0, max: 400_000 }), { minLength: 1, maxLength: 8 }),
        (upTo, low, high, events) => {
          const s = snapshot({
            tiers: [
              {
                scope: "period",
                mode: "volume",
                baseline: { meter: "input_tokens" },
                boundaries: [
                  { upTo, prices: { input_tokens: { perMillion: low } } },
                  { upTo: null, prices: { input_tokens: { perMillion: high } } },
                ],
              },
            ],
          });
          let base = 0;
          const totals: string[] = [];
          for (const q of events) {
            const r = engine.rate(observation({ input_tokens: q }), s as never, {
              ...ctx,
              periodBaseline: { input_tokens: base },
            });
            totals.push(r.total);
            base += q;
          }
          const final = new LatchDecimal(base).times(base <= upTo ? low : high).dividedBy(1_000_000);
          expect(sumDecimals(totals)).toBe(final.toFixed());
        },
      ),
    );
  });
});
