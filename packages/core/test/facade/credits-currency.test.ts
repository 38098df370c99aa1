import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CurrencyMismatchError } from "../../src/errors/index.js";
import {
  createLatch,
  type LatchConfig,
  type LatchWarning,
  MemoryCreditLedger,
  MemoryObservationStore,
  MemoryRatedRecordStore,
  MemoryUsageCounter,
  type PriceSnapshot,
  type PricingSource,
  sumDecimals,
  type UsageObservationInput,
} from "../../src/index.js";

// The store's clock and the facade's clock agree: holds are taken "now", calls complete before.
const NOW = "2026-03-01T12:00:05Z";

/**
 * A volume period tier: the period's first 1,000,000 input tokens at $2/M, and once past that
 * every input token of the period at $1/M (the event that crosses reprices the earlier ones: a
 * negative reversal line). Output at $10/M.
 */
const volume: PriceSnapshot = {
  snapshotId: "vol:2026",
  model: { billableModel: "vol-1" },
  currency: "USD",
  effectiveFrom: "2026-01-01T00:00:00Z",
  prices: { output_tokens: { perMillion: "10" } },
  tiers: [
    {
      scope: "period",
      mode: "volume",
      baseline: { meter: "input_tokens" },
      boundaries: [
        { upTo: 1_000_000, prices: { input_tokens: { perMillion: "2" } } },
        { upTo: null, prices: { input_tokens: { perMillion: "1" } } },
      ],
    },
  ],
};

/** gpt-4o priced in euros: $-denominated credits cannot pay for it. */
const euros: PriceSnapshot = {
  snapshotId: "gpt-4o:eur",
  model: { billableModel: "gpt-4o" },
  currency: "EUR",
  effectiveFrom: "2026-01-01T00:00:00Z",
  prices: { input_tokens: { perMillion: "2.5" }, output_tokens: { perMillion: "10" } },
};

const snapshots = [volume, euros];
const pricing: PricingSource = {
  resolve: async (model) => snapshots.find((s) => s.model.billableModel === model.billableModel),
};

const call = (
  i: number,
  model: string,
  meters: UsageObservationInput["meters"],
  completedAt = "2026-03-01T12:00:01Z",
): UsageObservationInput => ({
  eventId: `req-${i}:0:openai`,
  subject: { tenantId: "acme" },
  meters,
  model: { billableModel: model },
  provider: { providerId: "openai" },
  source: { kind: "provider_reported" },
  outcome: { kind: "success" },
  timing: { startedAt: "2026-03-01T11:00:00Z", completedAt },
});

let dir: string;
let warnings: LatchWarning[];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-credits-currency-"));
  warnings = [];
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A ledger "acme" with $100 of USD credits and 1,000,000 tokens. */
async function ledger(): Promise<MemoryCreditLedger> {
  const credits = new MemoryCreditLedger({ clock: () => Date.parse(NOW) });
  await credits.createFeature({ featureId: "usd", measure: { kind: "money", currency: "USD" } });
  await credits.createFeature({
    featureId: "tokens",
    measure: { kind: "quantity", meters: ["input_tokens", "output_tokens"] },
  });
  await credits.createLedger({ ledgerId: "acme", subject: { tenantId: "acme" } });
  for (const [featureId, amount] of [
    ["usd", "100"],
    ["tokens", "1000000"],
  ] as const) {
    await credits.grant({
      grantId: `acme-${featureId}`,
      ledgerId: "acme",
      featureId,
      amount,
      effectiveAt: "2026-03-01T00:00:00Z",
    });
  }
  return credits;
}

function latchOf(
  credits: MemoryCreditLedger,
  config: Partial<NonNullable<LatchConfig["credits"]>> = {},
  rated = new MemoryRatedRecordStore(),
  prices: PricingSource = pricing,
) {
  return createLatch({
    observations: new MemoryObservationStore(),
    rated,
    pricing: prices,
    counter: new MemoryUsageCounter(),
    credits: { ledger: credits, featureId: "usd", ...config },
    clock: () => new Date(NOW),
    spoolPath: join(dir, `spool-${Math.random().toString(36).slice(2)}.jsonl`),
    retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
    onWarning: (w) => warnings.push(w),
  });
}

