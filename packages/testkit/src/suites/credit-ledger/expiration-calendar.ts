import type { CreditLedger } from "@latch/core/adapter";
import { beforeEach, describe, expect, it } from "vitest";
import { uniqueId } from "../../fixtures.js";
import type { CreditLedgerParts } from "./context.js";
import { out, t } from "./support.js";

/** Expirations counted in calendar units (DST-correct). */
export function expirationCalendarCases(suite: CreditLedgerParts): void {
  const { grant } = suite;
  describe("expiration calendar", () => {
    let credits: CreditLedger;
    let featureId: string;
    beforeEach(() => {
      ({ credits, featureId } = suite.current());
    });

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
}
