import { type RatedUsageRecord, type SummaryRow, TOKEN_METERS } from "@latch/core";
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
  const m = (k: keyof typeof obs.meters) => obs.meters[k] ?? 0;
  let total = 0;
  for (const meter of TOKEN_METERS) total += m(meter);
  return {
    completed_at: obs.timing.completedAt,
    event_id: record.eventId,
    rated_record_id: record.ratedRecordId,
    version: record.version,
    ...(subjectWire(obs.subject) as { tenant_id: string }),
    ...(obs.provider === undefined ? {} : { provider: obs.provider.providerId }),
    model: obs.model.billableModel,
    meters: { ...obs.meters } as Record<string, number>,
    input_tokens: m("input_tokens") + m("audio_input_tokens"),
    output_tokens: m("output_tokens") + m("reasoning_tokens") + m("audio_output_tokens"),
    cache_read_tokens: m("cached_input_tokens"),
    cache_write_tokens: m("cache_write_tokens") + m("cache_write_1h_tokens"),
    total_tokens: total,
    outcome: obs.outcome.kind === "error" ? `error:${obs.outcome.code}` : obs.outcome.kind,
    currency: record.currency,
    cost: record.total,
  };
}
