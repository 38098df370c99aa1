import { z } from "zod";
import { QuotaPeriodSchema } from "../contracts/quota-period.js";
import { CurrencyCodeSchema } from "../money/currency.js";
import { BillingSubjectSchema, WellFormedText } from "../schemas/identity.js";
import { IsoTimestampSchema } from "../schemas/time.js";
import { API_KEY_DIGEST } from "./digest.js";

/**
 * Well-known scopes. The billing HTTP API checks these; a gateway may define its own (any
 * string matching {@link ApiKeyScopeSchema}).
 */
export const API_KEY_SCOPES = {
  /** `GET /api/billing/keys` */
  keysRead: "keys:read",
  /** `POST` / `DELETE /api/billing/keys` */
  keysWrite: "keys:write",
  /** `GET /api/billing/usage` */
  usageRead: "usage:read",
  /** `GET /billing/summary`, `/billing/lines`, `/billing/export` */
  billingRead: "billing:read",
} as const;

/** A scope: lower-case words joined by `:`, `.`, `_` or `-`, e.g. `billing:read`; ≤ 64 characters. */
export const ApiKeyScopeSchema = z
  .string({ error: "expected a string" })
  .regex(/^[a-z][a-z0-9_.-]*(:[a-z0-9_.*-]+)*$/, { error: "expected a scope such as billing:read" })
  .max(64, { error: "at most 64 characters" });

/** A key's id (not secret): 1–64 characters of `[A-Za-z0-9_-]`, e.g. `key_7Qm…`. */
export const ApiKeyIdSchema = z
  .string({ error: "expected a string" })
  .regex(/^[A-Za-z0-9_-]{1,64}$/, { error: "expected 1–64 characters of A-Z, a-z, 0-9, _ or -" });

/** A stored digest: 64 lowercase hex characters (see `ApiKeyHasher`). */
export const ApiKeyDigestSchema = z
  .string({ error: "expected a string" })
  .regex(API_KEY_DIGEST, { error: "expected 64 lowercase hex characters" });

/** An instant as the key records keep it: ISO 8601 UTC with milliseconds (`Date#toISOString`). */
const Instant = IsoTimestampSchema.transform((s) => new Date(s).toISOString());

const ScopeList = z
  .array(ApiKeyScopeSchema, { error: "expected an array of scopes" })
  .max(64, { error: "at most 64 scopes" })
  .refine((scopes) => new Set(scopes).size === scopes.length, { error: "lists a scope twice" });

/** Digits of a money quota below the currency unit: quota units are millionths (micros). */
export const MONEY_QUOTA_SCALE = 6;

/**
 * A key's quota, enforced through a `QuotaReservator` on the account
 * {@link apiKeyQuotaAccount}`(id)`:
 * - `{ unit: "tokens", limit }`: integer tokens;
 * - `{ unit: "money", currency, limit }`: a decimal string with at most 6 decimals; the
 *   reservator counts millionths of the currency (`"25.5"` USD → 25,500,000 units).
 *
 * Either may have a `period` (a `QuotaPeriod`: `{ every: "day" | "week" | "month", timeZone? }`
 * or `{ rollingMs }`, checked by `QuotaPeriodSchema`): the budget period of the limit, after
 * which the key's `spent` starts again at 0 (see `QuotaReservator.setLimit`). Without one the
 * limit is for the key's whole life. A key minted by a key with a quota may not have one (see
 * `ApiKeys.mint`).
 */
export const ApiKeyQuotaSchema = z.discriminatedUnion(
  "unit",
  [
    z.strictObject({
      unit: z.literal("tokens"),
      limit: z
        .number({ error: "expected a whole number of tokens" })
        .int({ error: "expected a whole number of tokens" })
        .min(0, { error: "expected a whole number of tokens ≥ 0" })
        .max(Number.MAX_SAFE_INTEGER, { error: "exceeds 2^53-1" }),
      period: QuotaPeriodSchema.optional(),
    }),
    z.strictObject({
      unit: z.literal("money"),
      currency: CurrencyCodeSchema,
      limit: z
        .string({ error: "expected a decimal string such as 25.00" })
        .regex(/^(0|[1-9][0-9]{0,8})(\.[0-9]{1,6})?$/, {
          error: "expected a decimal string ≥ 0 with at most 6 decimals, such as 25.00",
        }),
      period: QuotaPeriodSchema.optional(),
    }),
  ],
  { error: "expected unit tokens or money" },
);
export type ApiKeyQuota = z.output<typeof ApiKeyQuotaSchema>;

const [CalendarPeriod, RollingPeriod] = QuotaPeriodSchema.options;
const [TokensQuota, MoneyQuota] = ApiKeyQuotaSchema.options;

