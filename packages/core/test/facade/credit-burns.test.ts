/**
 * Credit burns on their own (`createCreditBurns`): one usage event per route and event, burned
 * once however often; a failure a retry could fix is spooled or thrown, one it cannot fix is
 * reported once.
 */
import { describe, expect, it } from "vitest";
import type { CreditLedger } from "../../src/adapter.js";
import { CorruptRecordError } from "../../src/errors/index.js";
import { type CreditBurnDeps, createCreditBurns } from "../../src/facade/credit-burns.js";
import type { LatchWarning } from "../../src/facade/types.js";
import {
  DefaultRatingEngine,
  type MemoryCreditLedger,
  MemoryRatedRecordStore,
  type PriceSnapshot,
  parseObservation,
  type RatedUsageRecord,
  type UsageObservation,
} from "../../src/index.js";
import { observation } from "../support.js";
import { acmeLedger, NOW } from "./support/credit-fixtures.js";

/** $2 per million input tokens, $8 per million output tokens. */
const priced: PriceSnapshot = {
  snapshotId: "test-model:2026",
  model: { billableModel: "test-model" },
  currency: "USD",
  effectiveFrom: "2026-01-01T00:00:00Z",
  prices: { input_tokens: { perMillion: "2" }, output_tokens: { perMillion: "8" } },
};

/** 1,000 input + 500 output tokens: 1,500 tokens, $0.006. */
const call = (eventId = "e1", tenantId = "acme"): UsageObservation =>
  parseObservation(
    observation({ input_tokens: 1_000, output_tokens: 500 }, { eventId, subject: { tenantId } }),
  );

const rate = (obs: UsageObservation, version = 1, supersedes?: string): RatedUsageRecord =>
  new DefaultRatingEngine().rate(obs, priced, {
    ratedAt: NOW,
    ...(version > 1 ? { version, supersedes } : {}),
  });

const connectionReset = () => new Error("connection reset");

/** Ledger "acme" with 10,000 tokens and €1 (a money feature in another currency than the calls'). */
const ledgerWithGrants = () => acmeLedger({ money: { featureId: "eur", currency: "EUR" } });

