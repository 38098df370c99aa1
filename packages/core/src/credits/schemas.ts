import { z } from "zod";
import { HoldTtlSchema } from "../contracts/reserve-request.js";
import { CurrencyCodeSchema } from "../money/currency.js";
import { canonicalDecimal } from "../money/decimal.js";
import { isWellFormedText, WellFormedText } from "../schemas/identity.js";
import { MeterKindSchema } from "../schemas/meters.js";
import { IsoTimestampSchema } from "../schemas/time.js";
import { EXPIRATION_UNITS, isTimeZone } from "./calendar.js";

/**
 * The input schemas of the {@link CreditLedger} contract, shared by every implementation so
 * that the same bad input gets the same `invalid_input`, naming the same field, on every
 * backend. Types are inferred from them: `X` is the parsed form, `XInput` what callers pass.
 */

/** A ledger, feature, grant or usage-event id: 1–256 characters. */
export const CreditIdSchema = z
  .string({ error: "expected a string" })
  .min(1, { error: "must not be empty" })
  .max(256, { error: "at most 256 characters" })
  .check(WellFormedText);

const POSITIVE_DECIMAL = /^(0|[1-9][0-9]{0,19})(\.[0-9]{1,30})?$/;
const USAGE_DECIMAL = /^-?(0|[1-9][0-9]{0,19})(\.[0-9]{1,40})?$/;
const isZero = (text: string) => /^0(\.0*)?$/.test(text);

/**
 * A credit amount: a plain decimal string > 0 (at most 20 integer and 30 fractional digits),
 * e.g. `"100"`, `"2.5"`, parsed to its canonical form (`"2.50"` → `"2.5"`). Never a JS number:
 * amounts are exact.
 */
export const CreditAmountSchema = z
  .string({ error: "expected a decimal string such as 100 or 2.5" })
  .regex(POSITIVE_DECIMAL, { error: "expected a plain decimal string such as 100 or 2.5" })
  .refine((v) => !isZero(v), { error: "must be greater than 0" })
  .transform(canonicalDecimal);

/**
 * A usage amount: a plain decimal string (at most 20 integer and 40 fractional digits, so that
 * a rated cost fits exactly), parsed to its canonical form (`"-0"` → `"0"`). Negative only for
 * a money feature: a refund, e.g. the negative total of an event whose volume period tier
 * reprices the period's earlier usage lower. A quantity feature's usage is never negative
 * (`invalid_input` naming `amount`, checked against the feature by every backend).
 */
export const CreditUsageAmountSchema = z
  .string({ error: "expected a decimal string such as 1500, 0.0042 or -0.0004" })
  .regex(USAGE_DECIMAL, { error: "expected a plain decimal string such as 1500, 0.0042 or -0.0004" })
  .transform(canonicalDecimal);

/** Grant priority: an integer from 1 (most urgent) to 255. */
export const CreditPrioritySchema = z
  .number({ error: "expected an integer from 1 to 255" })
  .int({ error: "expected an integer from 1 to 255" })
  .min(1, { error: "expected an integer from 1 to 255" })
  .max(255, { error: "expected an integer from 1 to 255" });

/** `count × unit` after `effectiveAt`; count is an integer from 1 to 10,000. */
export const CreditExpirationSchema = z.strictObject({
  count: z
    .number({ error: "expected an integer from 1 to 10000" })
    .int({ error: "expected an integer from 1 to 10000" })
    .min(1, { error: "expected an integer from 1 to 10000" })
    .max(10_000, { error: "expected an integer from 1 to 10000" }),
  unit: z.enum(EXPIRATION_UNITS, { error: "expected HOUR, DAY, WEEK, MONTH or YEAR" }),
});
export type CreditExpiration = z.output<typeof CreditExpirationSchema>;

/** What a grant keeps at a reset; see {@link CreditLedger.reset}. */
export const CreditRolloverSchema = z.strictObject({
  type: z.enum(["ORIGINAL_AMOUNT", "REMAINING_AMOUNT"], {
    error: "expected ORIGINAL_AMOUNT or REMAINING_AMOUNT",
  }),
  /** At most this much rolls over (a decimal string > 0). */
  maxAmount: CreditAmountSchema.optional(),
});
export type CreditRollover = z.output<typeof CreditRolloverSchema>;

/** An ISO 8601 UTC timestamp, normalised to `toISOString()` form (millisecond precision). */
const Instant = IsoTimestampSchema.transform((value) => new Date(Date.parse(value)).toISOString());

/** Record keys are checked apart, so that an issue never names an ill-formed key. */
function wellFormedKeys(record: Record<string, string>): boolean {
  return Object.keys(record).every(isWellFormedText);
}

const Metadata = z
  .record(z.string().min(1).max(64), z.string({ error: "expected a string" }).max(256).check(WellFormedText))
  .refine((m) => Object.keys(m).length <= 64, { error: "at most 64 entries" })
  .refine(wellFormedKeys, { error: "a key contains U+0000 or an unpaired surrogate" });

