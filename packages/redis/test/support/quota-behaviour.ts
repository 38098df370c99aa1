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

/**
 * The record key of a hold, by the documented layout (README): one key per holdId on a
 * standalone server, one per account and holdId on a Cluster.
 */
function recordKey(raw: Redis | Cluster, keys: KeySpace, account: string, holdId: string): string {
  return raw.isCluster ? keys.holdRecord(account, holdId) : keys.hold(holdId);
}

/** Which account Redis says holds `holdId`: the Cluster's locator, else the account in the record. */
async function ownerOf(raw: Redis | Cluster, keys: KeySpace, holdId: string): Promise<string | null> {
  if (raw.isCluster) return raw.get(keys.holdLocator(holdId));
  const record = await raw.get(keys.hold(holdId));
  return record === null ? null : (record.split("|").slice(3).join("|") as string);
}

/**
 * A hold record with the token field of a held record emptied (while held, the third field is
 * the creating reserve call's token, see reserve-3.lua), so tests can compare the rest exactly.
 */
export function withoutToken(record: string | null): string | null {
  return record === null ? null : record.replace(/^held\|(\d+)\|[A-Za-z0-9_-]*\|/, "held|$1||");
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
    // (Cluster: the hold taken back leaves a tombstone on a, which counts as no record.)
    if (raw.isCluster) expect(await raw.get(keys.holdRecord(a, holdId))).toMatch(/^abandoned\|5\|/);
    expect(withoutToken(await raw.get(recordKey(raw, keys, b, holdId)))).toBe(`held|50||${b}`);
    expect(await raw.zrange(keys.accountKeys(a).expiry, 0, -1)).toEqual([]);
    // A third process resolves the hold through the locator (standalone: the record).
    expect(await ownerOf(raw, keys, holdId)).toBe(b);
    expect(await third.commit(holdId, 40)).toEqual({ committed: 40 });
    expect(await third.balance(b)).toEqual({ limit: 100, spent: 40, held: 0, available: 60 });
  });

  it("lets another account take over a holdId whose hold record is gone (its locator may outlive it)", async () => {
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
    expect(await ownerOf(raw, keys, holdId)).toBe(a);
    // a's record is gone (as after its retention); on a Cluster the locator still names a.
    await raw.del(recordKey(raw, keys, a, holdId));
    if (raw.isCluster) expect(await raw.get(keys.holdLocator(holdId))).toBe(a);
    expect(await second.reserve({ holdId, account: b, amount: 20, ttlMs: 60_000 })).toEqual({
      granted: true,
      remaining: 80,
    });
    expect(await ownerOf(raw, keys, holdId)).toBe(b);
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

  it("keeps a hold's record for holdRetentionMs: ttlMs + retention while held, retention after it resolves", async () => {
    const raw = await target.client();
    const keys = new KeySpace(target.keyPrefix);
    // The retries "within the retention" run a few round trips after the resolution: 3 s leaves a
    // loaded machine seconds for them (with 400 ms, a stall of 0.4 s made them find no record).
    const retentionMs = 3_000;
    const options = { keyPrefix: target.keyPrefix, timeoutMs: 10_000, holdRetentionMs: retentionMs };
    const [quota, other] = [new RedisQuota(raw, options), new RedisQuota(raw, options)];
    const account = fresh("retention");
    const [committed, voided] = [fresh("hold"), fresh("hold")];
    await quota.setLimit(account, 100);
    await quota.reserve({ holdId: committed, account, amount: 10, ttlMs: 60_000 });
    await quota.reserve({ holdId: voided, account, amount: 10, ttlMs: 60_000 });
    const ttl = await raw.pttl(recordKey(raw, keys, account, committed));
    expect(ttl).toBeGreaterThan(60_000);
    expect(ttl).toBeLessThanOrEqual(60_000 + retentionMs);
    expect(await quota.commit(committed, 7)).toEqual({ committed: 7 });
    await quota.void(voided);
    expect(await raw.get(recordKey(raw, keys, account, committed))).toBe(`committed|10|7|${account}`);
    expect(await raw.get(recordKey(raw, keys, account, voided))).toBe(`voided|10||${account}`);
    for (const holdId of [committed, voided]) {
      expect(await raw.pttl(recordKey(raw, keys, account, holdId))).toBeLessThanOrEqual(retentionMs);
    }
    // Within the retention, retries from any process are idempotent.
    expect(await other.commit(committed, 7)).toEqual({ committed: 7 });
    await expectLatchError(other.commit(committed, 8), "idempotency_conflict");
    await other.void(voided);
    await expectLatchError(other.commit(voided, 1), "hold_already_resolved");
    // After it, the holdIds are unknown again, and free for a new reserve on any account (a sleep
    // only overshoots: the records are gone).
    await new Promise((resolve) => setTimeout(resolve, retentionMs + 200));
    await expectLatchError(quota.commit(committed, 7), "invalid_input");
    await expectLatchError(other.void(voided), "invalid_input");
    const next = fresh("retention-next");
    await quota.setLimit(next, 100);
    expect(await other.reserve({ holdId: committed, account: next, amount: 5, ttlMs: 60_000 })).toEqual({
      granted: true,
      remaining: 95,
    });
    expect(await quota.commit(committed, 5)).toEqual({ committed: 5 });
    expect(await quota.balance(account)).toEqual({ limit: 100, spent: 7, held: 0, available: 93 });
    expect(await quota.balance(next)).toEqual({ limit: 100, spent: 5, held: 0, available: 95 });
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
    expect(withoutToken(await raw.get(recordKey(raw, keys, account, first)))).toBe(`held|10||${account}`);
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

  it("sweeps when the earliest hold is due: a shorter hold after a longer one moves the account's due time", async () => {
    const raw = await target.client();
    const keys = new KeySpace(target.keyPrefix);
    const quota = new RedisQuota(raw, { keyPrefix: target.keyPrefix, timeoutMs: 10_000 });
    const account = fresh("due");
    const { account: accountKey, expiry } = keys.accountKeys(account);
    await quota.setLimit(account, 100);
    const [long, short] = [fresh("hold"), fresh("hold")];
    await quota.reserve({ holdId: long, account, amount: 10, ttlMs: 60_000 });
    const firstExpiry = (await raw.zrange(expiry, 0, 0, "WITHSCORES"))[1];
    expect(await raw.hget(accountKey, "due")).toBe(firstExpiry);
    // The balance below (a script: it sweeps) must run before the short hold expires: 2 s leaves a
    // loaded machine room for the three round trips before it (with 100 ms, a stall of 0.1 s
    // swept the hold early).
    await quota.reserve({ holdId: short, account, amount: 20, ttlMs: 2_000 });
    const [member, score] = await raw.zrange(expiry, 0, 0, "WITHSCORES");
    expect(member).toBe(`20|${short}`);
    expect(await raw.hget(accountKey, "due")).toBe(score);
    expect(await quota.balance(account)).toEqual({ limit: 100, spent: 0, held: 30, available: 70 });
    await new Promise((resolve) => setTimeout(resolve, 2_200));
    // The short hold is released by the next script, and due moves on to the long hold's expiry.
    expect(await quota.balance(account)).toEqual({ limit: 100, spent: 0, held: 10, available: 90 });
    expect(await raw.hget(accountKey, "due")).toBe(firstExpiry);
    // Resolving the last hold leaves due behind (harmless: a sweep then finds nothing and
    // removes it).
    expect(await quota.commit(long, 10)).toEqual({ committed: 10 });
    expect(await raw.zcard(expiry)).toBe(0);
    expect(await quota.balance(account)).toEqual({ limit: 100, spent: 10, held: 0, available: 90 });
  });

  it("leaves a hold that expired unswept committable after a void (the void is a no-op)", async () => {
    const raw = await target.client();
    const keys = new KeySpace(target.keyPrefix);
    const [quota, other] = [
      new RedisQuota(raw, { keyPrefix: target.keyPrefix, timeoutMs: 10_000 }),
      new RedisQuota(raw, { keyPrefix: target.keyPrefix, timeoutMs: 10_000 }),
    ];
    const account = fresh("late");
    const holdId = fresh("hold");
    await quota.setLimit(account, 10);
    await quota.reserve({ holdId, account, amount: 4, ttlMs: 50 });
    await new Promise((resolve) => setTimeout(resolve, 150));
    // Nothing has touched the account since the hold expired: the void is the first script.
    expect(await raw.zcard(keys.accountKeys(account).expiry)).toBe(1);
    await quota.void(holdId);
    await other.void(holdId);
    expect(withoutToken(await raw.get(recordKey(raw, keys, account, holdId)))).toBe(`held|4||${account}`);
    expect(await quota.commit(holdId, 3)).toEqual({ committed: 3 });
    expect(await quota.balance(account)).toEqual({ limit: 10, spent: 3, held: 0, available: 7 });
  });

  it("holds again a reserve retried after its hold expired, never answering granted with nothing held", async () => {
    const raw = await target.client();
    const keys = new KeySpace(target.keyPrefix);
    const options = { keyPrefix: target.keyPrefix, timeoutMs: 10_000 };
    const [quota, other] = [new RedisQuota(raw, options), new RedisQuota(raw, options)];
    const account = fresh("rehold");
    const [swept, unswept] = [fresh("hold"), fresh("hold")];
    await quota.setLimit(account, 100);
    expect(await quota.reserve({ holdId: swept, account, amount: 30, ttlMs: 50 })).toEqual({
      granted: true,
      remaining: 70,
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Released by the next call on the account (balance sweeps), then retried: held again.
    expect(await quota.balance(account)).toEqual({ limit: 100, spent: 0, held: 0, available: 100 });
    expect(await other.reserve({ holdId: swept, account, amount: 30, ttlMs: 60_000 })).toEqual({
      granted: true,
      remaining: 70,
    });
    expect(await raw.zscore(keys.accountKeys(account).expiry, `30|${swept}`)).not.toBeNull();
    // Past its expiry but not swept yet (nothing touched the account): released, then held again.
    expect(await quota.reserve({ holdId: unswept, account, amount: 20, ttlMs: 50 })).toEqual({
      granted: true,
      remaining: 50,
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await quota.reserve({ holdId: unswept, account, amount: 20, ttlMs: 60_000 })).toEqual({
      granted: true,
      remaining: 50,
    });
    expect(await other.balance(account)).toEqual({ limit: 100, spent: 0, held: 50, available: 50 });
    // A retry of a hold that is still counted changes nothing; each commits once.
    expect(await other.reserve({ holdId: unswept, account, amount: 20, ttlMs: 60_000 })).toEqual({
      granted: true,
      remaining: 50,
    });
    expect(await other.commit(swept, 25)).toEqual({ committed: 25 });
    expect(await quota.commit(unswept, 15)).toEqual({ committed: 15 });
    expect(await other.balance(account)).toEqual({ limit: 100, spent: 40, held: 0, available: 60 });
    // The locator (Cluster) and the record live as long as the new hold.
    expect(await raw.pttl(recordKey(raw, keys, account, swept))).toBeGreaterThan(0);
    if (raw.isCluster) expect(await raw.pttl(keys.holdLocator(swept))).toBeGreaterThan(60_000);
  });

  it("denies a reserve retried after its hold expired when the room is gone, and still charges its late commit", async () => {
    const raw = await target.client();
    const options = { keyPrefix: target.keyPrefix, timeoutMs: 10_000 };
    const quota = new RedisQuota(raw, options);
    const account = fresh("rehold-full");
    const [first, second] = [fresh("hold"), fresh("hold")];
    await quota.setLimit(account, 10);
    await quota.reserve({ holdId: first, account, amount: 10, ttlMs: 50 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await quota.reserve({ holdId: second, account, amount: 8, ttlMs: 60_000 })).toEqual({
      granted: true,
      remaining: 2,
    });
    expect(await quota.reserve({ holdId: first, account, amount: 10, ttlMs: 60_000 })).toEqual({
      granted: false,
      reason: "insufficient",
      remaining: 2,
    });
    expect(await quota.balance(account)).toEqual({ limit: 10, spent: 0, held: 8, available: 2 });
    expect(await new RedisQuota(raw, options).commit(first, 6)).toEqual({ committed: 6 });
    expect(await quota.balance(account)).toEqual({ limit: 10, spent: 6, held: 8, available: 0 });
  });

  it("never charges twice through a reserve retried after the hold was committed, even past the retention", async () => {
    const raw = await target.client();
    const options = { keyPrefix: target.keyPrefix, timeoutMs: 10_000, holdRetentionMs: 2_000 };
    const [granting, other, late] = [
      new RedisQuota(raw, options),
      new RedisQuota(raw, options),
      new RedisQuota(raw, options),
    ];
    const account = fresh("retry-after-commit");
    const holdId = fresh("hold");
    await granting.setLimit(account, 100);
    await granting.reserve({ holdId, account, amount: 10, ttlMs: 60_000 });
    expect(await other.commit(holdId, 7)).toEqual({ committed: 7 });
    // The retry (within the committed record's retention) answers as the first reserve did,
    // holds nothing, and is not taken as a grant of `late`: once the record has expired, a
    // commit from `late` must not charge the hold again as one whose record was lost.
    await new Promise((resolve) => setTimeout(resolve, 800));
    expect(await late.reserve({ holdId, account, amount: 10, ttlMs: 60_000 })).toEqual({
      granted: true,
      remaining: 93,
    });
    await new Promise((resolve) => setTimeout(resolve, 1_600));
    await expectLatchError(late.commit(holdId, 7), "invalid_input");
    expect(await late.balance(account)).toEqual({ limit: 100, spent: 7, held: 0, available: 93 });
  });

  it("counts a hold once when its record is lost and the reserve retried, and its granting object still charges it", async () => {
    const raw = await target.client();
    const keys = new KeySpace(target.keyPrefix);
    const options = { keyPrefix: target.keyPrefix, timeoutMs: 10_000 };
    const [granting, other] = [new RedisQuota(raw, options), new RedisQuota(raw, options)];
    const account = fresh("lost");
    const [live, gone, elsewhere] = [fresh("hold"), fresh("hold"), fresh("hold")];
    await granting.setLimit(account, 100);
    // A record lost while its hold is counted (as after an eviction): the retry holds nothing more.
    await granting.reserve({ holdId: live, account, amount: 30, ttlMs: 60_000 });
    await raw.del(recordKey(raw, keys, account, live));
    expect(await other.reserve({ holdId: live, account, amount: 30, ttlMs: 60_000 })).toEqual({
      granted: true,
      remaining: 70,
    });
    await raw.del(recordKey(raw, keys, account, live));
    expect(await granting.commit(live, 20)).toEqual({ committed: 20 });
    expect(await other.balance(account)).toEqual({ limit: 100, spent: 20, held: 0, available: 80 });
    // Record and hold both lost (a reserve acknowledged, then lost in a failover): the object
    // that granted it still charges the usage; its retries answer the same.
    await granting.reserve({ holdId: gone, account, amount: 10, ttlMs: 60_000 });
    const { account: accountKey, expiry } = keys.accountKeys(account);
    await raw.del(recordKey(raw, keys, account, gone));
    await raw.zrem(expiry, `10|${gone}`);
    await raw.hincrby(accountKey, "held", -10);
    expect(await granting.commit(gone, 7)).toEqual({ committed: 7 });
    expect(await other.commit(gone, 7)).toEqual({ committed: 7 });
    expect(await other.balance(account)).toEqual({ limit: 100, spent: 27, held: 0, available: 73 });
    // Another object does not know the account of a hold whose record is gone: it throws.
    await granting.reserve({ holdId: elsewhere, account, amount: 5, ttlMs: 60_000 });
    await raw.del(recordKey(raw, keys, account, elsewhere));
    if (raw.isCluster) await raw.del(keys.holdLocator(elsewhere));
    await expectLatchError(other.commit(elsewhere, 5), "invalid_input");
    expect(await granting.commit(elsewhere, 5)).toEqual({ committed: 5 });
    expect(await other.balance(account)).toEqual({ limit: 100, spent: 32, held: 0, available: 68 });
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

  // Deadlines: a reserve answered "unavailable" leaves no hold behind (reserve-3.lua's token,
  // unreserve-3.lua), and a hold some retry was told is granted is never taken back.

  /** Polls `check` (throwing until satisfied) for up to ~10 s: late replies and take-backs settle. */
  async function settled(check: () => Promise<void>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await check();
      } catch (error) {
        if (attempt >= 200) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  it("leaves a hold only for reserves answered granted when many pass a 1 ms deadline", async () => {
    const client = await target.connect();
    try {
      const raw = await target.client();
      const keys = new KeySpace(target.keyPrefix);
      const options = { keyPrefix: target.keyPrefix, timeoutMs: 10_000 };
      const checker = new RedisQuota(raw, options);
      const hasty = new RedisQuota(client, { keyPrefix: target.keyPrefix, timeoutMs: 1 });
      // Its server check must pass first (else every reserve fails before any script runs).
      for (let attempt = 0; ; attempt++) {
        try {
          await hasty.ready();
          break;
        } catch (error) {
          if (attempt >= 500) throw error;
        }
      }
      const account = fresh("hasty");
      await checker.setLimit(account, 1_000_000);
      const holds = Array.from({ length: 200 }, (_, i) => ({ holdId: `${account}-${i}`, amount: i + 1 }));
      const results = await Promise.all(
        holds.map((h) => hasty.reserve({ holdId: h.holdId, account, amount: h.amount, ttlMs: 60_000 })),
      );
      const granted = holds.filter((_, i) => results[i]?.granted === true);
      const unavailable = holds.filter((_, i) => results[i]?.granted === false);
      for (const r of results) if (!r.granted) expect(r.reason).toBe("unavailable");
      expect(unavailable.length).toBeGreaterThan(0);
      const grantedSum = granted.reduce((sum, h) => sum + h.amount, 0);
      const { expiry } = keys.accountKeys(account);
      await settled(async () => {
        // Every hold still counted on Redis was answered granted, and nothing else is held.
        expect((await raw.zrange(expiry, 0, -1)).sort()).toEqual(
          granted.map((h) => `${h.amount}|${h.holdId}`).sort(),
        );
        expect(await checker.balance(account)).toEqual({
          limit: 1_000_000,
          spent: 0,
          held: grantedSum,
          available: 1_000_000 - grantedSum,
        });
        for (const h of unavailable) {
          const record = await raw.get(recordKey(raw, keys, account, h.holdId));
          if (record !== null) expect(record).toMatch(/^abandoned\|/);
        }
      });
      // The granted ones commit; the others are unknown holds (as a holdId never reserved).
      for (const h of granted)
        expect(await checker.commit(h.holdId, h.amount)).toEqual({ committed: h.amount });
      for (const h of unavailable.slice(0, 20)) {
        await expectLatchError(checker.commit(h.holdId, h.amount), "invalid_input");
        await expectLatchError(checker.void(h.holdId), "invalid_input");
      }
      await expectLatchError(checker.commit(fresh("never"), 1), "invalid_input");
      expect(await checker.balance(account)).toMatchObject({ spent: grantedSum, held: 0 });
    } finally {
      await client.quit();
    }
  });

  it("takes back the hold of a reserve that passed its deadline behind a blocked connection, never one a retry was granted", async () => {
    const client = await target.connect();
    try {
      const raw = await target.client();
      const keys = new KeySpace(target.keyPrefix);
      const options = { keyPrefix: target.keyPrefix, timeoutMs: 10_000 };
      // On the blocked connection: a 100 ms deadline, and a patient object (same process).
      const hasty = new RedisQuota(client, { keyPrefix: target.keyPrefix, timeoutMs: 100 });
      const patient = new RedisQuota(client, options);
      // Another process (its own connection, never blocked).
      const other = new RedisQuota(raw, options);
      await hasty.ready();
      const account = fresh("blocked");
      await other.setLimit(account, 1_000);
      // Load every script on the account's node before blocking it (no NOSCRIPT round trips).
      const warm = fresh("warm");
      await patient.reserve({ holdId: warm, account, amount: 1, ttlMs: 60_000 });
      await patient.void(warm);
      const { account: accountKey, expiry } = keys.accountKeys(account);
      // The account's node serves this connection's commands in order: a BLPOP (same slot)
      // holds back everything sent after it until another connection pushes. No timing: each
      // deadline below passes while the connection is blocked, and the scripts run after.
      const blockKey = `${accountKey}:block`;
      const blocked = client.blpop(blockKey, 0);
      const [otherRetry, afterTakeBack, interleaved, lone] = [fresh("h"), fresh("h"), fresh("h"), fresh("h")];
      const ask = (quota: RedisQuota, holdId: string) =>
        quota.reserve({ holdId, account, amount: 10, ttlMs: 60_000 });

      // 1. Answered unavailable; another process retries at once and is granted (a new hold):
      //    the late script then replays it, and the take-back leaves it.
      expect(await ask(hasty, otherRetry)).toEqual({ granted: false, reason: "unavailable" });
      expect(await ask(other, otherRetry)).toEqual({ granted: true, remaining: 990 });
      // 2. Answered unavailable; the same process retries behind the take-back: granted anew.
      expect(await ask(hasty, afterTakeBack)).toEqual({ granted: false, reason: "unavailable" });
      const retried = ask(patient, afterTakeBack);
      // 3. A retry queued between the late script and its take-back: it replays the hold
      //    (granted), so the take-back must leave it.
      const late = ask(hasty, interleaved);
      const replay = ask(patient, interleaved);
      expect(await late).toEqual({ granted: false, reason: "unavailable" });
      // 4. Answered unavailable, never retried.
      expect(await ask(hasty, lone)).toEqual({ granted: false, reason: "unavailable" });

      await raw.lpush(blockKey, "go");
      expect(await blocked).toEqual([blockKey, "go"]);
      expect(await retried).toMatchObject({ granted: true });
      expect(await replay).toMatchObject({ granted: true });
      await settled(async () => {
        expect((await raw.zrange(expiry, 0, -1)).sort()).toEqual(
          [`10|${otherRetry}`, `10|${afterTakeBack}`, `10|${interleaved}`].sort(),
        );
        expect(await raw.hget(accountKey, "held")).toBe("30");
        expect(await raw.get(recordKey(raw, keys, account, lone))).toMatch(/^abandoned\|10\|/);
      });
      // Every hold a caller was told granted commits; the lone one is an unknown hold.
      expect(await other.commit(otherRetry, 7)).toEqual({ committed: 7 });
      expect(await patient.commit(afterTakeBack, 8)).toEqual({ committed: 8 });
      expect(await patient.commit(interleaved, 9)).toEqual({ committed: 9 });
      await expectLatchError(other.commit(lone, 1), "invalid_input");
      await expectLatchError(hasty.commit(lone, 1), "invalid_input");
      await expectLatchError(other.void(lone), "invalid_input");
      expect(await other.balance(account)).toEqual({ limit: 1_000, spent: 24, held: 0, available: 976 });
      // The holdId taken back is free again: a later reserve of it holds it anew.
      expect(await ask(other, lone)).toEqual({ granted: true, remaining: 966 });
      expect(await other.commit(lone, 10)).toEqual({ committed: 10 });
    } finally {
      await client.quit();
    }
  });
}
