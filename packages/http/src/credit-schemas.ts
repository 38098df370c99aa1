import {
  CreditAmountSchema,
  CreditIdSchema,
  CreditPrioritySchema,
  EXPIRATION_UNITS,
  IsoTimestampSchema,
  isTimeZone,
  WellFormedText,
} from "@latch/core/adapter";
import { z } from "zod";
import { documentAs } from "./route.js";

/**
 * The credit routes' request and response schemas (snake_case on the wire, like the rest of
 * the API). Field rules are `@latch/core`'s own (`CreditAmountSchema`, `CreditPrioritySchema`,
 * …), so the HTTP layer refuses exactly what the ledger would, naming the wire field.
 */

/** The scopes of the credit routes. */
export const CREDIT_SCOPES = {
  /** `GET` ledgers, grants, balance and history. */
  creditsRead: "credits:read",
  /** Create ledgers, grant, void and reset. */
  creditsWrite: "credits:write",
} as const;

/** The most ledgers or history entries one page may hold. */
export const MAX_CREDIT_PAGE_SIZE = 1_000;
const DEFAULT_CREDIT_PAGE_SIZE = 100;

const Instant = IsoTimestampSchema.meta({ example: "2026-03-01T00:00:00Z" });
const Name = z
  .string({ error: "expected a string" })
  .min(1, { error: "must not be empty" })
  .max(256)
  .check(WellFormedText);
const LedgerId = CreditIdSchema.meta({ description: "A ledger id (1–256 characters)", example: "acme" });
const GrantId = CreditIdSchema.meta({
  description: "A grant id (1–256 characters)",
  example: "acme-2026-03",
});
const Amount = CreditAmountSchema.meta({
  description: "A decimal string > 0 (at most 20 integer and 30 fractional digits); exact, never a number",
  example: "1000000",
});
const Metadata = z
  .record(
    z
      .string()
      .min(1, { error: "must not be empty" })
      .max(64, { error: "at most 64 characters" })
      .check(WellFormedText),
    z
      .string({ error: "expected a string" })
      .max(256, { error: "at most 256 characters" })
      .check(WellFormedText),
    { error: "expected an object of strings" },
  )
  .refine((m) => Object.keys(m).length <= 64, { error: "at most 64 entries" });

const pageSize = (what: string) =>
  documentAs(
    z
      .string({ error: `expected an integer from 1 to ${MAX_CREDIT_PAGE_SIZE}` })
      .regex(/^[0-9]{1,9}$/, { error: `expected an integer from 1 to ${MAX_CREDIT_PAGE_SIZE}` })
      .transform(Number)
      .pipe(
        z
          .number()
          .int()
          .min(1, { error: `expected an integer from 1 to ${MAX_CREDIT_PAGE_SIZE}` })
          .max(MAX_CREDIT_PAGE_SIZE, { error: `at most ${MAX_CREDIT_PAGE_SIZE}` }),
      ),
    { schema: { type: "integer", minimum: 1, maximum: MAX_CREDIT_PAGE_SIZE } },
  )
    .optional()
    .meta({
      description: `${what} per page, 1–${MAX_CREDIT_PAGE_SIZE} (default ${DEFAULT_CREDIT_PAGE_SIZE})`,
    });

// ── requests ─────────────────────────────────────────────────────────────────

/** `/api/billing/credits/ledgers/{ledgerId}…` */
export const LedgerPathParams = z.strictObject({ ledgerId: LedgerId });
/** `/api/billing/credits/ledgers/{ledgerId}/grants/{grantId}/void` */
export const GrantPathParams = z.strictObject({ ledgerId: LedgerId, grantId: GrantId });

/** `GET /api/billing/credits/ledgers` */
export const ListLedgersParams = z.strictObject({
  page_size: pageSize("Ledgers"),
  // Opaque (base64url, longer than a ledger id): the ledger checks it and names `cursor`.
  cursor: z
    .string()
    .min(1)
    .max(4096)
    .check(WellFormedText)
    .optional()
    .meta({ description: "next_cursor of the previous page" }),
  tenant_id: Name.optional().meta({ description: "Must be the caller's tenant (else 404)" }),
});

/** A ledger's subject on the wire; the caller's own subject is always applied on top. */
export const CreditSubjectBody = z.strictObject({
  tenant_id: Name.optional().meta({ description: "Must be the caller's tenant (else 404)" }),
  org_id: Name.optional(),
  project_id: Name.optional(),
  api_key_id: Name.optional(),
  end_user_id: Name.optional(),
  feature: Name.optional(),
});

