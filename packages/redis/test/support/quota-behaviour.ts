import type { Cluster, Redis } from "ioredis";
import { expect, it } from "vitest";
import { KeySpace, RedisQuota, RedisUsageCounter } from "../../src/index.js";
import { expectLatchError } from "./expect.js";

/** What the Redis-specific quota tests need from a deployment (standalone or Cluster). */
export interface QuotaTarget {
  /** A fresh client of its own (several clients race in the concurrency test). */
  connect(): Promise<Redis | Cluster>;
  /** The shared client of the file (rejects when its server is unreachable). */
  client(): Promise<Redis | Cluster>;
  keyPrefix: string;
  /** `SCRIPT FLUSH` on every node that holds data. */
  flushScripts(): Promise<void>;
}

let sequence = 0;
const fresh = (label: string) =>
  `${label}-${process.pid}-${++sequence}-${Math.random().toString(36).slice(2, 8)}`;

/**
 * The must-show behaviours of `RedisQuota` that the conformance suite cannot see: script cache
 * loss, 10,000 reserves racing from several clients, expiry with nobody calling void, and an
 * independent raw reader of the key layout.
 */
export function quotaBehaviour(target: QuotaTarget): void {
  it("keeps succeeding when the script cache is flushed mid-run (EVALSHA falls back to EVAL)", async () => {
    const quota = new RedisQuota(await target.client(), { keyPrefix: target.keyPrefix, timeoutMs: 10_000 });
    const counter = new RedisUsageCounter(await target.client(), { keyPrefix: target.keyPrefix });
    const account = fresh("flush");
    const key = fresh("flush-usage");
    await quota.setLimit(account, 1_000_000);
    let expectedSpent = 0;
    for (let round = 0; round < 4; round++) {
      const holds = Array.from({ length: 100 }, (_, i) => ({
        holdId: `${account}-${round}-${i}`,
        amount: i + 1,
      }));
      const [reserves] = await Promise.all([
        Promise.all(
          holds.map((h) => quota.reserve({ holdId: h.holdId, account, amount: h.amount, ttlMs: 60_000 })),
        ),
        target.flushScripts(),
      ]);
      for (const r of reserves) expect(r.granted).toBe(true);
      await target.flushScripts();
      const commits = await Promise.all(holds.map((h) => quota.commit(h.holdId, h.amount)));
      expect(commits).toEqual(holds.map((h) => ({ committed: h.amount })));
      expectedSpent += holds.reduce((sum, h) => sum + h.amount, 0);
      await target.flushScripts();
      expect(await counter.add(key, "p", 3)).toBe(round * 3);
    }
    expect(await quota.balance(account)).toEqual({
      limit: 1_000_000,
      spent: expectedSpent,
      held: 0,
      available: 1_000_000 - expectedSpent,
    });
  });

  it("grants exactly the limit of 10,000 concurrent reserves from 4 clients when demand exceeds it", async () => {
    const clients = await Promise.all(Array.from({ length: 4 }, () => target.connect()));
    try {
      const quotas = clients.map(
        (c) => new RedisQuota(c, { keyPrefix: target.keyPrefix, timeoutMs: 10_000 }),
      );
      const account = fresh("race");
      await quotas[0]?.setLimit(account, 5_000);
      const results = await Promise.all(
        Array.from({ length: 10_000 }, (_, i) =>
          (quotas[i % quotas.length] as RedisQuota).reserve({
            holdId: `${account}-${i}`,
            account,
            amount: 1,
            ttlMs: 60_000,
          }),
        ),
      );
      const granted = results.filter((r) => r.granted);
      expect(granted).toHaveLength(5_000);
      expect(results.filter((r) => !r.granted && r.reason === "insufficient")).toHaveLength(5_000);
      // Every grant saw a distinct remaining amount: the reserves applied in one serial order.
      expect(new Set(granted.map((r) => r.remaining)).size).toBe(5_000);
      expect(await quotas[1]?.balance(account)).toEqual({
        limit: 5_000,
        spent: 0,
        held: 5_000,
        available: 0,
      });
    } finally {
      await Promise.all(clients.map((c) => c.quit()));
    }
  });

  it("never holds more than the limit under 10,000 concurrent reserves of mixed amounts from 4 clients", async () => {
    const clients = await Promise.all(Array.from({ length: 4 }, () => target.connect()));
    try {
      const quotas = clients.map(
        (c) => new RedisQuota(c, { keyPrefix: target.keyPrefix, timeoutMs: 10_000 }),
      );
      const account = fresh("mixed");
      await quotas[0]?.setLimit(account, 12_345);
      const amounts = Array.from({ length: 10_000 }, (_, i) => 1 + ((i * 7919) % 9));
      const results = await Promise.all(
        amounts.map((amount, i) =>
          (quotas[i % quotas.length] as RedisQuota).reserve({
            holdId: `${account}-${i}`,
            account,
            amount,
            ttlMs: 60_000,
          }),
        ),
      );
      const held = results.reduce((sum, r, i) => (r.granted ? sum + (amounts[i] as number) : sum), 0);
      expect(held).toBeLessThanOrEqual(12_345);
      // Demand (≈ 50,000) far exceeds the limit: what is left is smaller than the smallest denied amount.
      const smallestDenied = Math.min(...amounts.filter((_, i) => !results[i]?.granted));
      expect(12_345 - held).toBeLessThan(smallestDenied);
      expect(await quotas[2]?.balance(account)).toEqual({
        limit: 12_345,
        spent: 0,
        held,
        available: 12_345 - held,
      });
    } finally {
      await Promise.all(clients.map((c) => c.quit()));
    }
  });

  it("moves a holdId denied on one account to another, and takes back a hold granted to a conflicting account", async () => {
    const raw = await target.client();
    const keys = new KeySpace(target.keyPrefix);
    const options = { keyPrefix: target.keyPrefix, timeoutMs: 10_000 };
    // Separate objects, like separate processes: none knows the others' holds.
    const [first, second, third] = [
      new RedisQuota(raw, options),
      new RedisQuota(raw, options),
      new RedisQuota(raw, options),
    ];
    const a = fresh("acct-a");
    const b = fresh("acct-b");
    const holdId = fresh("hold");
    await first.setLimit(a, 10);
    await first.setLimit(b, 100);
    expect(await first.reserve({ holdId, account: a, amount: 50, ttlMs: 60_000 })).toEqual({
      granted: false,
      reason: "insufficient",
      remaining: 10,
    });
    // The denied reserve held nothing, so the holdId on another account is evaluated afresh.
    expect(await second.reserve({ holdId, account: b, amount: 50, ttlMs: 60_000 })).toEqual({
      granted: true,
      remaining: 50,
    });
    // Now the holdId belongs to b's hold: a reserve for a conflicts and leaves nothing on a.
    await expectLatchError(
      first.reserve({ holdId, account: a, amount: 5, ttlMs: 60_000 }),
      "idempotency_conflict",
    );
    expect(await first.balance(a)).toEqual({ limit: 10, spent: 0, held: 0, available: 10 });
    expect(await raw.get(keys.holdRecord(a, holdId))).toBeNull();
    expect(await raw.zrange(keys.accountKeys(a).expiry, 0, -1)).toEqual([]);
    // A third process resolves the hold through the locator.
    expect(await raw.get(keys.holdLocator(holdId))).toBe(b);
    expect(await third.commit(holdId, 40)).toEqual({ committed: 40 });
    expect(await third.balance(b)).toEqual({ limit: 100, spent: 40, held: 0, available: 60 });
  });

  it("lets another account take over a holdId whose locator outlived its hold record", async () => {
    const raw = await target.client();
    const keys = new KeySpace(target.keyPrefix);
    const options = { keyPrefix: target.keyPrefix, timeoutMs: 10_000 };
    const [first, second, third] = [
      new RedisQuota(raw, options),
      new RedisQuota(raw, options),
      new RedisQuota(raw, options),
    ];
    const a = fresh("acct-a");
    const b = fresh("acct-b");
    const holdId = fresh("hold");
    await first.setLimit(a, 100);
    await first.setLimit(b, 100);
    expect(await first.reserve({ holdId, account: a, amount: 30, ttlMs: 60_000 })).toEqual({
      granted: true,
      remaining: 70,
    });
    expect(await raw.get(keys.holdLocator(holdId))).toBe(a);
    // a's record is gone (as after its retention) while the locator still names a.
    await raw.del(keys.holdRecord(a, holdId));
    expect(await second.reserve({ holdId, account: b, amount: 20, ttlMs: 60_000 })).toEqual({
      granted: true,
      remaining: 80,
    });
    expect(await raw.get(keys.holdLocator(holdId))).toBe(b);
    // Retry-safe after the takeover; another amount conflicts; another process resolves it.
    expect(await second.reserve({ holdId, account: b, amount: 20, ttlMs: 60_000 })).toEqual({
      granted: true,
      remaining: 80,
    });
    await expectLatchError(
      second.reserve({ holdId, account: b, amount: 21, ttlMs: 60_000 }),
      "idempotency_conflict",
    );
    expect(await third.commit(holdId, 15)).toEqual({ committed: 15 });
    expect(await third.balance(b)).toEqual({ limit: 100, spent: 15, held: 0, available: 85 });
  });

  it("releases a hold past its TTL without anyone calling void", async () => {
    const raw = await target.client();
    const keys = new KeySpace(target.keyPrefix);
    const quota = new RedisQuota(raw, { keyPrefix: target.keyPrefix, timeoutMs: 10_000 });
    const account = fresh("expiry");
    const first = fresh("hold");
    await quota.setLimit(account, 10);
    expect(await quota.reserve({ holdId: first, account, amount: 10, ttlMs: 100 })).toEqual({
      granted: true,
      remaining: 0,
    });
    const { account: accountKey, expiry } = keys.accountKeys(account);
    // Raw reads, not through the adapter: the hold is counted and indexed by its expiry.
    expect(await raw.hget(accountKey, "held")).toBe("10");
    expect(await raw.zrange(expiry, 0, -1)).toEqual([`10|${first}`]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Nobody voided it: its record still says held, yet the next reserve finds the room.
    expect(await raw.get(keys.holdRecord(account, first))).toBe("held|10|");
    const second = fresh("hold");
    expect(await quota.reserve({ holdId: second, account, amount: 10, ttlMs: 60_000 })).toEqual({
      granted: true,
      remaining: 0,
    });
    expect(await raw.hget(accountKey, "held")).toBe("10");
    expect(await raw.zrange(expiry, 0, -1)).toEqual([`10|${second}`]);
    // The expired hold still takes a late commit, charged in full.
    expect(await quota.commit(first, 4)).toEqual({ committed: 4 });
    expect(await quota.balance(account)).toEqual({ limit: 10, spent: 4, held: 10, available: 0 });
  });

  it("stores amounts as exact integer strings up to 2^53-1 (never through a Lua double)", async () => {
    const raw = await target.client();
    const keys = new KeySpace(target.keyPrefix);
    const quota = new RedisQuota(raw, { keyPrefix: target.keyPrefix, timeoutMs: 10_000 });
    const account = fresh("big");
    const big = Number.MAX_SAFE_INTEGER - 1;
    await quota.setLimit(account, Number.MAX_SAFE_INTEGER);
    const holdId = fresh("hold");
    expect(await quota.reserve({ holdId, account, amount: big, ttlMs: 60_000 })).toEqual({
      granted: true,
      remaining: 1,
    });
    expect(await raw.hget(keys.accountKeys(account).account, "held")).toBe("9007199254740990");
    expect(await quota.commit(holdId, big)).toEqual({ committed: big });
    expect(await raw.hget(keys.accountKeys(account).account, "spent")).toBe("9007199254740990");
    expect(await quota.balance(account)).toEqual({
      limit: Number.MAX_SAFE_INTEGER,
      spent: big,
      held: 0,
      available: 1,
    });
  });
}
