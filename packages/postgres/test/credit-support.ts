import { parseCreditUsage } from "@latch/core/adapter";
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
      snapshots: (snapshotEvery, snapshotThinning) =>
        new PostgresCreditLedger(
          db(),
          snapshotThinning ? { schema, snapshotEvery, snapshotThinning } : { schema, snapshotEvery },
        ),
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

    it("keeps balance snapshots in credit_snapshots and drops those a late event changes", async () => {
      const credits = new PostgresCreditLedger(db(), { schema, snapshotEvery: 3 });
      const featureId = uniqueId("f");
      const ledgerId = uniqueId("l");
      await credits.createFeature({ featureId, measure: { kind: "money", currency: "USD" } });
      await credits.createLedger({ ledgerId, subject: { tenantId: "t" } });
      await credits.grant({
        grantId: `${ledgerId}:g`,
        ledgerId,
        featureId,
        amount: "100",
        effectiveAt: "2026-01-01T00:00:00Z",
      });
      const day = (n: number) => new Date(Date.UTC(2026, 0, 1 + n)).toISOString();
      for (let i = 1; i <= 10; i++) {
        await credits.recordUsage({ ledgerId, featureId, eventId: `e${i}`, amount: "1", at: day(i) });
      }
      const positions = async () =>
        (
          await db().query(
            `SELECT position_ms::text AS p FROM "${schema}".credit_snapshots WHERE ledger_id = $1 ORDER BY position_ms`,
            [ledgerId],
          )
        ).rows.map((r) => new Date(Number((r as { p: string }).p)).toISOString());
      // One before every third usage event: before e4, e7 and e10.
      expect(await positions()).toEqual([day(4), day(7), day(10)]);
      await credits.recordUsage({ ledgerId, featureId, eventId: "late", amount: "2", at: day(5) });
      // Those after it dropped; the replay from day 4 took new ones (e4, e5, late | e6, e7, e8 | e9).
      expect(await positions()).toEqual([day(4), day(6), day(9)]);
      const balance = await credits.balance(ledgerId, day(11));
      expect(balance.features[0]).toMatchObject({ balance: "88", usage: "12" });
      // A snapshot that no longer parses is skipped (derived data): the answer comes from the
      // whole history, the same balance, never a wrong one and never a refused burn.
      await db().query(
        `UPDATE "${schema}".credit_snapshots SET state = '{"position": "x"}' WHERE ledger_id = $1`,
        [ledgerId],
      );
      expect((await credits.balance(ledgerId, day(11))).features[0]).toMatchObject({
        balance: "88",
        usage: "12",
      });
    });

    it("thins old snapshots to one per sparseEvery usage events, keeping the newest dense", async () => {
      const credits = new PostgresCreditLedger(db(), {
        schema,
        snapshotEvery: 2,
        snapshotThinning: { keepNewest: 4, sparseEvery: 10 },
      });
      const scratch = new PostgresCreditLedger(db(), { schema, snapshotEvery: 0 });
      const featureId = uniqueId("f");
      const ledgerId = uniqueId("l");
      await credits.createFeature({ featureId, measure: { kind: "money", currency: "USD" } });
      await credits.createLedger({ ledgerId, subject: { tenantId: "t" } });
      await credits.grant({
        grantId: `${ledgerId}:g`,
        ledgerId,
        featureId,
        amount: "1000",
        effectiveAt: "2026-01-01T00:00:00Z",
        expiration: { count: 20, unit: "DAY" },
      });
      const at = (i: number) => new Date(Date.UTC(2026, 0, 1, 1) + i * 3_600_000).toISOString();
      for (let i = 0; i < 120; i++) {
        await credits.recordUsage({ ledgerId, featureId, eventId: `e${i}`, amount: "1.5", at: at(i) });
      }
      const stored = async () =>
        (
          await db().query(
            `SELECT position_ms::text AS p, (state->>'count')::int AS c FROM "${schema}".credit_snapshots
             WHERE ledger_id = $1 ORDER BY position_ms`,
            [ledgerId],
          )
        ).rows as Array<{ p: string; c: number }>;
      const rows = await stored();
      // Without thinning: one per 2 events (59). Thinned: the newest 4, and before them the
      // first of every bucket of 10 usage events.
      expect(rows.length).toBeLessThan(20);
      const old = rows.slice(0, -4).map((r) => Math.floor(r.c / 10));
      expect(new Set(old).size).toBe(old.length);
      expect(rows.slice(-4).map((r) => r.c)).toEqual([112, 114, 116, 118]);
      // Late usage in the sparse part, then the numbers of a replay from scratch.
      await credits.recordUsage({ ledgerId, featureId, eventId: "late", amount: "4", at: at(33.5) });
      for (const i of [0, 33, 34, 60, 119, 480]) {
        expect(await credits.balance(ledgerId, at(i))).toEqual(await scratch.balance(ledgerId, at(i)));
      }
      expect(
        await credits.recordUsage({ ledgerId, featureId, eventId: "e50", amount: "1.5", at: at(50) }),
      ).toEqual(
        await scratch.recordUsage({ ledgerId, featureId, eventId: "e50", amount: "1.5", at: at(50) }),
      );
      expect((await stored()).length).toBeLessThan(20);
    });

    it("a history loaded without snapshots catches up in slices on its first write, as a replay from scratch", async () => {
      const credits = new PostgresCreditLedger(db(), { schema, snapshotEvery: 16 });
      const scratch = new PostgresCreditLedger(db(), { schema, snapshotEvery: 0 });
      const featureId = uniqueId("f");
      const ledgerId = uniqueId("l");
      await credits.createFeature({ featureId, measure: { kind: "money", currency: "USD" } });
      await credits.createLedger({ ledgerId, subject: { tenantId: "t" } });
      const start = Date.parse("2026-01-01T00:00:00Z");
      const at = (i: number) => new Date(start + i * 60_000).toISOString();
      await credits.grant({
        grantId: `${ledgerId}:a`,
        ledgerId,
        featureId,
        amount: "3000",
        effectiveAt: at(0),
        expiration: { count: 3, unit: "DAY" },
      });
      await credits.grant({
        grantId: `${ledgerId}:b`,
        ledgerId,
        featureId,
        amount: "9000",
        priority: 2,
        effectiveAt: at(0),
      });
      // 6,000 events written before snapshots existed (one a minute, some refunds).
      await db().query(
        `INSERT INTO "${schema}".credit_usage (ledger_id, feature_id, event_id, at_ms, amount, hash, version)
         SELECT $1, $2, 'old-' || i, $3::bigint + i * 60000, CASE WHEN i % 10 = 9 THEN -0.5 ELSE 1.25 END, 'h', 1
         FROM generate_series(1, 6000) AS i`,
        [ledgerId, featureId, String(start)],
      );
      const next = { ledgerId, featureId, eventId: "new", amount: "2", at: at(6001), enforce: true };
      const written = await credits.recordUsage(next);
      expect(written).toMatchObject({ status: "recorded" });
      const { rows } = await db().query(
        `SELECT count(*)::int AS n FROM "${schema}".credit_snapshots WHERE ledger_id = $1`,
        [ledgerId],
      );
      // Thinned by default: the newest 64, and before them one per 128 usage events (6,000 / 128).
      expect((rows[0] as { n: number }).n).toBeGreaterThan(64 + 30);
      expect((rows[0] as { n: number }).n).toBeLessThan(64 + 6000 / 128 + 5);
      const { enforce: _enforce, ...again } = next;
      expect(await scratch.recordUsage(again)).toEqual({ ...written, status: "duplicate" });
      const sameBalances = async () => {
        for (const i of [0, 1000, 2499, 2500, 4320, 5990, 6001, 7000]) {
          expect(await credits.balance(ledgerId, at(i))).toEqual(await scratch.balance(ledgerId, at(i)));
        }
      };
      await sameBalances();
      await credits.recordUsage({ ledgerId, featureId, eventId: "late", amount: "7", at: at(2500) });
      await sameBalances();
      for (const eventId of ["old-17", "old-2500", "old-5999"]) {
        const i = Number(eventId.slice(4));
        const retry = { ledgerId, featureId, eventId, amount: i % 10 === 9 ? "-0.5" : "1.25", at: at(i) };
        await db().query(
          `UPDATE "${schema}".credit_usage SET hash = $4 WHERE ledger_id = $1 AND feature_id = $2 AND event_id = $3`,
          [ledgerId, featureId, eventId, parseCreditUsage(retry).hash],
        );
        expect(await credits.recordUsage(retry)).toEqual(await scratch.recordUsage(retry));
      }
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
