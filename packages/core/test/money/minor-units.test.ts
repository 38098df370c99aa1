import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isCurrencyCode } from "../../src/adapter.js";
import { formatMinorUnits, LatchDecimal, LatchValidationError, toMinorUnits } from "../../src/index.js";
import { minorUnitDigits } from "../../src/money/currency.js";
import { thrown } from "../support.js";

describe("toMinorUnits: ISO 4217 exponents, half-even", () => {
  it("USD has 2 decimals; ties go to the even cent", () => {
    expect(toMinorUnits("1.005", "USD")).toBe(100n); // 100.5 → 100
    expect(toMinorUnits("1.015", "USD")).toBe(102n); // 101.5 → 102
    expect(toMinorUnits("1.025", "USD")).toBe(102n); // 102.5 → 102
    expect(toMinorUnits("1.0051", "USD")).toBe(101n); // above the tie
    expect(toMinorUnits("0.008125", "USD")).toBe(1n);
    expect(toMinorUnits("0", "USD")).toBe(0n);
    expect(toMinorUnits("-1.005", "USD")).toBe(-100n);
    expect(toMinorUnits("-1.015", "USD")).toBe(-102n);
  });
  it("JPY has no minor unit", () => {
    expect(toMinorUnits("0.5", "JPY")).toBe(0n);
    expect(toMinorUnits("1.5", "JPY")).toBe(2n);
    expect(toMinorUnits("2.5", "JPY")).toBe(2n);
    expect(toMinorUnits("1234", "JPY")).toBe(1234n);
  });
  it("KWD has 3 decimals", () => {
    expect(toMinorUnits("1.0005", "KWD")).toBe(1000n);
    expect(toMinorUnits("1.0015", "KWD")).toBe(1002n);
    expect(toMinorUnits("0.0125", "KWD")).toBe(12n);
  });
  it("huge amounts stay exact", () => {
    expect(toMinorUnits("27021597764.222973", "USD")).toBe(2702159776422n);
    expect(toMinorUnits("123456789012345678901234567.125", "USD")).toBe(12345678901234567890123456712n);
  });
  it("equals decimal.js half-even rounding (at a precision wide enough for the input) for any amount", () => {
    const Wide = LatchDecimal.clone({ precision: 200 });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }),
          fc.bigInt({ min: -(10n ** 15n), max: 10n ** 15n }), // the fast path (≤ 15 digits)
          fc.bigInt({ min: -10_000n, max: 10_000n }),
        ),
        fc.integer({ min: 0, max: 12 }),
        fc.constantFrom("USD", "JPY", "KWD", "EUR", "CLF"),
        (units, scale, currency) => {
          const text = new Wide(units.toString()).dividedBy(new Wide(10).pow(scale)).toFixed();
          const digits = minorUnitDigits(currency) as number;
          const reference = new Wide(text)
            .toDecimalPlaces(digits, Wide.ROUND_HALF_EVEN)
            .times(new Wide(10).pow(digits))
            .toFixed(0);
          expect(toMinorUnits(text, currency)).toBe(BigInt(reference));
        },
      ),
      { numRuns: 2_000 },
    );
  });
  it("formats minor units back with the currency's exponent", () => {
    expect(formatMinorUnits(100n, "USD")).toBe("1.00");
    expect(formatMinorUnits(5n, "JPY")).toBe("5");
    expect(formatMinorUnits(1002n, "KWD")).toBe("1.002");
  });
  it("rejects unknown currencies and non-decimal amounts by field", () => {
    for (const currency of ["XXX", "usd", "", "XAU"]) {
      const e = thrown(() => toMinorUnits("1", currency));
      expect(e).toBeInstanceOf(LatchValidationError);
      expect((e as LatchValidationError).issues[0]?.path).toBe("currency");
    }
    for (const amount of ["1e3", "abc", " 1", "1."]) {
      expect((thrown(() => toMinorUnits(amount, "USD")) as LatchValidationError).issues[0]?.path).toBe(
        "amount",
      );
    }
  });
  it("knows the exponents", () => {
    expect([
      minorUnitDigits("USD"),
      minorUnitDigits("JPY"),
      minorUnitDigits("KWD"),
      minorUnitDigits("CLF"),
    ]).toEqual([2, 0, 3, 4]);
    expect(isCurrencyCode("EUR")).toBe(true);
    expect(isCurrencyCode("toString")).toBe(false);
  });
});

describe("LatchDecimal", () => {
  it("is configured for money: 40 digits, half-even, never exponent notation", () => {
    expect(LatchDecimal.precision).toBe(40);
    expect(LatchDecimal.rounding).toBe(LatchDecimal.ROUND_HALF_EVEN);
    expect(new LatchDecimal("1e-30").toString()).toBe("0.000000000000000000000000000001");
  });
});