const Name = z.string({ error: "expected a string" }).min(1).max(256).check(WellFormedText);

/** The subject fields a feature may filter on (equality). */
export const CreditSubjectFilterSchema = z.strictObject({
  tenantId: Name.optional(),
  orgId: Name.optional(),
  projectId: Name.optional(),
  apiKeyId: Name.optional(),
  endUserId: Name.optional(),
  feature: Name.optional(),
});

/**
 * A feature ties usage to credits. `measure` says what one credit is worth:
 * - `{ kind: "quantity", meters }`: the sum of those meters of an observation (e.g. tokens);
 * - `{ kind: "money", currency }`: the rated cost (`RatedUsageRecord.total`) in that currency;
 *   a record in another currency that the filters match is an error (`currency_mismatch`,
 *   reported by the facade as `credit_burn_failed`), never a burn of 0: create one money
 *   feature per currency and route calls to the feature of theirs.
 *
 * `filters` narrow which observations count: every given subject field and attribute must be
 * equal, and the billable model must be one of `models` / start with `modelPrefix` when given.
 */
export const CreditFeatureSchema = z.strictObject({
  featureId: CreditIdSchema,
  name: Name.optional(),
  measure: z.discriminatedUnion(
    "kind",
    [
      z.strictObject({
        kind: z.literal("quantity"),
        meters: z.array(MeterKindSchema).min(1, { error: "name at least one meter" }),
      }),
      z.strictObject({ kind: z.literal("money"), currency: CurrencyCodeSchema }),
    ],
    { error: "expected { kind: 'quantity', meters } or { kind: 'money', currency }" },
  ),
  filters: z
    .strictObject({
      subject: CreditSubjectFilterSchema.optional(),
      attributes: z
        .record(z.string().min(1).max(64), z.string().max(256).check(WellFormedText))
        .refine(wellFormedKeys, { error: "a key contains U+0000 or an unpaired surrogate" })
        .optional(),
      models: z.array(Name).min(1).optional(),
      modelPrefix: Name.optional(),
    })
    .optional(),
  metadata: Metadata.optional(),
});
export type CreditFeature = z.output<typeof CreditFeatureSchema>;
export type CreditFeatureInput = z.input<typeof CreditFeatureSchema>;

/**
 * A ledger: the credits of one subject. `timeZone` (an IANA name, default `UTC`) is the zone
 * in which DAY, WEEK, MONTH and YEAR expirations are counted, DST-correct.
 */
export const CreditLedgerSchema = z.strictObject({
  ledgerId: CreditIdSchema,
  subject: z.strictObject({
    tenantId: Name,
    orgId: Name.optional(),
    projectId: Name.optional(),
    apiKeyId: Name.optional(),
    endUserId: Name.optional(),
    feature: Name.optional(),
  }),
  timeZone: z
    .string({ error: "expected an IANA time zone such as Europe/Paris" })
    .refine(isTimeZone, { error: "unknown time zone: expected an IANA name such as Europe/Paris" })
    .default("UTC"),
  metadata: Metadata.optional(),
});
export type CreditLedgerInfo = z.output<typeof CreditLedgerSchema>;
export type CreditLedgerInput = z.input<typeof CreditLedgerSchema>;

/** A grant request; `grantId` is its idempotency key. */
export const CreditGrantSchema = z.strictObject({
  grantId: CreditIdSchema,
  ledgerId: CreditIdSchema,
  featureId: CreditIdSchema,
  amount: CreditAmountSchema,
  priority: CreditPrioritySchema.default(1),
  effectiveAt: Instant,
  /** Absent: the grant never expires (it still ends at a reset unless it rolls over). */
  expiration: CreditExpirationSchema.optional(),
  rollover: CreditRolloverSchema.optional(),
  metadata: Metadata.optional(),
});
export type CreditGrantRequest = z.output<typeof CreditGrantSchema>;
export type CreditGrantInput = z.input<typeof CreditGrantSchema>;

/** Voids a grant from `at` on. */
export const CreditVoidSchema = z.strictObject({
  ledgerId: CreditIdSchema,
  grantId: CreditIdSchema,
  at: Instant,
});
export type CreditVoidInput = z.input<typeof CreditVoidSchema>;

/** Starts a new period at `at`. */
export const CreditResetSchema = z.strictObject({
  ledgerId: CreditIdSchema,
  at: Instant,
});
export type CreditResetInput = z.input<typeof CreditResetSchema>;

const EventId = z
  .string({ error: "expected a string" })
  .min(1, { error: "must not be empty" })
  .max(512, { error: "at most 512 characters" })
  .check(WellFormedText);

/**
 * The version of a usage event (an integer from 1, default 1): a higher version supersedes the
 * stored one (a corrected amount or time), a lower one is ignored (`superseded`).
 */
export const CreditUsageVersionSchema = z
  .number({ error: "expected an integer from 1 to 2147483647" })
  .int({ error: "expected an integer from 1 to 2147483647" })
  .min(1, { error: "expected an integer from 1 to 2147483647" })
  .max(2_147_483_647, { error: "expected an integer from 1 to 2147483647" });

