import type { CreditLedger, QuotaAuthorizer, QuotaReservator } from "@latch/core/adapter";
import { describe, expect, it } from "vitest";
import { expectInvalidInput, sleep } from "../expect-errors.js";
import { uniqueId } from "../fixtures.js";

/** A store made with a short `holdRetentionMs`, with an independent reader of its hold records. */
export interface RetainedStore<S> {
  store: S;
  /**
   * How many hold records the backend keeps now for `owners` (quota accounts or credit
   * ledgers), together: resolved ones within the retention included. An independent reader
   * where the backend allows one (raw SQL, raw Redis). A store made for one test may count all
   * of its records.
   */
  storedHolds: (owners: readonly string[]) => Promise<number>;
  /** Purges now what is due (the backend's `purgeResolvedHolds`). */
  purge: () => Promise<unknown>;
}

/**
 * Hold retention (see core's `contracts/hold-retention.ts`): a store with the given
 * `holdRetentionMs`. Backends that purge resolved holds pass it, and the suite then checks
 * that they are purged after the retention (a late commit fails loudly and charges nothing)
 * and that storage stays bounded over many reserve/commit cycles.
 */
export interface HoldRetentionOptions<S> {
  create: (holdRetentionMs: number) => Promise<RetainedStore<S>> | RetainedStore<S>;
  /**
   * Reserve/commit cycles of the storage test, run in 10 rounds. Default 100,000 for quota,
   * 10,000 for credits; a slow backend may run fewer (at least 1,000).
   */
  cycles?: number;
  /** Cycles in flight at once (default 8). */
  concurrency?: number;
}

/** The retention of the first test: long enough for the in-retention retries on a loaded machine. */
const RETENTION_MS = 2_000;
/** The retention of the storage test: several rounds' worth of holds must go while it runs. */
const STORAGE_RETENTION_MS = 500;
const ROUNDS = 10;

/**
 * Runs `cycle(i, worker)` for i in [from, to) on `concurrency` workers. The first failure stops
 * every worker before its next cycle and is thrown once all have stopped: no cycle keeps
 * running into later tests (on a database, its open transactions would hold their change logs
 * back).
 */
