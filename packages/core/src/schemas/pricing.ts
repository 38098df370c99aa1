import { z } from "zod";
import { CurrencyCodeSchema } from "../money/currency.js";
import { PLAIN_DECIMAL } from "../money/decimal.js";
import { WellFormedText } from "./identity.js";
import { isMeterKind, type MeterKind, MeterKindSchema } from "./meters.js";
import { ModelRefSchema } from "./model.js";
import { canonicalServiceTier, serviceTierOf } from "./service-tier.js";
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

// Aliases and tier names reach stores (a Postgres jsonb refuses U+0000): the same rule as ids.
const ListedName = z
  .string()
  .min(1, { error: "must not be empty" })
  .max(256, { error: "at most 256 characters" })
  .check(WellFormedText);

/**
 * Prices for one model in one currency over a half-open interval
 * `[effectiveFrom, effectiveUntil)`.
 *
 * - `model.tier` is the service tier the snapshot prices (absent = `"standard"`). A call is
 *   priced only by a snapshot of its own tier, or by one that lists the call's tier in
 *   `fallbackTiers` ("also prices these tiers when no snapshot names them").
 * - `aliases` are other ids this model is billed under while the snapshot is in effect (e.g.
 *   `"gpt-4o-2024-08-06"` on a `gpt-4o` snapshot); see `pricing/model-match.ts`.
 */
export const PriceSnapshotSchema = z
  .strictObject({
    snapshotId: z
      .string()
      .min(1, { error: "must not be empty" })
      .max(256, { error: "at most 256 characters" })
      // Rated records carry it, and their schema (and Postgres text) refuse U+0000 and lone surrogates.
      .check(WellFormedText),
    model: ModelRefSchema,
    currency: CurrencyCodeSchema,
    effectiveFrom: IsoTimestampSchema,
    effectiveUntil: IsoTimestampSchema.optional(),
    prices: PriceTableSchema,
    tiers: z.array(TierConfigSchema).optional(),
    aliases: z.array(ListedName).max(1_000, { error: "at most 1,000 aliases" }).optional(),
    fallbackTiers: z.array(ListedName).max(16, { error: "at most 16 tiers" }).optional(),
  })
  .superRefine((s, ctx) => {
    if (s.effectiveUntil !== undefined && Date.parse(s.effectiveUntil) <= Date.parse(s.effectiveFrom)) {
      ctx.addIssue({ code: "custom", path: ["effectiveUntil"], message: "must be after effectiveFrom" });
    }
    const aliases = new Set<string>();
    for (const [i, alias] of (s.aliases ?? []).entries()) {
      if (alias === s.model.billableModel) {
        ctx.addIssue({
          code: "custom",
          path: ["aliases", i],
          message: "is the snapshot's own billableModel",
        });
      } else if (aliases.has(alias)) {
        ctx.addIssue({ code: "custom", path: ["aliases", i], message: "duplicates an earlier alias" });
      }
      aliases.add(alias);
    }
    // Compared by canonical name: "default" and "standard" are one tier.
    const own = serviceTierOf(s.model);
    const tiers = new Set<string>();
    for (const [i, name] of (s.fallbackTiers ?? []).entries()) {
      const tier = canonicalServiceTier(name);
      if (tier === own) {
        ctx.addIssue({ code: "custom", path: ["fallbackTiers", i], message: "is the snapshot's own tier" });
      } else if (tiers.has(tier)) {
        ctx.addIssue({ code: "custom", path: ["fallbackTiers", i], message: "duplicates an earlier tier" });
      }
      tiers.add(tier);
    }
  });
export type PriceSnapshot = z.output<typeof PriceSnapshotSchema>;
export type PriceSnapshotInput = z.input<typeof PriceSnapshotSchema>;
