import type { LatchValidationError } from "@latch/core";
import {
  HOLD_TTL_MAX_MS,
  parseReserveRequest,
  type QuotaAuthorizer,
  type QuotaReservator,
  type ReserveRequest,
} from "@latch/core/adapter";
import { beforeEach, describe, expect, it } from "vitest";
import { abortedSignal, expectInvalidInput, expectLatchError, sleep } from "../expect-errors.js";
import { uniqueId } from "../fixtures.js";
import { type ConformanceSuite, type DescribeOptions, describeSuite, type SuiteOptions } from "../suite.js";
import { type HoldRetentionOptions, quotaRetentionCases } from "./hold-retention.js";
import { type QuotaPeriodOptions, quotaPeriodCases } from "./quota-periods.js";
import { quotaStringCases } from "./strings.js";

export interface QuotaReservatorSuiteOptions extends SuiteOptions<QuotaReservator & QuotaAuthorizer> {
  /**
   * A reservator to test (the read-only `check` is tested too). Called before every test;
   * tests use fresh accounts and hold ids, so a shared backend is fine. Expiry is checked with
   * real time (a 50 ms hold, then a 150 ms wait), by the store's own clock.
   */
  create: () => Promise<QuotaReservator & QuotaAuthorizer> | (QuotaReservator & QuotaAuthorizer);
  /**
   * A reservator with a given `holdRetentionMs` and a reader of its hold records: the suite
   * then checks that resolved holds are purged after the retention (a commit that comes too
   * late is `invalid_input` and charges nothing) and that storage stays bounded over many
   * reserve/commit cycles. Every Latch backend that purges holds passes it.
   */
  retention?: HoldRetentionOptions<QuotaReservator & QuotaAuthorizer>;
  /**
   * Budget periods: a reservator with an `endPeriod(account)` that ends the account's current
   * calendar period now by writing the store directly. The suite then checks resets without
   * lost holds, rolling windows (real waits of seconds), and 10,000 reserves across a boundary.
   * Every Latch backend passes it.
   */
  periods?: QuotaPeriodOptions;
}

const MINUTE = 60_000;

/** The error `fn` throws (the test fails when it returns). */
function thrownBy(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  return expect.fail("expected a throw");
}

/**
 * The `QuotaReservator` / `QuotaAuthorizer` contract as a vitest suite: the limit is checked
 * at reserve under 1,000 concurrent callers; reserves are retry-safe; each hold resolves once;
 * commit above the hold charges in full; expired holds free their amount; input validation;
 * with `retention`, resolved holds purged after it and storage bounded over many cycles.
 * Every test always runs; none can be switched off.
 *
 * @example
 * runConformance({
 *   name: "memory",
 *   suites: [quotaReservatorSuite({ create: () => new MemoryQuotaReservator() })],
 * });
 */
export function quotaReservatorSuite(options: QuotaReservatorSuiteOptions): ConformanceSuite {
  return { name: "QuotaReservator", register: (title) => quotaReservatorTests(title, options) };
}

/**
 * `quotaReservatorSuite` registered on its own, titled `QuotaReservator: <name>`.
 *
 * @deprecated Use `runConformance({ name, suites: [quotaReservatorSuite(options)] })`.
 */
export function describeQuotaReservator(options: QuotaReservatorSuiteOptions & DescribeOptions): void {
  describeSuite(quotaReservatorSuite(options), options);
}