/** `POST /api/billing/credits/ledgers` */
export const CreateLedgerBody = z.strictObject({
  ledger_id: LedgerId,
  subject: CreditSubjectBody.optional().meta({
    description: "Narrows the caller's subject (e.g. a project of the tenant); default: the caller's subject",
  }),
  time_zone: z
    .string({ error: "expected an IANA time zone such as Europe/Paris" })
    .max(64, { error: "at most 64 characters" })
    .refine(isTimeZone, { error: "unknown time zone: expected an IANA name such as Europe/Paris" })
    .optional()
    .meta({ description: "IANA zone in which DAY, WEEK, MONTH and YEAR expirations count (default UTC)" }),
  metadata: Metadata.optional(),
});

/** `POST /api/billing/credits/ledgers/{ledgerId}/grants` */
export const CreateGrantBody = z.strictObject({
  grant_id: GrantId.meta({ description: "The idempotency key of the grant (unique across ledgers)" }),
  feature_id: CreditIdSchema.meta({ description: "An existing feature", example: "tokens" }),
  amount: Amount,
  priority: CreditPrioritySchema.optional().meta({ description: "1 (burns first) to 255; default 1" }),
  effective_at: Instant.meta({
    description: "When the grant takes effect (ISO 8601 UTC); not before the ledger's high watermark",
  }),
  expiration: z
    .strictObject(
      {
        count: z
          .number({ error: "expected an integer from 1 to 10000" })
          .int({ error: "expected an integer from 1 to 10000" })
          .min(1, { error: "expected an integer from 1 to 10000" })
          .max(10_000, { error: "expected an integer from 1 to 10000" }),
        unit: z.enum(EXPIRATION_UNITS, { error: "expected HOUR, DAY, WEEK, MONTH or YEAR" }),
      },
      { error: "expected { count, unit }" },
    )
    .optional()
    .meta({
      description: "count × unit after effective_at, in the ledger's time zone; absent: never expires",
    }),
  rollover: z
    .strictObject(
      {
        type: z.enum(["ORIGINAL_AMOUNT", "REMAINING_AMOUNT"], {
          error: "expected ORIGINAL_AMOUNT or REMAINING_AMOUNT",
        }),
        max_amount: Amount.optional(),
      },
      { error: "expected { type, max_amount? }" },
    )
    .optional()
    .meta({ description: "What the grant keeps at a reset; absent: nothing" }),
  metadata: Metadata.optional(),
});

/** `POST /api/billing/credits/ledgers/{ledgerId}/grants/{grantId}/void` */
export const VoidGrantBody = z.strictObject({
  at: Instant.meta({
    description:
      "Void from this time on (ISO 8601 UTC); not before the high watermark. Retry with the same at",
  }),
});

/** `POST /api/billing/credits/ledgers/{ledgerId}/reset` */
export const ResetLedgerBody = z.strictObject({
  at: Instant.meta({
    description:
      "Start of the new period (ISO 8601 UTC); not before the high watermark. Retry with the same at",
  }),
});

/** `GET /api/billing/credits/ledgers/{ledgerId}/balance` */
export const BalanceParams = z.strictObject({
  at: Instant.optional().meta({ description: "Balances at this time (ISO 8601 UTC); default now" }),
});

/** `GET /api/billing/credits/ledgers/{ledgerId}/history` */
export const HistoryParams = z
  .strictObject({
    from: Instant.meta({ description: "Start of the window (inclusive), ISO 8601 UTC" }),
    to: Instant.meta({ description: "End of the window (exclusive), ISO 8601 UTC" }),
    page_size: pageSize("Entries"),
    cursor: z
      .string()
      .min(1)
      .max(64)
      .check(WellFormedText)
      .optional()
      .meta({ description: "next_cursor of the previous page (same from and to)" }),
  })
  .superRefine((q, ctx) => {
    if (Date.parse(q.to) <= Date.parse(q.from)) {
      ctx.addIssue({ code: "custom", path: ["to"], message: "must be after from" });
    }
  });

// ── responses ────────────────────────────────────────────────────────────────

const Decimal = z.string().meta({ description: "Exact decimal string (canonical: 1.5, not 1.50)" });

export const CreditSubjectView = z
  .object({
    tenant_id: z.string(),
    org_id: z.string().optional(),
    project_id: z.string().optional(),
    api_key_id: z.string().optional(),
    end_user_id: z.string().optional(),
    feature: z.string().optional(),
  })
  .meta({ id: "CreditSubject" });

