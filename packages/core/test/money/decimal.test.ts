import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  canonicalDecimal,
  formatFixed,
  LatchDecimal,
  parseFixed,
  sumDecimals,
} from "../../src/money/decimal.js";

describe("exact decimal formatting", () => {
  it("formatFixed(units, scale) equals units / 10^scale formatted by decimal.js, for numbers and bigints", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }),
        fc.integer({ min: 0, max: 45 }),
        (units, scale) => {
          const expected = new LatchDecimal(units.toString())
            .dividedBy(new LatchDecimal(10).pow(scale))
            .toFixed();
          expect(formatFixed(units, scale)).toBe(expected);
          const asNumber = Number(units);
          if (Number.isSafeInteger(asNumber)) expect(formatFixed(asNumber, scale)).toBe(expected);
        },
      ),
    );
  });

  it("parseFixed round-trips through formatFixed to the canonical form", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 30n }),
        fc.integer({ min: 0, max: 30 }),
        (units, scale) => {
          const text = formatFixed(units, scale);
          const parsed = parseFixed(text);
          expect(formatFixed(parsed.units, parsed.scale)).toBe(text);
        },
      ),
    );
  });

  it("canonical forms", () => {
    expect(canonicalDecimal("1.50")).toBe("1.5");
    expect(canonicalDecimal("0.000")).toBe("0");
    expect(canonicalDecimal("-0.10")).toBe("-0.1");
    expect(formatFixed(-5, 3)).toBe("-0.005");
    expect(formatFixed(120, 1)).toBe("12");
    expect(sumDecimals(["0.1", "0.2"])).toBe("0.3");
  });
});
