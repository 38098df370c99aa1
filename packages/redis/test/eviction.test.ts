import { LatchError } from "@latch/core";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { KeySpace, RedisQuota, UnsafeServerSettingError } from "../src/index.js";
import { expectLatchError } from "./support/expect.js";
import { connectRedis, keysByPrefix, runPrefix } from "./support/redis.js";
import { type OwnedRedisServer, ownedRedisServer } from "./support/servers.js";

// Servers this file starts on spare loopback ports and stops: one with the common managed
// default `volatile-lru`, and one that refuses CONFIG (renamed away, as managed Redis often
// does). Every test awaits them, so a server that cannot start fails each test (never a skip).
const keyPrefix = runPrefix("eviction");
interface Started {
  server: OwnedRedisServer;
  client: Redis;
}
async function start(args: string[]): Promise<Started> {
  const server = await ownedRedisServer(args);
  try {
    return { server, client: await connectRedis(server.url) };
  } catch (error) {
    await server.dispose();
    throw error;
  }
}
const evicting = start(["--maxmemory-policy", "volatile-lru"]);
const withoutConfig = start(["--rename-command", "CONFIG", "", "--maxmemory-policy", "volatile-lru"]);
for (const started of [evicting, withoutConfig]) started.catch(() => undefined); // reported by each test

afterAll(async () => {
  for (const started of [evicting, withoutConfig]) {
    const ready = await started.catch(() => undefined);
    if (ready === undefined) continue;
    ready.client.disconnect();
    await ready.server.dispose();
  }
});

const options = { keyPrefix, timeoutMs: 10_000 };
const request = (holdId: string, account = "acct", amount = 10) => ({
  holdId,
  account,
  amount,
  ttlMs: 60_000,
});

/** Awaits a rejection with UnsafeServerSettingError; returns it. */
async function expectRefusal(promise: Promise<unknown>): Promise<UnsafeServerSettingError> {
  const error = await expectLatchError(promise, "invalid_input");
  expect(error).toBeInstanceOf(UnsafeServerSettingError);
  return error as UnsafeServerSettingError;
}

describe("RedisQuota refuses a server whose maxmemory-policy can evict its keys", () => {
  it("refuses volatile-lru with an error naming the setting, the value and the node, and writes nothing", async () => {
    const { server, client } = await evicting;
    const quota = new RedisQuota(client, options);
    const error = await expectRefusal(quota.ready());
    expect(error.setting).toBe("maxmemory-policy");
    expect(error.value).toBe("volatile-lru");
    expect(error.node).toBe(`127.0.0.1:${server.port}`);
    expect(error.message).toContain("maxmemory-policy");
    expect(error.message).toContain("volatile-lru");
    expect(error.message).toContain("allowEvictingPolicy");
    expect(error.isRetryable).toBe(false);
    expect(LatchError.isInstance(error)).toBe(true);
    // Every other call refuses the same way (reserve throws: it is not an outage to deny).
    for (const call of [
      () => quota.reserve(request("h-1")),
      () => quota.commit("h-1", 1),
      () => quota.void("h-1"),
      () => quota.setLimit("acct", 100),
      () => quota.balance("acct"),
      () => quota.check("acct", 1),
    ]) {
      expect(await expectRefusal(call())).toBe(error);
    }
    // A fresh object (a process starting) refuses before its first write.
    await expectRefusal(new RedisQuota(client, options).setLimit("acct", 100));
    expect(await keysByPrefix(client, keyPrefix)).toEqual([]);
  });

  it("refuses every allkeys-* and volatile-* policy and accepts noeviction", async () => {
    const { client } = await evicting;
    const evictingPolicies = [
      "allkeys-lru",
      "allkeys-lfu",
      "allkeys-random",
      "volatile-lru",
      "volatile-lfu",
      "volatile-random",
      "volatile-ttl",
    ];
    try {
      for (const policy of evictingPolicies) {
        await client.config("SET", "maxmemory-policy", policy);
        expect((await expectRefusal(new RedisQuota(client, options).ready())).value).toBe(policy);
      }
      await client.config("SET", "maxmemory-policy", "noeviction");
      const quota = new RedisQuota(client, options);
      await quota.ready();
      await quota.setLimit("noeviction", 100);
      expect(await quota.reserve(request("noeviction-1", "noeviction"))).toEqual({
        granted: true,
        remaining: 90,
      });
      // The check runs once per object: it does not notice a later CONFIG SET (README).
      await client.config("SET", "maxmemory-policy", "volatile-lru");
      expect(await quota.commit("noeviction-1", 4)).toEqual({ committed: 4 });
    } finally {
      await client.config("SET", "maxmemory-policy", "volatile-lru");
      await deleteKeys(client);
    }
  });

  it("reads the policy from INFO memory where CONFIG is disabled", async () => {
    const { client } = await withoutConfig;
    await expect(client.config("GET", "maxmemory-policy")).rejects.toThrow(/unknown command/);
    const error = await expectRefusal(new RedisQuota(client, options).ready());
    expect(error.value).toBe("volatile-lru");
  });

  it("refuses a server that answers neither CONFIG nor INFO, unless allowEvictingPolicy is set", async () => {
    const { server, client } = await evicting;
    const user = `latch-limited-${process.pid}`;
    await client.acl("SETUSER", user, "on", ">secret", "~*", "&*", "+@all", "-config", "-info");
    const limited = new Redis(server.url, { username: user, password: "secret", enableReadyCheck: false });
    limited.on("error", () => {});
    try {
      const error = await expectRefusal(new RedisQuota(limited, options).ready());
      expect(error.setting).toBe("maxmemory-policy");
      expect(error.value).toBeUndefined();
      expect(error.message).toContain("could not be read");
      const optedOut = new RedisQuota(limited, { ...options, allowEvictingPolicy: true });
      await optedOut.ready();
      await optedOut.setLimit("limited", 100);
      expect(await optedOut.reserve(request("limited-1", "limited"))).toEqual({
        granted: true,
        remaining: 90,
      });
    } finally {
      limited.disconnect();
      await client.acl("DELUSER", user);
      await deleteKeys(client);
    }
  });

  it("rejects an allowEvictingPolicy that is not a boolean", async () => {
    const { client } = await evicting;
    expect(
      () => new RedisQuota(client, { ...options, allowEvictingPolicy: "yes" as unknown as boolean }),
    ).toThrow(/allowEvictingPolicy/);
  });
});