export const LedgerView = z
  .object({
    ledger_id: z.string(),
    subject: CreditSubjectView,
    time_zone: z.string(),
    metadata: z.record(z.string(), z.string()).optional(),
  })
  .meta({ id: "CreditLedger" });

export const LedgerListView = z
  .object({ items: z.array(LedgerView), next_cursor: z.string().optional() })
  .meta({ id: "CreditLedgerList" });

export const CreatedLedgerView = z
  .object({ status: z.enum(["created", "already_exists"]), ledger: LedgerView })
  .meta({ id: "CreatedCreditLedger" });

export const GrantView = z
  .object({
    grant_id: z.string(),
    ledger_id: z.string(),
    feature_id: z.string(),
    amount: Decimal,
    priority: z.number().int(),
    effective_at: z.string(),
    expiration: z.object({ count: z.number().int(), unit: z.enum(EXPIRATION_UNITS) }).optional(),
    rollover: z
      .object({ type: z.enum(["ORIGINAL_AMOUNT", "REMAINING_AMOUNT"]), max_amount: Decimal.optional() })
      .optional(),
    metadata: z.record(z.string(), z.string()).optional(),
    expires_at: z.string().optional(),
    sequence: z.number().int().meta({ description: "Creation order within the ledger (1, 2, 3…)" }),
    voided_at: z.string().optional(),
  })
  .meta({ id: "CreditGrant" });

export const GrantListView = z.object({ items: z.array(GrantView) }).meta({ id: "CreditGrantList" });

export const GrantedView = z
  .object({ status: z.enum(["granted", "already_exists"]), grant: GrantView })
  .meta({ id: "CreditGrantResult" });

export const VoidedView = z
  .object({ status: z.enum(["voided", "already_voided"]), grant: GrantView })
  .meta({ id: "CreditVoidResult" });

export const ResetView = z
  .object({ status: z.enum(["reset", "already_reset"]), ledger_id: z.string(), at: z.string() })
  .meta({ id: "CreditResetResult" });

export const FeatureBalanceView = z
  .object({
    feature_id: z.string(),
    balance: Decimal,
    granted: Decimal,
    burned: Decimal,
    expired: Decimal,
    voided: Decimal,
    usage: Decimal,
    overage: Decimal,
  })
  .meta({ id: "CreditFeatureBalance" });

export const GrantBalanceView = z
  .object({
    grant_id: z.string(),
    feature_id: z.string(),
    priority: z.number().int(),
    effective_at: z.string(),
    expires_at: z.string().optional(),
    voided_at: z.string().optional(),
    active: z.boolean(),
    granted: Decimal,
    balance: Decimal,
    burned: Decimal,
    expired: Decimal,
    voided: Decimal,
  })
  .meta({ id: "CreditGrantBalance" });

export const BalanceView = z
  .object({
    ledger_id: z.string(),
    at: z.string(),
    features: z.array(FeatureBalanceView),
    grants: z.array(GrantBalanceView),
  })
  .meta({ id: "CreditBalance" });

const GrantEntry = z.object({
  type: z.literal("GRANT"),
  at: z.string(),
  grant_id: z.string(),
  feature_id: z.string(),
  amount: Decimal,
});
const VoidEntry = z.object({
  type: z.literal("VOID"),
  at: z.string(),
  grant_id: z.string(),
  feature_id: z.string(),
  amount: Decimal.meta({ description: "The balance the void removed" }),
});
const ResetEntry = z.object({
  type: z.literal("RESET"),
  at: z.string(),
  grants: z.array(
    z.object({ grant_id: z.string(), feature_id: z.string(), before: Decimal, after: Decimal }),
  ),
});
const GrantUsageEntry = z.object({
  type: z.literal("GRANT_USAGE"),
  at: z.string(),
  grant_id: z.string(),
  feature_id: z.string(),
  amount: Decimal,
  period: z.object({ from: z.string(), to: z.string() }),
});

export const HistoryEntryView = z
  .discriminatedUnion("type", [GrantEntry, VoidEntry, ResetEntry, GrantUsageEntry])
  .meta({ id: "CreditHistoryEntry" });

export const HistoryView = z
  .object({
    ledger_id: z.string(),
    from: z.string(),
    to: z.string(),
    page_size: z.number().int(),
    items: z.array(HistoryEntryView),
    next_cursor: z.string().optional(),
  })
  .meta({ id: "CreditHistory" });
