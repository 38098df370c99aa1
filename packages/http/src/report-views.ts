import type { RatedUsageRecord, SummaryRow } from "@latch/core";
import { tokenGroupsOf } from "@latch/core/adapter";
import type { z } from "zod";
import type { LineView, TotalsView } from "./schemas.js";
import { subjectWire } from "./subject.js";

const EMPTY_TOTALS: z.output<typeof TotalsView> = {
  input_tokens: 0,
  output_tokens: 0,
  cache_read_tokens: 0,
  cache_write_tokens: 0,
  total_tokens: 0,
  requests: 0,
  successes: 0,
  failures: 0,
  cost_by_currency: {},
};

/** A summary row's totals on the wire (all zero for a window without usage). */
export function totalsView(row: SummaryRow | undefined): z.output<typeof TotalsView> {
  if (row === undefined) return EMPTY_TOTALS;
  return {
    input_tokens: row.inputTokens,
    output_tokens: row.outputTokens,
    cache_read_tokens: row.cacheReadTokens,
    cache_write_tokens: row.cacheWriteTokens,
    total_tokens: row.totalTokens,
    requests: row.requests,
    successes: row.successes,
    failures: row.failures,
    cost_by_currency: row.costByCurrency,
  };
}

/** One rated record as a line (the same token groupings as the summary). */
export function lineView(record: RatedUsageRecord): z.output<typeof LineView> {
  const obs = record.observation;
  const tokens = tokenGroupsOf(obs.meters);
  return {
    completed_at: obs.timing.completedAt,
    event_id: record.eventId,
    rated_record_id: record.ratedRecordId,
    version: record.version,
    ...(subjectWire(obs.subject) as { tenant_id: string }),
    ...(obs.provider === undefined ? {} : { provider: obs.provider.providerId }),
    model: obs.model.billableModel,
    meters: { ...obs.meters } as Record<string, number>,
    input_tokens: Number(tokens.inputTokens),
    output_tokens: Number(tokens.outputTokens),
    cache_read_tokens: Number(tokens.cacheReadTokens),
    cache_write_tokens: Number(tokens.cacheWriteTokens),
    total_tokens: Number(tokens.totalTokens),
    outcome: obs.outcome.kind === "error" ? `error:${obs.outcome.code}` : obs.outcome.kind,
    currency: record.currency,
    cost: record.total,
  };
}
