import {
  describeObservationStore,
  describeQuotaReservator,
  describeRatedRecordStore,
  describeUsageCounter,
} from "@latch/testkit";
import { afterAll, describe, expect, it } from "vitest";
import {
  KeySpace,
  RedisObservationStore,
  RedisQuota,
  RedisRatedRecordStore,
  RedisUsageCounter,
} from "../src/index.js";
import { expectLatchError } from "./support/expect.js";
import { countObservations, countVersions } from "./support/inspect.js";
import { quotaBehaviour } from "./support/quota-behaviour.js";
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
describeQuotaReservator({ name: "redis", create: async () => new RedisQuota(await redis(), options) });
// The same contract when another process resolves the holds (commit/void via the locator).
describeQuotaReservator({
  name: "redis, holds resolved by another process",
  create: async () =>
    splitQuota(new RedisQuota(await redis(), options), new RedisQuota(await redis(), options)),
});
describeUsageCounter({ name: "redis", create: async () => new RedisUsageCounter(await redis(), options) });
describeObservationStore({
  name: "redis",
  create: async () => new RedisObservationStore(await redis(), options),
  // Raw reads of the store's hash, not through the adapter.
  inspect: { countObservations: async (eventId) => countObservations(await redis(), keyPrefix, eventId) },
});
describeRatedRecordStore({
  name: "redis",
  create: async () => new RedisRatedRecordStore(await redis(), options),
  inspect: { countVersions: async (eventId) => countVersions(await redis(), keyPrefix, eventId) },
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
      // MONITOR output arrives on its own connection: wait for it (at most ~2 s).
      for (let i = 0; i < 40 && sent.length < 5; i++) await new Promise((resolve) => setTimeout(resolve, 50));
      await new Promise((resolve) => setTimeout(resolve, 50)); // and for anything unexpected
    } finally {
      monitor.disconnect();
    }
    expect(sent.map((args) => args[0]?.toLowerCase())).toEqual([
      "evalsha",
      "evalsha",
      "get",
      "evalsha",
      "pexpire",
    ]);
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
    expect(() => new KeySpace("bad{prefix}")).toThrow(/keyPrefix/);
  });
});
