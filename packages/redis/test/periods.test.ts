/**
 * The calendar-period handshake of RedisQuota (see includes/period): Lua has no time-zone
 * data, so the client computes bounds for the server's time and the scripts refuse bounds that
 * do not contain the server's `TIME`, writing nothing.
 */
import { quotaPeriodBounds } from "@latch/core/adapter";
import type { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { KeySpace, RedisQuota } from "../src/index.js";
import { defineScripts } from "../src/scripts.js";
import { connectRedis, deleteByPrefix, runPrefix } from "./support/redis.js";

const keyPrefix = runPrefix("periods");
const connected: Promise<Redis> = connectRedis();
afterAll(async () => {
  const redis = await connected;
  await deleteByPrefix(redis, keyPrefix);
  await redis.quit();
});

const DAY = 86_400_000;
const period = { every: "day", timeZone: "Europe/Berlin" } as const;

describe("RedisQuota: calendar periods rolled by the server's clock", () => {
  it("refuses setLimit bounds that miss the server's now, writing nothing, and answers that now", async () => {
    const redis = await connected;
    const key = new KeySpace(keyPrefix).accountKeys("stale-bounds").account;
    const { start, end } = quotaPeriodBounds(period, Date.now() - 3 * DAY);
    const reply = await defineScripts(redis).setLimit(
      { account: key },
      { limit: "10", mode: "day", zone: "Europe/Berlin", start: String(start), end: String(end) },
    );
    expect(reply[0]).toBe(-9);
    expect(Math.abs(Number(reply[1]) - Date.now())).toBeLessThan(60_000);
    expect(await redis.exists(key)).toBe(0);
  });

  it("rolls a period only with bounds containing the server's now, and only once", async () => {
    const redis = await connected;
    const quota = new RedisQuota(redis, { keyPrefix });
    await quota.setLimit("roll-once", 100, { period });
    const r = { holdId: `${keyPrefix}-h1`, account: "roll-once", amount: 40, ttlMs: 60_000 };
    await quota.reserve(r);
    await quota.commit(r.holdId, 40);
    const key = new KeySpace(keyPrefix).accountKeys("roll-once").account;
    const [seconds] = await redis.time();
    await redis.hset(key, "pend", String(Number(seconds) * 1_000)); // the period ended now
    const scripts = defineScripts(redis);
    const stale = quotaPeriodBounds(period, Date.now() - 3 * DAY);
    const missed = await scripts.rollPeriod(
      { account: key },
      { every: "day", zone: "Europe/Berlin", start: String(stale.start), end: String(stale.end) },
    );
    expect(missed[0]).toBe(-9);
    expect(await redis.hget(key, "spent")).toBe("40"); // nothing written
    const { start, end } = quotaPeriodBounds(period, Date.now());
    const args = { every: "day", zone: "Europe/Berlin", start: String(start), end: String(end) };
    expect(await scripts.rollPeriod({ account: key }, args)).toEqual([1]);
    expect(await scripts.rollPeriod({ account: key }, args)).toEqual([0]); // rolled already
    expect(await scripts.rollPeriod({ account: key }, { ...args, zone: "UTC" })).toEqual([0]); // another period
    expect(await quota.balance("roll-once")).toEqual({
      limit: 100,
      spent: 0,
      held: 0,
      available: 100,
      periodStart: start,
      periodEnd: end,
    });
  });
});
