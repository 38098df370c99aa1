import { quotaReservatorSuite, runConformance } from "@latch/testkit";
import { afterAll, describe, expect, it } from "vitest";
import { KeySpace, RedisQuota } from "../src/index.js";
import { redisSuites } from "./support/conformance.js";
import { expectLatchError } from "./support/expect.js";
import { quotaBehaviour, withoutToken } from "./support/quota-behaviour.js";
import { connectRedis, deleteByPrefix, keysByPrefix, REDIS_URL, runPrefix } from "./support/redis.js";
import { splitQuota } from "./support/split-quota.js";

// The shared server at REDIS_URL. Every test awaits the connection, so an unreachable
// server fails each test (never a skip).
const keyPrefix = runPrefix("standalone");
const connected = connectRedis(REDIS_URL);
connected.catch(() => undefined); // reported by each test that awaits it
const redis = () => connected;

afterAll(async () => {
  const client = await connected.catch(() => undefined);
  if (client === undefined) return;
  await deleteByPrefix(client, keyPrefix);
  expect(await keysByPrefix(client, keyPrefix)).toEqual([]);
  await client.quit();
});

const options = { keyPrefix, timeoutMs: 10_000 };
runConformance({ name: "redis", suites: redisSuites(redis, options) });
// The quota contract again when another process resolves the holds (commit/void via the locator).
runConformance({
  name: "redis, holds resolved by another process",
  suites: [
    quotaReservatorSuite({
      create: async () =>
        splitQuota(new RedisQuota(await redis(), options), new RedisQuota(await redis(), options)),
    }),
  ],
});