/** `ledger` whose recordUsage throws `error()` while `state.failing`. */
function failingUsage(
  ledger: MemoryCreditLedger,
  error: () => unknown,
  state = { failing: true },
): CreditLedger {
  return new Proxy(ledger, {
    get(target, key) {
      if (key === "recordUsage")
        return async (...args: Parameters<CreditLedger["recordUsage"]>) => {
          if (state.failing) throw error();
          return target.recordUsage(...args);
        };
      const value = Reflect.get(target, key, target) as unknown;
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

async function tokensUsed(ledger: CreditLedger, featureId = "tokens"): Promise<string | undefined> {
  const balance = await ledger.balance("acme", "2026-03-02T00:00:00Z");
  return balance.features.find((f) => f.featureId === featureId)?.usage;
}

function setup(ledger: CreditLedger, credits: Partial<NonNullable<CreditBurnDeps["credits"]>> = {}) {
  const warnings: LatchWarning[] = [];
  const spooled: string[] = [];
  const burns = createCreditBurns({
    credits: { ledger, featureId: "tokens", ...credits },
    retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
    warn: (w) => warnings.push(w),
    spool: async (obs) => {
      spooled.push(obs.eventId);
    },
  });
  return { burns, warnings, spooled };
}

describe("credit burns", () => {
  it("burns a call once however often it is burned; a later version replaces the burn", async () => {
    const ledger = await ledgerWithGrants();
    const { burns, warnings } = setup(ledger);
    const v1 = rate(call());
    await burns.burn(v1.observation, v1);
    await burns.burn(v1.observation, v1);
    expect(await tokensUsed(ledger)).toBe("1500");
    const smaller = parseObservation({ ...call(), meters: { input_tokens: 100, output_tokens: 100 } });
    await burns.burnStored(rate(smaller, 2, v1.ratedRecordId));
    expect(await tokensUsed(ledger)).toBe("200");
    expect(warnings).toEqual([]);
  });

  it("burns nothing without credits, and nothing on a route list that is empty", async () => {
    const ledger = await ledgerWithGrants();
    const none = createCreditBurns({ credits: undefined, retry: {}, warn: () => {}, spool: async () => {} });
    await none.burn(call());
    const { burns } = setup(ledger, { route: () => [] });
    await burns.burn(call());
    expect(await tokensUsed(ledger)).toBe("0");
  });

  it("a ledger that is down: a recorded call is spooled for replay, a replayed one throws", async () => {
    const ledger = await ledgerWithGrants();
    const { burns, warnings, spooled } = setup(failingUsage(ledger, connectionReset));
    const v1 = rate(call());
    await burns.burnRecorded(v1.observation, { status: "rated", record: v1 }, true);
    expect(spooled).toEqual(["e1"]);
    expect(warnings.map((w) => [w.code, w.message])).toEqual([
      ["credit_burn_failed", "burning credits for e1 failed; spooling"],
    ]);
    await expect(burns.burnRecorded(v1.observation, { status: "rated", record: v1 }, false)).rejects.toThrow(
      "connection reset",
    );
    expect(spooled).toEqual(["e1"]);
  });

  it("an error no retry can fix (no ledger for the tenant, a corrupt ledger row) is reported once and never spooled", async () => {
    const ledger = await ledgerWithGrants();
    const unknown = setup(ledger);
    const stranger = call("e1", "nobody");
    await unknown.burns.burnRecorded(
      stranger,
      { status: "spooled", eventId: "e1", observation: stranger },
      true,
    );
    const corrupt = setup(
      failingUsage(ledger, () => new CorruptRecordError({ id: "acme", reason: "hash mismatch" })),
    );
    await corrupt.burns.burnRecorded(call(), { status: "spooled", eventId: "e1", observation: call() }, true);
    for (const { warnings, spooled } of [unknown, corrupt]) {
      expect(spooled).toEqual([]);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ code: "credit_burn_failed", eventId: "e1" });
      expect(warnings[0]?.message).toMatch(/^burning credits for e1 failed and a retry cannot help: /);
    }
  });

  it("a stored record's burn throws what a retry could fix and reports what it cannot", async () => {
    const ledger = await ledgerWithGrants();
    const down = setup(failingUsage(ledger, connectionReset));
    await expect(down.burns.burnStored(rate(call()))).rejects.toThrow("connection reset");
    expect(down.warnings).toEqual([]);
    const unknown = setup(ledger);
    await unknown.burns.burnStored(rate(call("e1", "nobody")));
    expect(unknown.warnings.map((w) => w.code)).toEqual(["credit_burn_failed"]);
  });

  it("a money feature in another currency burns nothing, after the other routes burned", async () => {
    const ledger = await ledgerWithGrants();
    const { burns, warnings } = setup(ledger, {
      route: () => [
        { ledgerId: "acme", featureId: "eur" },
        { ledgerId: "acme", featureId: "tokens" },
      ],
    });
    const v1 = rate(call());
    await expect(burns.burn(v1.observation, v1)).rejects.toMatchObject({ code: "currency_mismatch" });
    expect(await tokensUsed(ledger)).toBe("1500");
    expect(await tokensUsed(ledger, "eur")).toBe("0");
    await burns.burnRecorded(v1.observation, { status: "rated", record: v1 }, true);
    expect(warnings.map((w) => w.code)).toEqual(["credit_burn_failed"]);
  });

  it("reconcile burns every stored version once; a ledger error stops it and the next run resumes", async () => {
    const ledger = await ledgerWithGrants();
    const rated = new MemoryRatedRecordStore();
    const state = { failing: true };
    const { burns } = setup(failingUsage(ledger, connectionReset, state));
    await rated.put(rate(call("e1")));
    await rated.put(rate(call("e2")));
    await expect(burns.reconcile(rated)).rejects.toThrow("connection reset");
    state.failing = false;
    expect(await burns.reconcile(rated)).toEqual({ versions: 2 });
    expect(await burns.reconcile(rated)).toEqual({ versions: 0 });
    expect(await tokensUsed(ledger)).toBe("3000");
  });
});
