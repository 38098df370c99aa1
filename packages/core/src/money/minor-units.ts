import { LatchValidationError } from "../errors/index.js";
import { minorUnitDigits } from "./currency.js";
import { LatchDecimal, parseFixed, pow10, SIGNED_DECIMAL } from "./decimal.js";

/**
 * Rounds an exact amount to the currency's ISO 4217 minor units, half-even (banker's
 * rounding), and returns the integer count of minor units: `toMinorUnits("1.005", "USD")`
 * is `100n`, `toMinorUnits("0.5", "JPY")` is `0n`, `toMinorUnits("1.0005", "KWD")` is `1000n`.
 *
 * Round once, at the edge that needs it: an invoice total is the rounded exact sum, not the
 * sum of rounded rows.
 */
export function toMinorUnits(amount: string, currency: string): bigint {
  const digits = minorUnitDigits(currency);
  if (digits === undefined) {
    throw LatchValidationError.at("amount", "currency", "unknown currency: expected an active ISO 4217 code");
  }
  if (typeof amount !== "string" || !SIGNED_DECIMAL.test(amount)) {
    throw LatchValidationError.at("amount", "amount", "expected a plain decimal string such as 12.5");
  }
  if (amount.length <= 16) {
    const fast = smallToMinorUnits(amount, digits);
    if (fast !== undefined) return BigInt(fast);
  }
  // Exact integer arithmetic: the amount as units × 10^-scale, rescaled to the currency's
  // exponent with one half-even rounding (no precision limit, unlike a 40-digit Decimal).
  const { units, scale } = parseFixed(amount);
  if (scale <= digits) return units * pow10(digits - scale);
  const divisor = pow10(scale - digits);
  const quotient = units / divisor; // truncated towards zero
  const twiceRest = (units < 0n ? -(units % divisor) : units % divisor) * 2n;
  if (twiceRest < divisor || (twiceRest === divisor && quotient % 2n === 0n)) return quotient;
  return units < 0n ? quotient - 1n : quotient + 1n;
}

/** Formats minor units back into a decimal string with the currency's exponent: `(100n, "USD")` → `"1.00"`. */
export function formatMinorUnits(minor: bigint, currency: string): string {
  const digits = minorUnitDigits(currency);
  if (digits === undefined) {
    throw LatchValidationError.at("amount", "currency", "unknown currency: expected an active ISO 4217 code");
  }
  return new LatchDecimal(minor.toString()).dividedBy(new LatchDecimal(10).pow(digits)).toFixed(digits);
}

/**
 * {@link toMinorUnits} for amounts of at most 15 digits, in doubles that stay exact integers
 * (every value below 2^53; `%` and the division of an exact multiple are exact), or undefined
 * when the result would leave that range.
 */
function smallToMinorUnits(amount: string, digits: number): number | undefined {
  const negative = amount.charCodeAt(0) === 45;
  const body = negative ? amount.slice(1) : amount;
  const dot = body.indexOf(".");
  const frac = dot === -1 ? "" : body.slice(dot + 1);
  const text = dot === -1 ? body : body.slice(0, dot) + frac;
  if (text.length > 15) return undefined;
  const units = Number(text);
  const scale = frac.length;
  let result: number;
  if (scale <= digits) {
    result = units * 10 ** (digits - scale);
    if (!Number.isSafeInteger(result)) return undefined;
  } else {
    const divisor = 10 ** (scale - digits);
    const rest = units % divisor;
    const quotient = (units - rest) / divisor;
    const twice = rest * 2;
    result = twice < divisor || (twice === divisor && quotient % 2 === 0) ? quotient : quotient + 1;
  }
  return negative ? -result : result;
}
