import { z } from "zod";
import { WellFormedText } from "../schemas/identity.js";
import type { RatedUsageRecord } from "../schemas/rating.js";
import { IsoTimestampSchema } from "../schemas/time.js";

export const SUMMARY_GROUP_KEYS = [
  "provider",
  "model",
  "day",
  "tenantId",
  "orgId",
  "projectId",
  "apiKeyId",
  "endUserId",
  "feature",
] as const;
export type SummaryGroupKey = (typeof SUMMARY_GROUP_KEYS)[number];

export const FILTER_KEYS = [
  "provider",
  "model",
  "tenantId",
  "orgId",
  "projectId",
  "apiKeyId",
  "endUserId",
  "feature",
] as const;
export type FilterKey = (typeof FILTER_KEYS)[number];

const Filters = z.partialRecord(z.enum(FILTER_KEYS), z.string().min(1).max(256).check(WellFormedText));

/**
 * A report over `[start, end)` of `observation.timing.completedAt`, counting only the current
 * version of each event. `day` groups by the UTC day of completedAt (`YYYY-MM-DD`).
 */
export const SummaryQuerySchema = z
  .strictObject({
    start: IsoTimestampSchema,
    end: IsoTimestampSchema,
    groupBy: z.array(z.enum(SUMMARY_GROUP_KEYS)).max(SUMMARY_GROUP_KEYS.length),
    filters: Filters.optional(),
  })
  .superRefine((q, ctx) => {
    if (Date.parse(q.end) <= Date.parse(q.start)) {
      ctx.addIssue({ code: "custom", path: ["end"], message: "must be after start" });
    }
    if (new Set(q.groupBy).size !== q.groupBy.length) {
      ctx.addIssue({ code: "custom", path: ["groupBy"], message: "lists a key twice" });
    }
  });
export type SummaryQuery = z.output<typeof SummaryQuerySchema>;

/**
 * One group of a summary. Token counts are sums over the group's current records:
 * `inputTokens` = uncached + audio input, `cacheReadTokens`, `cacheWriteTokens` (5-minute and
 * 1-hour), `outputTokens` = visible + reasoning + audio output, `totalTokens` = all tokens.
 * `failures` counts every outcome other than success. Costs are exact decimal strings per
 * currency, never summed across currencies.
 *
 * There is no single `cost` field on purpose: a group can hold records priced in several
 * currencies, and adding USD to EUR would be wrong. Read the currency you bill in.
 *
 * @example
 * const [row] = await latch.summary({ start, end, groupBy: ["tenantId"] });
 * row.group.tenantId;          // "acme"
 * row.costByCurrency.USD;      // "0.008125" (exact decimal string; undefined if nothing in USD)
 */
export interface SummaryRow {
  /** The group's key values, one per `groupBy` key (`day` as `YYYY-MM-DD`, UTC). */
  group: Partial<Record<SummaryGroupKey, string>>;
  /** Uncached + audio input tokens. */
  inputTokens: number;
  /** Visible + reasoning + audio output tokens. */
  outputTokens: number;
  /** Cache-read input tokens. */
  cacheReadTokens: number;
  /** Cache-write tokens (5-minute and 1-hour). */
  cacheWriteTokens: number;
  /** Every token of the group's records, of every meter. */
  totalTokens: number;
  /** Current records (one per event: a corrected event counts once, at its latest version). */
  requests: number;
  /** Records whose outcome is `success`. */
  successes: number;
  /** Records with any other outcome (error, timeout, …); `successes + failures = requests`. */
  failures: number;
  /**
   * Exact cost per ISO 4217 currency, as decimal strings (e.g. `{ USD: "44.1611139" }`): never
   * summed across currencies; a currency with no record in the group is absent.
   */
  costByCurrency: Record<string, string>;
}

/** A page of current records in `[start, end)`, ordered by (completedAt, eventId). */
export const LinesQuerySchema = z
  .strictObject({
    start: IsoTimestampSchema,
    end: IsoTimestampSchema,
    filters: Filters.optional(),
    limit: z.number().int().min(1).max(10_000),
    cursor: z.string().min(1).max(8192).optional(),
  })
  .superRefine((q, ctx) => {
    if (Date.parse(q.end) <= Date.parse(q.start)) {
      ctx.addIssue({ code: "custom", path: ["end"], message: "must be after start" });
    }
  });
export type LinesQuery = z.output<typeof LinesQuerySchema>;

export interface LinesPage {
  items: RatedUsageRecord[];
  /** Opaque; pass back as `cursor` for the next page. Absent on the last page. */
  next?: string;
}
