import type { CreditLedger } from "@latch/core/adapter";
import { beforeEach, describe, expect, it } from "vitest";
import { expectLatchError } from "../../expect-errors.js";
import type { CreditLedgerParts } from "./context.js";
import { expectConserved, featureOf, grantOf, out, t } from "./support.js";

/**
 * Golden burn-down scenarios with hand-computed balances: priority, expiry and creation order,
 * expiry mid-period, rollover of the remaining and of the original amount, void, reset and the
 * high watermark, usage equal to the balance and one unit more.
 */
export function goldenScenarioCases(suite: CreditLedgerParts): void {
  const { grant, gid, use } = suite;
  describe("golden scenarios", () => {
    let credits: CreditLedger;
    let ledgerId: string;
    let featureId: string;
    beforeEach(() => {
      ({ credits, ledgerId, featureId } = suite.current());
    });

    it("a monthly recurring grant plus a top-up at a higher priority", async () => {
      await grant("monthly", "100", {
        priority: 5,
        expiration: { count: 1, unit: "YEAR" },
        rollover: { type: "ORIGINAL_AMOUNT" },
      });
      await grant("topup", "50", {
        priority: 1,
        effectiveAt: t("01-10"),
        expiration: { count: 3, unit: "MONTH" },
        rollover: { type: "REMAINING_AMOUNT" },
      });
      // 01-05: only the monthly grant is in effect.
      expect(await use("e1", "30", t("01-05"))).toEqual({
        status: "recorded",
        eventId: "e1",
        burned: [{ grantId: gid("monthly"), amount: "30" }],
        overage: "0",
      });
      // 01-15: the top-up (priority 1) burns first.
      expect(await use("e2", "40", t("01-15"))).toMatchObject({
        burned: [{ grantId: gid("topup"), amount: "40" }],
        overage: "0",
      });
      const mid = await credits.balance(ledgerId, t("01-20"));
      expect(grantOf(mid, gid("monthly"))).toEqual({
        granted: "100",
        balance: "70",
        burned: "30",
        expired: "0",
        voided: "0",
      });
      expect(grantOf(mid, gid("topup"))).toEqual({
        granted: "50",
        balance: "10",
        burned: "40",
        expired: "0",
        voided: "0",
      });
      expect(featureOf(mid, featureId).balance).toBe("80");
      // February: the monthly grant refills to 100 (its 70 expire), the top-up keeps its 10.
      await credits.reset({ ledgerId, at: t("02-01") });
      expect(await use("e3", "25", t("02-03"))).toMatchObject({
        burned: [
          { grantId: gid("topup"), amount: "10" },
          { grantId: gid("monthly"), amount: "15" },
        ],
        overage: "0",
      });
      const feb = await credits.balance(ledgerId, t("02-05"));
      expect(grantOf(feb, gid("monthly"))).toEqual({
        granted: "200",
        balance: "85",
        burned: "45",
        expired: "70",
        voided: "0",
      });
      expect(grantOf(feb, gid("topup"))).toEqual({
        granted: "50",
        balance: "0",
        burned: "50",
        expired: "0",
        voided: "0",
      });
      expect(featureOf(feb, featureId)).toEqual({
        featureId,
        balance: "85",
        granted: "250",
        burned: "95",
        expired: "70",
        voided: "0",
        usage: "95",
        overage: "0",
      });
      expectConserved(feb);
    });

    it("equal priorities are broken by the soonest expiry, then by creation order", async () => {
      await grant("a-month", "10", { priority: 2, expiration: { count: 1, unit: "MONTH" } });
      await grant("z-week-created-first", "10", { priority: 2, expiration: { count: 1, unit: "WEEK" } });
      await grant("a-week-created-second", "10", { priority: 2, expiration: { count: 1, unit: "WEEK" } });
      await grant("never", "10", { priority: 2 });
      await grant("urgent-later", "10", { priority: 1, effectiveAt: t("01-03", "12:00") });
      expect(await use("e1", "15", t("01-02"))).toMatchObject({
        burned: [
          { grantId: gid("z-week-created-first"), amount: "10" },
          { grantId: gid("a-week-created-second"), amount: "5" },
        ],
      });
      expect(await use("e2", "8", t("01-03"))).toMatchObject({
        burned: [
          { grantId: gid("a-week-created-second"), amount: "5" },
          { grantId: gid("a-month"), amount: "3" },
        ],
      });
      expect(await use("e3", "22", t("01-04"))).toMatchObject({
        burned: [
          { grantId: gid("urgent-later"), amount: "10" },
          { grantId: gid("a-month"), amount: "7" },
          { grantId: gid("never"), amount: "5" },
        ],
        overage: "0",
      });
      const b = await credits.balance(ledgerId, t("01-05"));
      expect(b.grants.map((g) => [g.grantId, g.balance])).toEqual([
        [gid("a-month"), "0"],
        [gid("z-week-created-first"), "0"],
        [gid("a-week-created-second"), "0"],
        [gid("never"), "5"],
        [gid("urgent-later"), "0"],
      ]);
      expect(b.grants.find((g) => g.grantId === gid("a-week-created-second"))?.expiresAt).toBe(out("01-08"));
    });

    it("a grant expiring mid-period while usage continues", async () => {
      await grant("short", "100", { priority: 1, expiration: { count: 10, unit: "DAY" } });
      await grant("long", "100", { priority: 2 });
      await use("e1", "30", t("01-05"));
      // Exactly at the expiry the short grant is gone: its 70 expire, usage moves on.
      expect(await use("e2", "50", t("01-11"))).toMatchObject({
        burned: [{ grantId: gid("long"), amount: "50" }],
        overage: "0",
      });
      await use("e3", "20", t("01-20"));
      const before = await credits.balance(ledgerId, t("01-10", "23:59"));
      expect(featureOf(before, featureId).balance).toBe("170");
      expect(grantOf(before, gid("short"))).toEqual({
        granted: "100",
        balance: "70",
        burned: "30",
        expired: "0",
        voided: "0",
      });
      const at = await credits.balance(ledgerId, t("01-11"));
      expect(grantOf(at, gid("short"))).toEqual({
        granted: "100",
        balance: "0",
        burned: "30",
        expired: "70",
        voided: "0",
      });
      expect(at.grants.find((g) => g.grantId === gid("short"))?.active).toBe(false);
      const end = await credits.balance(ledgerId, t("01-31"));
      expect(grantOf(end, gid("long"))).toEqual({
        granted: "100",
        balance: "30",
        burned: "70",
        expired: "0",
        voided: "0",
      });
      expect(featureOf(end, featureId)).toMatchObject({
        balance: "30",
        granted: "200",
        burned: "100",
        expired: "70",
      });
      expectConserved(end);
    });

    it("rollover of the remaining amount, capped by maxAmount", async () => {
      await grant("plan", "100", {
        expiration: { count: 1, unit: "YEAR" },
        rollover: { type: "REMAINING_AMOUNT", maxAmount: "25" },
      });
      await use("e1", "60", t("01-10"));
      expect(await credits.reset({ ledgerId, at: t("02-01") })).toEqual({
        status: "reset",
        at: out("02-01"),
      });
      await use("e2", "10", t("02-02"));
      const b = await credits.balance(ledgerId, t("02-03"));
      expect(grantOf(b, gid("plan"))).toEqual({
        granted: "100",
        balance: "15",
        burned: "70",
        expired: "15",
        voided: "0",
      });
      const page = await credits.history({ ledgerId, from: t("02-01"), to: t("02-02"), limit: 10 });
      expect(page.items).toEqual([
        {
          type: "RESET",
          at: out("02-01"),
          grants: [{ grantId: gid("plan"), featureId, before: "40", after: "25" }],
        },
      ]);
    });

    it("rollover of the original amount refills the grant at each reset", async () => {
      await grant("plan", "100", {
        expiration: { count: 1, unit: "YEAR" },
        rollover: { type: "ORIGINAL_AMOUNT" },
      });
      await grant("capped", "90", {
        priority: 2,
        expiration: { count: 1, unit: "YEAR" },
        rollover: { type: "ORIGINAL_AMOUNT", maxAmount: "80" },
      });
      await use("e1", "60", t("01-10"));
      await credits.reset({ ledgerId, at: t("02-01") });
      const feb = await credits.balance(ledgerId, t("02-01"));
      expect(grantOf(feb, gid("plan"))).toEqual({
        granted: "200",
        balance: "100",
        burned: "60",
        expired: "40",
        voided: "0",
      });
      expect(grantOf(feb, gid("capped"))).toEqual({
        granted: "170",
        balance: "80",
        burned: "0",
        expired: "90",
        voided: "0",
      });
      expect(await use("e2", "200", t("02-10"))).toMatchObject({
        burned: [
          { grantId: gid("plan"), amount: "100" },
          { grantId: gid("capped"), amount: "80" },
        ],
        overage: "20",
      });
      const b = await credits.balance(ledgerId, t("02-11"));
      expect(featureOf(b, featureId)).toMatchObject({
        balance: "0",
        usage: "260",
        burned: "240",
        overage: "20",
      });
      expectConserved(b);
    });

    it("a void mid-period: the balance at the void time is voided, later usage skips the grant", async () => {
      await grant("g1", "100", { priority: 1 });
      await grant("g2", "50", { priority: 2 });
      await use("e1", "30", t("01-05"));
      const voided = await credits.voidGrant({ ledgerId, grantId: gid("g1"), at: t("01-10") });
      expect(voided).toMatchObject({
        status: "voided",
        grant: { grantId: gid("g1"), voidedAt: out("01-10") },
      });
      expect(await use("e2", "20", t("01-12"))).toMatchObject({
        burned: [{ grantId: gid("g2"), amount: "20" }],
      });
      // Late usage from before the void still burns g1, so less of it is voided.
      expect(await use("e3", "10", t("01-08"))).toMatchObject({
        burned: [{ grantId: gid("g1"), amount: "10" }],
      });
      const b = await credits.balance(ledgerId, t("01-15"));
      expect(grantOf(b, gid("g1"))).toEqual({
        granted: "100",
        balance: "0",
        burned: "40",
        expired: "0",
        voided: "60",
      });
      expect(grantOf(b, gid("g2"))).toEqual({
        granted: "50",
        balance: "30",
        burned: "20",
        expired: "0",
        voided: "0",
      });
      expect(featureOf(await credits.balance(ledgerId, t("01-09")), featureId).balance).toBe("110");
      // History: grants, usage per period (cut at the void), the void.
      const page = await credits.history({ ledgerId, from: t("01-01"), to: t("02-01"), limit: 100 });
      expect(page).toEqual({
        items: [
          { type: "GRANT", at: out("01-01"), grantId: gid("g1"), featureId, amount: "100" },
          { type: "GRANT", at: out("01-01"), grantId: gid("g2"), featureId, amount: "50" },
          {
            type: "GRANT_USAGE",
            at: out("01-01"),
            grantId: gid("g1"),
            featureId,
            amount: "40",
            period: { from: out("01-01"), to: out("01-10") },
          },
          { type: "VOID", at: out("01-10"), grantId: gid("g1"), featureId, amount: "60" },
          {
            type: "GRANT_USAGE",
            at: out("01-10"),
            grantId: gid("g2"),
            featureId,
            amount: "20",
            period: { from: out("01-10"), to: out("02-01") },
          },
        ],
      });
      // Voiding again at the same time is a no-op; at another time, a conflict.
      expect(await credits.voidGrant({ ledgerId, grantId: gid("g1"), at: t("01-10") })).toMatchObject({
        status: "already_voided",
      });
      await expectLatchError(
        credits.voidGrant({ ledgerId, grantId: gid("g1"), at: t("01-11") }),
        "idempotency_conflict",
      );
    });

    it("a reset followed by a backdated grant, void or reset is a high_watermark error", async () => {
      await grant("g1", "100");
      expect(await credits.highWatermark(ledgerId)).toBeUndefined();
      await credits.reset({ ledgerId, at: t("02-01") });
      expect(await credits.highWatermark(ledgerId)).toBe(out("02-01"));
      const error = await expectLatchError(
        grant("late", "10", { effectiveAt: t("01-15") }),
        "high_watermark",
      );
      expect(error).toMatchObject({ ledgerId, highWatermark: out("02-01"), field: "effectiveAt" });
      await expectLatchError(
        credits.voidGrant({ ledgerId, grantId: gid("g1"), at: t("01-20") }),
        "high_watermark",
      );
      await expectLatchError(credits.reset({ ledgerId, at: t("01-31") }), "high_watermark");
      expect((await credits.listGrants(ledgerId)).map((g) => g.grantId)).toEqual([gid("g1")]);
      // At the watermark itself: allowed. The same reset again: a no-op.
      expect(await grant("on-time", "10", { effectiveAt: t("02-01") })).toMatchObject({
        status: "granted",
      });
      expect(await credits.reset({ ledgerId, at: t("02-01") })).toEqual({
        status: "already_reset",
        at: out("02-01"),
      });
      // A retried grant from before the reset is recognised, not rejected.
      expect(await grant("g1", "100")).toMatchObject({ status: "already_exists" });
      // Usage may still arrive late for the closed period.
      expect(await use("late-usage", "5", t("01-20"))).toMatchObject({ status: "recorded", overage: "0" });
    });

    it("usage exactly equal to the balance, and one unit more", async () => {
      await grant("g", "100");
      expect(await use("exact", "100", t("01-02"), { enforce: true })).toEqual({
        status: "recorded",
        eventId: "exact",
        burned: [{ grantId: gid("g"), amount: "100" }],
        overage: "0",
      });
      expect(await use("more", "1", t("01-03"), { enforce: true })).toEqual({
        status: "denied",
        eventId: "more",
        reason: "insufficient_credits",
        available: "0",
      });
      const b = await credits.balance(ledgerId, t("01-04"));
      expect(featureOf(b, featureId)).toMatchObject({ balance: "0", usage: "100", overage: "0" });
      // Without enforcement the unit is recorded as overage, never lost.
      expect(await use("more", "1", t("01-03"))).toEqual({
        status: "recorded",
        eventId: "more",
        burned: [],
        overage: "1",
      });
      expect(featureOf(await credits.balance(ledgerId, t("01-04")), featureId)).toMatchObject({
        balance: "0",
        usage: "101",
        burned: "100",
        overage: "1",
      });
    });

    it("one usage of 101 against 100 burns 100 and reports 1 of overage", async () => {
      await grant("g", "100");
      expect(await use("e", "101", t("01-02"))).toMatchObject({
        burned: [{ grantId: gid("g"), amount: "100" }],
        overage: "1",
      });
    });

    it("is exact with decimals: 0.1 + 0.2 burns a grant of 0.3 to zero", async () => {
      await grant("g", "0.3");
      await use("a", "0.1", t("01-02"));
      await use("b", "0.2", t("01-03"));
      await use("c", "0.0000000000000000000000000000000000000001", t("01-04"));
      const f = featureOf(await credits.balance(ledgerId, t("01-05")), featureId);
      expect(f).toMatchObject({
        balance: "0",
        burned: "0.3",
        overage: "0.0000000000000000000000000000000000000001",
      });
    });

    it("usage before a grant is in effect, or of a feature without grants, is overage", async () => {
      await grant("g", "10", { effectiveAt: t("01-10") });
      expect(await use("early", "4", t("01-09", "23:59"))).toMatchObject({ burned: [], overage: "4" });
      expect(await use("on-time", "4", t("01-10"))).toMatchObject({
        burned: [{ grantId: gid("g"), amount: "4" }],
      });
      const before = await credits.balance(ledgerId, t("01-05"));
      expect(grantOf(before, gid("g"))).toEqual({
        granted: "0",
        balance: "0",
        burned: "0",
        expired: "0",
        voided: "0",
      });
    });

    it("voiding a grant before it starts voids the whole amount", async () => {
      await grant("future", "40", { effectiveAt: t("01-20") });
      await credits.voidGrant({ ledgerId, grantId: gid("future"), at: t("01-10") });
      expect(await use("e", "5", t("01-21"))).toMatchObject({ burned: [], overage: "5" });
      expect(grantOf(await credits.balance(ledgerId, t("01-25")), gid("future"))).toEqual({
        granted: "40",
        balance: "0",
        burned: "0",
        expired: "0",
        voided: "40",
      });
    });
  });
}
