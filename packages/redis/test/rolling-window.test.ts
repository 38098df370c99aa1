/**
 * Rolling windows on Redis (see includes/period): commits summed per bucket, entries written
 * per commit by the build before buckets read and dropped the same way, spend that a release
 * from before periods committed without an entry made to leave the window too, and script
 * arguments checked (bounds, window length) with an error naming the field.
 */
import { LatchValidationError } from "@latch/core";
import { quotaPeriodBounds } from "@latch/core/adapter";
import type { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { KeySpace, RedisQuota } from "../src/index.js";
import { scriptError } from "../src/script-errors.js";
import { defineScripts } from "../src/scripts.js";
import { expectLatchError } from "./support/expect.js";
import { connectRedis, deleteByPrefix, runPrefix } from "./support/redis.js";

const keyPrefix = runPrefix("rolling");
const connected: Promise<Redis> = connectRedis();
afterAll(async () => {
  const redis = await connected;
  await deleteByPrefix(redis, keyPrefix);
  await redis.quit();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const keyOf = (account: string) => new KeySpace(keyPrefix).accountKeys(account).account;
const serverNow = async (redis: Redis) => {
  const [seconds, micros] = await redis.time();
  return Number(seconds) * 1_000 + Math.floor(Number(micros) / 1_000);
};
const pathsOf = (error: unknown) => (error as LatchValidationError).issues.map((issue) => issue.path);

describe("RedisQuota: rolling windows in buckets", () => {
  it("reads and drops the per-commit entries of the build before buckets (no conversion)", async () => {
    const redis = await connected;
    const quota = new RedisQuota(redis, { keyPrefix });
    const key = keyOf("legacy-queue");
    const now = await serverNow(redis);
    // 1,500 entries as the earlier build wrote them: "<commit ms>|<amount>", no usum. Stamped
    // just before now, they stay in the 2 s window for about 2 s: the first balance runs well
    // inside it on a loaded machine (stamped 1 s back, a second-long stall let them leave early).
    const fields: string[] = ["limit", "10000", "spent", "1500", "held", "0", "proll", "2000"];
    for (let seq = 0; seq < 1_500; seq++) fields.push(`u:${seq}`, `${now - 10 + (seq % 10)}|1`);
    fields.push("uh", "0", "ut", "1500");
    await redis.hset(key, ...fields);
    expect(await quota.balance("legacy-queue")).toMatchObject({ spent: 1_500, available: 8_500 });
    await sleep(2_100); // a sleep only overshoots: every entry (≤ now + 1,990 in the window) is out
    // Past the window: each call drops at most 1,000 entries; the next drops the rest.
    expect(await quota.balance("legacy-queue")).toMatchObject({ spent: 500 });
    expect(await quota.balance("legacy-queue")).toMatchObject({ spent: 0, available: 10_000 });
    expect((await redis.hkeys(key)).filter((field) => field.startsWith("u:"))).toEqual([]);
    expect(await redis.hget(key, "usum")).toBe("0");
  });

  it("lets spend committed by a release from before periods (no entry) leave the window", async () => {
    const redis = await connected;
    const quota = new RedisQuota(redis, { keyPrefix });
    await quota.setLimit("old-writer", 100, { period: { rollingMs: 2_000 } });
    const r = { holdId: `${keyPrefix}-old-writer`, account: "old-writer", amount: 10, ttlMs: 60_000 };
    await quota.reserve(r);
    await quota.commit(r.holdId, 10);
    // What an older release's commit does: spent grows, no queue entry.
    await redis.hincrby(keyOf("old-writer"), "spent", 5);
    expect(await quota.balance("old-writer")).toMatchObject({ spent: 15, available: 85 });
    await sleep(2_500);
    // Before buckets, those 5 stayed in spent for ever.
    expect(await quota.balance("old-writer")).toMatchObject({ spent: 0, available: 100 });
  });

  it("checks a commit for overflow against the spend left once the window dropped the commits it passed", async () => {
    const redis = await connected;
    const quota = new RedisQuota(redis, { keyPrefix });
    const max = Number.MAX_SAFE_INTEGER;
    // A 2 s window: the reserve right after the commit runs well inside it on a loaded machine
    // (with 1 s, a second-long stall let the big commit leave before the reserve).
    await quota.setLimit("near-max", max, { period: { rollingMs: 2_000 } });
    const big = { holdId: `${keyPrefix}-near-max-1`, account: "near-max", amount: 1, ttlMs: 60_000 };
    const late = { holdId: `${keyPrefix}-near-max-2`, account: "near-max", amount: 1, ttlMs: 60_000 };
    await quota.reserve(big);
    await quota.commit(big.holdId, max - 10);
    expect(await quota.reserve(late)).toEqual({ granted: true, remaining: 9 });
    await sleep(2_500);
    // The commit is the first script after the window passed: it drops the big commit first,
    // so max - 10 + 100 (which would overflow) is never checked.
    expect(await quota.commit(late.holdId, 100)).toEqual({ committed: 100 });
    expect(await quota.balance("near-max")).toMatchObject({ spent: 100, held: 0 });
  });

  it("does not count twice a commit that the per-commit build makes beside this one (a rolling deploy)", async () => {
    const redis = await connected;
    const quota = new RedisQuota(redis, { keyPrefix });
    const account = "mixed-build";
    const key = keyOf(account);
    // A 3 s window (buckets of 30 ms). t0: the 15; t2 ≥ t0 + 2,000: the 50; the last balance at
    // ≥ t2 + 1,500 ≥ t0 + 3,500 (sleeps only overshoot: the 15 are out) and 1.5 s before the 50
    // leaves (t2 + 3,000), so a loaded machine's stall under 1.5 s changes nothing. (With a 2 s
    // window and t2 + 1,300, a stall of 0.7 s let the 50 leave too.)
    await quota.setLimit(account, 100, { period: { rollingMs: 3_000 } });
    const commit = async (n: number, amount: number) => {
      const holdId = `${keyPrefix}-${account}-${n}`;
      await quota.reserve({ holdId, account, amount, ttlMs: 60_000 });
      await quota.commit(holdId, amount);
    };
    await commit(1, 10);
    // What the build before buckets commits: spent grows and a "<commit ms>|<amount>" entry is
    // appended to the queue, but "usum" (which that build does not know) is left alone.
    const tail = Number(await redis.hget(key, "ut"));
    await redis.hset(key, `u:${tail}`, `${await serverNow(redis)}|5`, "ut", String(tail + 1));
    await redis.hincrby(key, "spent", 5);
    expect(await quota.balance(account)).toMatchObject({ spent: 15, available: 85 });
    await sleep(2_000);
    await commit(2, 50);
    await sleep(1_500);
    // The first 15 have left the window, the 50 has not: counting the 5 twice would drop 20.
    expect(await quota.balance(account)).toMatchObject({ spent: 50, available: 50 });
  });

  it("changes the period of a large legacy queue in bounded steps (a million entries blocked Redis for 20 s)", async () => {
    const redis = await connected;
    const quota = new RedisQuota(redis, { keyPrefix });
    const account = "legacy-drop";
    const key = keyOf(account);
    const now = await serverNow(redis);
    // 3,500 per-commit entries of the build before buckets, all in the window.
    const fields: string[] = ["limit", "10000", "spent", "3500", "held", "0", "proll", "3600000"];
    for (let seq = 0; seq < 3_500; seq++) fields.push(`u:${seq}`, `${now - 1_000 + (seq % 10)}|1`);
    fields.push("uh", "0", "ut", "3500");
    await redis.hset(key, ...fields);
    const entries = async () => (await redis.hkeys(key)).filter((field) => field.startsWith("u:"));
    await quota.setLimit(account, 10_000, { period: { rollingMs: 7_200_000 } });
    // One script deletes at most 1,000 of them; the new window's queue starts after the rest.
    expect(await entries()).toHaveLength(2_500 + 1);
    expect(await redis.hget(key, "u:3500")).toMatch(/^\d+\|3500$/);
    expect(await quota.balance(account)).toMatchObject({ spent: 3_500, available: 6_500 });
    expect(await entries()).toHaveLength(1_500 + 1);
    const holdId = `${keyPrefix}-${account}`;
    await quota.reserve({ holdId, account, amount: 5, ttlMs: 60_000 });
    await quota.commit(holdId, 5);
    await quota.balance(account);
    expect(await entries()).toEqual(["u:3500"]);
    expect(await redis.hget(key, "ugh")).toBeNull();
    expect(await quota.balance(account)).toMatchObject({ spent: 3_505, available: 6_495 });
    expect(await redis.hget(key, "usum")).toBe("3505");
  });

  it("refuses absurd, negative or reversed period bounds in rollPeriod and setLimit, naming the field", async () => {
    const redis = await connected;
    const scripts = defineScripts(redis);
    const quota = new RedisQuota(redis, { keyPrefix });
    const period = { every: "day", timeZone: "UTC" } as const;
    await quota.setLimit("bounds", 100, { period });
    const key = keyOf("bounds");
    await redis.hset(key, "pend", String(await serverNow(redis))); // the period ended now
    const before = await redis.hgetall(key);
    const { start, end } = quotaPeriodBounds(period, Date.now());
    const cases: [string, string, string][] = [
      ["-86400000", String(end), "period.start"],
      [String(start), String(start - 1), "period.end"],
      [String(start), String(start), "period.end"],
      [String(start), String(start + 400 * 86_400_000), "period.end"],
      ["1.5", String(end), "period.start"],
      [String(start), "", "period.end"],
    ];
    for (const [from, to, field] of cases) {
      const args = { every: "day", zone: "UTC", start: from, end: to };
      const reply = await scripts.rollPeriod({ account: key }, args);
      expect(reply).toEqual([-10, field]);
      const error = scriptError("rollPeriod", reply as readonly unknown[], {
        subject: "rollPeriod",
        id: key,
      });
      expect(LatchValidationError.isInstance(error)).toBe(true);
      expect(pathsOf(error)).toEqual([field]);
      const set = await scripts.setLimit(
        { account: key },
        { limit: "5", mode: "day", zone: "UTC", start: from, end: to },
      );
      expect(set).toEqual([-10, field]);
    }
    for (const window of ["-1", "999", String(367 * 86_400_000), "1e6"]) {
      const reply = await scripts.setLimit(
        { account: key },
        { limit: "5", mode: "rolling", zone: window, start: "", end: "" },
      );
      expect(reply).toEqual([-10, "period.rollingMs"]);
    }
    const unknown = await scripts.setLimit(
      { account: key },
      { limit: "5", mode: "year", zone: "UTC", start: "", end: "" },
    );
    expect(unknown).toEqual([-10, "period.every"]);
    expect(await redis.hgetall(key)).toEqual(before); // nothing written
  });

  it("answers a stored time zone this process does not know with invalid_input naming period.timeZone", async () => {
    const redis = await connected;
    const quota = new RedisQuota(redis, { keyPrefix });
    await quota.setLimit("zone", 100, { period: { every: "day", timeZone: "UTC" } });
    // Another process (newer time-zone data) or a raw write stored a zone unknown here.
    await redis.hset(keyOf("zone"), "pzone", "Mars/Olympus_Mons", "pend", String(await serverNow(redis)));
    const error = await expectLatchError(quota.balance("zone"), "invalid_input");
    expect(pathsOf(error)).toEqual(["period.timeZone"]);
    const reserve = quota.reserve({ holdId: `${keyPrefix}-zone`, account: "zone", amount: 1, ttlMs: 1_000 });
    expect(pathsOf(await expectLatchError(reserve, "invalid_input"))).toEqual(["period.timeZone"]);
  });
});
