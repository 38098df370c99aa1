import type { CreditLedger } from "@latch/core/adapter";
import { beforeEach, describe, expect, it } from "vitest";
import { expectInvalidInput, expectLatchError, sleep } from "../../expect-errors.js";
import { uniqueId } from "../../fixtures.js";
import type { CreditLedgerParts } from "./context.js";
import { expectConserved, featureOf, t } from "./support.js";

/**
 * Holds: reserve against remaining credits, commit the actual burn, void, idempotency by holdId,
 * expiry by the store's clock (real time: a 50 ms hold, then a 150 ms wait), concurrent reserves
 * that never oversubscribe.
 */
export function holdCases(suite: CreditLedgerParts): void {
  const { grant, gid, use } = suite;
  describe("holds", () => {
    let credits: CreditLedger;
    let ledgerId: string;
    let featureId: string;
    beforeEach(() => {
      ({ credits, ledgerId, featureId } = suite.current());
    });

    // Holds live at the store's current time: grants here start well before it.
    const since = "2020-01-01T00:00:00Z";
    const hid = (id: string) => `${ledgerId}:hold:${id}`;
    const reserve = (id: string, amount: string, fields: Record<string, unknown> = {}) =>
      credits.reserve({ holdId: hid(id), ledgerId, featureId, amount, ttlMs: 60_000, ...fields });
    const commit = (id: string, eventId: string, amount: string, fields: Record<string, unknown> = {}) =>
      credits.commitHold({ holdId: hid(id), eventId, amount, at: t("01-02"), ...fields });
    const balanceNow = async () => featureOf(await credits.balance(ledgerId, t("01-03")), featureId);

    it("a hold keeps its credits from other reserves and enforced usage; a denied reserve holds nothing", async () => {
      await grant("g", "100", { effectiveAt: since });
      expect(await reserve("a", "60")).toEqual({ granted: true, holdId: hid("a"), available: "40" });
      expect(await reserve("b", "50")).toEqual({
        granted: false,
        holdId: hid("b"),
        reason: "insufficient_credits",
        available: "40",
      });
      expect(await reserve("c", "40")).toMatchObject({ granted: true, available: "0" });
      // Holds are not usage: the balance is untouched, but enforcement counts them.
      expect(await balanceNow()).toMatchObject({ balance: "100", usage: "0" });
      expect(await use("e", "1", t("01-02"), { enforce: true })).toMatchObject({ status: "denied" });
      await credits.voidHold(hid("a"));
      // The denied reserve stored nothing: its retry is evaluated afresh.
      expect(await reserve("b", "50")).toMatchObject({ granted: true, available: "10" });
      expect(await use("e", "10", t("01-02"), { enforce: true })).toMatchObject({ status: "recorded" });
      expect(await reserve("d", "0.0001")).toMatchObject({ granted: false, available: "0" });
    });

    it("commit records the actual usage and frees the hold: below the hold, and above it in full", async () => {
      await grant("g", "100", { effectiveAt: since });
      await reserve("a", "30");
      expect(await commit("a", "e1", "20")).toEqual({
        status: "committed",
        holdId: hid("a"),
        eventId: "e1",
        burned: [{ grantId: gid("g"), amount: "20" }],
        overage: "0",
      });
      // The 10 held above the actual are free again.
      expect(await reserve("b", "80")).toMatchObject({ granted: true, available: "0" });
      // The call used more than it held: charged in full, the rest is overage (never lost).
      expect(await commit("b", "e2", "95")).toMatchObject({
        burned: [{ grantId: gid("g"), amount: "80" }],
        overage: "15",
      });
      const end = await credits.balance(ledgerId, t("01-03"));
      expect(featureOf(end, featureId)).toMatchObject({
        balance: "0",
        burned: "100",
        usage: "115",
        overage: "15",
      });
      expectConserved(end);
    });

    it("recording a call's usage and committing its hold burn once, in either order", async () => {
      await grant("g", "100", { effectiveAt: since });
      await use("e1", "30", t("01-02"));
      await reserve("a", "50");
      expect(await commit("a", "e1", "30")).toMatchObject({ burned: [{ amount: "30" }] });
      await reserve("b", "10");
      await commit("b", "e2", "10");
      expect(await use("e2", "10", t("01-02"))).toMatchObject({ status: "duplicate" });
      expect(await balanceNow()).toMatchObject({ balance: "60", usage: "40" });
      // A commit that disagrees with the recorded event is a conflict, and the hold stays open.
      await reserve("c", "5");
      await expectLatchError(commit("c", "e1", "31"), "idempotency_conflict");
      await credits.voidHold(hid("c"));
      expect(await reserve("d", "60")).toMatchObject({ granted: true, available: "0" });
    });

    it("reserve, commit and void are idempotent by holdId; each hold resolves once", async () => {
      await grant("g", "100", { effectiveAt: since });
      expect(await reserve("a", "10")).toMatchObject({ granted: true, available: "90" });
      expect(await reserve("a", "10.0", { ttlMs: 5_000 })).toMatchObject({
        granted: true,
        available: "90",
      });
      const racing = await Promise.all(Array.from({ length: 20 }, () => reserve("r", "10")));
      expect(racing.every((r) => r.granted)).toBe(true);
      expect(await reserve("x", "80")).toMatchObject({ granted: true, available: "0" });
      await credits.voidHold(hid("x"));
      const conflict = await expectLatchError(reserve("a", "11"), "idempotency_conflict");
      expect(conflict).toMatchObject({ id: hid("a") });
      const other = uniqueId("other");
      await credits.createFeature({ featureId: other, measure: { kind: "money", currency: "USD" } });
      await expectLatchError(reserve("a", "10", { featureId: other }), "idempotency_conflict");
      const first = await commit("a", "e1", "7");
      expect(await commit("a", "e1", "7")).toEqual(first);
      await expectLatchError(commit("a", "e1", "8"), "idempotency_conflict");
      await expectLatchError(commit("a", "e9", "7"), "idempotency_conflict");
      await expectLatchError(credits.voidHold(hid("a")), "hold_already_resolved");
      await reserve("b", "5");
      await credits.voidHold(hid("b"));
      await credits.voidHold(hid("b"));
      const resolved = await expectLatchError(commit("b", "e2", "5"), "hold_already_resolved");
      expect(resolved).toMatchObject({ holdId: hid("b"), state: "voided" });
      expect(await balanceNow()).toMatchObject({ balance: "93", usage: "7" });
      await expectInvalidInput(commit("nope", "e3", "1"), "holdId");
      await expectInvalidInput(credits.voidHold(hid("nope")), "holdId");
    });

    it("a hold expires after ttlMs by the store's clock; a void then changes nothing and a late commit still burns", async () => {
      await grant("g", "10", { effectiveAt: since });
      expect(await reserve("a", "10", { ttlMs: 50 })).toMatchObject({ granted: true });
      expect(await reserve("b", "1")).toMatchObject({ granted: false });
      await sleep(150);
      expect(await reserve("b", "1")).toMatchObject({ granted: true, available: "9" });
      await credits.voidHold(hid("a"));
      expect(await commit("a", "late", "4")).toMatchObject({ burned: [{ amount: "4" }], overage: "0" });
      expect(await balanceNow()).toMatchObject({ balance: "6", usage: "4" });
    });

    it("rejects bad holds naming the field", async () => {
      await grant("g", "10", { effectiveAt: since });
      for (const amount of ["0", "-1", "abc", "1e3"])
        await expectInvalidInput(reserve("bad", amount), "amount");
      for (const ttlMs of [0, 1.5, -5, "60000"])
        await expectInvalidInput(reserve("bad", "1", { ttlMs }), "ttlMs");
      await expectInvalidInput(reserve("bad", "1", { featureId: uniqueId("nope") }), "featureId");
      await expectInvalidInput(reserve("bad", "1", { ledgerId: uniqueId("nope") }), "ledgerId");
      await expectInvalidInput(reserve("bad", "1", { holdId: "" }), "holdId");
      await reserve("ok", "1");
      await expectInvalidInput(commit("ok", "e", "-1"), "amount");
      await expectInvalidInput(commit("ok", "e", "1", { at: "yesterday" }), "at");
      await expectInvalidInput(commit("ok", "", "1"), "eventId");
      await expectInvalidInput(credits.voidHold(""), "holdId");
      expect(await reserve("ok2", "9")).toMatchObject({ granted: true, available: "0" });
    });

    it("a commit naming another feature than the hold's is invalid_input naming featureId and burns nothing; featureId is not part of the commit's body", async () => {
      await grant("g", "100", { effectiveAt: since });
      const other = uniqueId("usd");
      await credits.createFeature({ featureId: other, measure: { kind: "money", currency: "USD" } });
      await grant("g-other", "100", { effectiveAt: since, featureId: other });
      await reserve("a", "30");
      // The hold is of featureId: naming another (or an unknown) feature is refused, burning nothing.
      await expectInvalidInput(commit("a", "e1", "20", { featureId: other }), "featureId");
      await expectInvalidInput(commit("a", "e1", "20", { featureId: uniqueId("nope") }), "featureId");
      expect(await balanceNow()).toMatchObject({ balance: "100", usage: "0" });
      expect(featureOf(await credits.balance(ledgerId, t("01-03")), other)).toMatchObject({
        balance: "100",
        usage: "0",
      });
      // Still held: nothing resolved it.
      expect(await reserve("probe", "71")).toMatchObject({ granted: false, available: "70" });
      // Naming the hold's own feature commits; a retry with or without it is the same commit.
      const first = await commit("a", "e1", "20", { featureId });
      expect(first).toEqual({
        status: "committed",
        holdId: hid("a"),
        eventId: "e1",
        burned: [{ grantId: gid("g"), amount: "20" }],
        overage: "0",
      });
      expect(await commit("a", "e1", "20")).toEqual(first);
      expect(await commit("a", "e1", "20", { featureId })).toEqual(first);
      await expectLatchError(commit("a", "e1", "21", { featureId }), "idempotency_conflict");
      // Committed without it: a retry naming the hold's feature is the same commit too.
      await reserve("b", "10");
      const second = await commit("b", "e2", "5");
      expect(await commit("b", "e2", "5", { featureId })).toEqual(second);
      // After the commit, another feature is still refused, and burns nothing.
      await expectInvalidInput(commit("b", "e2", "5", { featureId: other }), "featureId");
      expect(await balanceNow()).toMatchObject({ balance: "75", usage: "25" });
      expect(featureOf(await credits.balance(ledgerId, t("01-03")), other)).toMatchObject({ usage: "0" });
    });

    it("a commit naming another ledger than the hold's is invalid_input naming ledgerId and burns nothing, whatever the hold's state; ledgerId is not part of the commit's body", async () => {
      await grant("g", "100", { effectiveAt: since });
      // Another ledger holding the same feature: the one a wrongly rebuilt Hold would name.
      const other = uniqueId("other-ledger");
      await credits.createLedger({ ledgerId: other, subject: { tenantId: other } });
      await credits.grant({
        grantId: `${other}:g`,
        ledgerId: other,
        featureId,
        amount: "100",
        effectiveAt: since,
      });
      const otherNow = async () => featureOf(await credits.balance(other, t("01-03")), featureId);
      const nothingBurned = async (usage: string, balance: string) => {
        expect(await balanceNow()).toMatchObject({ balance, usage });
        expect(await otherNow()).toMatchObject({ balance: "100", usage: "0" });
      };
      // Granted: refused (another ledger, an unknown one), burning nothing in either ledger.
      await reserve("a", "30");
      await expectInvalidInput(commit("a", "e1", "20", { ledgerId: other }), "ledgerId");
      await expectInvalidInput(commit("a", "e1", "20", { ledgerId: uniqueId("nope") }), "ledgerId");
      await nothingBurned("0", "100");
      // Still held: nothing resolved it.
      expect(await reserve("probe", "71")).toMatchObject({ granted: false, available: "70" });
      // Naming the hold's own ledger commits; a retry with or without it is the same commit.
      const first = await commit("a", "e1", "20", { ledgerId });
      expect(first).toEqual({
        status: "committed",
        holdId: hid("a"),
        eventId: "e1",
        burned: [{ grantId: gid("g"), amount: "20" }],
        overage: "0",
      });
      expect(await commit("a", "e1", "20")).toEqual(first);
      expect(await commit("a", "e1", "20", { ledgerId, featureId })).toEqual(first);
      await expectLatchError(commit("a", "e1", "21", { ledgerId }), "idempotency_conflict");
      // Committed: another ledger is still refused (not an idempotent answer), burning nothing.
      await expectInvalidInput(commit("a", "e1", "20", { ledgerId: other }), "ledgerId");
      // Committed without it: a retry naming the hold's ledger is the same commit too.
      await reserve("b", "10");
      const second = await commit("b", "e2", "5");
      expect(await commit("b", "e2", "5", { ledgerId })).toEqual(second);
      await expectInvalidInput(commit("b", "e2", "5", { ledgerId: other }), "ledgerId");
      await nothingBurned("25", "75");
      // Voided: refused naming ledgerId (not hold_already_resolved), burning nothing.
      await reserve("c", "10");
      await credits.voidHold(hid("c"));
      await expectInvalidInput(commit("c", "e3", "5", { ledgerId: other }), "ledgerId");
      await expectLatchError(commit("c", "e3", "5", { ledgerId }), "hold_already_resolved");
      await nothingBurned("25", "75");
    });

    it("N concurrent reserves never oversubscribe; granted count equals what the balance allows", async () => {
      await grant("g", "100.5", { effectiveAt: since });
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => reserve(`n${i}`, "3")));
      const granted = results.filter((r) => r.granted);
      // floor(100.5 / 3) = 33 holds of 3; 1.5 is left.
      expect(granted).toHaveLength(33);
      for (const r of results.filter((x) => !x.granted)) {
        expect(r).toMatchObject({ reason: "insufficient_credits" });
      }
      const availability = granted.map((r) => r.available).sort((a, b) => Number(a) - Number(b));
      expect(availability[0]).toBe("1.5");
      expect(new Set(availability).size).toBe(33);
      expect(await reserve("more", "1.6")).toMatchObject({ granted: false, available: "1.5" });
      const commits = await Promise.all(
        granted.map((r, i) =>
          credits.commitHold({
            holdId: r.holdId,
            eventId: `c${i}`,
            amount: "3",
            at: t("01-02"),
          }),
        ),
      );
      expect(commits.every((c) => c.overage === "0")).toBe(true);
      expect(await balanceNow()).toMatchObject({ balance: "1.5", burned: "99", overage: "0" });
    });
  });
}
