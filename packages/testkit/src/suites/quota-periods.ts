import {
  HOLD_TTL_MAX_MS,
  QUOTA_ROLLING_BUCKETS,
  type QuotaAuthorizer,
  type QuotaPeriod,
  type QuotaReservator,
  quotaPeriodBounds,
  quotaRollingBucketMs,
  type ReserveRequest,
} from "@latch/core/adapter";
import { describe, expect, it } from "vitest";
import { expectLatchError, sleep } from "../expect-errors.js";
import { uniqueId } from "../fixtures.js";

type Quota = QuotaReservator & QuotaAuthorizer;

/** A reservator whose accounts' calendar periods a test can end now. */
export interface QuotaPeriodHarness {
  quota: Quota;
  /**
   * Makes the account's current calendar period end now, by writing the store directly (raw
   * SQL, raw Redis, or moving a test clock to the period's end): the next call must reset it.
   */
  endPeriod: (account: string) => Promise<void>;
  /**
   * How many rolling-window entries the store keeps for the account now, read from the store
   * directly (rows, hash fields, the memory store's counter): bounded by the window's 101
   * buckets whatever the traffic.
   */
  windowEntries: (account: string) => Promise<number>;
}

/** How the suite drives periods on a backend (see `QuotaReservatorSuiteOptions.periods`). */
export interface QuotaPeriodOptions {
  /** A reservator and its `endPeriod`; called per test. */
  create: () => Promise<QuotaPeriodHarness> | QuotaPeriodHarness;
  /**
   * A reservator on a clock the test sets (epoch ms), for the calendar cases at exact instants
   * (DST days, month ends, leap years). Only stores whose clock can be injected (memory) pass
   * it; Postgres checks the same golden table on its SQL bounds function.
   */
  atClock?: (now: () => number) => Quota;
}

const HOUR = 3_600_000;
const utc = (iso: string) => Date.parse(iso);

/**
 * Golden calendar periods, hand-computed: the instant, the period, and the bounds it must
 * have. Every backend's boundary arithmetic (core's `quotaPeriodBounds`, Postgres's SQL) is
 * checked against this table.
 */
