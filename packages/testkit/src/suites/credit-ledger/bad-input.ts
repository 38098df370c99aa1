import type { CreditLedger } from "@latch/core/adapter";
import { beforeEach, describe, expect, it } from "vitest";
import { abortedSignal, expectInvalidInput } from "../../expect-errors.js";
import { uniqueId } from "../../fixtures.js";
import type { CreditLedgerParts } from "./context.js";
import { t } from "./support.js";

/** Bad input is `invalid_input` naming the field. */
export function badInputCases(suite: CreditLedgerParts): void {
  const { grant, use } = suite;
  describe("bad input", () => {
    let credits: CreditLedger;
    let ledgerId: string;
    beforeEach(() => {
      ({ credits, ledgerId } = suite.current());
    });

    it("rejects negative, zero and non-decimal grant amounts naming amount", async () => {
      for (const amount of ["-1", "0", "1e3", "abc", "1.", " 1", 100]) {
        await expectInvalidInput(grant("bad", amount as string), "amount");
      }
    });

    it("rejects priority 0, 256 and fractions naming priority", async () => {
      for (const priority of [0, 256, 1.5])
        await expectInvalidInput(grant("bad", "1", { priority }), "priority");
    });

    it("rejects expiration count 0 and unknown units naming the field", async () => {
      await expectInvalidInput(
        grant("bad", "1", { expiration: { count: 0, unit: "DAY" } }),
        "expiration.count",
      );
      await expectInvalidInput(
        grant("bad", "1", { expiration: { count: 1, unit: "MINUTE" as "DAY" } }),
        "expiration.unit",
      );
      await expectInvalidInput(
        grant("bad", "1", { rollover: { type: "REMAINING_AMOUNT", maxAmount: "-5" } }),
        "rollover.maxAmount",
      );
    });

    it("rejects an unknown feature, ledger or grant naming the id field", async () => {
      await expectInvalidInput(grant("bad", "1", { featureId: uniqueId("nope") }), "featureId");
      await expectInvalidInput(use("e", "1", t("01-02"), { featureId: uniqueId("nope") }), "featureId");
      await expectInvalidInput(grant("bad", "1", { ledgerId: uniqueId("nope") }), "ledgerId");
      await expectInvalidInput(credits.balance(uniqueId("nope"), t("01-02")), "ledgerId");
      await expectInvalidInput(
        credits.voidGrant({ ledgerId, grantId: uniqueId("nope"), at: t("01-02") }),
        "grantId",
      );
      expect(await credits.listGrants(ledgerId)).toEqual([]);
    });

    it("rejects bad usage, times, zones, feature measures and history queries naming the field", async () => {
      await expectInvalidInput(use("e", "-1", t("01-02")), "amount");
      await expectInvalidInput(use("e", "1", "2026-01-02 00:00"), "at");
      await expectInvalidInput(
        grant("bad", "1", { effectiveAt: "2026-01-01T00:00:00+02:00" }),
        "effectiveAt",
      );
      await expectInvalidInput(
        credits.createLedger({
          ledgerId: uniqueId("l"),
          subject: { tenantId: "t" },
          timeZone: "Nowhere/City",
        }),
        "timeZone",
      );
      await expectInvalidInput(
        credits.createFeature({ featureId: uniqueId("f"), measure: { kind: "money", currency: "XXX" } }),
        "measure.currency",
      );
      await expectInvalidInput(
        credits.history({ ledgerId, from: t("02-01"), to: t("01-01"), limit: 10 }),
        "to",
      );
      await expectInvalidInput(
        credits.history({ ledgerId, from: t("01-01"), to: t("02-01"), limit: 0 }),
        "limit",
      );
      await expectInvalidInput(
        credits.history({ ledgerId, from: t("01-01"), to: t("02-01"), limit: 5, cursor: "x" }),
        "cursor",
      );
      await expect(credits.balance(ledgerId, t("01-01"), abortedSignal())).rejects.toMatchObject({
        name: "AbortError",
      });
    });
  });
}