describe("RedisQuota with allowEvictingPolicy on a volatile-lru server", () => {
  const tolerant = { ...options, allowEvictingPolicy: true };

  it("neither charges nor grants twice when hold records are deleted behind its back", async () => {
    const { client } = await evicting;
    const keys = new KeySpace(keyPrefix);
    // Separate objects, like separate processes: only `granting` remembers the holds it made.
    const [granting, other, third] = [
      new RedisQuota(client, tolerant),
      new RedisQuota(client, tolerant),
      new RedisQuota(client, tolerant),
    ];
    const account = `deleted-${process.pid}`;
    await granting.setLimit(account, 1_000);
    try {
      // A live hold loses its record: a retried reserve (any process) is still held once.
      expect(await granting.reserve(request("live", account, 100))).toEqual({
        granted: true,
        remaining: 900,
      });
      await client.del(keys.hold("live"));
      expect(await other.reserve(request("live", account, 100))).toEqual({ granted: true, remaining: 900 });
      await client.del(keys.hold("live"));
      expect(await granting.reserve(request("live", account, 100))).toEqual({
        granted: true,
        remaining: 900,
      });
      expect(await granting.balance(account)).toEqual({ limit: 1_000, spent: 0, held: 100, available: 900 });
      // Another process commits it; then its committed record is evicted. The granting process
      // retrying the commit (it never saw the answer) finds the settled marker: charged once.
      expect(await other.commit("live", 70)).toEqual({ committed: 70 });
      await client.del(keys.hold("live"));
      expect(await granting.commit("live", 70)).toEqual({ committed: 70 });
      expect(await granting.balance(account)).toEqual({ limit: 1_000, spent: 70, held: 0, available: 930 });
      // A retried reserve of it, from a third process, holds nothing again.
      await client.del(keys.hold("live"));
      expect(await third.reserve(request("live", account, 100))).toEqual({ granted: true, remaining: 930 });
      expect(await third.balance(account)).toEqual({ limit: 1_000, spent: 70, held: 0, available: 930 });
      // A voided hold whose record is evicted stays voided.
      await granting.reserve(request("voided", account, 50));
      await other.void("voided");
      await client.del(keys.hold("voided"));
      await expectLatchError(granting.commit("voided", 5), "hold_already_resolved");
      await client.del(keys.hold("voided"));
      expect(await third.reserve(request("voided", account, 50))).toEqual({ granted: true, remaining: 930 });
      // A hold whose record is gone before it resolves: the granting process still charges it.
      await granting.reserve(request("unresolved", account, 10));
      await client.del(keys.hold("unresolved"));
      expect(await granting.commit("unresolved", 5)).toEqual({ committed: 5 });
      expect(await other.balance(account)).toEqual({ limit: 1_000, spent: 75, held: 0, available: 925 });
      // What stays unsafe (README): a process that did not grant a hold cannot find the account
      // of a hold whose record is gone; it throws rather than answer or charge anything.
      await granting.reserve(request("elsewhere", account, 10));
      await client.del(keys.hold("elsewhere"));
      await expectLatchError(other.commit("elsewhere", 5), "invalid_input");
      expect(await other.balance(account)).toEqual({ limit: 1_000, spent: 75, held: 10, available: 915 });
    } finally {
      await deleteKeys(client);
    }
  });

  it("keeps limits exact when Redis really evicts hold records under memory pressure", async () => {
    const { client } = await evicting;
    const keys = new KeySpace(keyPrefix);
    const granting = new RedisQuota(client, tolerant);
    const other = new RedisQuota(client, tolerant);
    const account = `pressure-${process.pid}`;
    const holds = Array.from({ length: 2_000 }, (_, i) => `pressure-${i}`);
    await granting.setLimit(account, 1_000_000);
    for (let i = 0; i < holds.length; i += 200) {
      await Promise.all(holds.slice(i, i + 200).map((h) => granting.reserve(request(h, account, 5))));
    }
    // Half are committed (by another process) before the pressure, half after.
    const early = holds.slice(0, 1_000);
    const late = holds.slice(1_000);
    await Promise.all(early.map((h) => other.commit(h, 3)));
    const used = Number(/^used_memory:(\d+)/m.exec(await client.info("memory"))?.[1]);
    const filler = `${keyPrefix}:filler`;
    try {
      await client.config("SET", "maxmemory", String(used + 2 * 1024 * 1024));
      // Keys with a TTL are what volatile-lru evicts: write them until most hold records are gone.
      const value = "x".repeat(1_024);
      let gone = 0;
      for (let round = 0; round < 200 && gone < holds.length / 2; round++) {
        const pipeline = client.pipeline();
        for (let i = 0; i < 500; i++) pipeline.set(`${filler}:${round}:${i}`, value, "PX", 600_000);
        await pipeline.exec();
        const present = await client.exists(...holds.slice(0, 500).map((h) => keys.hold(h)));
        gone = Math.round(((500 - present) / 500) * holds.length);
      }
      expect(Number(/^evicted_keys:(\d+)/m.exec(await client.info("stats"))?.[1])).toBeGreaterThan(0);
      expect(gone).toBeGreaterThanOrEqual(holds.length / 2);
    } finally {
      await deleteKeys(client, `${filler}:`);
      await client.config("SET", "maxmemory", "0");
    }
    try {
      // The granting process retries the early commits (it never saw them): charged once.
      for (const h of early) expect(await granting.commit(h, 3)).toEqual({ committed: 3 });
      // The late holds, committed by the object that granted them: every one charged.
      for (const h of late) expect(await granting.commit(h, 4)).toEqual({ committed: 4 });
      // Retried reserves of every holdId hold nothing again.
      for (const h of holds) expect((await other.reserve(request(h, account, 5))).granted).toBe(true);
      expect(await other.balance(account)).toEqual({
        limit: 1_000_000,
        spent: 1_000 * 3 + 1_000 * 4,
        held: 0,
        available: 1_000_000 - 7_000,
      });
    } finally {
      await deleteKeys(client);
    }
  });
});

/** Deletes this file's keys (under `prefix`, default the run's key prefix) on one server. */
async function deleteKeys(client: Redis, prefix = `${keyPrefix}:`): Promise<void> {
  let cursor = "0";
  do {
    const [next, found] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1_000);
    cursor = next;
    if (found.length > 0) await client.unlink(...found);
  } while (cursor !== "0");
}