async function usd(credits: MemoryCreditLedger) {
  const balance = await credits.balance("acme", "2026-03-02T00:00:00Z");
  return balance.features.find((f) => f.featureId === "usd");
}

describe("credits burned for a period equal its rated total, volume-tier reversals included", () => {
  it("a sequence of calls through a volume period tier burns exactly the sum of their totals", async () => {
    const credits = await ledger();
    const latch = latchOf(credits);
    const totals: string[] = [];
    for (const [i, input] of [400_000, 400_000, 400_000, 10, 250_000].entries()) {
      const result = await latch.record(call(i, "vol-1", { input_tokens: input, output_tokens: 1_000 }));
      if (result.status !== "rated") expect.fail(`call ${i} was not rated`);
      totals.push(result.record.total);
    }
    // 0.8 + 0.01, 0.8 + 0.01, then the crossing: 1,200,000 × 1/M − 800,000 × 2/M + 0.01.
    expect(totals).toEqual(["0.81", "0.81", "-0.39", "0.01001", "0.26"]);
    // 1,450,010 input tokens at $1/M + 5,000 output tokens at $10/M.
    expect(sumDecimals(totals)).toBe("1.50001");
    expect(await usd(credits)).toMatchObject({
      balance: "98.49999",
      burned: "1.50001",
      usage: "1.50001",
      overage: "0",
    });
    expect(warnings).toEqual([]);
  });

  it("also when the calls complete in another order than they are rated, and through holds", async () => {
    // The crossing call completes first: replayed by time, its refund finds nothing earlier to
    // undo, is owed back, and the calls completing after it take the owed amount first.
    const credits = await ledger();
    const latch = latchOf(credits, { enforce: true });
    const totals: string[] = [];
    for (const [i, input] of [600_000, 300_000, 300_000, 50_000].entries()) {
      const hold = await latch.reserve({ account: "acme", amount: "5" });
      const completedAt = new Date(Date.parse("2026-03-01T12:00:04Z") - i * 1_000).toISOString();
      const result = await latch.record(call(i, "vol-1", { input_tokens: input }, completedAt));
      expect(await latch.settle(hold, result)).toEqual({ settled: true });
      if (result.status !== "rated") expect.fail(`call ${i} was not rated`);
      totals.push(result.record.total);
    }
    // 1.2, 0.6, then 1,200,000 × 1/M − 900,000 × 2/M = −0.6, then 0.05.
    expect(totals).toEqual(["1.2", "0.6", "-0.6", "0.05"]);
    expect(await usd(credits)).toMatchObject({
      balance: "98.75",
      burned: "1.25",
      usage: "1.25",
      overage: "0",
    });
    expect(warnings).toEqual([]);
  });

  it("property: any calls in any completion order burn exactly the sum of their rated totals", async () => {
    let reversals = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            input: fc.integer({ min: 1, max: 700_000 }),
            output: fc.integer({ min: 0, max: 5_000 }),
            secondsBeforeNow: fc.integer({ min: 1, max: 3_600 }),
          }),
          { minLength: 1, maxLength: 12 },
        ),
        async (calls) => {
          const credits = await ledger();
          const latch = latchOf(credits);
          const totals: string[] = [];
          for (const [i, c] of calls.entries()) {
            const completedAt = new Date(Date.parse(NOW) - c.secondsBeforeNow * 1_000).toISOString();
            const result = await latch.record(
              call(i, "vol-1", { input_tokens: c.input, output_tokens: c.output }, completedAt),
            );
            if (result.status !== "rated") expect.fail(`call ${i} was not rated`);
            totals.push(result.record.total);
            if (result.record.total.startsWith("-")) reversals++;
          }
          const sum = sumDecimals(totals);
          expect(await usd(credits)).toMatchObject({ burned: sum, usage: sum, overage: "0" });
        },
      ),
      { numRuns: 40 },
    );
    expect(reversals).toBeGreaterThan(0); // the runs did cross the tier's boundary
  });
});

