import { z } from "zod";
import { CurrencyCodeSchema } from "../money/currency.js";
import { PLAIN_DECIMAL } from "../money/decimal.js";
import { isMeterKind, type MeterKind, MeterKindSchema } from "./meters.js";
import { ModelRefSchema } from "./model.js";
import { IsoTimestampSchema } from "./time.js";

/** A price as a plain non-negative decimal string, never a JS number: `"3"`, `"0.075"`. */
export const PriceAmountSchema = z
  .string({ error: 'expected a decimal string such as "0.075" (never a number)' })
  .regex(PLAIN_DECIMAL, { error: 'expected a plain non-negative decimal string such as "0.075"' });

/**
 * How one meter is priced: per million units (tokens), per unit (images, requests), or
 * `as` another meter (e.g. reasoning tokens billed at the output price).
 */
export const PriceSchema = z.union(
  [
    z.strictObject({ perMillion: PriceAmountSchema }),
    z.strictObject({ perUnit: PriceAmountSchema }),
    z.strictObject({ as: MeterKindSchema }),
  ],
  {
    error:
      'expected { perMillion: "2.5" } or { perUnit: "0.04" } (decimal strings, never numbers) or { as: "<meter>" }',
  },
);
export type Price = z.output<typeof PriceSchema>;

export type PriceTable = Readonly<Partial<Record<MeterKind, Price>>>;

export const PriceTableSchema = z.record(z.string(), PriceSchema).superRefine((table, ctx) => {
  for (const key of Object.keys(table)) {
    if (!isMeterKind(key)) ctx.addIssue({ code: "custom", path: [key], message: "unknown meter" });
  }
}) as unknown as z.ZodType<PriceTable, Record<string, z.input<typeof PriceSchema>>>;

export const TierBaselineSchema = z.union([
  z.literal("prompt_tokens"),
  z.literal("total_tokens"),
  z.strictObject({ meter: MeterKindSchema }),
]);
export type TierBaseline = z.output<typeof TierBaselineSchema>;

export const TierBoundarySchema = z.strictObject({
  /** Inclusive upper bound of this tier on the baseline; `null` for the last, open tier. */
  upTo: z
    .number()
    .int({ error: "expected an integer" })
    .positive({ error: "expected a positive integer" })
    .max(Number.MAX_SAFE_INTEGER, { error: "exceeds 2^53-1" })
    .nullable(),
  prices: PriceTableSchema,
});
export type TierBoundary = z.output<typeof TierBoundarySchema>;

/**
 * Tiered prices for the meters listed in the boundaries.
 * - `scope: "request"`: the baseline is this request alone (e.g. "prompt > 200k tokens").
 * - `scope: "period"`: the baseline is cumulative over the billing period (`RatingContext.periodBaseline`).
 * - `mode: "graduated"`: each slice of the quantity at its own tier's price.
 * - `mode: "volume"`: the whole quantity at the price of the tier the baseline lands in.
 */
export const TierConfigSchema = z.strictObject({
  scope: z.enum(["request", "period"]),
  mode: z.enum(["graduated", "volume"]),
  baseline: TierBaselineSchema,
  boundaries: z.array(TierBoundarySchema).min(1, { error: "expected at least one boundary" }),
});
export type TierConfig = z.output<typeof TierConfigSchema>;

/**
 * Prices for one model in one currency over a half-open interval
 * `[effectiveFrom, effectiveUntil)`.
 */
export const PriceSnapshotSchema = z
  .strictObject({
    snapshotId: z
      .string()
      .min(1, { error: "must not be empty" })
      .max(256, { error: "at most 256 characters" }),
    model: ModelRefSchema,
    currency: CurrencyCodeSchema,
    effectiveFrom: IsoTimestampSchema,
    effectiveUntil: IsoTimestampSchema.optional(),
    prices: PriceTableSchema,
    tiers: z.array(TierConfigSchema).optional(),
  })
  .superRefine((s, ctx) => {
    if (s.effectiveUntil !== undefined && Date.parse(s.effectiveUntil) <= Date.parse(s.effectiveFrom)) {
      ctx.addIssue({ code: "custom", path: ["effectiveUntil"], message: "must be after effectiveFrom" });
    }
  });
export type PriceSnapshot = z.output<typeof PriceSnapshotSchema>;
export type PriceSnapshotInput = z.input<typeof PriceSnapshotSchema>;
