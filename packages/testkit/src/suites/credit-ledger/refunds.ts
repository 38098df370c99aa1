import type { CreditGrantInput, CreditLedger, CreditUsageInput } from "@latch/core/adapter";
import { beforeEach, describe, expect, it } from "vitest";
import { expectInvalidInput } from "../../expect-errors.js";
import { uniqueId } from "../../fixtures.js";
import type { CreditLedgerParts } from "./context.js";
import { expectConserved, featureOf, grantOf, out, t } from "./support.js";

/**
 * Refunds, the negative usage of a money feature: LIFO, after an expiry, a void or a reset, owed
 * back, a volume tier's reversal; quantity features refuse them.
 */
export function refundCases(suite: CreditLedgerParts): void {
  const { grant, gid, use } = suite;
  describe("refunds: negative usage of a money feature", () => {
    let credits: CreditLedger;
    let ledgerId: string;
    let featureId: string;
    // A volume period tier gives the event that crosses a boundary a negative total (its
    // reversal line reprices the period's earlier usage lower): the ledger takes it as a
    // refund that undoes the feature's most recent allocations first (LIFO).
    let usd: string;
    beforeEach(async () => {
      ({ credits, ledgerId, featureId } = suite.current());
      usd = uniqueId("usd");
      await credits.createFeature({ featureId: usd, measure: { kind: "money", currency: "USD" } });
    });
    const grantUsd = (id: string, amount: string, fields: Partial<CreditGrantInput> = {}) =>
      grant(id, amount, { featureId: usd, ...fields });
    const spend = (eventId: string, amount: string, at: string, fields: Partial<CreditUsageInput> = {}) =>
      credits.recordUsage({ ledgerId, featureId: usd, eventId, amount, at, ...fields });

    it("returns credit to the most recent burns first, to the grants they came from", async () => {
      await grantUsd("a", "10", { priority: 1 });
      await grantUsd("b", "10", { priority: 2 });
      await spend("e1", "6", t("01-02")); // a: 10 → 4
      expect(await spend("e2", "7", t("01-03"))).toMatchObject({
        burned: [
          { grantId: gid("a"), amount: "4" },
          { grantId: gid("b"), amount: "3" },
        ],
      });
      // -5 undoes e2's burns, newest first: b's 3, then 2 of a's 4.
      expect(await spend("e3", "-5", t("01-04"))).toEqual({
        status: "recorded",
        eventId: "e3",
        burned: [
          { grantId: gid("b"), amount: "-3" },
          { grantId: gid("a"), amount: "-2" },
        ],
        overage: "0",
      });
      const mid = await credits.balance(ledgerId, t("01-05"));
      expect(grantOf(mid, gid("a"))).toEqual({
        granted: "10",
        balance: "2",
        burned: "8",
        expired: "0",
        voided: "0",
      });
      expect(grantOf(mid, gid("b"))).toEqual({
        granted: "10",
        balance: "10",
        burned: "0",
        expired: "0",
        voided: "0",
      });
      expect(featureOf(mid, usd)).toEqual({
        featureId: usd,
        balance: "12",
        granted: "20",
        burned: "8",
        expired: "0",
        voided: "0",
        usage: "8",
        overage: "0",
      });
      // The returned credit burns again in burn-down order (a first).
      expect(await spend("e4", "3", t("01-06"))).toMatchObject({
        burned: [
          { grantId: gid("a"), amount: "2" },
          { grantId: gid("b"), amount: "1" },
        ],
        overage: "0",
      });
      const end = await credits.balance(ledgerId, t("01-07"));
      expect(featureOf(end, usd)).toMatchObject({ balance: "9", burned: "11", usage: "11", overage: "0" });
      expectConserved(end);
      // History shows each grant's net burn: a 6 + 4 − 2 + 2, b 3 − 3 + 1.
      const history = await credits.history({ ledgerId, from: t("01-01"), to: t("01-07"), limit: 100 });
      expect(history.items.filter((e) => e.type === "GRANT_USAGE")).toEqual([
        {
          type: "GRANT_USAGE",
          at: out("01-01"),
          grantId: gid("a"),
          featureId: usd,
          amount: "10",
          period: { from: out("01-01"), to: out("01-07") },
        },
        {
          type: "GRANT_USAGE",
          at: out("01-01"),
          grantId: gid("b"),
          featureId: usd,
          amount: "1",
          period: { from: out("01-01"), to: out("01-07") },
        },
      ]);
    });

    it("undoes overage before burns; what nothing earlier can take back is owed, and the next usage takes it first", async () => {
      await grantUsd("a", "5");
      expect(await spend("e1", "8", t("01-02"))).toMatchObject({
        burned: [{ grantId: gid("a"), amount: "5" }],
        overage: "3",
      });
      // Newest first: e1's 3 of overage, then 1 of its burn. Enforcement never denies a refund.
      expect(await spend("e2", "-4", t("01-03"), { enforce: true })).toEqual({
        status: "recorded",
        eventId: "e2",
        burned: [{ grantId: gid("a"), amount: "-1" }],
        overage: "-3",
      });
      expect(featureOf(await credits.balance(ledgerId, t("01-03")), usd)).toMatchObject({
        balance: "1",
        burned: "4",
        usage: "4",
        overage: "0",
      });
      // Only 4 is left to undo: the other 2 are owed back (negative overage).
      expect(await spend("e3", "-6", t("01-04"), { enforce: true })).toEqual({
        status: "recorded",
        eventId: "e3",
        burned: [{ grantId: gid("a"), amount: "-4" }],
        overage: "-2",
      });
      const owed = await credits.balance(ledgerId, t("01-04"));
      expect(featureOf(owed, usd)).toMatchObject({ balance: "5", burned: "0", usage: "-2", overage: "-2" });
      expectConserved(owed, { refunds: true });
      // The next usage takes the 2 owed first (no grant burns for it), then burns a.
      expect(await spend("e4", "3", t("01-05"), { enforce: true })).toEqual({
        status: "recorded",
        eventId: "e4",
        burned: [{ grantId: gid("a"), amount: "1" }],
        overage: "2",
      });
      const end = await credits.balance(ledgerId, t("01-06"));
      expect(featureOf(end, usd)).toMatchObject({ balance: "4", burned: "1", usage: "1", overage: "0" });
      expectConserved(end);
    });

    it("credit returned after an expiry, a void or a reset does not come back to the balance", async () => {
      await grantUsd("x", "10", { priority: 1, expiration: { count: 4, unit: "DAY" } }); // ends 01-05
      await grantUsd("y", "10", { priority: 2 });
      await grantUsd("w", "10", { priority: 3 });
      await spend("e1", "4", t("01-02")); // x: 10 → 6, which expires on 01-05
      await spend("e2", "3", t("01-06")); // y: 10 → 7
      // y is in effect: its 3 come back to its balance; x has expired: its 2 count as expired.
      expect(await spend("e3", "-5", t("01-07"))).toMatchObject({
        burned: [
          { grantId: gid("y"), amount: "-3" },
          { grantId: gid("x"), amount: "-2" },
        ],
        overage: "0",
      });
      const afterExpiry = await credits.balance(ledgerId, t("01-08"));
      expect(grantOf(afterExpiry, gid("x"))).toEqual({
        granted: "10",
        balance: "0",
        burned: "2",
        expired: "8",
        voided: "0",
      });
      expect(grantOf(afterExpiry, gid("y"))).toMatchObject({ balance: "10", burned: "0" });
      await spend("e4", "12", t("01-08")); // y: 10 → 0, w: 10 → 8
      await credits.voidGrant({ ledgerId, grantId: gid("w"), at: t("01-09") }); // w's 8 voided
      // w was voided: the credit returned to it is voided too.
      expect(await spend("e5", "-1", t("01-10"))).toMatchObject({
        burned: [{ grantId: gid("w"), amount: "-1" }],
      });
      expect(grantOf(await credits.balance(ledgerId, t("01-10")), gid("w"))).toEqual({
        granted: "10",
        balance: "0",
        burned: "1",
        expired: "0",
        voided: "9",
      });
      await credits.reset({ ledgerId, at: t("01-11") });
      // y is still in effect, but its burn was before the reset: a closed period stays closed.
      expect(await spend("e6", "-10", t("01-12"))).toMatchObject({
        burned: [
          { grantId: gid("w"), amount: "-1" },
          { grantId: gid("y"), amount: "-9" },
        ],
        overage: "0",
      });
      const end = await credits.balance(ledgerId, t("01-13"));
      expect(grantOf(end, gid("y"))).toEqual({
        granted: "10",
        balance: "0",
        burned: "1",
        expired: "9",
        voided: "0",
      });
      expect(grantOf(end, gid("w"))).toEqual({
        granted: "10",
        balance: "0",
        burned: "0",
        expired: "0",
        voided: "10",
      });
      // 4 + 3 − 5 + 12 − 1 − 10 = 3 burned, every grant conserved.
      expect(featureOf(end, usd)).toEqual({
        featureId: usd,
        balance: "0",
        granted: "30",
        burned: "3",
        expired: "17",
        voided: "10",
        usage: "3",
        overage: "0",
      });
      expectConserved(end);
      const history = await credits.history({ ledgerId, from: t("01-01"), to: t("01-13"), limit: 100 });
      const period = (from: string, to: string) => ({ from: out(from), to: out(to) });
      const usage = (at: string, id: string, amount: string, to: string) => ({
        type: "GRANT_USAGE",
        at: out(at),
        grantId: gid(id),
        featureId: usd,
        amount,
        period: period(at, to),
      });
      expect(history.items).toEqual([
        { type: "GRANT", at: out("01-01"), grantId: gid("x"), featureId: usd, amount: "10" },
        { type: "GRANT", at: out("01-01"), grantId: gid("y"), featureId: usd, amount: "10" },
        { type: "GRANT", at: out("01-01"), grantId: gid("w"), featureId: usd, amount: "10" },
        usage("01-01", "x", "4", "01-05"),
        usage("01-05", "x", "-2", "01-09"),
        usage("01-05", "y", "10", "01-09"),
        usage("01-05", "w", "2", "01-09"),
        { type: "VOID", at: out("01-09"), grantId: gid("w"), featureId: usd, amount: "8" },
        usage("01-09", "w", "-1", "01-11"),
        {
          type: "RESET",
          at: out("01-11"),
          grants: [{ grantId: gid("y"), featureId: usd, before: "0", after: "0" }],
        },
        usage("01-11", "y", "-9", "01-13"),
        usage("01-11", "w", "-1", "01-13"),
      ]);
    });

    it("the totals of a volume period tier, reversal included, burn exactly their sum", async () => {
      // First 1,000 tokens of the period at $2/M, all of them at $1/M beyond (volume):
      // 800 tokens → 0.0016; 400 more cross: 1,200 × 1/M − 800 × 2/M = −0.0004; 300 → 0.0003.
      await grantUsd("topup", "1");
      await spend("call-1", "0.0016", t("01-02"));
      await spend("call-2", "-0.0004", t("01-03"));
      await spend("call-3", "0.0003", t("01-04"));
      expect(featureOf(await credits.balance(ledgerId, t("01-05")), usd)).toMatchObject({
        balance: "0.9985",
        burned: "0.0015", // 1,500 tokens × $1/M
        usage: "0.0015",
        overage: "0",
      });
    });

    it("a hold's commit may be a refund; a quantity feature never takes one", async () => {
      const holdId = `${ledgerId}:hold:refund`;
      await grantUsd("a", "10", { effectiveAt: "2020-01-01T00:00:00Z" });
      await spend("e1", "4", t("01-02"));
      expect(
        await credits.reserve({ holdId, ledgerId, featureId: usd, amount: "2", ttlMs: 60_000 }),
      ).toMatchObject({ granted: true });
      expect(await credits.commitHold({ holdId, eventId: "e2", amount: "-1.5", at: t("01-03") })).toEqual({
        status: "committed",
        holdId,
        eventId: "e2",
        burned: [{ grantId: gid("a"), amount: "-1.5" }],
        overage: "0",
      });
      expect(featureOf(await credits.balance(ledgerId, t("01-04")), usd)).toMatchObject({
        balance: "7.5",
        usage: "2.5",
      });
      // Tokens are never negative: the same amounts against the quantity feature name `amount`.
      await grant("tokens", "10");
      await expectInvalidInput(use("t1", "-1", t("01-02")), "amount");
      await expectInvalidInput(use("t1", "-0.5", t("01-02"), { version: 2 }), "amount");
      const tokenHold = `${ledgerId}:hold:tokens`;
      await credits.reserve({ holdId: tokenHold, ledgerId, featureId, amount: "2", ttlMs: 60_000 });
      await expectInvalidInput(
        credits.commitHold({ holdId: tokenHold, eventId: "t2", amount: "-1", at: t("01-03") }),
        "amount",
      );
      expect(featureOf(await credits.balance(ledgerId, t("01-04")), featureId)).toMatchObject({
        balance: "10",
        usage: "0",
      });
      // "-0" is zero, not a refund.
      expect(await use("t3", "-0", t("01-02"))).toMatchObject({
        status: "recorded",
        burned: [],
        overage: "0",
      });
    });
  });
}
