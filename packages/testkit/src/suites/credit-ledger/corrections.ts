import type { CreditLedger } from "@latch/core/adapter";
import { beforeEach, describe, expect, it } from "vitest";
import { expectInvalidInput, expectLatchError } from "../../expect-errors.js";
import type { CreditLedgerParts } from "./context.js";
import { expectConserved, featureOf, t } from "./support.js";

/** Versioned usage (corrections). */
export function correctionCases(suite: CreditLedgerParts): void {
  const { grant, gid, use } = suite;
  describe("usage versions (corrections)", () => {
    let credits: CreditLedger;
    let ledgerId: string;
    let featureId: string;
    beforeEach(() => {
      ({ credits, ledgerId, featureId } = suite.current());
    });

    it("a higher version replaces the event's amount, up or down; a lower one is superseded", async () => {
      await grant("g", "100");
      expect(await use("e", "30", t("01-02"))).toMatchObject({
        status: "recorded",
        burned: [{ amount: "30" }],
      });
      expect(await use("e", "20", t("01-02"), { version: 2 })).toEqual({
        status: "recorded",
        eventId: "e",
        burned: [{ grantId: gid("g"), amount: "20" }],
        overage: "0",
      });
      expect(featureOf(await credits.balance(ledgerId, t("01-03")), featureId)).toMatchObject({
        balance: "80",
        usage: "20",
      });
      // The original version arriving late (a retry, a spool) changes nothing.
      expect(await use("e", "30", t("01-02"))).toEqual({
        status: "superseded",
        eventId: "e",
        burned: [{ grantId: gid("g"), amount: "20" }],
        overage: "0",
      });
      expect(await use("e", "20", t("01-02"), { version: 2 })).toMatchObject({ status: "duplicate" });
      await expectLatchError(use("e", "25", t("01-02"), { version: 2 }), "idempotency_conflict");
      // A correction upward is charged in full, unless enforced.
      expect(await use("e", "200", t("01-02"), { version: 3, enforce: true })).toMatchObject({
        status: "denied",
        available: "80",
      });
      expect(await use("e", "130", t("01-02"), { version: 3 })).toMatchObject({
        status: "recorded",
        burned: [{ amount: "100" }],
        overage: "30",
      });
      const end = await credits.balance(ledgerId, t("01-03"));
      expect(featureOf(end, featureId)).toMatchObject({ balance: "0", usage: "130", overage: "30" });
      expectConserved(end);
      await expectInvalidInput(use("e", "1", t("01-02"), { version: 0 }), "version");
    });
  });
}
