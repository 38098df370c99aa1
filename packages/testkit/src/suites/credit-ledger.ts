import { Buffer } from "node:buffer";
import { sumDecimals } from "@latch/core";
import type {
  CreditBalance,
  CreditGrantInput,
  CreditHistoryEntry,
  CreditLedger,
  CreditLedgerInfo,
  CreditLedgerListQuery,
  CreditUsageInput,
} from "@latch/core/adapter";
import fc from "fast-check";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import {
  abortedSignal,
  expectInvalidInput,
  expectLatchError,
  seededIntegers,
  sleep,
} from "../expect-errors.js";
import { uniqueId } from "../fixtures.js";
import { creditRetentionCases, type HoldRetentionOptions } from "./hold-retention.js";
import { creditLedgerStringCases } from "./strings.js";

export interface CreditLedgerSuiteOptions {
  /** Shown in the test names, e.g. `memory` or `postgres`. */
  name: string;
  /**
   * A ledger to test. Called before every test; tests use fresh ledger, feature and grant ids,
   * so a shared backend is fine.
   */
  create: () => Promise<CreditLedger> | CreditLedger;
  /** Runs once after the suite. */
  cleanup?: () => Promise<void> | void;
  /**
   * Runs of each fast-check property (default 40). Every property always runs; a slow backend
   * may run fewer cases, never none (values below 5 are raised to 5).
   */
  propertyRuns?: number;
  /**
   * A ledger with a given `holdRetentionMs` and a reader of its hold records: the suite then
   * checks that resolved holds are purged after the retention and that storage stays bounded
   * over many reserve/commit and reserve/void cycles.
   */
  retention?: HoldRetentionOptions<CreditLedger>;
}

/** `2026-MM-DD` (and an optional `THH:mm`) as an ISO UTC timestamp. */
const t = (day: string, time = "00:00") => `2026-${day}T${time}:00Z`;
/** The same instant as the ledger returns it. */
const out = (day: string, time = "00:00") => `2026-${day}T${time}:00.000Z`;

/** One grant's numbers from a balance. */
function grantOf(balance: CreditBalance, grantId: string) {
  const g = balance.grants.find((x) => x.grantId === grantId);
  if (g === undefined) expect.fail(`grant ${grantId} missing from the balance`);
  return {
    granted: g.granted,
    balance: g.balance,
    burned: g.burned,
    expired: g.expired,
    voided: g.voided,
  };
}

function featureOf(balance: CreditBalance, featureId: string) {
  const f = balance.features.find((x) => x.featureId === featureId);
  if (f === undefined) expect.fail(`feature ${featureId} missing from the balance`);
  return f;
}

/**
 * Asserts granted = balance + burned + expired + voided, all ≥ 0, per grant and per feature,
 * and usage = burned + overage per feature; overage ≥ 0 unless `refunds` (a money feature's
 * refund larger than everything before it is owed back as negative overage).
 */
function expectConserved(balance: CreditBalance, { refunds = false } = {}): void {
  for (const g of [...balance.grants, ...balance.features]) {
    for (const v of [g.granted, g.balance, g.burned, g.expired, g.voided])
      expect(v.startsWith("-")).toBe(false);
    expect(sumDecimals([g.balance, g.burned, g.expired, g.voided])).toBe(g.granted);
  }
  for (const f of balance.features) {
    const grants = balance.grants.filter((g) => g.featureId === f.featureId);
    expect(sumDecimals(grants.map((g) => g.granted))).toBe(f.granted);
    expect(sumDecimals(grants.map((g) => g.balance))).toBe(f.balance);
    expect(sumDecimals([f.burned, f.overage])).toBe(f.usage);
    if (!refunds) expect(f.overage.startsWith("-")).toBe(false);
  }
}

