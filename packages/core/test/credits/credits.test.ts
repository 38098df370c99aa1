import { describe, expect, it } from "vitest";
import { type CreditFeature, CreditFeatureSchema } from "../../src/adapter.js";
import { creditUsageOf } from "../../src/credits/features.js";
import { CurrencyMismatchError, HighWatermarkError } from "../../src/errors/index.js";
import { DefaultRatingEngine, LatchError, MemoryCreditLedger, parseObservation } from "../../src/index.js";
import { ctx, observation, snapshot } from "../support.js";

describe("the README's credits example", () => {
  it("burns the top-up first, then the plan, and refills the plan at the reset", async () => {
    const credits = new MemoryCreditLedger();
    await credits.createFeature({
      featureId: "tokens",
      measure: { kind: "quantity", meters: ["input_tokens", "output_tokens"] },
    });
    await credits.createLedger({ ledgerId: "acme", subject: { tenantId: "acme" }, timeZone: "Europe/Paris" });
    const plan = await credits.grant({
      grantId: "acme-plan",
      ledgerId: "acme",
      featureId: "tokens",
      amount: "1000000",
      priority: 5,
      effectiveAt: "2026-01-01T00:00:00Z",
      expiration: { count: 1, unit: "YEAR" },
      rollover: { type: "ORIGINAL_AMOUNT" },
    });
    expect(plan.grant.expiresAt).toBe("2027-01-01T00:00:00.000Z");
    await credits.grant({
      grantId: "acme-topup-1",
      ledgerId: "acme",
      featureId: "tokens",
      amount: "250000",
      priority: 1,
      effectiveAt: "2026-01-10T00:00:00Z",
      rollover: { type: "REMAINING_AMOUNT", maxAmount: "100000" },
    });
    const used = await credits.recordUsage({
      ledgerId: "acme",
      featureId: "tokens",
      eventId: "req-1:0:openai",
      amount: "300000",
      at: "2026-01-15T09:30:00Z",
      enforce: true,
    });
    expect(used).toEqual({
      status: "recorded",
      eventId: "req-1:0:openai",
      burned: [
        { grantId: "acme-topup-1", amount: "250000" },
        { grantId: "acme-plan", amount: "50000" },
      ],
      overage: "0",
    });
    await credits.reset({ ledgerId: "acme", at: "2026-02-01T00:00:00Z" });
    const balance = await credits.balance("acme", "2026-02-01T00:00:00Z");
    expect(balance.features[0]?.balance).toBe("1000000");
  });
});

describe("HighWatermarkError", () => {
  it("is a LatchError with code high_watermark naming the field, without amounts", () => {
    const e = new HighWatermarkError({
      ledgerId: "acme",
      highWatermark: "2026-02-01T00:00:00.000Z",
      field: "effectiveAt",
    });
    expect(LatchError.isInstance(e)).toBe(true);
    expect(e.code).toBe("high_watermark");
    expect(e.message).toContain("effectiveAt");
    expect(e.isRetryable).toBe(false);
  });
});

describe("creditUsageOf", () => {
  const tokens = (filters?: CreditFeature["filters"]): CreditFeature =>
    CreditFeatureSchema.parse({
      featureId: "f",
      measure: { kind: "quantity", meters: ["input_tokens", "output_tokens"] },
      ...(filters ? { filters } : {}),
    });
  const obs = parseObservation(
    observation(
      { input_tokens: 1000, output_tokens: 200, reasoning_tokens: 50 },
      { subject: { tenantId: "acme", projectId: "bot" }, attributes: { env: "prod" } },
    ),
  );

  it("sums the feature's meters", () => {
    expect(creditUsageOf(tokens(), obs)).toBe("1200");
  });

  it("sums past 2^53 exactly", () => {
    const big = parseObservation(observation({ input_tokens: Number.MAX_SAFE_INTEGER, output_tokens: 2 }));
    expect(creditUsageOf(tokens(), big)).toBe("9007199254740993");
  });

  it("counts only observations that match every filter", () => {
    expect(creditUsageOf(tokens({ subject: { projectId: "bot" }, attributes: { env: "prod" } }), obs)).toBe(
      "1200",
    );
    expect(creditUsageOf(tokens({ subject: { projectId: "other" } }), obs)).toBeUndefined();
    expect(creditUsageOf(tokens({ attributes: { env: "dev" } }), obs)).toBeUndefined();
    expect(creditUsageOf(tokens({ modelPrefix: "test-" }), obs)).toBe("1200");
    expect(creditUsageOf(tokens({ models: ["gpt-4o"] }), obs)).toBeUndefined();
  });

  it("counts money as the rated total; a record in another currency is a typed error, never 0", () => {
    const rated = new DefaultRatingEngine().rate(
      obs,
      snapshot({
        prices: {
          input_tokens: { perMillion: "2.5" },
          output_tokens: { perMillion: "10" },
          reasoning_tokens: { as: "output_tokens" },
        },
      }) as never,
      ctx,
    );
    const usd = CreditFeatureSchema.parse({ featureId: "usd", measure: { kind: "money", currency: "USD" } });
    const eur = CreditFeatureSchema.parse({ featureId: "eur", measure: { kind: "money", currency: "EUR" } });
    expect(creditUsageOf(usd, obs, rated)).toBe("0.005");
    expect(() => creditUsageOf(eur, obs, rated)).toThrow(CurrencyMismatchError);
    const error = (() => {
      try {
        creditUsageOf(eur, obs, rated);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toMatchObject({
      code: "currency_mismatch",
      eventId: obs.eventId,
      path: "currency",
      expected: "EUR",
      actual: "USD",
    });
    expect((error as Error).message).toContain("eur");
    expect((error as Error).message).not.toContain(rated.total);
    // Not rated yet: nothing to count; filtered out: not this feature's call, whatever the currency.
    expect(creditUsageOf(usd, obs)).toBeUndefined();
    const eurForOtherProject = CreditFeatureSchema.parse({
      featureId: "eur-other",
      measure: { kind: "money", currency: "EUR" },
      filters: { subject: { projectId: "other" } },
    });
    expect(creditUsageOf(eurForOtherProject, obs, rated)).toBeUndefined();
  });
});