export const QUOTA_PERIOD_CASES: readonly {
  title: string;
  period: { every: "day" | "week" | "month"; timeZone: string };
  at: number;
  start: number;
  end: number;
}[] = [
  {
    title: "a Berlin day of 23 hours (spring forward, last Sunday of March)",
    period: { every: "day", timeZone: "Europe/Berlin" },
    at: utc("2026-03-29T12:00:00Z"),
    start: utc("2026-03-28T23:00:00Z"),
    end: utc("2026-03-29T22:00:00Z"),
  },
  {
    title: "a Berlin day of 25 hours (fall back, last Sunday of October)",
    period: { every: "day", timeZone: "Europe/Berlin" },
    at: utc("2026-10-25T01:30:00Z"),
    start: utc("2026-10-24T22:00:00Z"),
    end: utc("2026-10-25T23:00:00Z"),
  },
  {
    title: "the last millisecond of a Berlin day belongs to it",
    period: { every: "day", timeZone: "Europe/Berlin" },
    at: utc("2026-03-29T21:59:59.999Z"),
    start: utc("2026-03-28T23:00:00Z"),
    end: utc("2026-03-29T22:00:00Z"),
  },
  {
    title: "a Berlin midnight starts the next day",
    period: { every: "day", timeZone: "Europe/Berlin" },
    at: utc("2026-03-29T22:00:00Z"),
    start: utc("2026-03-29T22:00:00Z"),
    end: utc("2026-03-30T22:00:00Z"),
  },
  {
    title: "a week from Monday across the March change (167 hours)",
    period: { every: "week", timeZone: "Europe/Berlin" },
    at: utc("2026-03-29T12:00:00Z"),
    start: utc("2026-03-22T23:00:00Z"),
    end: utc("2026-03-29T22:00:00Z"),
  },
  {
    title: "a UTC week: Sunday belongs to the week from the Monday before",
    period: { every: "week", timeZone: "UTC" },
    at: utc("2026-03-01T23:59:59Z"),
    start: utc("2026-02-23T00:00:00Z"),
    end: utc("2026-03-02T00:00:00Z"),
  },
  {
    title: "January 31 is in January; the month after it is February",
    period: { every: "month", timeZone: "UTC" },
    at: utc("2026-01-31T23:59:59.999Z"),
    start: utc("2026-01-01T00:00:00Z"),
    end: utc("2026-02-01T00:00:00Z"),
  },
  {
    title: "February of a leap year has 29 days",
    period: { every: "month", timeZone: "UTC" },
    at: utc("2028-02-29T12:00:00Z"),
    start: utc("2028-02-01T00:00:00Z"),
    end: utc("2028-03-01T00:00:00Z"),
  },
  {
    title: "February of a common year has 28 days",
    period: { every: "month", timeZone: "UTC" },
    at: utc("2027-02-28T12:00:00Z"),
    start: utc("2027-02-01T00:00:00Z"),
    end: utc("2027-03-01T00:00:00Z"),
  },
  {
    title: "a Berlin October ends an hour later in UTC than it began",
    period: { every: "month", timeZone: "Europe/Berlin" },
    at: utc("2026-10-31T22:30:00Z"),
    start: utc("2026-09-30T22:00:00Z"),
    end: utc("2026-10-31T23:00:00Z"),
  },
  {
    title: "a New York day of 23 hours (second Sunday of March)",
    period: { every: "day", timeZone: "America/New_York" },
    at: utc("2026-03-08T12:00:00Z"),
    start: utc("2026-03-08T05:00:00Z"),
    end: utc("2026-03-09T04:00:00Z"),
  },
  {
    title: "a Havana day of 25 hours starts at the first of its two midnights (fall back at 01:00 to 00:00)",
    period: { every: "day", timeZone: "America/Havana" },
    at: utc("2026-11-01T04:30:00Z"),
    start: utc("2026-11-01T04:00:00Z"),
    end: utc("2026-11-02T05:00:00Z"),
  },
  {
    title: "a Havana October ends at the first of November 1's two midnights",
    period: { every: "month", timeZone: "America/Havana" },
    at: utc("2026-10-31T12:00:00Z"),
    start: utc("2026-10-01T04:00:00Z"),
    end: utc("2026-11-01T04:00:00Z"),
  },
  {
    title:
      "an Azores Saturday ends at the first of the two midnights of Sunday (fall back at 01:00 to 00:00)",
    period: { every: "day", timeZone: "Atlantic/Azores" },
    at: utc("2026-10-24T12:00:00Z"),
    start: utc("2026-10-24T00:00:00Z"),
    end: utc("2026-10-25T00:00:00Z"),
  },
  {
    title: "a Santiago day whose midnight is skipped starts at the end of the gap",
    period: { every: "day", timeZone: "America/Santiago" },
    at: utc("2026-09-06T12:00:00Z"),
    start: utc("2026-09-06T04:00:00Z"),
    end: utc("2026-09-07T03:00:00Z"),
  },
];

/**
 * Period cases of the `QuotaReservator` contract: resets at calendar boundaries by the store's
 * clock without losing open holds (a hold reserved before a boundary and committed after it
 * charges the new period), rolling windows on real time (seconds), the period in `balance`,
 * and 10,000 reserves across a boundary granting exactly what the limit allows.
 */
