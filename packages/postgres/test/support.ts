import { randomBytes } from "node:crypto";
import {
  type ConformanceSuite,
  observationStoreSuite,
  quotaReservatorSuite,
  ratedRecordStoreSuite,
  usageCounterSuite,
} from "@latch/testkit";
import { afterAll, describe, expect, it } from "vitest";
import {
  MIGRATIONS,
  migrate,
  PostgresObservationStore,
  PostgresQuota,
  PostgresRatedRecordStore,
  PostgresUsageCounter,
  type Queryable,
} from "../src/index.js";

/** The server every server test runs against; unreachable means the tests fail, never skip. */
export const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** Every shipped migration's version, and the newest: what a fresh `migrate` applies. */
export const ALL = MIGRATIONS.map((m) => m.version);
export const LATEST = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;

/** A fresh schema name for one test run. */
export function freshSchema(label: string): string {
  return `latch_${label}_${process.pid}_${randomBytes(4).toString("hex")}`;
}

/** Counts rows with raw SQL, bypassing the stores. */
export async function count(db: Queryable, sql: string, params: unknown[]): Promise<number> {
  const { rows } = await db.query(`SELECT count(*)::int AS n FROM (${sql}) AS t`, params);
  return Number((rows[0] as { n: number | string }).n);
}

/**
 * Reserve/commit cycles of the quota hold-retention storage test (the server is faster than
 * PGlite). The credit ledger's cycles are `creditSuites`' last argument.
 */
export interface RetentionCycles {
  quota: number;
}

/** Hold records kept now for some quota accounts, or credit ledgers, read with raw SQL. */
export function storedHolds(db: Queryable, schema: string, table: "quota" | "credit") {
  return (owners: readonly string[]) =>
    table === "quota"
      ? count(db, `SELECT 1 FROM "${schema}".quota_holds WHERE account = ANY($1::text[])`, [owners])
      : count(db, `SELECT 1 FROM "${schema}".credit_holds WHERE ledger_id = ANY($1::text[])`, [owners]);
}

/**
 * The observation, rated-record, quota and usage-counter suites of `@latch/testkit` against
 * `db()` in `schema`, with independent raw-SQL readers (credits: `creditSuites`; API keys:
 * `apiKeySuite`). `db` is read lazily: the caller connects and migrates before the first test.
 */