/**
 * The `CreditLedger` contract as a vitest suite: golden burn-down scenarios with hand-computed
 * balances (priority, expiry and creation order, expiry mid-period, rollover of the remaining
 * and of the original amount, void, reset and the high watermark, usage equal to the balance
 * and one unit more), history, listing ledgers by subject (filters, code-point order, keyset
 * pages, bad cursors), idempotency and conflicts, calendar expirations, bad input, and
 * fast-check properties (conservation, no negative balance, order independence), 1,000
 * concurrent burns, versioned usage (corrections), refunds (negative usage of a money feature:
 * LIFO, after an expiry, a void or a reset, owed back, a volume tier's reversal; quantity
 * features refuse them), and holds: reserve against remaining
 * credits, commit the actual burn, void, idempotency by holdId, expiry by the store's clock (real
 * time: a 50 ms hold, then a 150 ms wait) and concurrent reserves that never oversubscribe. Every
 * test always runs; none can be switched off.
 *
 * @example
 * describeCreditLedger({ name: "memory", create: () => new MemoryCreditLedger() });
 */
export function describeCreditLedger(options: CreditLedgerSuiteOptions): void {
  const runs = Math.max(5, options.propertyRuns ?? 40);

  describe(`CreditLedger: ${options.name}`, () => {
    let credits: CreditLedger;
    let ledgerId: string;
    let featureId: string;

    beforeEach(async () => {
      credits = await options.create();
      ledgerId = uniqueId("ledger");
      featureId = uniqueId("tokens");
      await credits.createFeature({
        featureId,
        measure: { kind: "quantity", meters: ["input_tokens", "output_tokens"] },
      });
      await credits.createLedger({ ledgerId, subject: { tenantId: uniqueId("tenant") } });
    });

    afterAll(async () => {
      await options.cleanup?.();
    });

    creditLedgerStringCases({ credits: () => credits });

    /** A grant of this test's ledger and feature; ids are made unique per test. */
    const grant = (id: string, amount: string, fields: Partial<CreditGrantInput> = {}) =>
      credits.grant({
        grantId: `${ledgerId}:${id}`,
        ledgerId,
        featureId,
        amount,
        effectiveAt: t("01-01"),
        ...fields,
      });
    const gid = (id: string) => `${ledgerId}:${id}`;
    const use = (eventId: string, amount: string, at: string, fields: Partial<CreditUsageInput> = {}) =>
      credits.recordUsage({ ledgerId, featureId, eventId, amount, at, ...fields });

    describe("golden scenarios", () => {
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
        expect(b.grants.find((g) => g.grantId === gid("a-week-created-second"))?.expiresAt).toBe(
          out("01-08"),
        );
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

    describe("refunds: negative usage of a money feature", () => {
      // A volume period tier gives the event that crosses a boundary a negative total (its
      // reversal line reprices the period's earlier usage lower): the ledger takes it as a
      // refund that undoes the feature's most recent allocations first (LIFO).
      let usd: string;
      beforeEach(async () => {
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

    describe("expiration calendar", () => {
      it("computes expiresAt calendar-correct in UTC: month ends clamp", async () => {
        const r = await grant("m", "1", {
          effectiveAt: t("01-31", "10:00"),
          expiration: { count: 1, unit: "MONTH" },
        });
        expect(r.grant.expiresAt).toBe(out("02-28", "10:00"));
        const h = await grant("h", "1", {
          effectiveAt: t("01-31", "10:00"),
          expiration: { count: 48, unit: "HOUR" },
        });
        expect(h.grant.expiresAt).toBe(out("02-02", "10:00"));
      });

      it("counts DAY in the ledger's time zone across a DST change", async () => {
        const ny = uniqueId("ledger-ny");
        await credits.createLedger({
          ledgerId: ny,
          subject: { tenantId: "t" },
          timeZone: "America/New_York",
        });
        const r = await credits.grant({
          grantId: `${ny}:g`,
          ledgerId: ny,
          featureId,
          amount: "1",
          effectiveAt: "2026-03-08T05:00:00Z", // local midnight; DST starts at 02:00
          expiration: { count: 1, unit: "DAY" },
        });
        expect(r.grant.expiresAt).toBe("2026-03-09T04:00:00.000Z"); // the next local midnight: 23 hours
      });
    });

    describe("idempotency and conflicts", () => {
      it("returns already_exists for the same grant and rejects the same id with another body", async () => {
        const first = await grant("g", "100", { metadata: { plan: "pro" } });
        expect(first).toMatchObject({
          status: "granted",
          grant: { amount: "100", priority: 1, sequence: 1 },
        });
        // The same body, written differently (canonical amount, default priority, timestamp form).
        const again = await credits.grant({
          grantId: gid("g"),
          ledgerId,
          featureId,
          amount: "100.00",
          priority: 1,
          effectiveAt: "2026-01-01T00:00:00.000Z",
          metadata: { plan: "pro" },
        });
        expect(again).toEqual({ status: "already_exists", grant: first.grant });
        const conflict = await expectLatchError(
          grant("g", "101", { metadata: { plan: "pro" } }),
          "idempotency_conflict",
        );
        expect(conflict).toMatchObject({ id: gid("g") });
        expect((conflict as unknown as { existingHash: string }).existingHash).toMatch(/^sha256:/);
        expect(await credits.listGrants(ledgerId)).toHaveLength(1);
      });

      it("burns a replayed usage event once, and rejects the same event with another amount", async () => {
        await grant("g", "100");
        expect(await use("e", "30", t("01-02"))).toMatchObject({ status: "recorded" });
        expect(await use("e", "30", t("01-02"))).toEqual({
          status: "duplicate",
          eventId: "e",
          burned: [{ grantId: gid("g"), amount: "30" }],
          overage: "0",
        });
        await expectLatchError(use("e", "31", t("01-02")), "idempotency_conflict");
        await expectLatchError(use("e", "30", t("01-03")), "idempotency_conflict");
        const racing = await Promise.all(Array.from({ length: 20 }, () => use("race", "5", t("01-04"))));
        expect(racing.filter((r) => r.status === "recorded")).toHaveLength(1);
        expect(racing.filter((r) => r.status === "duplicate")).toHaveLength(19);
        expect(featureOf(await credits.balance(ledgerId, t("01-05")), featureId).balance).toBe("65");
      });

      it("creates features and ledgers once by id", async () => {
        const feature = {
          featureId,
          measure: { kind: "quantity" as const, meters: ["input_tokens" as const, "output_tokens" as const] },
        };
        expect(await credits.createFeature(feature)).toMatchObject({ status: "already_exists" });
        await expectLatchError(
          credits.createFeature({ ...feature, measure: { kind: "money", currency: "USD" } }),
          "idempotency_conflict",
        );
        expect(await credits.getFeature(featureId)).toMatchObject({ featureId });
        expect(await credits.getFeature(uniqueId("nope"))).toBeUndefined();
        const ledger = await credits.getLedger(ledgerId);
        expect(ledger).toMatchObject({ ledgerId, timeZone: "UTC" });
        expect(
          await credits.createLedger({ ledgerId, subject: ledger?.subject ?? { tenantId: "x" } }),
        ).toMatchObject({
          status: "already_exists",
        });
        await expectLatchError(
          credits.createLedger({ ledgerId, subject: { tenantId: "someone-else" } }),
          "idempotency_conflict",
        );
      });
    });

    describe("history", () => {
      it("pages through entries in a stable order with a cursor", async () => {
        for (let i = 1; i <= 5; i++) await grant(`g${i}`, String(i * 10), { effectiveAt: t(`01-0${i}`) });
        await use("e1", "3", t("01-01", "12:00"));
        await credits.reset({ ledgerId, at: t("01-06") });
        const all = await credits.history({ ledgerId, from: t("01-01"), to: t("02-01"), limit: 1000 });
        expect(all.next).toBeUndefined();
        expect(all.items.map((e) => e.type)).toEqual([
          "GRANT",
          "GRANT_USAGE",
          "GRANT",
          "GRANT",
          "GRANT",
          "GRANT",
          "RESET",
        ]);
        const paged: CreditHistoryEntry[] = [];
        let cursor: string | undefined;
        do {
          const page = await credits.history({
            ledgerId,
            from: t("01-01"),
            to: t("02-01"),
            limit: 2,
            ...(cursor ? { cursor } : {}),
          });
          expect(page.items.length).toBeLessThanOrEqual(2);
          paged.push(...page.items);
          cursor = page.next;
        } while (cursor !== undefined);
        expect(paged).toEqual(all.items);
        // A window shows only its own entries; usage periods are cut at the window's edges.
        const window = await credits.history({
          ledgerId,
          from: t("01-01", "06:00"),
          to: t("01-02"),
          limit: 10,
        });
        expect(window.items).toEqual([
          {
            type: "GRANT_USAGE",
            at: out("01-01", "06:00"),
            grantId: gid("g1"),
            featureId,
            amount: "3",
            period: { from: out("01-01", "06:00"), to: out("01-02") },
          },
        ]);
      });
    });

    describe("listing ledgers", () => {
      /** Every page of a listing, with each page's size checked against `limit`. */
      const listAll = async (query: Omit<CreditLedgerListQuery, "cursor">) => {
        const seen: CreditLedgerInfo[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await credits.listLedgers({ ...query, ...(cursor === undefined ? {} : { cursor }) });
          expect(page.items.length).toBeLessThanOrEqual(query.limit);
          if (page.next !== undefined) expect(page.items).toHaveLength(query.limit);
          seen.push(...page.items);
          cursor = page.next;
          pages++;
        } while (cursor !== undefined);
        return { ids: seen.map((l) => l.ledgerId), items: seen, pages };
      };

      it("filters by every given subject field, exactly, in ledgerId order", async () => {
        const p = uniqueId("list");
        const [tenant, other, project, org] = [
          uniqueId("tenant"),
          uniqueId("tenant"),
          uniqueId("p"),
          uniqueId("o"),
        ];
        const one = {
          ledgerId: `${p}-1`,
          subject: { tenantId: tenant, projectId: project },
          timeZone: "Europe/Paris",
          metadata: { plan: "pro" },
        };
        // Created out of order: the listing sorts.
        await credits.createLedger({
          ledgerId: `${p}-4`,
          subject: { tenantId: tenant, projectId: project, orgId: org },
        });
        await credits.createLedger({
          ledgerId: `${p}-2`,
          subject: { tenantId: tenant, projectId: `${project}x` },
        });
        await credits.createLedger(one);
        await credits.createLedger({ ledgerId: `${p}-3`, subject: { tenantId: tenant } });
        await credits.createLedger({ ledgerId: `${p}-5`, subject: { tenantId: other, projectId: project } });

        const byTenant = await credits.listLedgers({ subject: { tenantId: tenant }, limit: 100 });
        expect(byTenant.next).toBeUndefined();
        expect(byTenant.items.map((l) => l.ledgerId)).toEqual([`${p}-1`, `${p}-2`, `${p}-3`, `${p}-4`]);
        expect(byTenant.items[0]).toEqual(one);
        expect(byTenant.items[2]).toEqual({
          ledgerId: `${p}-3`,
          subject: { tenantId: tenant },
          timeZone: "UTC",
        });

        const ids = async (subject: CreditLedgerListQuery["subject"]) =>
          (await credits.listLedgers({ subject, limit: 1000 })).items.map((l) => l.ledgerId);
        expect(await ids({ tenantId: tenant, projectId: project })).toEqual([`${p}-1`, `${p}-4`]);
        expect(await ids({ tenantId: tenant, orgId: org })).toEqual([`${p}-4`]);
        expect(await ids({ tenantId: other, projectId: project })).toEqual([`${p}-5`]);
        // Without a tenant: every tenant's ledgers with that project.
        expect(await ids({ projectId: project })).toEqual([`${p}-1`, `${p}-4`, `${p}-5`]);
        // Exact equality: no prefix match, no case folding.
        expect(await ids({ tenantId: tenant, projectId: project.slice(0, -1) })).toEqual([]);
        expect(await ids({ tenantId: tenant.toUpperCase() })).toEqual([]);
        expect(await credits.listLedgers({ subject: { tenantId: uniqueId("nobody") }, limit: 5 })).toEqual({
          items: [],
        });
      });

      it("pages across several pages, each ledger exactly once, in code-point order", async () => {
        const p = uniqueId("page");
        const tenantId = uniqueId("tenant");
        // Code-point (UTF-8 byte) order: B < a < a0 < b < z < U+FF5E < U+1F600 (plain JS `<`
        // would put the surrogate pair of U+1F600 before U+FF5E).
        const suffixes = ["z", "\u{1F600}", "a0", "B", "\uFF5E", "b", "a"];
        for (const s of suffixes)
          await credits.createLedger({ ledgerId: `${p}-${s}`, subject: { tenantId } });
        const expected = ["B", "a", "a0", "b", "z", "\uFF5E", "\u{1F600}"].map((s) => `${p}-${s}`);

        const whole = await listAll({ subject: { tenantId }, limit: 1000 });
        expect(whole).toMatchObject({ ids: expected, pages: 1 });
        for (const limit of [1, 2, 3, 7]) {
          const paged = await listAll({ subject: { tenantId }, limit });
          expect(paged.ids).toEqual(expected);
          expect(new Set(paged.ids).size).toBe(expected.length);
          expect(paged.items).toEqual(whole.items);
        }
        expect((await listAll({ subject: { tenantId }, limit: 2 })).pages).toBe(4);
        // A full last page ends with a cursor whose next page is empty.
        const full = await credits.listLedgers({ subject: { tenantId }, limit: 7 });
        expect(full.items).toHaveLength(7);
        expect(full.next).toBeUndefined();

        // Keyset pages: a ledger created after the cursor appears on a later page, one created
        // before it does not, and nothing is returned twice.
        const first = await credits.listLedgers({ subject: { tenantId }, limit: 3 });
        expect(first.items.map((l) => l.ledgerId)).toEqual(expected.slice(0, 3));
        await credits.createLedger({ ledgerId: `${p}-A`, subject: { tenantId } });
        await credits.createLedger({ ledgerId: `${p}-c`, subject: { tenantId } });
        const rest: string[] = [];
        let cursor = first.next;
        while (cursor !== undefined) {
          const page = await credits.listLedgers({ subject: { tenantId }, limit: 3, cursor });
          rest.push(...page.items.map((l) => l.ledgerId));
          cursor = page.next;
        }
        expect(rest).toEqual([`${p}-b`, `${p}-c`, `${p}-z`, `${p}-\uFF5E`, `${p}-\u{1F600}`]);
      });

      it("rejects a bad limit, cursor or subject naming the field", async () => {
        const subject = { tenantId: uniqueId("tenant") };
        for (const limit of [0, 1001, 1.5, -1, Number.NaN, "10" as unknown as number]) {
          await expectInvalidInput(credits.listLedgers({ subject, limit }), "limit");
        }
        await credits.createLedger({ ledgerId: uniqueId("l"), subject });
        await credits.createLedger({ ledgerId: uniqueId("l"), subject });
        const { next } = await credits.listLedgers({ subject, limit: 1 });
        expect(typeof next).toBe("string");
        const good = next as string;
        const forged = [
          "",
          "forged",
          "x y",
          `${good}=`,
          `${good}A`,
          good.slice(0, -1),
          Buffer.from(JSON.stringify("ledger-1"), "utf8").toString("base64url"),
          Buffer.from(JSON.stringify([""]), "utf8").toString("base64url"),
          Buffer.from(JSON.stringify(["x".repeat(257)]), "utf8").toString("base64url"),
          Buffer.from(JSON.stringify([1]), "utf8").toString("base64url"),
        ];
        for (const cursor of forged) {
          await expectInvalidInput(credits.listLedgers({ subject, limit: 10, cursor }), "cursor");
        }
        await expectInvalidInput(
          credits.listLedgers({ subject: { tenantId: "" }, limit: 10 }),
          "subject.tenantId",
        );
        await expectInvalidInput(
          credits.listLedgers({ subject: { tenantId: "t", projectId: 7 as unknown as string }, limit: 10 }),
          "subject.projectId",
        );
        await expectInvalidInput(
          credits.listLedgers({ subject: undefined as unknown as { tenantId: string }, limit: 10 }),
          "subject",
        );
        await expect(credits.listLedgers({ subject, limit: 1 }, abortedSignal())).rejects.toMatchObject({
          name: "AbortError",
        });
      });
    });

    describe("bad input", () => {
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

    describe("usage versions (corrections)", () => {
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

    describe("holds", () => {
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

    describe("properties", () => {
      const day = (n: number) => new Date(Date.UTC(2026, 0, 1) + n * 86_400_000).toISOString();
      const amountArb = fc.oneof(
        fc.integer({ min: 1, max: 200 }).map(String),
        fc
          .tuple(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 1, max: 99 }))
          .map(([a, b]) => `${a}.${String(b).padStart(2, "0")}`),
      );
      const grantArb = fc.record({
        amount: amountArb,
        priority: fc.integer({ min: 1, max: 3 }),
        start: fc.integer({ min: 0, max: 40 }),
        expiration: fc.option(
          fc.record({
            count: fc.integer({ min: 1, max: 3 }),
            unit: fc.constantFrom("DAY" as const, "WEEK" as const),
          }),
          { nil: undefined },
        ),
        rollover: fc.option(
          fc.record({
            type: fc.constantFrom("ORIGINAL_AMOUNT" as const, "REMAINING_AMOUNT" as const),
            maxAmount: fc.option(amountArb, { nil: undefined }),
          }),
          { nil: undefined },
        ),
        voidAt: fc.option(fc.integer({ min: 0, max: 60 }), { nil: undefined }),
      });
      const scenarioArb = fc.record({
        grants: fc.array(grantArb, { minLength: 1, maxLength: 5 }),
        resets: fc.uniqueArray(fc.integer({ min: 1, max: 60 }), { maxLength: 2 }),
        usage: fc.array(fc.record({ amount: amountArb, at: fc.integer({ min: 0, max: 60 }) }), {
          minLength: 1,
          maxLength: 12,
        }),
        seed: fc.integer(),
      });
      type Scenario = typeof scenarioArb extends fc.Arbitrary<infer S> ? S : never;
      /** The same scenarios for a money feature, whose usage may be a refund (negative). */
      const refundScenarioArb: fc.Arbitrary<Scenario> = scenarioArb.chain((s) =>
        fc.array(fc.boolean(), { minLength: s.usage.length, maxLength: s.usage.length }).map((negative) => ({
          ...s,
          usage: s.usage.map((u, i) => (negative[i] ? { ...u, amount: `-${u.amount}` } : u)),
        })),
      );
      const moneyFeature = async () => {
        const id = uniqueId("usd");
        await credits.createFeature({ featureId: id, measure: { kind: "money", currency: "USD" } });
        return id;
      };

      /** Sets up a fresh ledger with the scenario's grants, voids and resets; usage in `order`. */
      async function apply(s: Scenario, order: number[], feature = featureId): Promise<string> {
        const id = uniqueId("prop");
        await credits.createLedger({ ledgerId: id, subject: { tenantId: "prop" } });
        for (const [i, g] of s.grants.entries()) {
          await credits.grant({
            grantId: `${id}:g${i}`,
            ledgerId: id,
            featureId: feature,
            amount: g.amount,
            priority: g.priority,
            effectiveAt: day(g.start),
            ...(g.expiration ? { expiration: g.expiration } : {}),
            ...(g.rollover
              ? { rollover: g.rollover.maxAmount ? g.rollover : { type: g.rollover.type } }
              : {}),
          });
        }
        for (const [i, g] of s.grants.entries()) {
          if (g.voidAt !== undefined)
            await credits.voidGrant({ ledgerId: id, grantId: `${id}:g${i}`, at: day(g.voidAt) });
        }
        for (const r of [...s.resets].sort((a, b) => a - b))
          await credits.reset({ ledgerId: id, at: day(r) });
        for (const i of order) {
          const u = s.usage[i] as Scenario["usage"][number];
          await credits.recordUsage({
            ledgerId: id,
            featureId: feature,
            eventId: `u${i}`,
            amount: u.amount,
            at: day(u.at),
          });
        }
        return id;
      }

      /** Balances with the ledger and grant ids made comparable across ledgers. */
      async function view(id: string, at: string) {
        const b = await credits.balance(id, at);
        return JSON.parse(JSON.stringify({ ...b, ledgerId: "" }).replaceAll(`${id}:`, ""));
      }

      it("granted = balance + burned + expired + voided per grant and in total; nothing is ever negative", async () => {
        await fc.assert(
          fc.asyncProperty(scenarioArb, async (s) => {
            const id = await apply(
              s,
              s.usage.map((_, i) => i),
            );
            for (const at of [0, 7, 15, 30, 45, 61]) expectConserved(await credits.balance(id, day(at)));
            // Usage is never lost: burned + overage = every unit recorded.
            const end = await credits.balance(id, day(61));
            expect(featureOf(end, featureId).usage).toBe(sumDecimals(s.usage.map((u) => u.amount)));
          }),
          { numRuns: runs },
        );
      });

      it("replaying the same usage events in any order gives the same balances and history", async () => {
        await fc.assert(
          fc.asyncProperty(scenarioArb, async (s) => {
            const forward = s.usage.map((_, i) => i);
            const next = seededIntegers(s.seed);
            const shuffled = [...forward];
            for (let i = shuffled.length - 1; i > 0; i--) {
              const j = next(0, i);
              [shuffled[i], shuffled[j]] = [shuffled[j] as number, shuffled[i] as number];
            }
            const a = await apply(s, forward);
            const b = await apply(s, shuffled);
            for (const at of [10, 30, 61]) expect(await view(b, day(at))).toEqual(await view(a, day(at)));
            const h = async (id: string) =>
              JSON.parse(
                JSON.stringify(
                  await credits.history({ ledgerId: id, from: day(0), to: day(62), limit: 10_000 }),
                ).replaceAll(`${id}:`, ""),
              );
            expect(await h(b)).toEqual(await h(a));
          }),
          { numRuns: runs },
        );
      });
      it("with refunds (a money feature): every grant conserved, usage = burned + overage, any order the same", async () => {
        const usd = await moneyFeature();
        await fc.assert(
          fc.asyncProperty(refundScenarioArb, async (s) => {
            const forward = s.usage.map((_, i) => i);
            const next = seededIntegers(s.seed);
            const shuffled = [...forward];
            for (let i = shuffled.length - 1; i > 0; i--) {
              const j = next(0, i);
              [shuffled[i], shuffled[j]] = [shuffled[j] as number, shuffled[i] as number];
            }
            const a = await apply(s, forward, usd);
            const b = await apply(s, shuffled, usd);
            for (const at of [0, 7, 15, 30, 45, 61])
              expectConserved(await credits.balance(a, day(at)), { refunds: true });
            const end = await credits.balance(a, day(61));
            expect(featureOf(end, usd).usage).toBe(sumDecimals(s.usage.map((u) => u.amount)));
            for (const at of [10, 30, 61]) expect(await view(b, day(at))).toEqual(await view(a, day(at)));
          }),
          { numRuns: runs },
        );
      });

      it("with one grant covering everything, the credits burned are the net usage (0 when refunds exceed it)", async () => {
        const usd = await moneyFeature();
        await fc.assert(
          fc.asyncProperty(refundScenarioArb, async (s) => {
            const covering = {
              ...s,
              grants: [{ ...(s.grants[0] as Scenario["grants"][number]) }],
              resets: [],
            };
            const only = covering.grants[0] as Scenario["grants"][number];
            Object.assign(only, { amount: "100000", start: 0, expiration: undefined, voidAt: undefined });
            const id = await apply(
              covering,
              s.usage.map((_, i) => i),
              usd,
            );
            const f = featureOf(await credits.balance(id, day(61)), usd);
            const net = sumDecimals(s.usage.map((u) => u.amount));
            expect(f.burned).toBe(net.startsWith("-") ? "0" : net);
            expect(f.overage).toBe(net.startsWith("-") ? net : "0");
          }),
          { numRuns: runs },
        );
      });
    });

    describe("concurrency", () => {
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
  });
  if (options.retention !== undefined) creditRetentionCases(options.name, options.retention);
}
