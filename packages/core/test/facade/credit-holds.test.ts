/**
 * Credit holds on their own (`createCreditHolds`): reserve fails closed, settle commits what the
 * call used (even above the hold) as the call's usage event, or releases the hold.
 */
import { describe, expect, it } from "vitest";
import type { CreditLedger } from "../../src/adapter.js";
import { createCreditBurns } from "../../src/facade/credit-burns.js";
import { createCreditHolds } from "../../src/facade/credit-holds.js";
import type { CreditHold, LatchCreditsConfig, LatchWarning, RecordResult } from "../../src/facade/types.js";
import {
  DefaultRatingEngine,
  type PriceSnapshot,
  parseObservation,
  type UsageObservation,
} from "../../src/index.js";
import { observation } from "../support.js";
import { acmeLedger, NOW } from "./support/credit-fixtures.js";

const eurPriced: PriceSnapshot = {
  snapshotId: "test-model:eur",
  model: { billableModel: "test-model" },
  currency: "EUR",
  effectiveFrom: "2026-01-01T00:00:00Z",
  prices: { input_tokens: { perMillion: "2" }, output_tokens: { perMillion: "8" } },
};

/** 1,000 input + 500 output tokens: 1,500 tokens. */
const call = (): UsageObservation =>
  parseObservation(observation({ input_tokens: 1_000, output_tokens: 500 }, { eventId: "e1" }));

const unpriced = (obs: UsageObservation): RecordResult => ({
  status: "unpriced",
  eventId: obs.eventId,
  reason: "no_snapshot",
  observation: obs,
});

/** Ledger "acme": 10,000 tokens and $1 granted. */
const ledgerWithGrants = () => acmeLedger();

async function features(ledger: CreditLedger) {
  return (await ledger.balance("acme", "2026-03-02T00:00:00Z")).features;
}

function setup(ledger: CreditLedger) {
  const warnings: LatchWarning[] = [];
  const warn = (w: LatchWarning) => warnings.push(w);
  const credits: LatchCreditsConfig = { ledger, featureId: "tokens", enforce: true };
  const retry = { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 };
  const burns = createCreditBurns({ credits, retry, warn, spool: async () => {} });
  return { holds: createCreditHolds({ credits, burns, retry, warn, holdTtlMs: 60_000 }), warnings };
}

function granted(hold: CreditHold): Extract<CreditHold, { granted: true }> {
  if (!hold.granted) throw new Error(`expected a granted hold: ${hold.message}`);
  return hold;
}

describe("credit holds", () => {
  it("holds credits of the default feature or the one named; denies what is not there", async () => {
    const { holds } = setup(await ledgerWithGrants());
    expect(await holds.reserve({ account: "acme", amount: 4_000, holdId: "h1" })).toEqual({
      granted: true,
      kind: "credits",
      holdId: "h1",
      account: "acme",
      featureId: "tokens",
      amount: "4000",
      available: "6000",
    });
    expect(await holds.reserve({ account: "acme", amount: "0.25", featureId: "usd" })).toMatchObject({
      granted: true,
      available: "0.75",
    });
    expect(await holds.reserve({ account: "acme", amount: "6000.5" })).toMatchObject({
      granted: false,
      reason: "insufficient",
      message: "credits exhausted for acme: 6000 tokens available, 6000.5 requested",
    });
  });

  it("fails closed: a ledger that cannot answer denies as unavailable", async () => {
    const ledger = await ledgerWithGrants();
    ledger.reserve = async () => {
      throw new Error("connection reset");
    };
    expect(await setup(ledger).holds.reserve({ account: "acme", amount: 1 })).toMatchObject({
      granted: false,
      reason: "unavailable",
      message: "credit ledger unavailable: denied (credits fail closed)",
    });
  });

  it("settle burns what the call used, even above the hold; a failed call burns nothing", async () => {
    const ledger = await ledgerWithGrants();
    const { holds } = setup(ledger);
    const small = granted(await holds.reserve({ account: "acme", amount: 500 }));
    expect(await holds.settle(small, unpriced(call()))).toEqual({ settled: true });
    const failed = granted(await holds.reserve({ account: "acme", amount: 5_000 }));
    expect(await holds.settle(failed, { status: "failed" })).toEqual({ settled: true });
    expect((await features(ledger)).find((f) => f.featureId === "tokens")).toMatchObject({
      balance: "8500",
      usage: "1500",
    });
  });

  it("a money hold on a call rated in another currency is released and the mismatch reported", async () => {
    const ledger = await ledgerWithGrants();
    const { holds, warnings } = setup(ledger);
    const hold = granted(await holds.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    const record = new DefaultRatingEngine().rate(call(), eurPriced, { ratedAt: NOW });
    expect(await holds.settle(hold, { status: "rated", record })).toEqual({ settled: true });
    expect(warnings.map((w) => [w.code, w.eventId])).toEqual([["credit_burn_failed", "e1"]]);
    expect((await features(ledger)).find((f) => f.featureId === "usd")).toMatchObject({
      balance: "1",
      usage: "0",
    });
  });

  it("a money hold on a call not rated yet (accepted by an ingest log, or spooled) is kept: other reserves cannot spend it", async () => {
    const ledger = await ledgerWithGrants();
    const { holds } = setup(ledger);
    const obs = call();
    const accepted: RecordResult = { status: "accepted", eventId: obs.eventId, observation: obs };
    const spooled: RecordResult = { status: "spooled", eventId: obs.eventId, observation: obs };
    const first = granted(await holds.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    expect(await holds.settle(first, accepted)).toEqual({ settled: true });
    const second = granted(await holds.reserve({ account: "acme", amount: "0.25", featureId: "usd" }));
    expect(await holds.settle(second, spooled)).toEqual({ settled: true });
    // $1 granted, $0.75 still held: a reserve of $0.5 is denied until the holds expire.
    expect(await holds.reserve({ account: "acme", amount: "0.5", featureId: "usd" })).toMatchObject({
      granted: false,
      reason: "insufficient",
      available: "0.25",
    });
    // A quantity feature counts the call from its observation: it burns at once, hold or not.
    const tokens = granted(await holds.reserve({ account: "acme", amount: 4_000 }));
    expect(await holds.settle(tokens, accepted)).toEqual({ settled: true });
    expect((await features(ledger)).find((f) => f.featureId === "tokens")).toMatchObject({
      balance: "8500",
      usage: "1500",
    });
  });

  it("a money hold on an unpriced call is released (no burn will come until it is re-rated)", async () => {
    const ledger = await ledgerWithGrants();
    const { holds } = setup(ledger);
    const hold = granted(await holds.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    expect(await holds.settle(hold, unpriced(call()))).toEqual({ settled: true });
    expect(await holds.reserve({ account: "acme", amount: "1", featureId: "usd" })).toMatchObject({
      granted: true,
    });
  });
});
