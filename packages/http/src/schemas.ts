import {
  ApiKeyIdSchema,
  ApiKeyScopeSchema,
  CurrencyCodeSchema,
  IsoTimestampSchema,
  QuotaPeriodSchema,
  type SummaryGroupKey,
  WellFormedText,
} from "@latch/core/adapter";
import { z } from "zod";
import { DEFAULT_PAGE_SIZE, documentAs } from "./route.js";

/**
 * The HTTP API's request and response schemas (snake_case on the wire). They validate every
 * request and generate the OpenAPI document: one source for both.
 */

/** The most lines one page may hold. */
export const MAX_PAGE_SIZE = 1_000;

/** `group_by` values on the wire → report dimensions of `@latch/core`. */
export const GROUP_KEYS = {
  provider: "provider",
  model: "model",
  day: "day",
  org_id: "orgId",
  project_id: "projectId",
  api_key_id: "apiKeyId",
  end_user_id: "endUserId",
  feature: "feature",
} as const satisfies Record<string, SummaryGroupKey>;
export type HttpGroupKey = keyof typeof GROUP_KEYS;
const GROUP_NAMES = Object.keys(GROUP_KEYS) as [HttpGroupKey, ...HttpGroupKey[]];

const Instant = IsoTimestampSchema.meta({ example: "2026-03-01T00:00:00Z" });
// Every string field refuses U+0000 and lone surrogates here (core's rule), so each backend
// answers the same 400 naming the wire field, before any store sees the value.
const Id = z
  .string()
  .min(1, { error: "must not be empty" })
  .max(256, { error: "at most 256 characters" })
  .check(WellFormedText);

/** `from` / `to`: a window `[from, to)` of usage completion times. */
const Window = {
  from: Instant.meta({ description: "Start of the window (inclusive), ISO 8601 UTC" }),
  to: Instant.meta({ description: "End of the window (exclusive), ISO 8601 UTC" }),
};

/** Report filters on the wire (the caller's own subject is always applied on top). */
const Filters = {
  tenant_id: Id.optional().meta({ description: "Must be the caller's tenant (else 404)" }),
  provider: Id.optional(),
  model: Id.optional(),
  org_id: Id.optional(),
  project_id: Id.optional(),
  api_key_id: Id.optional(),
  end_user_id: Id.optional(),
  feature: Id.optional(),
};

function windowOrder(q: { from: string; to: string }, ctx: z.RefinementCtx): void {
  if (Date.parse(q.to) <= Date.parse(q.from)) {
    ctx.addIssue({ code: "custom", path: ["to"], message: "must be after from" });
  }
}

const digits = (what: string) =>
  z.string({ error: `expected ${what}` }).regex(/^[0-9]{1,9}$/, { error: `expected ${what}` });

const PageSize = documentAs(
  digits(`an integer from 1 to ${MAX_PAGE_SIZE}`)
    .transform(Number)
    .pipe(
      z
        .number()
        .int()
        .min(1, { error: `expected an integer from 1 to ${MAX_PAGE_SIZE}` })
        .max(MAX_PAGE_SIZE, { error: `at most ${MAX_PAGE_SIZE}` }),
    ),
  { schema: { type: "integer", minimum: 1, maximum: MAX_PAGE_SIZE } },
)
  .optional()
  .meta({ description: `Lines per page, 1–${MAX_PAGE_SIZE} (default ${DEFAULT_PAGE_SIZE})` });

const GroupBy = documentAs(
  z
    .string()
    .transform((text) => (text === "" ? [] : text.split(",")))
    .pipe(
      z
        .array(z.enum(GROUP_NAMES, { error: `expected a comma-separated list of ${GROUP_NAMES.join(", ")}` }))
        .refine((keys) => new Set(keys).size === keys.length, { error: "lists a key twice" }),
    ),
  {
    schema: { type: "array", items: { type: "string", enum: GROUP_NAMES }, uniqueItems: true },
    style: "form",
    explode: false,
  },
)
  .optional()
  .meta({
    description: `Report dimensions, of: ${GROUP_NAMES.join(", ")}; comma-separated (group_by=provider,model) or repeated (group_by=provider&group_by=model)`,
    example: ["provider", "model"],
  });

/** `GET /billing/summary` */
export const SummaryParams = z
  .strictObject({ ...Window, group_by: GroupBy, ...Filters })
  .superRefine(windowOrder);
