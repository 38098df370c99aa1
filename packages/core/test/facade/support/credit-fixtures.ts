/** What the credits facade tests share: the clock, gpt-4o's prices, a pricing source and ledger "acme". */
import {
  type Hold,
  type IngestLog,
  MemoryCreditLedger,
  type PriceSnapshot,
  type PricingSource,
  type UsageObservation,
  type UsageObservationInput,
} from "../../../src/index.js";

/** The store's clock and the facade's clock agree: holds are taken "now", calls complete just before. */
export const NOW = "2026-03-01T12:00:05Z";

export const gpt4o: PriceSnapshot = {
  snapshotId: "gpt-4o:2026",
  model: { billableModel: "gpt-4o" },
  currency: "USD",
  effectiveFrom: "2026-01-01T00:00:00Z",
  prices: { input_tokens: { perMillion: "2.5" }, output_tokens: { perMillion: "10" } },
};

/** A pricing source of `initial` that takes more snapshots later (`add`). */
export function pricingOf(
  initial: PriceSnapshot[] = [gpt4o],
): PricingSource & { add(s: PriceSnapshot): void } {
  const snapshots = [...initial];
  return {
    add: (s) => snapshots.push(s),
    resolve: async (model) => snapshots.find((s) => s.model.billableModel === model.billableModel),
  };
}

/**
 * Ledger "acme" (subject tenant "acme") with 10,000 `tokens` (input + output tokens) and 1 of a
 * money feature (`usd` in USD by default) granted from 2026-03-01.
 */
export async function acmeLedger(
  options: {
    clock?: () => number;
    money?: { featureId: string; currency: string };
    holdRetentionMs?: number;
  } = {},
): Promise<MemoryCreditLedger> {
  const money = options.money ?? { featureId: "usd", currency: "USD" };
  const ledger = new MemoryCreditLedger({
    clock: options.clock ?? (() => Date.parse(NOW)),
    ...(options.holdRetentionMs === undefined ? {} : { holdRetentionMs: options.holdRetentionMs }),
  });
  await ledger.createFeature({
    featureId: "tokens",
    measure: { kind: "quantity", meters: ["input_tokens", "output_tokens"] },
  });
  await ledger.createFeature({
    featureId: money.featureId,
    measure: { kind: "money", currency: money.currency },
  });
  await ledger.createLedger({ ledgerId: "acme", subject: { tenantId: "acme" } });
  for (const [featureId, amount] of [
    ["tokens", "10000"],
    [money.featureId, "1"],
  ] as const)
    await ledger.grant({
      grantId: `acme-${featureId}`,
      ledgerId: "acme",
      featureId,
      amount,
      effectiveAt: "2026-03-01T00:00:00Z",
    });
  return ledger;
}

/** Call `i` of tenant "acme": 1,000 input + 100 output tokens, 1,100 tokens, $0.0035 at gpt-4o's prices. */
export const call = (i: number, fields: Partial<UsageObservationInput> = {}): UsageObservationInput => ({
  eventId: `req-${i}:0:openai`,
  subject: { tenantId: "acme" },
  meters: { input_tokens: 1000, output_tokens: 100 },
  model: { billableModel: "gpt-4o" },
  provider: { providerId: "openai" },
  source: { kind: "provider_reported" },
  outcome: { kind: "success" },
  timing: { startedAt: "2026-03-01T12:00:00Z", completedAt: "2026-03-01T12:00:01Z" },
  ...fields,
});

/** An ingest log in memory: the first publish of an eventId is stored, a later one is a duplicate; `down` refuses. */
export class MemoryLog implements IngestLog {
  readonly published = new Map<string, UsageObservation>();
  down = false;
  async publish(obs: UsageObservation) {
    if (this.down) throw new Error("connection refused");
    const duplicate = this.published.has(obs.eventId);
    if (!duplicate) this.published.set(obs.eventId, obs);
    return { duplicate };
  }
}

export function granted(hold: Hold): Extract<Hold, { granted: true; kind: "credits" }> {
  if (!hold.granted || hold.kind !== "credits") throw new Error("expected a granted credit hold");
  return hold;
}

/** A ledger's usage of a feature on 2026-03-02 ("0" when none). */
export async function usageOf(ledger: MemoryCreditLedger, ledgerId: string, featureId: string) {
  const balance = await ledger.balance(ledgerId, "2026-03-02T00:00:00Z");
  return balance.features.find((f) => f.featureId === featureId)?.usage ?? "0";
}

/** Another ledger (subject tenantId = ledgerId) with 1 usd and 10,000 tokens granted from 2026-03-01. */
export async function addLedger(ledger: MemoryCreditLedger, ledgerId: string): Promise<void> {
  await ledger.createLedger({ ledgerId, subject: { tenantId: ledgerId } });
  for (const [featureId, amount] of [
    ["usd", "1"],
    ["tokens", "10000"],
  ] as const)
    await ledger.grant({
      grantId: `${ledgerId}-${featureId}`,
      ledgerId,
      featureId,
      amount,
      effectiveAt: "2026-03-01T00:00:00Z",
    });
}
