import type { CreditLedger } from "@latch/core/adapter";
import { beforeEach, describe, expect, it } from "vitest";
import { expectLatchError } from "../../expect-errors.js";
import { uniqueId } from "../../fixtures.js";
import type { CreditLedgerParts } from "./context.js";
import { featureOf, t } from "./support.js";

/** Idempotent grants and usage; a reused id with other content is a conflict that changes nothing. */
export function idempotencyCases(suite: CreditLedgerParts): void {
  const { grant, gid, use } = suite;
  describe("idempotency and conflicts", () => {
    let credits: CreditLedger;
    let ledgerId: string;
    let featureId: string;
    beforeEach(() => {
      ({ credits, ledgerId, featureId } = suite.current());
    });

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
}