async function inFlight(
  from: number,
  to: number,
  concurrency: number,
  cycle: (i: number, worker: number) => Promise<void>,
): Promise<void> {
  let next = from;
  let failure: { error: unknown } | undefined;
  const worker = async (w: number) => {
    while (failure === undefined && next < to) {
      const i = next++;
      try {
        await cycle(i, w);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  if (failure !== undefined) throw failure.error;
}

/**
 * Runs `rounds` rounds of `perRound` cycles, waiting out the retention between rounds, and
 * returns the hold records counted after each round. Each round's holds are due during the
 * next, so a store that purges keeps about one or two rounds' worth; one that never purges
 * keeps every round's.
 */
async function boundedRun(
  perRound: number,
  concurrency: number,
  cycle: (i: number, worker: number) => Promise<void>,
  stored: () => Promise<number>,
): Promise<number[]> {
  const counts: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    await inFlight(round * perRound, (round + 1) * perRound, concurrency, cycle);
    counts.push(await stored());
    await sleep(STORAGE_RETENTION_MS + 200);
  }
  return counts;
}

/**
 * Each count is at most two rounds' worth (plus one purge batch of slack), and at most half the
 * cycles run: a store that never purged would hold a record per cycle.
 */
function expectBounded(counts: readonly number[], perRound: number, cycles: number): void {
  const bound = Math.min(2 * perRound + 1_000, cycles / 2);
  for (const [round, count] of counts.entries()) {
    expect(count, `hold records after round ${round + 1} of ${ROUNDS}`).toBeLessThanOrEqual(bound);
  }
}

/**
 * The storage test's timeout: five minutes, or 5 ms a cycle when more (100,000 Postgres cycles
 * take about a minute on a quiet machine, several when a second test run shares the cores).
 */
const storageTimeoutMs = (cycles: number | undefined, fallback: number) =>
  Math.max(300_000, (cycles ?? fallback) * 5);

/** Cycles per round, from the option or the default (never below 100 per round). */
const perRoundOf = (cycles: number | undefined, fallback: number) =>
  Math.max(100, Math.floor((cycles ?? fallback) / ROUNDS));

/** Quota hold retention cases, run by `quotaReservatorSuite` when `retention` is given, titled after it. */
export function quotaRetentionCases(
  title: string,
  options: HoldRetentionOptions<QuotaReservator & QuotaAuthorizer>,
): void {
  describe(`${title}: resolved holds are purged after their retention`, () => {
    it("purges committed, voided and expired holds after the retention; a late commit or void is invalid_input and charges nothing", async () => {
      const { store: quota, storedHolds, purge } = await options.create(RETENTION_MS);
      const account = uniqueId("retention");
      const hold = (id: string) => `${account}:${id}`;
      await quota.setLimit(account, 100);
      expect(await quota.reserve({ holdId: hold("late"), account, amount: 5, ttlMs: 100 })).toMatchObject({
        granted: true,
      });
      expect(await quota.reserve({ holdId: hold("c"), account, amount: 30, ttlMs: 60_000 })).toMatchObject({
        granted: true,
      });
      expect(await quota.reserve({ holdId: hold("v"), account, amount: 10, ttlMs: 60_000 })).toMatchObject({
        granted: true,
      });
      await sleep(300); // "late" expires unresolved
      expect(await quota.commit(hold("c"), 25)).toEqual({ committed: 25 });
      await quota.void(hold("v"));
      // Within the retention, retries are answered as the first call was.
      expect(await quota.commit(hold("c"), 25)).toEqual({ committed: 25 });
      await quota.void(hold("v"));
      expect(await quota.reserve({ holdId: hold("c"), account, amount: 30, ttlMs: 60_000 })).toMatchObject({
        granted: true,
      });
      expect(await quota.balance(account)).toEqual({ limit: 100, spent: 25, held: 0, available: 75 });
      expect(await storedHolds([account])).toBe(3);

      await sleep(RETENTION_MS + 500);
      await purge();
      expect(await storedHolds([account])).toBe(0);
      // Too late: the holdIds are unknown. Loud, and nothing is charged again.
      await expectInvalidInput(quota.commit(hold("c"), 25), "holdId");
      await expectInvalidInput(quota.commit(hold("late"), 5), "holdId");
      await expectInvalidInput(quota.void(hold("v")), "holdId");
      expect(await quota.balance(account)).toEqual({ limit: 100, spent: 25, held: 0, available: 75 });
      // A reserve with a purged holdId is a new hold.
      expect(await quota.reserve({ holdId: hold("c"), account, amount: 30, ttlMs: 60_000 })).toEqual({
        granted: true,
        remaining: 45,
      });
      expect(await quota.balance(account)).toEqual({ limit: 100, spent: 25, held: 30, available: 45 });
    }, 60_000);

    it(
      "keeps storage bounded over many reserve/commit cycles",
      async () => {
        const { store: quota, storedHolds, purge } = await options.create(STORAGE_RETENTION_MS);
        const perRound = perRoundOf(options.cycles, 100_000);
        const cycles = perRound * ROUNDS;
        // One account per worker: the workers do not queue on one account's lock.
        const accounts = Array.from({ length: options.concurrency ?? 8 }, () => uniqueId("retention-load"));
        for (const account of accounts) await quota.setLimit(account, cycles);
        const stored = () => storedHolds(accounts);
        const counts = await boundedRun(
          perRound,
          accounts.length,
          async (i, worker) => {
            const account = accounts[worker] as string;
            const holdId = `${account}:${i}`;
            const r = await quota.reserve({ holdId, account, amount: 1, ttlMs: 60_000 });
            if (!r.granted) expect.fail(`reserve ${i} was not granted`);
            await quota.commit(holdId, 1);
          },
          stored,
        );
        // Every cycle charged once; the records of all but the last round or two are gone.
        const spent = await Promise.all(accounts.map(async (a) => (await quota.balance(a)).spent));
        expect(spent.reduce((a, b) => a + b, 0)).toBe(cycles);
        for (const account of accounts) expect((await quota.balance(account)).held).toBe(0);
        expectBounded(counts, perRound, cycles);
        await purge();
        expect(await stored()).toBe(0);
      },
      storageTimeoutMs(options.cycles, 100_000),
    );
  });
}

/** Credit hold retention cases, run by `creditLedgerSuite` when `retention` is given, titled after it. */
export function creditRetentionCases(title: string, options: HoldRetentionOptions<CreditLedger>): void {
  describe(`${title}: resolved holds are purged after their retention`, () => {
    async function setup(credits: CreditLedger, amount: string) {
      const ledgerId = uniqueId("retention-ledger");
      const featureId = uniqueId("retention-tokens");
      await credits.createFeature({ featureId, measure: { kind: "quantity", meters: ["input_tokens"] } });
      await credits.createLedger({ ledgerId, subject: { tenantId: uniqueId("tenant") } });
      await credits.grant({
        grantId: `${ledgerId}:g`,
        ledgerId,
        featureId,
        amount,
        effectiveAt: "2026-01-01T00:00:00Z",
      });
      return { ledgerId, featureId };
    }

    it("purges committed, voided and expired holds after the retention; a late commit is invalid_input and burns nothing", async () => {
      const { store: credits, storedHolds, purge } = await options.create(RETENTION_MS);
      const { ledgerId, featureId } = await setup(credits, "100");
      const hold = (id: string) => `${ledgerId}:${id}`;
      const reserve = (id: string, amount: string, ttlMs = 60_000) =>
        credits.reserve({ holdId: hold(id), ledgerId, featureId, amount, ttlMs });
      const commit = (id: string) =>
        credits.commitHold({
          holdId: hold(id),
          eventId: `${ledgerId}:call`,
          amount: "25",
          at: "2026-03-01T00:00:00Z",
        });
      expect(await reserve("late", "5", 100)).toMatchObject({ granted: true });
      expect(await reserve("c", "30")).toMatchObject({ granted: true });
      expect(await reserve("v", "10")).toMatchObject({ granted: true });
      await sleep(300);
      expect(await commit("c")).toMatchObject({ status: "committed" });
      await credits.voidHold(hold("v"));
      expect(await commit("c")).toMatchObject({ status: "committed" }); // a retry within the retention
      expect(await storedHolds([ledgerId])).toBe(3);
      const balance = async () =>
        (await credits.balance(ledgerId, "2026-03-02T00:00:00Z")).features.find(
          (f) => f.featureId === featureId,
        )?.balance;
      expect(await balance()).toBe("75");

      await sleep(RETENTION_MS + 500);
      await purge();
      expect(await storedHolds([ledgerId])).toBe(0);
      await expectInvalidInput(commit("c"), "holdId");
      await expectInvalidInput(commit("late"), "holdId");
      await expectInvalidInput(credits.voidHold(hold("v")), "holdId");
      expect(await balance()).toBe("75"); // burned once
      expect(await reserve("c", "30")).toEqual({ granted: true, holdId: hold("c"), available: "45" });
    }, 60_000);

    it(
      "keeps storage bounded over many reserve/commit and reserve/void cycles",
      async () => {
        const { store: credits, storedHolds, purge } = await options.create(STORAGE_RETENTION_MS);
        const perRound = perRoundOf(options.cycles, 10_000);
        const cycles = perRound * ROUNDS;
        // One ledger per worker: the workers do not queue on one ledger's lock.
        const ledgers = await Promise.all(
          Array.from({ length: options.concurrency ?? 8 }, () => setup(credits, String(cycles))),
        );
        const stored = () => storedHolds(ledgers.map((l) => l.ledgerId));
        const counts = await boundedRun(
          perRound,
          ledgers.length,
          async (i, worker) => {
            const { ledgerId, featureId } = ledgers[worker] as { ledgerId: string; featureId: string };
            const holdId = `${ledgerId}:${i}`;
            const r = await credits.reserve({ holdId, ledgerId, featureId, amount: "1", ttlMs: 60_000 });
            if (!r.granted) expect.fail(`reserve ${i} was not granted`);
            // Commits record one usage event again and again (burned once): the facts stay small.
            if (i % 2 === 0) {
              await credits.commitHold({
                holdId,
                eventId: `${ledgerId}:call`,
                amount: "1",
                at: "2026-03-01T00:00:00Z",
              });
            } else {
              await credits.voidHold(holdId);
            }
          },
          stored,
        );
        expectBounded(counts, perRound, cycles);
        await purge();
        expect(await stored()).toBe(0);
      },
      storageTimeoutMs(options.cycles, 10_000),
    );
  });
}