function quotaReservatorTests(title: string, options: QuotaReservatorSuiteOptions): void {
  describe(title, () => {
    let quota: QuotaReservator & QuotaAuthorizer;
    let account: string;

    beforeEach(async () => {
      quota = await options.create();
      account = uniqueId("acct");
    });

    quotaStringCases({ quota: () => quota });

    const request = (amount: number, overrides: Partial<ReserveRequest> = {}): ReserveRequest => ({
      holdId: uniqueId("hold"),
      account,
      amount,
      ttlMs: MINUTE,
      ...overrides,
    });

    it("gives an account without a limit a limit of 0 and denies its reserves", async () => {
      expect(await quota.balance(account)).toEqual({ limit: 0, spent: 0, held: 0, available: 0 });
      expect(await quota.reserve(request(1))).toEqual({
        granted: false,
        reason: "insufficient",
        remaining: 0,
      });
      expect(await quota.check(account, 1)).toEqual({ allowed: false, remaining: 0 });
      expect(await quota.balance(account)).toEqual({ limit: 0, spent: 0, held: 0, available: 0 });
    });

    it("grants a reserve within the limit and holds its amount", async () => {
      await quota.setLimit(account, 100);
      expect(await quota.reserve(request(30))).toEqual({ granted: true, remaining: 70 });
      expect(await quota.balance(account)).toEqual({ limit: 100, spent: 0, held: 30, available: 70 });
      expect(await quota.check(account, 70)).toEqual({ allowed: true, remaining: 70 });
      expect(await quota.check(account, 71)).toEqual({ allowed: false, remaining: 70 });
      // check holds nothing
      expect(await quota.balance(account)).toEqual({ limit: 100, spent: 0, held: 30, available: 70 });
    });

    it("grants exactly 500 of 1,000 concurrent reserves of 1 unit against a limit of 500", async () => {
      await quota.setLimit(account, 500);
      const results = await Promise.all(Array.from({ length: 1_000 }, () => quota.reserve(request(1))));
      const granted = results.filter((r) => r.granted);
      const denied = results.filter((r) => !r.granted);
      expect(granted).toHaveLength(500);
      expect(denied).toHaveLength(500);
      for (const r of denied) expect(r).toMatchObject({ granted: false, reason: "insufficient" });
      for (const r of results) expect(r.remaining ?? 0).toBeGreaterThanOrEqual(0);
      // Each grant saw a distinct remaining amount: 499 … 0.
      const remaining = granted.map((r) => r.remaining).sort((a, b) => (a ?? 0) - (b ?? 0));
      expect(remaining).toEqual(Array.from({ length: 500 }, (_, i) => i));
      expect(await quota.balance(account)).toEqual({ limit: 500, spent: 0, held: 500, available: 0 });
    });

    it("denies a reserve above what is available without holding anything; a retry is evaluated afresh", async () => {
      await quota.setLimit(account, 10);
      const r = request(20);
      expect(await quota.reserve(r)).toEqual({ granted: false, reason: "insufficient", remaining: 10 });
      expect(await quota.balance(account)).toEqual({ limit: 10, spent: 0, held: 0, available: 10 });
      await quota.setLimit(account, 30);
      expect(await quota.reserve(r)).toEqual({ granted: true, remaining: 10 });
      expect((await quota.balance(account)).held).toBe(20);
    });

    it("holds once when a reserve is retried with the same holdId", async () => {
      await quota.setLimit(account, 100);
      const r = request(30);
      expect(await quota.reserve(r)).toMatchObject({ granted: true });
      expect(await quota.reserve({ ...r })).toMatchObject({ granted: true });
      const concurrentRetries = await Promise.all([quota.reserve(r), quota.reserve(r), quota.reserve(r)]);
      for (const result of concurrentRetries) expect(result.granted).toBe(true);
      expect(await quota.balance(account)).toEqual({ limit: 100, spent: 0, held: 30, available: 70 });
    });

    it("rejects the same holdId with another amount or account as an idempotency conflict", async () => {
      await quota.setLimit(account, 100);
      const r = request(30);
      await quota.reserve(r);
      await expectLatchError(quota.reserve({ ...r, amount: 31 }), "idempotency_conflict");
      const other = uniqueId("acct");
      await quota.setLimit(other, 100);
      await expectLatchError(quota.reserve({ ...r, account: other }), "idempotency_conflict");
      expect((await quota.balance(account)).held).toBe(30);
      expect((await quota.balance(other)).held).toBe(0);
    });

    it("charges the actual amount on commit and frees the hold", async () => {
      await quota.setLimit(account, 100);
      const r = request(30);
      await quota.reserve(r);
      expect(await quota.commit(r.holdId, 30)).toEqual({ committed: 30 });
      expect(await quota.balance(account)).toEqual({ limit: 100, spent: 30, held: 0, available: 70 });
    });

    it("charges once when a commit is repeated, and returns the same result", async () => {
      await quota.setLimit(account, 100);
      const r = request(30);
      await quota.reserve(r);
      expect(await quota.commit(r.holdId, 20)).toEqual({ committed: 20 });
      expect(await quota.commit(r.holdId, 20)).toEqual({ committed: 20 });
      const concurrent = await Promise.all([quota.commit(r.holdId, 20), quota.commit(r.holdId, 20)]);
      expect(concurrent).toEqual([{ committed: 20 }, { committed: 20 }]);
      expect(await quota.balance(account)).toEqual({ limit: 100, spent: 20, held: 0, available: 80 });
    });

    it("charges once when two commits of one hold race", async () => {
      await quota.setLimit(account, 100);
      const r = request(30);
      await quota.reserve(r);
      const results = await Promise.all(Array.from({ length: 20 }, () => quota.commit(r.holdId, 25)));
      for (const result of results) expect(result).toEqual({ committed: 25 });
      expect(await quota.balance(account)).toEqual({ limit: 100, spent: 25, held: 0, available: 75 });
    });

    it("rejects a second commit with another amount as an idempotency conflict", async () => {
      await quota.setLimit(account, 100);
      const r = request(30);
      await quota.reserve(r);
      await quota.commit(r.holdId, 20);
      await expectLatchError(quota.commit(r.holdId, 21), "idempotency_conflict");
      expect((await quota.balance(account)).spent).toBe(20);
    });

    it("frees the rest of the hold on a commit below it", async () => {
      await quota.setLimit(account, 100);
      const r = request(30);
      await quota.reserve(r);
      expect(await quota.commit(r.holdId, 10)).toEqual({ committed: 10 });
      expect(await quota.balance(account)).toEqual({ limit: 100, spent: 10, held: 0, available: 90 });
      const zero = request(5);
      await quota.reserve(zero);
      expect(await quota.commit(zero.holdId, 0)).toEqual({ committed: 0 });
      expect(await quota.balance(account)).toEqual({ limit: 100, spent: 10, held: 0, available: 90 });
    });

    it("charges a commit above the hold in full, and denies later reserves until there is room", async () => {
      await quota.setLimit(account, 100);
      const r = request(30);
      await quota.reserve(r);
      expect(await quota.commit(r.holdId, 150)).toEqual({ committed: 150 });
      expect(await quota.balance(account)).toEqual({ limit: 100, spent: 150, held: 0, available: 0 });
      expect(await quota.reserve(request(1))).toEqual({
        granted: false,
        reason: "insufficient",
        remaining: 0,
      });
      expect(await quota.check(account, 1)).toEqual({ allowed: false, remaining: 0 });
      await quota.setLimit(account, 200);
      expect(await quota.reserve(request(50))).toEqual({ granted: true, remaining: 0 });
    });

    it("frees the hold on void, and a second void is a no-op", async () => {
      await quota.setLimit(account, 100);
      const r = request(30);
      await quota.reserve(r);
      await quota.void(r.holdId);
      expect(await quota.balance(account)).toEqual({ limit: 100, spent: 0, held: 0, available: 100 });
      await quota.void(r.holdId);
      expect(await quota.balance(account)).toEqual({ limit: 100, spent: 0, held: 0, available: 100 });
    });

    it("rejects a commit after void as hold_already_resolved and charges nothing", async () => {
      await quota.setLimit(account, 100);
      const r = request(30);
      await quota.reserve(r);
      await quota.void(r.holdId);
      const error = await expectLatchError(quota.commit(r.holdId, 30), "hold_already_resolved");
      expect(error).toMatchObject({ holdId: r.holdId });
      expect(await quota.balance(account)).toEqual({ limit: 100, spent: 0, held: 0, available: 100 });
    });

    it("rejects a void after commit as hold_already_resolved and keeps the charge", async () => {
      await quota.setLimit(account, 100);
      const r = request(30);
      await quota.reserve(r);
      await quota.commit(r.holdId, 25);
      const error = await expectLatchError(quota.void(r.holdId), "hold_already_resolved");
      expect(error).toMatchObject({ holdId: r.holdId });
      expect(await quota.balance(account)).toEqual({ limit: 100, spent: 25, held: 0, available: 75 });
    });

    it("frees the amount of a hold that expired", async () => {
      await quota.setLimit(account, 10);
      expect(await quota.reserve(request(10, { ttlMs: 50 }))).toEqual({ granted: true, remaining: 0 });
      expect(await quota.reserve(request(1))).toMatchObject({ granted: false });
      await sleep(150);
      expect(await quota.balance(account)).toEqual({ limit: 10, spent: 0, held: 0, available: 10 });
      expect(await quota.reserve(request(10))).toEqual({ granted: true, remaining: 0 });
    });

    it("charges the actual amount of a commit that arrives after its hold expired", async () => {
      await quota.setLimit(account, 10);
      const r = request(10, { ttlMs: 50 });
      await quota.reserve(r);
      await sleep(150);
      expect(await quota.commit(r.holdId, 7)).toEqual({ committed: 7 });
      expect(await quota.balance(account)).toEqual({ limit: 10, spent: 7, held: 0, available: 3 });
      expect(await quota.commit(r.holdId, 7)).toEqual({ committed: 7 });
      expect((await quota.balance(account)).spent).toBe(7);
    });

    it("holds a reserve retried after its hold expired again, or denies it: never granted with nothing held", async () => {
      await quota.setLimit(account, 10);
      const r = request(6, { ttlMs: 50 });
      expect(await quota.reserve(r)).toEqual({ granted: true, remaining: 4 });
      await sleep(150);
      // Counted again, with the retry's ttlMs: the call it guards runs inside the limit.
      expect(await quota.reserve({ ...r, ttlMs: 60_000 })).toEqual({ granted: true, remaining: 4 });
      expect(await quota.balance(account)).toEqual({ limit: 10, spent: 0, held: 6, available: 4 });
      expect(await quota.reserve(request(5))).toMatchObject({ granted: false, reason: "insufficient" });
      expect(await quota.commit(r.holdId, 6)).toEqual({ committed: 6 });
      expect(await quota.balance(account)).toEqual({ limit: 10, spent: 6, held: 0, available: 4 });
      // A retry after the commit answers as the first reserve did and holds nothing.
      expect(await quota.reserve({ ...r, ttlMs: 60_000 })).toMatchObject({ granted: true });
      expect(await quota.balance(account)).toEqual({ limit: 10, spent: 6, held: 0, available: 4 });

      // No room left when the retry comes: denied like a new reserve, nothing held.
      const other = uniqueId("acct");
      await quota.setLimit(other, 10);
      const late = request(6, { account: other, ttlMs: 50 });
      expect(await quota.reserve(late)).toEqual({ granted: true, remaining: 4 });
      await sleep(150);
      expect(await quota.reserve(request(8, { account: other }))).toEqual({ granted: true, remaining: 2 });
      expect(await quota.reserve({ ...late, ttlMs: 60_000 })).toEqual({
        granted: false,
        reason: "insufficient",
        remaining: 2,
      });
      expect(await quota.balance(other)).toEqual({ limit: 10, spent: 0, held: 8, available: 2 });
    });

    it("treats a void after expiry as a no-op", async () => {
      await quota.setLimit(account, 10);
      const r = request(4, { ttlMs: 50 });
      await quota.reserve(r);
      await sleep(150);
      await quota.void(r.holdId);
      expect(await quota.balance(account)).toEqual({ limit: 10, spent: 0, held: 0, available: 10 });
    });

    it("keeps spend and holds when the limit changes", async () => {
      await quota.setLimit(account, 100);
      const spent = request(40);
      await quota.reserve(spent);
      await quota.commit(spent.holdId, 40);
      await quota.reserve(request(20));
      await quota.setLimit(account, 50);
      expect(await quota.balance(account)).toEqual({ limit: 50, spent: 40, held: 20, available: 0 });
      await quota.setLimit(account, 1_000);
      expect(await quota.balance(account)).toEqual({ limit: 1_000, spent: 40, held: 20, available: 940 });
    });

    it("keeps accounts apart", async () => {
      const other = uniqueId("acct");
      await quota.setLimit(account, 10);
      await quota.setLimit(other, 5);
      await quota.reserve(request(10));
      expect(await quota.reserve(request(5, { account: other }))).toEqual({ granted: true, remaining: 0 });
      expect((await quota.balance(account)).held).toBe(10);
      expect((await quota.balance(other)).held).toBe(5);
    });

    it("rejects commit and void of an unknown hold naming holdId", async () => {
      await expectInvalidInput(quota.commit(uniqueId("hold"), 1), "holdId");
      await expectInvalidInput(quota.void(uniqueId("hold")), "holdId");
    });

    it("answers every reserve request as core's one check does: ttlMs up to HOLD_TTL_MAX_MS holds, past it is invalid_input", async () => {
      await quota.setLimit(account, 100);
      const atLimit = request(10, { ttlMs: HOLD_TTL_MAX_MS });
      expect(await quota.reserve(atLimit)).toEqual({ granted: true, remaining: 90 });
      expect(await quota.reserve({ ...atLimit })).toEqual({ granted: true, remaining: 90 });
      // Each is refused with exactly the issues of core's parseReserveRequest, whatever the backend.
      const refused: unknown[] = [
        request(1, { ttlMs: HOLD_TTL_MAX_MS + 1 }),
        request(1, { ttlMs: Number.MAX_SAFE_INTEGER }),
        request(1, { ttlMs: 2 ** 53 }),
        request(1, { ttlMs: "60000" as unknown as number }),
        { ...request(1), extra: true },
        { holdId: uniqueId("hold"), account, amount: 1 },
      ];
      for (const bad of refused) {
        const error = await expectLatchError(quota.reserve(bad as ReserveRequest), "invalid_input");
        const expected = thrownBy(() => parseReserveRequest(bad));
        expect(error.message).toBe(expected.message);
        expect((error as LatchValidationError).issues).toEqual((expected as LatchValidationError).issues);
      }
      expect(await quota.balance(account)).toEqual({ limit: 100, spent: 0, held: 10, available: 90 });
      await quota.commit(atLimit.holdId, 10);
      expect(await quota.balance(account)).toEqual({ limit: 100, spent: 10, held: 0, available: 90 });
    });

    it("rejects bad input naming the field, and holds nothing", async () => {
      await quota.setLimit(account, 100);
      await expectInvalidInput(quota.reserve(request(0)), "amount");
      await expectInvalidInput(quota.reserve(request(-3)), "amount");
      await expectInvalidInput(quota.reserve(request(1.5)), "amount");
      await expectInvalidInput(quota.reserve(request(Number.NaN)), "amount");
      await expectInvalidInput(quota.reserve(request(2 ** 53)), "amount");
      await expectInvalidInput(quota.reserve(request(1, { ttlMs: 0 })), "ttlMs");
      await expectInvalidInput(quota.reserve(request(1, { ttlMs: 1.5 })), "ttlMs");
      await expectInvalidInput(quota.reserve(request(1, { holdId: "" })), "holdId");
      await expectInvalidInput(quota.reserve(request(1, { account: "" })), "account");
      expect(await quota.balance(account)).toEqual({ limit: 100, spent: 0, held: 0, available: 100 });

      await expectInvalidInput(quota.setLimit(account, -1), "limit");
      await expectInvalidInput(quota.setLimit(account, 0.5), "limit");
      expect((await quota.balance(account)).limit).toBe(100);
      await expectInvalidInput(quota.check(account, 0), "amount");

      const r = request(10);
      await quota.reserve(r);
      await expectInvalidInput(quota.commit(r.holdId, -1), "actual");
      await expectInvalidInput(quota.commit(r.holdId, 2.5), "actual");
      expect(await quota.balance(account)).toEqual({ limit: 100, spent: 0, held: 10, available: 90 });
    });

    it("rejects an aborted call and holds nothing", async () => {
      await quota.setLimit(account, 100);
      await expect(quota.reserve(request(5), abortedSignal())).rejects.toThrow();
      expect(await quota.balance(account)).toEqual({ limit: 100, spent: 0, held: 0, available: 100 });
    });
  });
  if (options.retention !== undefined) quotaRetentionCases(title, options.retention);
  if (options.periods !== undefined) quotaPeriodCases(title, options.periods);
}
