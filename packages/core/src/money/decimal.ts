import { Decimal as DecimalBase } from "decimal.js";

/**
 * The one decimal.js configuration Latch uses: 40 significant digits, banker's rounding
 * (half-even), and exponents wide enough that toFixed never switches notation. Never the
 * library's global default (20 digits, half-up).
 */
export const LatchDecimal = DecimalBase.clone({
  precision: 40,
  rounding: DecimalBase.ROUND_HALF_EVEN,
  toExpNeg: -1000,
  toExpPos: 1000,
});
export type LatchDecimal = InstanceType<typeof LatchDecimal>;

/** A plain, non-negative decimal string: `0`, `3`, `0.075`, `1.25`. No sign, exponent or spaces. */
export const PLAIN_DECIMAL = /^(0|[1-9][0-9]{0,19})(\.[0-9]{1,30})?$/;

/** A plain decimal string that may be negative (amounts such as a cost delta). */
export const SIGNED_DECIMAL = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?$/;

/** An exact decimal as an integer `units` at `scale` decimal places: value = units / 10^scale. */
export interface Fixed {
  units: bigint;
  scale: number;
}

/** Parses a plain decimal string exactly. The caller validates the shape first. */
export function parseFixed(text: string): Fixed {
  const negative = text.startsWith("-");
  const body = negative ? text.slice(1) : text;
  const dot = body.indexOf(".");
  const intPart = dot === -1 ? body : body.slice(0, dot);
  let frac = dot === -1 ? "" : body.slice(dot + 1);
  frac = frac.replace(/0+$/, "");
  const units = BigInt(intPart + frac);
  return { units: negative ? -units : units, scale: frac.length };
}

const TEN = 10n;
const powCache: bigint[] = [];
/** 10^n as a bigint (cached). */
export function pow10(n: number): bigint {
  let v = powCache[n];
  if (v === undefined) {
    v = TEN ** BigInt(n);
    powCache[n] = v;
  }
  return v;
}

/**
 * Formats `units / 10^scale` canonically: plain notation, no trailing zeros, no trailing
 * point, `0` for zero, a leading `-` for negatives. Every amount Latch emits uses this form,
 * so equal amounts are equal strings.
 */
export function formatFixed(units: bigint | number, scale: number): string {
  if (units === 0 || units === 0n) return "0";
  let digits = units.toString();
  let sign = "";
  if (digits.charCodeAt(0) === 45) {
    sign = "-";
    digits = digits.slice(1);
  }
  if (scale === 0) return sign + digits;
  let end = digits.length;
  while (end > 0 && digits.charCodeAt(end - 1) === 48 && digits.length - end < scale) end--;
  const cut = digits.length - scale; // where the point goes; ≤ 0 means "0.000…"
  if (cut <= 0) return `${sign}0.${zeros(-cut)}${digits.slice(0, end)}`;
  return end === cut
    ? sign + digits.slice(0, cut)
    : `${sign}${digits.slice(0, cut)}.${digits.slice(cut, end)}`;
}

const ZEROS = "0".repeat(64);
function zeros(n: number): string {
  return n <= ZEROS.length ? ZEROS.slice(0, n) : "0".repeat(n);
}

/** Canonical form of any decimal string (e.g. `"1.50"` → `"1.5"`). */
export function canonicalDecimal(text: string): string {
  const { units, scale } = parseFixed(text);
  return formatFixed(units, scale);
}

/** Exact `a + b` of two fixed-point values, at the larger scale. */
export function addFixed(a: Fixed, b: Fixed): Fixed {
  if (a.scale === b.scale) return { units: a.units + b.units, scale: a.scale };
  if (a.scale > b.scale) return { units: a.units + b.units * pow10(a.scale - b.scale), scale: a.scale };
  return { units: a.units * pow10(b.scale - a.scale) + b.units, scale: b.scale };
}

/**
 * Exact sum of decimal strings, canonical (`["0.1", "0.2"]` → `"0.3"`). Integer arithmetic at
 * the largest scale: no precision limit, unlike a 40-digit decimal.js sum.
 */
export function sumDecimals(amounts: Iterable<string>): string {
  let total: Fixed = { units: 0n, scale: 0 };
  for (const a of amounts) total = addFixed(total, parseFixed(a));
  return formatFixed(total.units, total.scale);
}

/** Exact `a − b` of two decimal strings, canonical. */
export function subtractDecimals(a: string, b: string): string {
  const y = parseFixed(b);
  const total = addFixed(parseFixed(a), { units: -y.units, scale: y.scale });
  return formatFixed(total.units, total.scale);
}
