import { LatchValidationError, OverflowError } from "../errors/index.js";
import { isMeterKind, type MeterKind, type MeterSet } from "../schemas/meters.js";

/**
 * Adds `quantity` to `meter` and returns a new MeterSet (the input is not changed). Rejects
 * unknown meters, negative or fractional quantities, and totals past 2^53-1.
 *
 * @example
 * let meters = accumulate({}, "input_tokens", 1000);
 * meters = accumulate(meters, "output_tokens", 250); // { input_tokens: 1000, output_tokens: 250 }
 */
export function accumulate(meters: MeterSet, meter: MeterKind, quantity: number): MeterSet {
  if (typeof meter !== "string" || !isMeterKind(meter)) {
    throw LatchValidationError.at(
      "MeterSet",
      "meter",
      "unknown meter: expected a built-in meter or custom:<name>",
    );
  }
  if (typeof quantity !== "number" || !Number.isSafeInteger(quantity) || quantity < 0) {
    throw LatchValidationError.at("MeterSet", meter, "expected a non-negative integer ≤ 2^53-1");
  }
  const next = (meters[meter] ?? 0) + quantity;
  if (!Number.isSafeInteger(next)) throw new OverflowError({ path: meter, reason: "total exceeds 2^53-1" });
  return { ...meters, [meter]: next };
}

/** Sum of several MeterSets, meter by meter, with the same checks as {@link accumulate}. */
export function sumMeterSets(sets: Iterable<MeterSet>): MeterSet {
  let out: MeterSet = {};
  for (const set of sets) {
    for (const [meter, qty] of Object.entries(set) as Array<[MeterKind, number]>)
      out = accumulate(out, meter, qty);
  }
  return out;
}
