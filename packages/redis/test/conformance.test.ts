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
