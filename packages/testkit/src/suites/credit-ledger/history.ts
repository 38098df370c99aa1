import type { CreditHistoryEntry, CreditLedger } from "@latch/core/adapter";
import { beforeEach, describe, expect, it } from "vitest";
import type { CreditLedgerParts } from "./context.js";
import { out, t } from "./support.js";

/** The history of a ledger and its paging. */
export function historyCases(suite: CreditLedgerParts): void {
  const { grant, gid, use } = suite;
  describe("history", () => {
    let credits: CreditLedger;
    let ledgerId: string;
    let featureId: string;
    beforeEach(() => {
      ({ credits, ledgerId, featureId } = suite.current());
    });

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
}
