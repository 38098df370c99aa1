import {
  DefaultRatingEngine,
  formatMinorUnits,
  InMemoryPricingSource,
  normalize,
  parseObservation,
  type RatedUsageRecord,
  toMinorUnits,
  UsageEventId,
} from "@latch/core";

/** gpt-4o prices before and after a (fictional) price change on 2026-03-01. */
const pricing = new InMemoryPricingSource([
  {
    snapshotId: "openai:gpt-4o:2026-01",
    model: { billableModel: "gpt-4o", vendor: "openai" },
    currency: "USD",
    effectiveFrom: "2026-01-01T00:00:00Z",
    effectiveUntil: "2026-03-01T00:00:00Z",
    prices: {
      input_tokens: { perMillion: "2.50" },
      cached_input_tokens: { perMillion: "1.25" },
      output_tokens: { perMillion: "10" },
      reasoning_tokens: { as: "output_tokens" },
    },
  },
  {
    snapshotId: "openai:gpt-4o:2026-03",
    model: { billableModel: "gpt-4o", vendor: "openai" },
    currency: "USD",
    effectiveFrom: "2026-03-01T00:00:00Z",
    prices: {
      input_tokens: { perMillion: "2.00" },
      cached_input_tokens: { perMillion: "1.00" },
      output_tokens: { perMillion: "8" },
      reasoning_tokens: { as: "output_tokens" },
    },
  },
]);

/** The `usage` block of an OpenAI Chat Completions response: 1,500 of 2,000 prompt tokens came from cache. */
const openaiResponse = {
  id: "chatcmpl-quickstart",
  object: "chat.completion",
  model: "gpt-4o-2024-08-06",
  usage: {
    prompt_tokens: 2000,
    completion_tokens: 500,
    total_tokens: 2500,
    prompt_tokens_details: { cached_tokens: 1500, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0 },
  },
};

export function runQuickstart(): { record: RatedUsageRecord; lines: string[] } {
  const completedAt = "2026-02-14T09:30:01Z";
  const observation = parseObservation({
    eventId: UsageEventId.fromAttempt(openaiResponse.id, 0, "openai"),
    subject: { tenantId: "acme", projectId: "support-bot", feature: "chat" },
    meters: normalize.openaiChat(openaiResponse.usage),
    model: { billableModel: "gpt-4o", vendor: "openai" },
    provider: { providerId: "openai" },
    source: { kind: "provider_reported" },
    outcome: { kind: "success" },
    timing: { startedAt: "2026-02-14T09:30:00Z", completedAt },
  });

  const snapshot = pricing.require(observation.model, completedAt);
  const record = new DefaultRatingEngine().rate(observation, snapshot, { ratedAt: "2026-02-14T09:30:02Z" });

  const lines = [
    `event     ${record.eventId}  (snapshot ${record.snapshotId})`,
    ...record.lineItems.map(
      (l) =>
        `  ${l.meter.padEnd(22)} ${String(l.quantity).padStart(8)} × ${l.unitPrice.padStart(5)} / 1M = ${l.subtotal}`,
    ),
    `total     ${record.total} ${record.currency} (exact)`,
    `invoice   ${formatMinorUnits(toMinorUnits(record.total, record.currency), record.currency)} ${record.currency} (rounded once, to minor units, half-even)`,
  ];
  return { record, lines };
}
