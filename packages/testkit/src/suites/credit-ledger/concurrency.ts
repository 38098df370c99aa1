import { sumDecimals } from "@latch/core";
import type { CreditLedger } from "@latch/core/adapter";
import { beforeEach, describe, expect, it } from "vitest";
import { seededIntegers } from "../../expect-errors.js";
import { uniqueId } from "../../fixtures.js";
import type { CreditLedgerParts } from "./context.js";
import { expectConserved, featureOf, t } from "./support.js";

/** 1,000 concurrent burns equal the same burns one by one; 1,000 concurrent enforced burns never overdraw. */
export function concurrencyCases(suite: CreditLedgerParts): void {
  const { grant, use } = suite;
  describe("concurrency", () => {
    let credits: CreditLedger;
    let ledgerId: string;
    let featureId: string;
    beforeEach(() => {
      ({ credits, ledgerId, featureId } = suite.current());
    });

    it("1,000 concurrent usage burns give the same balances as applying them one by one", async () => {
      const next = seededIntegers(7);
      const events = Array.from({ length: 1_000 }, (_, i) => ({
        eventId: `e${i}`,
        amount: `${next(1, 20)}.${next(0, 9)}`,
        at: new Date(Date.UTC(2026, 0, 1) + next(0, 30 * 24) * 3_600_000).toISOString(),
      }));
      const setup = async (id: string) => {
        await credits.createLedger({ ledgerId: id, subject: { tenantId: "load" } });
        await credits.grant({
          grantId: `${id}:monthly`,
          ledgerId: id,
          featureId,
          amount: "5000",
          effectiveAt: t("01-01"),
          priority: 2,
          expiration: { count: 1, unit: "MONTH" },
        });
        await credits.grant({
          grantId: `${id}:topup`,
          ledgerId: id,
          featureId,
          amount: "2500.5",
          effectiveAt: t("01-10"),
          priority: 1,
        });
        await credits.grant({
          grantId: `${id}:short`,
          ledgerId: id,
          featureId,
          amount: "1000",
          effectiveAt: t("01-05"),
          priority: 2,
          expiration: { count: 5, unit: "DAY" },
        });
      };
      const sequential = uniqueId("seq");
      const concurrent = uniqueId("conc");
      await setup(sequential);
      await setup(concurrent);
      for (const e of events) await credits.recordUsage({ ledgerId: sequential, featureId, ...e });
      const results = await Promise.all(
        events.map((e) => credits.recordUsage({ ledgerId: concurrent, featureId, ...e })),
      );
      expect(results.every((r) => r.status === "recorded")).toBe(true);
      const norm = async (id: string) =>
        JSON.parse(
          JSON.stringify({ ...(await credits.balance(id, t("03-01"))), ledgerId: "" }).replaceAll(
            `${id}:`,
            "",
          ),
        );
      const seq = await norm(sequential);
      expect(await norm(concurrent)).toEqual(seq);
      const total = sumDecimals(events.map((e) => e.amount));
      expect(featureOf(seq, featureId).usage).toBe(total);
      expectConserved(seq);
    });

    it("1,000 concurrent enforced burns never take the balance below zero", async () => {
      await grant("g", "500");
      const results = await Promise.all(
        Array.from({ length: 1_000 }, (_, i) => use(`e${i}`, "1", t("01-02"), { enforce: true })),
      );
      expect(results.filter((r) => r.status === "recorded")).toHaveLength(500);
      const denied = results.filter((r) => r.status === "denied");
      expect(denied).toHaveLength(500);
      for (const r of denied) expect(r).toMatchObject({ reason: "insufficient_credits", available: "0" });
      const f = featureOf(await credits.balance(ledgerId, t("01-03")), featureId);
      expect(f).toMatchObject({ balance: "0", burned: "500", usage: "500", overage: "0" });
    });
  });
}