/**
 * A stored key's period: as `QuotaPeriodSchema`, but its zone is checked for shape only, not
 * against this process's `Intl`. A process whose time-zone data is newer (another Node or ICU
 * in the same fleet) may have stored a zone this one does not know; refusing it on read would
 * make the whole page of the owner's keys `corrupt_record`. New keys are still checked against
 * `Intl` (`NewApiKeySchema`), and the quota store computes the key's bounds with its own data.
 */
const RecordPeriodSchema = z.union(
  [
    CalendarPeriod.extend({
      timeZone: z
        .string()
        .min(1)
        .max(64)
        .regex(/^[A-Za-z][A-Za-z0-9_+\-/]*$/)
        .optional(),
    }),
    RollingPeriod,
  ],
  { error: 'expected { every: "day" | "week" | "month", timeZone? } or { rollingMs }' },
);

/** A stored key's quota: {@link ApiKeyQuotaSchema} with its period read by `RecordPeriodSchema`. */
const RecordQuotaSchema = z.discriminatedUnion(
  "unit",
  [
    TokensQuota.extend({ period: RecordPeriodSchema.optional() }),
    MoneyQuota.extend({ period: RecordPeriodSchema.optional() }),
  ],
  { error: "expected unit tokens or money" },
);

/** The quota account of a key in the `QuotaReservator`. */
export function apiKeyQuotaAccount(keyId: string): string {
  return `latch:api-key:${keyId}`;
}

/** A quota's limit in integer reservator units (tokens, or millionths of the currency). */
export function apiKeyQuotaUnits(quota: ApiKeyQuota): number {
  if (quota.unit === "tokens") return quota.limit;
  const [whole = "0", fraction = ""] = quota.limit.split(".");
  return Number(whole) * 10 ** MONEY_QUOTA_SCALE + Number(fraction.padEnd(MONEY_QUOTA_SCALE, "0"));
}

/**
 * An API key as stores keep it, without its digest. The plaintext is never part of it.
 * `owner` is the billing subject the key acts for: every report it reads is narrowed to it.
 */
export const ApiKeyRecordSchema = z.strictObject({
  id: ApiKeyIdSchema,
  owner: BillingSubjectSchema,
  name: z
    .string({ error: "expected a string" })
    .min(1, { error: "must not be empty" })
    .max(128, { error: "at most 128 characters" })
    .check(WellFormedText),
  scopes: ScopeList,
  mode: z.enum(["live", "test"], { error: "expected live or test" }),
  quota: RecordQuotaSchema.optional(),
  createdAt: Instant,
  expiresAt: Instant.optional(),
  revokedAt: Instant.optional(),
  lastUsedAt: Instant.optional(),
  /**
   * The key that minted this one (`ApiKeys.mint`, e.g. `POST /api/billing/keys`); absent for a
   * key issued in code. Revoking a key revokes every key it minted, transitively.
   */
  createdBy: ApiKeyIdSchema.optional(),
});
export type ApiKeyRecord = z.output<typeof ApiKeyRecordSchema>;
export type ApiKeyRecordInput = z.input<typeof ApiKeyRecordSchema>;

/** What `ApiKeys.create` takes: the key's owner, name, scopes and optional quota and expiry. */
export const NewApiKeySchema = z.strictObject({
  owner: BillingSubjectSchema,
  name: ApiKeyRecordSchema.shape.name,
  scopes: ScopeList,
  mode: z.enum(["live", "test"], { error: "expected live or test" }).default("live"),
  quota: ApiKeyQuotaSchema.optional(),
  expiresAt: Instant.optional(),
});
export type NewApiKey = z.output<typeof NewApiKeySchema>;
export type NewApiKeyInput = z.input<typeof NewApiKeySchema>;

/** `ApiKeyStore.list`'s options: a page of 1–1,000 keys after `cursor` (the last id seen). */
export const ApiKeyListOptionsSchema = z.strictObject({
  limit: z
    .number({ error: "expected an integer from 1 to 1000" })
    .int({ error: "expected an integer from 1 to 1000" })
    .min(1, { error: "expected an integer from 1 to 1000" })
    .max(1_000, { error: "expected an integer from 1 to 1000" }),
  cursor: ApiKeyIdSchema.optional(),
});
export type ApiKeyListOptions = z.output<typeof ApiKeyListOptionsSchema>;

/** A whole number of milliseconds ≥ 0 (`touch`'s minimum interval). */
export const IntervalMsSchema = z
  .number({ error: "expected a whole number of milliseconds" })
  .int({ error: "expected a whole number of milliseconds" })
  .min(0, { error: "expected a whole number of milliseconds ≥ 0" })
  .max(Number.MAX_SAFE_INTEGER, { error: "exceeds 2^53-1" });

/** An instant argument (`revoke`'s and `touch`'s `at`), normalised like the record's. */
export const ApiKeyInstantSchema = Instant;