/**
 * One usage event against one feature; `(ledgerId, featureId, eventId)` is its idempotency key
 * and `version` orders its corrections.
 */
export const CreditUsageSchema = z.strictObject({
  ledgerId: CreditIdSchema,
  featureId: CreditIdSchema,
  eventId: EventId,
  amount: CreditUsageAmountSchema,
  at: Instant,
  /** Default 1. A higher version replaces the stored amount and time of the event. */
  version: CreditUsageVersionSchema.default(1),
  /** Deny the usage up front (store nothing) if it would create overage. Default false. */
  enforce: z.boolean({ error: "expected a boolean" }).default(false),
});
export type CreditUsageInput = z.input<typeof CreditUsageSchema>;

/** A hold's lifetime in milliseconds: an integer from 1 to 2,147,483,647 (about 24.8 days); the quota's limit too. */
export const CreditHoldTtlSchema = HoldTtlSchema;

/**
 * A hold on a feature's credits before a call (see {@link CreditLedger.reserve}); `holdId` is
 * its idempotency key.
 */
export const CreditReserveSchema = z.strictObject({
  holdId: CreditIdSchema,
  ledgerId: CreditIdSchema,
  featureId: CreditIdSchema,
  /** The most the call is expected to use: a decimal string > 0. */
  amount: CreditAmountSchema,
  /** The hold expires this long after it was granted, by the store's clock. */
  ttlMs: CreditHoldTtlSchema,
});
export type CreditReserveInput = z.input<typeof CreditReserveSchema>;

/**
 * What a held call actually used (see {@link CreditLedger.commitHold}): recorded as the usage
 * event `eventId` of the hold's ledger and feature.
 */
export const CreditCommitSchema = z.strictObject({
  holdId: CreditIdSchema,
  /**
   * The feature the caller believes the hold is of (optional): when given and it is not the
   * hold's feature, the commit is refused (`invalid_input` naming `featureId`) and burns
   * nothing, so an amount counted in one feature is never committed to a hold of another. Not
   * part of the commit's body: a retry with or without it is the same commit.
   */
  featureId: CreditIdSchema.optional(),
  /**
   * The ledger the caller believes the hold is on (optional), a check like `featureId`: when
   * given and it is not the hold's ledger, the commit is refused (`invalid_input` naming
   * `ledgerId`), whatever the hold's state, and burns nothing, so a caller's link to a hold
   * (e.g. a `Hold` rebuilt with another `account`) is never taken for another ledger's. Not
   * part of the commit's body: a retry with or without it is the same commit.
   */
  ledgerId: CreditIdSchema.optional(),
  eventId: EventId,
  /**
   * The actual amount, a decimal string; charged in full, even above the hold. Negative (a
   * refund) only for a money feature.
   */
  amount: CreditUsageAmountSchema,
  at: Instant,
  version: CreditUsageVersionSchema.default(1),
});
export type CreditCommitInput = z.input<typeof CreditCommitSchema>;

/** A page of history: entries with a time in `[from, to)`. */
export const CreditHistoryQuerySchema = z
  .strictObject({
    ledgerId: CreditIdSchema,
    from: IsoTimestampSchema,
    to: IsoTimestampSchema,
    limit: z
      .number({ error: "expected an integer from 1 to 10000" })
      .int({ error: "expected an integer from 1 to 10000" })
      .min(1, { error: "expected an integer from 1 to 10000" })
      .max(10_000, { error: "expected an integer from 1 to 10000" }),
    cursor: z
      .string({ error: "expected a cursor returned by history()" })
      .regex(/^-?[0-9]{1,16}\.[1-4]\.[0-9]{1,16}$/, { error: "expected a cursor returned by history()" })
      .optional(),
  })
  .superRefine((q, ctx) => {
    if (Date.parse(q.to) <= Date.parse(q.from)) {
      ctx.addIssue({ code: "custom", path: ["to"], message: "must be after from" });
    }
  });
export type CreditHistoryQuery = z.input<typeof CreditHistoryQuerySchema>;

/**
 * A page of ledgers by subject (see {@link CreditLedger.listLedgers}): every field given in
 * `subject` must be equal (fields not given are not constrained; `{}` matches every ledger).
 */
export const CreditLedgerListQuerySchema = z.strictObject({
  subject: CreditSubjectFilterSchema,
  limit: z
    .number({ error: "expected an integer from 1 to 1000" })
    .int({ error: "expected an integer from 1 to 1000" })
    .min(1, { error: "expected an integer from 1 to 1000" })
    .max(1000, { error: "expected an integer from 1 to 1000" }),
  cursor: z
    .string({ error: "expected a cursor returned by listLedgers()" })
    .min(1, { error: "expected a cursor returned by listLedgers()" })
    .optional(),
});
export type CreditLedgerListQuery = z.input<typeof CreditLedgerListQuerySchema>;