export function storeSuites(
  db: () => Queryable,
  schema: string,
  cycles: RetentionCycles,
): ConformanceSuite[] {
  const options = { schema };
  return [
    observationStoreSuite({
      create: () => new PostgresObservationStore(db(), options),
      inspect: {
        countObservations: (id) =>
          count(db(), `SELECT 1 FROM "${schema}".observations WHERE event_id = $1`, [id]),
      },
    }),
    ratedRecordStoreSuite({
      create: () => new PostgresRatedRecordStore(db(), options),
      inspect: {
        countVersions: (id) =>
          count(db(), `SELECT 1 FROM "${schema}".rated_records WHERE event_id = $1`, [id]),
      },
    }),
    quotaReservatorSuite({
      create: () => new PostgresQuota(db(), options),
      retention: {
        create: (holdRetentionMs) => {
          const quota = new PostgresQuota(db(), { ...options, holdRetentionMs });
          return {
            store: quota,
            storedHolds: storedHolds(db(), schema, "quota"),
            purge: () => quota.purgeResolvedHolds(),
          };
        },
        cycles: cycles.quota,
      },
      periods: {
        create: () => ({
          quota: new PostgresQuota(db(), options),
          // Ends the current calendar period now, by the database clock: the next call rolls it.
          // On a server whose sessions default to serializable, the UPDATE can lose to the
          // reserves in flight (40001): retried as any client would.
          endPeriod: async (account) => {
            for (let attempt = 1; ; attempt++) {
              try {
                await db().query(
                  `UPDATE "${schema}".quota_accounts SET period_end = clock_timestamp() WHERE account = $1`,
                  [account],
                );
                return;
              } catch (error) {
                const code = (error as { code?: string }).code;
                if ((code !== "40001" && code !== "40P01") || attempt >= 50) throw error;
              }
            }
          },
          windowEntries: async (account) => {
            const { rows } = await db().query(
              `SELECT count(*)::int AS n FROM "${schema}".quota_window_usage WHERE account = $1`,
              [account],
            );
            return (rows[0] as { n: number }).n;
          },
        }),
      },
    }),
    usageCounterSuite({ create: () => new PostgresUsageCounter(db(), options) }),
  ];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Moves the expiry of the matching holds into the past (by the database clock), as if their
 * TTL had run out while their accounts stayed idle. Waiting out a short TTL instead would let
 * the setup's own reserves expire earlier holds lazily on a slow machine.
 */
async function expireHolds(db: Queryable, schema: string, holdIdPattern: string): Promise<void> {
  await db.query(
    `UPDATE "${schema}".quota_holds SET expires_at = clock_timestamp() - interval '1 second'
     WHERE hold_id LIKE $1 AND status = 'held'`,
    [holdIdPattern],
  );
}

/** Per account: the stored `held` and the sum of its holds still marked held (equal when consistent). */
async function heldVersusHolds(db: Queryable, schema: string): Promise<Record<string, [string, string]>> {
  const { rows } = await db.query(
    `SELECT a.account, a.held::text AS held,
       coalesce((SELECT sum(h.amount) FROM "${schema}".quota_holds h
                 WHERE h.account = a.account AND h.status = 'held'), 0)::text AS live
     FROM "${schema}".quota_accounts a ORDER BY a.account`,
  );
  return Object.fromEntries(
    (rows as Array<{ account: string; held: string; live: string }>).map((r) => [
      r.account,
      [r.held, r.live],
    ]),
  );
}

/**
 * `PostgresQuota.sweepExpired` and the expiry of holds in `balance`, each test in a schema of
 * its own (so `released` counts only its holds). `fresh` returns a new, unmigrated schema name.
 */
export function describeQuotaSweep(name: string, db: () => Queryable, fresh: () => string): void {
  describe(`${name}: quota expiry and sweepExpired`, () => {
    const created: string[] = [];
    async function setup(): Promise<{ schema: string; quota: PostgresQuota }> {
      const schema = fresh();
      created.push(schema);
      await migrate(db(), { schema });
      return { schema, quota: new PostgresQuota(db(), { schema }) };
    }
    afterAll(async () => {
      for (const schema of created) await db().query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    });

    it("balance and check do not count holds past their expiry, even before any sweep", async () => {
      const { schema, quota } = await setup();
      await quota.setLimit("a", 100);
      // Each reserve expires its account's stale holds: h1 and h2 must outlive the reserves after
      // them, so 2 s (with 1 s, a loaded machine's second-long stall between two reserves let h2's
      // or h3's reserve expire h1 and store 40 held).
      for (const [holdId, ttlMs] of [
        ["h1", 2_000],
        ["h2", 2_000],
        ["h3", 600_000],
      ] as const) {
        expect(await quota.reserve({ holdId, account: "a", amount: 20, ttlMs })).toMatchObject({
          granted: true,
        });
      }
      await sleep(2_300); // a real TTL running out (a sleep only overshoots)
      // Stored: still 60 held (nothing has expired them)…
      expect(await heldVersusHolds(db(), schema)).toEqual({ a: ["60", "60"] });
      // …but the reads already release the two expired holds.
      expect(await quota.balance("a")).toEqual({ limit: 100, spent: 0, held: 20, available: 80 });
      expect(await quota.check("a", 80)).toEqual({ allowed: true, remaining: 80 });
      expect(await quota.check("a", 81)).toEqual({ allowed: false, remaining: 80 });
    });

    it("releases expired holds on several accounts in bounded batches; balances stay consistent; a second sweep releases nothing", async () => {
      const { schema, quota } = await setup();
      const accounts = ["acct-a", "acct-b", "acct-c", "acct-d"];
      for (const account of accounts) {
        await quota.setLimit(account, 1_000);
        for (let i = 0; i < 5; i++) {
          await quota.reserve({ holdId: `${account}-x${i}`, account, amount: 10 + i, ttlMs: 600_000 });
        }
        await quota.reserve({ holdId: `${account}-live`, account, amount: 100, ttlMs: 600_000 });
        await quota.reserve({ holdId: `${account}-done`, account, amount: 50, ttlMs: 600_000 });
        await quota.commit(`${account}-done`, 30);
      }
      await expireHolds(db(), schema, "%-x%");
      const before = await Promise.all(accounts.map((a) => quota.balance(a)));
      expect(before).toEqual(accounts.map(() => ({ limit: 1_000, spent: 30, held: 100, available: 870 })));
      expect(await heldVersusHolds(db(), schema)).toEqual(
        Object.fromEntries(accounts.map((a) => [a, ["160", "160"]])),
      );

      // 20 expired holds in batches of 3: seven statements, the last one short.
      expect(await quota.sweepExpired({ limit: 3 })).toEqual({ released: 20 });
      expect(await heldVersusHolds(db(), schema)).toEqual(
        Object.fromEntries(accounts.map((a) => [a, ["100", "100"]])),
      );
      expect(await Promise.all(accounts.map((a) => quota.balance(a)))).toEqual(before);
      expect(await count(db(), `SELECT 1 FROM "${schema}".quota_holds WHERE status = 'expired'`, [])).toBe(
        20,
      );

      // Idempotent: nothing left to release, nothing changes.
      expect(await quota.sweepExpired()).toEqual({ released: 0 });
      expect(await heldVersusHolds(db(), schema)).toEqual(
        Object.fromEntries(accounts.map((a) => [a, ["100", "100"]])),
      );
      // The contract still holds for swept holds: commit after expiry charges, void is a no-op.
      expect(await quota.commit("acct-a-x0", 7)).toEqual({ committed: 7 });
      await quota.void("acct-b-x0");
      expect(await quota.balance("acct-a")).toEqual({ limit: 1_000, spent: 37, held: 100, available: 863 });
      expect(await quota.balance("acct-b")).toEqual(before[1]);
      expect(await heldVersusHolds(db(), schema)).toEqual(
        Object.fromEntries(accounts.map((a) => [a, ["100", "100"]])),
      );
    });

    it("never frees a hold twice when sweeps run concurrently with reserves, commits and voids", async () => {
      const { schema, quota } = await setup();
      const accounts = Array.from({ length: 8 }, (_, i) => `acct-${i}`);
      for (const account of accounts) {
        await quota.setLimit(account, 1_000);
        for (let i = 0; i < 25; i++) {
          await quota.reserve({ holdId: `${account}-old-${i}`, account, amount: 20, ttlMs: 600_000 });
        }
      }
      await expireHolds(db(), schema, "%-old-%"); // 500 of each account's 1,000 held by expired holds
      const work: Array<Promise<unknown>> = [];
      for (let s = 0; s < 3; s++) work.push(quota.sweepExpired({ limit: 7 }));
      for (const account of accounts) {
        for (let i = 0; i < 25; i++) {
          work.push(
            (async () => {
              const holdId = `${account}-new-${i}`;
              // 25 × 40 = 1,000: granted only if every expired hold is released exactly once.
              const r = await quota.reserve({ holdId, account, amount: 40, ttlMs: 600_000 });
              expect(r.granted).toBe(true);
              if (i % 5 === 0) await quota.commit(holdId, 40);
            })(),
          );
        }
        work.push(quota.void(`${account}-old-0`), quota.commit(`${account}-old-1`, 0));
      }
      const [a, b, c] = (await Promise.all(work)) as Array<{ released: number }>;
      const late = await quota.sweepExpired();
      const released = (a?.released ?? 0) + (b?.released ?? 0) + (c?.released ?? 0) + late.released;
      expect(released).toBeLessThanOrEqual(8 * 24); // at most every expired hold but the committed one
      expect(await count(db(), `SELECT 1 FROM "${schema}".quota_holds WHERE status = 'held'`, [])).toBe(
        8 * 20,
      );
      const consistent = await heldVersusHolds(db(), schema);
      expect(consistent).toEqual(Object.fromEntries(accounts.map((a) => [a, ["800", "800"]])));
      for (const account of accounts) {
        expect(await quota.balance(account)).toEqual({ limit: 1_000, spent: 200, held: 800, available: 0 });
      }
      expect(await quota.sweepExpired()).toEqual({ released: 0 });
    }, 60_000);

    it("rejects a limit that is not an integer from 1 to 100000", async () => {
      const { quota } = await setup();
      for (const limit of [0, -1, 1.5, 100_001]) {
        await expect(quota.sweepExpired({ limit })).rejects.toMatchObject({ code: "invalid_input" });
      }
    });
  });
}