export function quotaPeriodCases(title: string, options: QuotaPeriodOptions): void {
  describe(`${title} periods`, () => {
    const request = (account: string, amount: number, overrides: Partial<ReserveRequest> = {}) => ({
      holdId: uniqueId("hold"),
      account,
      amount,
      // endPeriod may move a test clock a day on: holds must outlive it.
      ttlMs: HOLD_TTL_MAX_MS,
      ...overrides,
    });

    it("shows the current calendar period in balance, by the store's clock", async () => {
      const { quota } = await options.create();
      const account = uniqueId("acct");
      const period: QuotaPeriod = { every: "day", timeZone: "Europe/Berlin" };
      const before = Date.now();
      await quota.setLimit(account, 100, { period });
      const balance = await quota.balance(account);
      const after = Date.now();
      // The store's clock is within a few seconds of ours; a test run across midnight sees either day.
      const expected = [quotaPeriodBounds({ ...period, timeZone: "Europe/Berlin" }, before - 5_000)];
      expected.push(quotaPeriodBounds({ ...period, timeZone: "Europe/Berlin" }, after + 5_000));
      expect(expected).toContainEqual({ start: balance.periodStart, end: balance.periodEnd });
      expect(balance).toMatchObject({ limit: 100, spent: 0, held: 0, available: 100 });
    });

    it("starts spent at 0 at a boundary and keeps open holds; a hold reserved before it charges the period it is committed in", async () => {
      const { quota, endPeriod } = await options.create();
      const account = uniqueId("acct");
      await quota.setLimit(account, 100, { period: { every: "day" } });
      const used = request(account, 50);
      await quota.reserve(used);
      await quota.commit(used.holdId, 50);
      const open = request(account, 30);
      expect(await quota.reserve(open)).toEqual({ granted: true, remaining: 20 });
      await endPeriod(account);
      // spent restarts; the open hold still counts against the new period.
      expect(await quota.balance(account)).toMatchObject({ limit: 100, spent: 0, held: 30, available: 70 });
      expect(await quota.check(account, 71)).toEqual({ allowed: false, remaining: 70 });
      expect(await quota.reserve(request(account, 71))).toMatchObject({ granted: false, remaining: 70 });
      expect(await quota.commit(open.holdId, 25)).toEqual({ committed: 25 });
      expect(await quota.balance(account)).toMatchObject({ spent: 25, held: 0, available: 75 });
      // A retried commit after another boundary charges nothing again.
      await endPeriod(account);
      expect(await quota.commit(open.holdId, 25)).toEqual({ committed: 25 });
      expect(await quota.balance(account)).toMatchObject({ spent: 0, held: 0, available: 100 });
    });

    it("never resets an account without a period, and setLimit without a period keeps the account's", async () => {
      const { quota } = await options.create();
      const plain = uniqueId("acct");
      await quota.setLimit(plain, 100);
      const r = request(plain, 40);
      await quota.reserve(r);
      await quota.commit(r.holdId, 40);
      const balance = await quota.balance(plain);
      expect(balance).toEqual({ limit: 100, spent: 40, held: 0, available: 60 });
      expect("periodEnd" in balance).toBe(false);

      const account = uniqueId("acct");
      await quota.setLimit(account, 100, { period: { every: "week", timeZone: "UTC" } });
      const first = await quota.balance(account);
      await quota.setLimit(account, 200);
      expect(await quota.balance(account)).toMatchObject({
        limit: 200,
        periodStart: first.periodStart,
        periodEnd: first.periodEnd,
      });
      // null removes it; spent is kept.
      const used = request(account, 10);
      await quota.reserve(used);
      await quota.commit(used.holdId, 10);
      await quota.setLimit(account, 200, { period: null });
      expect(await quota.balance(account)).toEqual({ limit: 200, spent: 10, held: 0, available: 190 });
    });

    it("counts in a rolling window only the usage committed within it; open holds keep counting", async () => {
      const { quota } = await options.create();
      const account = uniqueId("acct");
      await quota.setLimit(account, 100, { period: { rollingMs: 2_000 } });
      const used = request(account, 60);
      await quota.reserve(used);
      await quota.commit(used.holdId, 60);
      const open = request(account, 30);
      await quota.reserve(open);
      expect(await quota.balance(account)).toMatchObject({ spent: 60, held: 30, available: 10 });
      const balance = await quota.balance(account);
      // Buckets of 20 ms: the window starts at the oldest one it still counts.
      expect((balance.periodEnd ?? 0) - (balance.periodStart ?? 0)).toBeGreaterThanOrEqual(1_999);
      expect((balance.periodEnd ?? 0) - (balance.periodStart ?? 0)).toBeLessThanOrEqual(2_018);
      await sleep(2_500);
      expect(await quota.balance(account)).toMatchObject({ spent: 0, held: 30, available: 70 });
      expect(await quota.commit(open.holdId, 30)).toEqual({ committed: 30 });
      expect(await quota.balance(account)).toMatchObject({ spent: 30, held: 0, available: 70 });
      await sleep(2_500);
      expect(await quota.balance(account)).toMatchObject({ spent: 0, held: 0, available: 100 });
    });

    it("keeps a rolling window's storage bounded: 1,000 commits fill one or two buckets", async () => {
      const { quota, windowEntries } = await options.create();
      const account = uniqueId("acct");
      // Buckets of 36 s: the commits below fall in one, or two if a bucket ends meanwhile.
      await quota.setLimit(account, 1_000_000, { period: { rollingMs: 3_600_000 } });
      for (let wave = 0; wave < 20; wave++) {
        await Promise.all(
          Array.from({ length: 50 }, async () => {
            const r = request(account, 1);
            expect(await quota.reserve(r)).toMatchObject({ granted: true });
            await quota.commit(r.holdId, 1);
          }),
        );
      }
      expect(await quota.balance(account)).toMatchObject({ spent: 1_000, held: 0, available: 999_000 });
      expect(await windowEntries(account)).toBeGreaterThanOrEqual(1);
      expect(await windowEntries(account)).toBeLessThanOrEqual(2);
    }, 60_000);

    it("starts a rolling window's balance at the oldest bucket it still counts", async () => {
      const { quota } = await options.create();
      const account = uniqueId("acct");
      const rollingMs = 1_234_567; // buckets of 12,346 ms
      const width = quotaRollingBucketMs(rollingMs);
      expect(width).toBe(Math.ceil(rollingMs / QUOTA_ROLLING_BUCKETS));
      await quota.setLimit(account, 100, { period: { rollingMs } });
      const { periodStart = 0, periodEnd = 0 } = await quota.balance(account);
      expect(periodStart % width).toBe(0);
      expect(periodEnd - periodStart).toBeGreaterThanOrEqual(rollingMs - 1);
      expect(periodEnd - periodStart).toBeLessThanOrEqual(rollingMs + width - 2);
      expect(quotaPeriodBounds({ rollingMs }, periodEnd)).toEqual({ start: periodStart, end: periodEnd });
    });

    it("counts the spend before a change to a rolling window as committed at the change", async () => {
      const { quota } = await options.create();
      const account = uniqueId("acct");
      await quota.setLimit(account, 100);
      const used = request(account, 40);
      await quota.reserve(used);
      await quota.commit(used.holdId, 40);
      await quota.setLimit(account, 100, { period: { rollingMs: 2_000 } });
      expect(await quota.balance(account)).toMatchObject({ spent: 40, available: 60 });
      await sleep(2_500);
      expect(await quota.balance(account)).toMatchObject({ spent: 0, available: 100 });
    });

    it("grants exactly what the limit allows per period to 10,000 reserves across a boundary", async () => {
      const { quota, endPeriod } = await options.create();
      const account = uniqueId("acct");
      await quota.setLimit(account, 100, { period: { every: "day" } });
      const used = request(account, 60);
      await quota.reserve(used);
      await quota.commit(used.holdId, 60);
      const fire = (n: number) =>
        Promise.all(Array.from({ length: n }, () => quota.reserve(request(account, 1))));
      const before = fire(5_000);
      await endPeriod(account); // while the first 5,000 are in flight
      const results = [...(await before), ...(await fire(5_000))];
      const granted = results.filter((r) => r.granted).length;
      // 40 fit before the boundary (60 spent); after it spent is 0 but those holds still count.
      expect(granted).toBe(100);
      expect(await quota.balance(account)).toMatchObject({ spent: 0, held: 100, available: 0 });
    }, 120_000);

    it("rejects a bad period naming it, and changes nothing", async () => {
      const { quota } = await options.create();
      const account = uniqueId("acct");
      await quota.setLimit(account, 100);
      const bad: unknown[] = [
        { every: "year" },
        { every: "day", timeZone: "Mars/Olympus_Mons" },
        { every: "day", timeZone: "" },
        { rollingMs: 0 },
        { rollingMs: 1.5 },
        { every: "day", rollingMs: 1_000 },
        "monthly",
      ];
      for (const period of bad) {
        const error = await expectLatchError(
          quota.setLimit(account, 5, { period: period as QuotaPeriod }),
          "invalid_input",
        );
        const paths = ((error as { issues?: { path?: unknown }[] }).issues ?? []).map((i) => String(i.path));
        expect(paths.length > 0 && paths.every((path) => path.startsWith("period"))).toBe(true);
      }
      expect(await quota.balance(account)).toEqual({ limit: 100, spent: 0, held: 0, available: 100 });
    });

    if (options.atClock !== undefined) {
      const atClock = options.atClock;
      for (const c of QUOTA_PERIOD_CASES) {
        it(`resets at the exact boundary: ${c.title}`, async () => {
          let now = c.at;
          const quota = atClock(() => now);
          const account = uniqueId("acct");
          await quota.setLimit(account, 10, { period: c.period });
          expect(await quota.balance(account)).toMatchObject({ periodStart: c.start, periodEnd: c.end });
          const r = request(account, 4);
          await quota.reserve(r);
          await quota.commit(r.holdId, 4);
          now = c.end - 1;
          expect(await quota.balance(account)).toMatchObject({ spent: 4, periodEnd: c.end });
          now = c.end;
          expect(await quota.balance(account)).toMatchObject({ spent: 0, periodStart: c.end });
        });
      }

      it("drops a rolling window's commit when its whole bucket has left the window", async () => {
        let now = 1_050;
        const quota = atClock(() => now);
        const account = uniqueId("acct");
        // rollingMs 10,000: buckets of 100 ms, [1000, 1100) recorded at 1099.
        await quota.setLimit(account, 100, { period: { rollingMs: 10_000 } });
        const spend = async (amount: number) => {
          const r = request(account, amount);
          await quota.reserve(r);
          await quota.commit(r.holdId, amount);
        };
        await spend(4);
        now = 1_099;
        await spend(3); // same bucket as the first
        now = 1_100;
        await spend(2); // the next bucket
        now = 11_098; // 1099 > 11098 - 10000: the first bucket still counts, both its commits
        expect(await quota.balance(account)).toMatchObject({ spent: 9, periodStart: 1_000 });
        now = 11_099; // the whole bucket [1000, 1100) has left (1099 <= 1099)
        expect(await quota.balance(account)).toMatchObject({ spent: 2, periodStart: 1_100 });
        now = 11_198;
        expect(await quota.balance(account)).toMatchObject({ spent: 2 });
        now = 11_199;
        expect(await quota.balance(account)).toMatchObject({ spent: 0, available: 100 });
      });

      it("resets a Berlin day after 23 hours and the next after 25 (DST, by the clock)", async () => {
        let now = utc("2026-03-28T23:00:00Z");
        const quota = atClock(() => now);
        const account = uniqueId("acct");
        await quota.setLimit(account, 10, { period: { every: "day", timeZone: "Europe/Berlin" } });
        const spend = async () => {
          const r = request(account, 10);
          expect(await quota.reserve(r)).toMatchObject({ granted: true });
          await quota.commit(r.holdId, 10);
        };
        await spend();
        now += 23 * HOUR - 1;
        expect(await quota.check(account, 1)).toEqual({ allowed: false, remaining: 0 });
        now += 1;
        await spend();
        now = utc("2026-10-24T22:00:00Z");
        await spend();
        now += 24 * HOUR;
        expect(await quota.check(account, 1)).toEqual({ allowed: false, remaining: 0 });
        now += HOUR;
        expect(await quota.check(account, 1)).toEqual({ allowed: true, remaining: 10 });
      });

      it("grants 100 per day to 10,000 reserves while the clock crosses midnight", async () => {
        const midnight = utc("2026-02-01T00:00:00Z");
        let now = midnight - 1_000;
        const quota = atClock(() => now);
        const account = uniqueId("acct");
        await quota.setLimit(account, 100, { period: { every: "day" } });
        const granted: number[] = [];
        // 20 waves of 500 concurrent reserve-and-commits, one clock reading per wave.
        for (let wave = 0; wave < 20; wave++) {
          now = midnight + (wave - 10) * 100; // the 11th wave is the first of February 1
          const results = await Promise.all(
            Array.from({ length: 500 }, async () => {
              const r = request(account, 1);
              const result = await quota.reserve(r);
              if (result.granted) await quota.commit(r.holdId, 1);
              return result.granted;
            }),
          );
          granted.push(results.filter(Boolean).length);
        }
        expect(granted.slice(0, 10).reduce((a, b) => a + b)).toBe(100);
        expect(granted.slice(10).reduce((a, b) => a + b)).toBe(100);
        expect(await quota.balance(account)).toMatchObject({
          spent: 100,
          held: 0,
          periodStart: midnight,
          periodEnd: utc("2026-02-02T00:00:00Z"),
        });
      });
    }
  });
}