describe("RedisQuota on a standalone server", () => {
  quotaBehaviour({
    keyPrefix,
    client: redis,
    connect: () => connectRedis(REDIS_URL),
    flushScripts: async () => {
      await (await redis()).script("FLUSH");
    },
  });

  it("reserves with one command and commits with one script call (MONITOR)", async () => {
    const raw = await redis();
    const quota = new RedisQuota(raw, options);
    const other = new RedisQuota(raw, options);
    const account = `one-command-${process.pid}`;
    const holdId = `one-command-hold-${process.pid}`;
    await quota.setLimit(account, 100);
    const monitor = await raw.monitor();
    const sent: string[][] = [];
    try {
      // Commands the client sent (not the ones a script ran) that mention this holdId.
      monitor.on("monitor", (_time: string, args: string[], source: string) => {
        if (!source.startsWith("lua") && args.some((arg) => arg.includes(holdId))) sent.push(args);
      });
      await quota.reserve({ holdId, account, amount: 10, ttlMs: 60_000 });
      await quota.commit(holdId, 5);
      await other.commit(holdId, 5); // another process: reads the locator first
      // MONITOR output arrives on its own connection: wait for it (at most ~10 s: a loaded
      // machine may take seconds; the loop ends as soon as the four are in).
      for (let i = 0; i < 200 && sent.length < 4; i++)
        await new Promise((resolve) => setTimeout(resolve, 50));
      await new Promise((resolve) => setTimeout(resolve, 50)); // and for anything unexpected
    } finally {
      monitor.disconnect();
    }
    // Another process reads the holdId's record for its account, then runs the script.
    expect(sent.map((args) => args[0]?.toLowerCase())).toEqual(["evalsha", "evalsha", "get", "evalsha"]);
    // The reserve touched three keys: the account's hash and sorted set, and the holdId's record.
    expect(sent[0]?.slice(2, 6)).toEqual([
      "3",
      new KeySpace(keyPrefix).accountKeys(account).account,
      new KeySpace(keyPrefix).accountKeys(account).expiry,
      new KeySpace(keyPrefix).hold(holdId),
    ]);
  });

  it("keeps one record per holdId: a reserve of a held holdId on another account conflicts and writes nothing", async () => {
    const raw = await redis();
    const keys = new KeySpace(keyPrefix);
    const [first, second] = [new RedisQuota(raw, options), new RedisQuota(raw, options)];
    const a = `merged-a-${process.pid}`;
    const b = `merged-b-${process.pid}`;
    const holdId = `merged-hold-${process.pid}`;
    await first.setLimit(a, 100);
    await first.setLimit(b, 100);
    expect(await first.reserve({ holdId, account: a, amount: 30, ttlMs: 60_000 })).toEqual({
      granted: true,
      remaining: 70,
    });
    expect(withoutToken(await raw.get(keys.hold(holdId)))).toBe(`held|30||${a}`);
    await expectLatchError(
      second.reserve({ holdId, account: b, amount: 30, ttlMs: 60_000 }),
      "idempotency_conflict",
    );
    expect(withoutToken(await raw.get(keys.hold(holdId)))).toBe(`held|30||${a}`);
    expect(await raw.zcard(keys.accountKeys(b).expiry)).toBe(0);
    expect(await second.balance(b)).toEqual({ limit: 100, spent: 0, held: 0, available: 100 });
    // Still a's after it resolves (within the retention).
    expect(await second.commit(holdId, 25)).toEqual({ committed: 25 });
    await expectLatchError(
      first.reserve({ holdId, account: b, amount: 30, ttlMs: 60_000 }),
      "idempotency_conflict",
    );
    expect(await first.balance(a)).toEqual({ limit: 100, spent: 25, held: 0, available: 75 });
  });

  it("grants one of many concurrent reserves of one holdId on different accounts (atomic on a server)", async () => {
    const raw = await redis();
    const quotas = Array.from({ length: 4 }, () => new RedisQuota(raw, options));
    const accounts = Array.from({ length: 8 }, (_, i) => `race-acct-${process.pid}-${i}`);
    for (const account of accounts) await quotas[0]?.setLimit(account, 1_000);
    for (let round = 0; round < 20; round++) {
      const holdId = `race-hold-${process.pid}-${round}`;
      const results = await Promise.allSettled(
        accounts.map((account, i) =>
          (quotas[i % quotas.length] as RedisQuota).reserve({ holdId, account, amount: 10, ttlMs: 60_000 }),
        ),
      );
      expect(results.filter((r) => r.status === "fulfilled" && r.value.granted)).toHaveLength(1);
      expect(results.filter((r) => r.status === "rejected")).toHaveLength(accounts.length - 1);
    }
    const balances = await Promise.all(accounts.map((account) => quotas[1]?.balance(account)));
    expect(balances.reduce((sum, balance) => sum + (balance?.held ?? 0), 0)).toBe(20 * 10);
  });

  it("commits on the account the record names when the account this process remembered is stale", async () => {
    const raw = await redis();
    const keys = new KeySpace(keyPrefix);
    const [first, second] = [new RedisQuota(raw, options), new RedisQuota(raw, options)];
    const a = `stale-a-${process.pid}`;
    const b = `stale-b-${process.pid}`;
    const holdId = `stale-hold-${process.pid}`;
    await first.setLimit(a, 100);
    await first.setLimit(b, 100);
    await first.reserve({ holdId, account: a, amount: 10, ttlMs: 60_000 });
    // The record disappears behind first's back (as if past its retention), and the holdId
    // moves to b through another process; first still remembers a.
    await raw.del(keys.hold(holdId));
    await raw.zrem(keys.accountKeys(a).expiry, `10|${holdId}`);
    await raw.hincrby(keys.accountKeys(a).account, "held", -10);
    expect(await second.reserve({ holdId, account: b, amount: 20, ttlMs: 60_000 })).toEqual({
      granted: true,
      remaining: 80,
    });
    expect(await first.commit(holdId, 15)).toEqual({ committed: 15 });
    expect(await first.balance(a)).toEqual({ limit: 100, spent: 0, held: 0, available: 100 });
    expect(await first.balance(b)).toEqual({ limit: 100, spent: 15, held: 0, available: 85 });
  });

  it("leaves every input the hot-path checks decline to the schema (same errors as core)", async () => {
    const quota = new RedisQuota(await redis(), options);
    const valid = { holdId: "v", account: "v", amount: 1, ttlMs: 1 };
    for (const request of [
      { ...valid, extra: 1 },
      { ...valid, amount: 0 },
      { ...valid, amount: 1.5 },
      { ...valid, ttlMs: 2 ** 53 },
      { ...valid, holdId: "" },
      { ...valid, account: "x".repeat(257) },
    ]) {
      await expectLatchError(quota.reserve(request), "invalid_input");
    }
    await expectLatchError(quota.commit("", 1), "invalid_input");
    await expectLatchError(quota.commit("v", -1), "invalid_input");
    await expectLatchError(quota.commit("v", Number.NaN), "invalid_input");
    await expectLatchError(quota.void("x".repeat(257)), "invalid_input");
  });

  it("tags every key of an account with the account, and escapes braces so keys never collide", () => {
    const keys = new KeySpace(keyPrefix);
    const { account, expiry } = keys.accountKeys("acme");
    for (const key of [account, expiry, keys.holdRecord("acme", "h1")]) {
      expect(key.startsWith(`${keyPrefix}:quota:{acme}:`)).toBe(true);
    }
    expect(keys.holdRecord("a}:hold:x", "y")).not.toBe(keys.holdRecord("a", "x}:hold:y"));
    expect(keys.accountKeys("a}b").account).toBe(`${keyPrefix}:quota:{a%7Db}:account`);
    expect(keys.counter("k{1}")).toBe(`${keyPrefix}:usage:{k%7B1%7D}`);
    expect(keys.holdLocator("h}1")).toBe(`${keyPrefix}:holdref:{h%7D1}`);
    expect(keys.hold("h}1")).toBe(`${keyPrefix}:hold:{h%7D1}`);
    expect(() => new KeySpace("bad{prefix}")).toThrow(/keyPrefix/);
  });
});