/** `GET /billing/lines` */
export const LinesParams = z
  .strictObject({
    ...Window,
    page_size: PageSize,
    cursor: z
      .string()
      .min(1)
      .max(8192)
      .check(WellFormedText)
      .optional()
      .meta({ description: "next_cursor of the previous page" }),
    ...Filters,
  })
  .superRefine(windowOrder);
/** `GET /billing/export` */
export const ExportParams = z
  .strictObject({
    ...Window,
    format: z
      .enum(["csv", "jsonl"], { error: "expected csv or jsonl" })
      .optional()
      .meta({ description: "Default csv" }),
    ...Filters,
  })
  .superRefine(windowOrder);
/** `GET /api/billing/usage` */
export const UsageParams = z
  .strictObject({
    ...Window,
    key_id: ApiKeyIdSchema.optional().meta({ description: "One key's usage and quota balance" }),
    tenant_id: Filters.tenant_id,
  })
  .superRefine(windowOrder);
/** `GET /api/billing/keys` */
export const ListKeysParams = z.strictObject({
  limit: documentAs(
    digits("an integer from 1 to 1000")
      .transform(Number)
      .pipe(z.number().int().min(1, { error: "at least 1" }).max(1_000, { error: "at most 1000" })),
    { schema: { type: "integer", minimum: 1, maximum: 1_000 } },
  )
    .optional()
    .meta({ description: `Keys per page, 1–1000 (default ${DEFAULT_PAGE_SIZE})` }),
  cursor: ApiKeyIdSchema.optional(),
  tenant_id: Filters.tenant_id,
});
/** `/api/billing/keys/{id}` */
export const KeyPathParams = z.strictObject({ id: ApiKeyIdSchema });

const [CalendarPeriod, RollingPeriod] = QuotaPeriodSchema.options;

/**
 * A quota's budget period on the wire: core's `QuotaPeriod` with snake_case names, checked by
 * the same field schemas (`every`, `timeZone` → `time_zone`, `rollingMs` → `rolling_ms`).
 */
export const QuotaPeriodBody = z
  .union(
    [
      z.strictObject({
        every: CalendarPeriod.shape.every,
        time_zone: CalendarPeriod.shape.timeZone,
      }),
      z.strictObject({ rolling_ms: RollingPeriod.shape.rollingMs }),
    ],
    { error: 'expected { every: "day" | "week" | "month", time_zone? } or { rolling_ms }' },
  )
  .meta({
    id: "QuotaPeriod",
    description:
      "When the key's spent starts again at 0: each local midnight (day), Monday (week) or 1st (month) in time_zone (IANA, default UTC), or a rolling window of rolling_ms (1000 to 31622400000)",
    example: { every: "day", time_zone: "Europe/Berlin" },
  });
export type QuotaPeriodWire = z.output<typeof QuotaPeriodBody>;

/** A quota on the wire; `limit` is a number of tokens or a decimal string of money. */
export const QuotaBody = z.discriminatedUnion(
  "unit",
  [
    z.strictObject({
      unit: z.literal("tokens"),
      limit: z
        .number({ error: "expected a whole number of tokens" })
        .int({ error: "expected a whole number of tokens" })
        .min(0, { error: "expected a whole number of tokens ≥ 0" })
        .max(Number.MAX_SAFE_INTEGER, { error: "exceeds 2^53-1" }),
      period: QuotaPeriodBody.optional(),
    }),
    z.strictObject({
      unit: z.literal("money"),
      currency: CurrencyCodeSchema,
      limit: z
        .string({ error: "expected a decimal string such as 25.00" })
        .regex(/^(0|[1-9][0-9]{0,8})(\.[0-9]{1,6})?$/, { error: "expected a decimal string such as 25.00" }),
      period: QuotaPeriodBody.optional(),
    }),
  ],
  { error: "expected unit tokens or money" },
);

/** `POST /api/billing/keys` */
export const CreateKeyBody = z.strictObject({
  name: z
    .string({ error: "expected a string" })
    .min(1, { error: "must not be empty" })
    .max(128)
    .check(WellFormedText),
  scopes: z.array(ApiKeyScopeSchema, { error: "expected an array of scopes" }).max(64),
  mode: z.enum(["live", "test"], { error: "expected live or test" }).optional(),
  quota: QuotaBody.optional(),
  expires_at: Instant.optional(),
  tenant_id: Filters.tenant_id,
  owner: z
    .strictObject({
      org_id: Id.optional(),
      project_id: Id.optional(),
      end_user_id: Id.optional(),
      feature: Id.optional(),
    })
    .optional()
    .meta({
      description:
        "Narrows the new key's owner within the caller's (e.g. a project of the tenant); a field contradicting the caller's owner is a 403",
    }),
});

