import { type ConformanceSuite, creditLedgerSuite, uniqueId } from "@latch/testkit";
import { describe, expect, it } from "vitest";
import { PostgresCreditLedger, type Queryable } from "../src/index.js";
import { storedHolds } from "./support.js";

/**
 * The credit ledger suite against `db()` (migrated by the caller), plus what only SQL shows:
 * amounts stored as exact `numeric`, and one transaction's lock serialising burns.
 */
export function creditSuites(
  db: () => Queryable,
  schema: string,
  retentionCycles: number,
): ConformanceSuite[] {
  const inSql: ConformanceSuite = {
    name: "credits in SQL",
    register: (title) => creditsInSql(title, db, schema),
  };
  return [
    creditLedgerSuite({
      create: () => new PostgresCreditLedger(db(), { schema }),
      propertyRuns: 15,
      retention: {
        create: (holdRetentionMs) => {
          const credits = new PostgresCreditLedger(db(), { schema, holdRetentionMs });
          return {
            store: credits,
            storedHolds: storedHolds(db(), schema, "credit"),
            purge: () => credits.purgeResolvedHolds(),
          };
        },
        cycles: retentionCycles,
      },
    }),
    inSql,
  ];
}

function creditsInSql(title: string, db: () => Queryable, schema: string): void {
  describe(title, () => {
    it("stores grant and usage amounts as exact numeric, beyond what a double holds", async () => {
      const credits = new PostgresCreditLedger(db(), { schema });
      const featureId = uniqueId("f");
      const ledgerId = uniqueId("l");
      await credits.createFeature({ featureId, measure: { kind: "money", currency: "USD" } });
      await credits.createLedger({ ledgerId, subject: { tenantId: "t" } });
      await credits.grant({
        grantId: `${ledgerId}:g`,
        ledgerId,
        featureId,
        amount: "12345678901234567890.123456789012345678901234567890",
        effectiveAt: "2026-01-01T00:00:00Z",
      });
      await credits.recordUsage({
        ledgerId,
        featureId,
        eventId: "e",
        amount: "0.0000000000000000000000000000000000000001",
        at: "2026-01-02T00:00:00Z",
      });
      const { rows } = await db().query(
        `SELECT (SELECT amount::text FROM "${schema}".credit_grants WHERE ledger_id = $1) AS granted,
                (SELECT amount::text FROM "${schema}".credit_usage WHERE ledger_id = $1) AS used`,
        [ledgerId],
      );
      expect(rows).toEqual([
        {
          granted: "12345678901234567890.12345678901234567890123456789",
          used: "0.0000000000000000000000000000000000000001",
        },
      ]);
      const balance = await credits.balance(ledgerId, "2026-01-03T00:00:00Z");
      expect(balance.features[0]?.balance).toBe(
        "12345678901234567890.1234567890123456789012345678899999999999",
      );
    });

    it("reads a ledger row that no longer parses as corrupt_record", async () => {
      const credits = new PostgresCreditLedger(db(), { schema });
      const ledgerId = uniqueId("l");
      await credits.createLedger({ ledgerId, subject: { tenantId: "t" } });
      await db().query(
        `UPDATE "${schema}".credit_ledgers SET payload = '{"ledgerId": 1}' WHERE ledger_id = $1`,
        [ledgerId],
      );
      await expect(credits.balance(ledgerId, "2026-01-02T00:00:00Z")).rejects.toMatchObject({
        code: "corrupt_record",
        id: ledgerId,
      });
    });
  });
}