describe("a money credit feature met with a call rated in another currency", () => {
  it("is reported (credit_burn_failed, currency_mismatch), never a burn of 0; other routes still burn", async () => {
    const credits = await ledger();
    const latch = latchOf(credits, {
      route: () => [
        { ledgerId: "acme", featureId: "usd" },
        { ledgerId: "acme", featureId: "tokens" },
      ],
    });
    const result = await latch.record(call(1, "gpt-4o", { input_tokens: 1_000, output_tokens: 100 }));
    expect(result).toMatchObject({ status: "rated", record: { currency: "EUR", total: "0.0035" } });
    expect(warnings.map((w) => w.code)).toEqual(["credit_burn_failed"]);
    const cause = warnings[0]?.cause;
    expect(cause).toBeInstanceOf(CurrencyMismatchError);
    expect(cause).toMatchObject({
      code: "currency_mismatch",
      eventId: "req-1:0:openai",
      expected: "USD",
      actual: "EUR",
    });
    expect(warnings[0]?.message).not.toContain("0.0035");
    // Nothing was burned from the USD feature (not even a usage event of 0); tokens burned.
    expect(await usd(credits)).toMatchObject({ balance: "100", usage: "0" });
    expect((await credits.balance("acme", "2026-03-02T00:00:00Z")).features).toContainEqual(
      expect.objectContaining({ featureId: "tokens", usage: "1100" }),
    );
    const history = await credits.history({
      ledgerId: "acme",
      from: "2026-03-01T00:00:00Z",
      to: "2026-03-02T00:00:00Z",
      limit: 100,
    });
    expect(history.items.filter((e) => e.type === "GRANT_USAGE" && e.featureId === "usd")).toEqual([]);

    // reconcileCredits meets the same record and reports it the same way.
    warnings = [];
    expect(await latch.reconcileCredits()).toEqual({ versions: 1 });
    expect(warnings.map((w) => [w.code, (w.cause as { code?: string }).code])).toEqual([
      ["credit_burn_failed", "currency_mismatch"],
    ]);
  });

  it("with holds: settle releases the hold and reports it", async () => {
    const credits = await ledger();
    const latch = latchOf(credits, { enforce: true });
    const hold = await latch.reserve({ account: "acme", amount: "1" });
    expect(hold).toMatchObject({ granted: true, available: "99" });
    const result = await latch.record(call(1, "gpt-4o", { input_tokens: 1_000, output_tokens: 100 }));
    expect(await latch.settle(hold, result)).toEqual({ settled: true });
    expect(warnings.map((w) => [w.code, (w.cause as { code?: string }).code])).toEqual([
      ["credit_burn_failed", "currency_mismatch"], // record()
      ["credit_burn_failed", "currency_mismatch"], // settle()
    ]);
    // The hold is gone: all $100 can be held again; nothing burned.
    expect(await latch.reserve({ account: "acme", amount: "100" })).toMatchObject({
      granted: true,
      available: "0",
    });
    expect(await usd(credits)).toMatchObject({ balance: "100", usage: "0" });
  });
});

describe("correct() when the event's model is now priced in another currency", () => {
  it("throws currency_mismatch and stores nothing: the event keeps its currency and its burn", async () => {
    const credits = await ledger();
    const rated = new MemoryRatedRecordStore();
    let current: PriceSnapshot = { ...euros, currency: "USD", snapshotId: "gpt-4o:usd" };
    const latch = latchOf(credits, {}, rated, { resolve: async () => current });
    const v1 = await latch.record(call(1, "gpt-4o", { input_tokens: 1_000, output_tokens: 100 }));
    expect(v1).toMatchObject({ status: "rated", record: { currency: "USD", total: "0.0035" } });
    current = euros; // the price sheet moved to euros
    const error = await latch.correct("req-1:0:openai", { input_tokens: 2_000, output_tokens: 100 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CurrencyMismatchError);
    expect(error).toMatchObject({
      eventId: "req-1:0:openai",
      path: "currency",
      expected: "USD",
      actual: "EUR",
    });
    expect(await rated.current("req-1:0:openai")).toMatchObject({ version: 1, currency: "USD" });
    expect(await usd(credits)).toMatchObject({ usage: "0.0035" });
  });
});