// ── responses ────────────────────────────────────────────────────────────────

export const OwnerView = z
  .object({
    tenant_id: z.string(),
    org_id: z.string().optional(),
    project_id: z.string().optional(),
    end_user_id: z.string().optional(),
    feature: z.string().optional(),
  })
  .meta({ id: "Owner" });

export const KeyView = z
  .object({
    id: z.string(),
    name: z.string(),
    owner: OwnerView,
    scopes: z.array(z.string()),
    mode: z.enum(["live", "test"]),
    quota: QuotaBody.optional(),
    created_at: z.string(),
    expires_at: z.string().optional(),
    revoked_at: z.string().optional(),
    last_used_at: z.string().optional(),
    created_by: z
      .string()
      .optional()
      .meta({ description: "The key that issued this one over the API; revoking it revokes this one" }),
  })
  .meta({ id: "ApiKey" });

export const CreatedKeyView = z
  .object({
    key: KeyView,
    secret: z.string().meta({ description: "The plaintext key. Shown once; store it now." }),
  })
  .meta({ id: "CreatedApiKey" });

export const KeyListView = z
  .object({ items: z.array(KeyView), next_cursor: z.string().optional() })
  .meta({ id: "ApiKeyList" });

export const TotalsView = z
  .object({
    input_tokens: z.number().int(),
    output_tokens: z.number().int(),
    cache_read_tokens: z.number().int(),
    cache_write_tokens: z.number().int(),
    total_tokens: z.number().int(),
    requests: z.number().int(),
    successes: z.number().int(),
    failures: z.number().int(),
    cost_by_currency: z
      .record(z.string(), z.string())
      .meta({ description: "Exact decimal strings per ISO 4217 currency, never summed across currencies" }),
  })
  .meta({ id: "Totals" });

export const SummaryView = z
  .object({
    from: z.string(),
    to: z.string(),
    group_by: z.array(z.enum(GROUP_NAMES)),
    totals: TotalsView,
    breakdown: z.array(z.object({ group: z.record(z.string(), z.string()), ...TotalsView.shape })),
  })
  .meta({ id: "Summary" });

export const LineView = z
  .object({
    completed_at: z.string(),
    event_id: z.string(),
    rated_record_id: z.string(),
    version: z.number().int(),
    tenant_id: z.string(),
    org_id: z.string().optional(),
    project_id: z.string().optional(),
    api_key_id: z.string().optional(),
    end_user_id: z.string().optional(),
    feature: z.string().optional(),
    provider: z.string().optional(),
    model: z.string(),
    meters: z.record(z.string(), z.number().int()),
    input_tokens: z.number().int(),
    output_tokens: z.number().int(),
    cache_read_tokens: z.number().int(),
    cache_write_tokens: z.number().int(),
    total_tokens: z.number().int(),
    outcome: z.string(),
    currency: z.string(),
    cost: z.string(),
  })
  .meta({ id: "Line" });

export const LinesView = z
  .object({
    from: z.string(),
    to: z.string(),
    page_size: z.number().int(),
    items: z.array(LineView),
    next_cursor: z.string().optional(),
  })
  .meta({ id: "Lines" });

export const QuotaBalanceView = z
  .object({
    unit: z.enum(["tokens", "money"]),
    currency: z.string().optional(),
    limit: z.number().int().meta({ description: "In tokens, or millionths of the currency" }),
    spent: z
      .number()
      .int()
      .meta({ description: "Committed usage; of the current period when the key's quota has one" }),
    held: z.number().int(),
    available: z.number().int(),
    period: QuotaPeriodBody.optional(),
    period_start: z.string().optional().meta({
      description:
        "With a period: when the period spent counts started (a calendar period's start, or the oldest instant a rolling window still counts)",
    }),
    period_end: z.string().optional().meta({
      description:
        "With a period: when spent starts again at 0 (a calendar period), or now (a rolling window)",
    }),
  })
  .meta({ id: "QuotaBalance" });

export const UsageView = z
  .object({
    from: z.string(),
    to: z.string(),
    tenant_id: z.string(),
    totals: TotalsView,
    by_key: z.array(z.object({ api_key_id: z.string(), ...TotalsView.shape })),
    quota: QuotaBalanceView.optional(),
  })
  .meta({ id: "Usage" });
