import { z } from "zod";
import { CurrencyCodeSchema } from "../money/currency.js";
import { SIGNED_DECIMAL } from "../money/decimal.js";
import { EventIdSchema, WellFormedText } from "./identity.js";
import { MeterKindSchema, QuantitySchema } from "./meters.js";
import { UsageObservationSchema } from "./observation.js";
import { IsoTimestampSchema } from "./time.js";

/** A baseline key for period tiers: a meter, `prompt_tokens` or `total_tokens`. */
export type BaselineKey = z.output<typeof MeterKindSchema> | "prompt_tokens" | "total_tokens";

/**
 * How a call's `model.billableModel` was matched to a snapshot's when they differ (see
 * `pricing/model-match.ts`): by a declared `alias`, by a `provider_prefix` (the call's
 * provider added, or provider/region/vendor qualifiers removed) or by a `dated_suffix`
 * removed. `matchedModel` is the snapshot's `billableModel`. An exact match has none.
 */
export const ModelMatchSchema = z.strictObject({
  rule: z.enum(["alias", "provider_prefix", "dated_suffix"]),
  matchedModel: z.string().min(1).max(256),
});
export type ModelMatch = z.output<typeof ModelMatchSchema>;

/** What the engine needs besides the observation and the snapshot. */
export const RatingContextSchema = z.strictObject({
  /** When the rating happened. Injected, so rating stays pure. */
  ratedAt: IsoTimestampSchema,
  /** Version of this rating for the event; 1 for the first, n+1 for a correction. */
  version: z.number().int().min(1).max(1_000_000).optional(),
  /** The ratedRecordId this version replaces (defaults to `eventId:v<version-1>`). */
  supersedes: z.string().min(1).max(600).optional(),
  /** Usage in the billing period before this event, for period-scoped tiers. */
  periodBaseline: z.record(z.string(), QuantitySchema).optional(),
  /** How the observation's model was matched to the snapshot's, when not exactly (from the price resolution). */
  modelMatch: ModelMatchSchema.optional(),
});
export type RatingContext = {
  ratedAt: string;
  version?: number;
  supersedes?: string;
  periodBaseline?: Readonly<Partial<Record<BaselineKey, number>>>;
  modelMatch?: ModelMatch;
};

const Amount = z.string().regex(SIGNED_DECIMAL, { error: "expected a plain decimal string" });

/** One priced slice of one meter. `quantity` is negative only for a volume-tier reversal. */
export const RatedLineItemSchema = z.strictObject({
  meter: MeterKindSchema,
  quantity: z.number().int().min(-Number.MAX_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER),
  unitPrice: Amount,
  per: z.enum(["million", "unit"]),
  subtotal: Amount,
  tier: z.number().int().nonnegative().optional(),
});
export type RatedLineItem = z.output<typeof RatedLineItemSchema>;

/** The priced result of one observation against one snapshot. Amounts are exact decimal strings. */
export const RatedUsageRecordSchema = z.strictObject({
  ratedRecordId: z.string().min(1).max(600).check(WellFormedText),
  eventId: EventIdSchema,
  version: z.number().int().min(1),
  supersedes: z.string().min(1).max(600).check(WellFormedText).optional(),
  snapshotId: z.string().min(1).max(256).check(WellFormedText),
  /** Absent when the snapshot names the observation's model exactly (so such records hash as before). */
  modelMatch: ModelMatchSchema.optional(),
  currency: CurrencyCodeSchema,
  lineItems: z.array(RatedLineItemSchema),
  total: Amount,
  ratedAt: IsoTimestampSchema,
  observation: UsageObservationSchema,
});
/**
 * A rated call (`result.record` of `record()`, a row of `lines()`): the observation priced
 * against one snapshot. `total` is the exact cost as a decimal string in `currency` (never a
 * float; sum with `sumDecimals`, round once with `toMinorUnits`); `lineItems` are its parts
 * per meter (and tier band); `version` counts corrections (`correct()` stores version n+1,
 * `supersedes` names the one it replaces); `snapshotId` is the price sheet it was rated at, and
 * `modelMatch` how the call's model matched it when the names differ.
 *
 * @example
 * if (result.status === "rated") console.log(result.record.total, result.record.currency); // "0.008125" "USD"
 */
export type RatedUsageRecord = z.output<typeof RatedUsageRecordSchema>;
