import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { failFastRedisOptions, RedisQuota, RedisUsageCounter } from "../src/index.js";
import { expectLatchError } from "./support/expect.js";
import { connectRedis, runPrefix } from "./support/redis.js";
import { ownedRedisServer } from "./support/servers.js";

// A redis-server this file starts on a spare port, so it can stop, pause and restart it.
// Every test awaits it, so a server that cannot start fails each test (never a skip).
const keyPrefix = runPrefix("fail-closed");
const started = ownedRedisServer().then(async (server) => {
  try {
    const client = await connectRedis(server.url, 1_000);
    return { server, client, quota: new RedisQuota(client, { keyPrefix, timeoutMs: 1_000 }) };
  } catch (error) {
    await server.dispose();
    throw error;
  }
});
started.catch(() => undefined); // reported by each test that awaits it

afterAll(async () => {
  const ready = await started.catch(() => undefined);
  if (ready === undefined) return;
  ready.client.disconnect();
  await ready.server.dispose();
});

/** Retries `attempt` until it resolves (the client reconnects on its own), at most ~10 s. */
async function eventually<T>(attempt: () => Promise<T>): Promise<T> {
  let last: unknown;
  for (let i = 0; i < 200; i++) {
    try {
      return await attempt();
    } catch (error) {
      last = error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  throw last;
}

describe("RedisQuota fails closed", () => {
  it("denies with reason unavailable while the server is down, throws quota_unavailable elsewhere, and recovers", async () => {
    const { server, quota } = await started;
    await quota.setLimit("acct", 100);
    expect(await quota.reserve({ holdId: "before", account: "acct", amount: 10, ttlMs: 60_000 })).toEqual({
      granted: true,
      remaining: 90,
    });

    await server.stop();
    expect(await quota.reserve({ holdId: "during", account: "acct", amount: 10, ttlMs: 60_000 })).toEqual({
      granted: false,
      reason: "unavailable",
    });
    const error = await expectLatchError(quota.balance("acct"), "quota_unavailable");
    expect(error.isRetryable).toBe(true);
    await expectLatchError(quota.check("acct", 1), "quota_unavailable");
    await expectLatchError(quota.commit("before", 5), "quota_unavailable");
    await expectLatchError(quota.void("before"), "quota_unavailable");
    await expectLatchError(quota.setLimit("acct", 100), "quota_unavailable");
    // Validation still comes first: bad input is the caller's error, not the store's.
    await expectLatchError(
      quota.reserve({ holdId: "x", account: "acct", amount: 0, ttlMs: 1 }),
      "invalid_input",
    );

    await server.start();
    // Without persistence the restarted server is empty: set the limit again once it answers.
    await eventually(() => quota.setLimit("acct", 100));
    expect(await quota.reserve({ holdId: "after", account: "acct", amount: 10, ttlMs: 60_000 })).toEqual({
      granted: true,
      remaining: 90,
    });
    expect(await quota.commit("after", 7)).toEqual({ committed: 7 });
    expect(await quota.balance("acct")).toEqual({ limit: 100, spent: 7, held: 0, available: 93 });
  });

  it("denies with reason unavailable when the server stops answering (paused) instead of hanging", async () => {
    const { server, quota } = await started;
    await eventually(() => quota.setLimit("paused", 100));
    const admin = new Redis(server.url);
    try {
      await admin.client("PAUSE", 3_000, "ALL");
      // The call returns (the configured timeout is 1 s, the pause 3 s): it does not hang.
      expect(
        await quota.reserve({ holdId: "paused-1", account: "paused", amount: 1, ttlMs: 60_000 }),
      ).toEqual({
        granted: false,
        reason: "unavailable",
      });
      await expectLatchError(quota.balance("paused"), "quota_unavailable");
    } finally {
      await admin.client("UNPAUSE");
      await admin.quit();
    }
    expect(
      await eventually(() =>
        quota.reserve({ holdId: "paused-2", account: "paused", amount: 1, ttlMs: 60_000 }),
      ),
    ).toMatchObject({ granted: true });
  });

  it("waits within its deadline for a client that is not ready yet, or a server coming back, instead of denying", async () => {
    // A server of its own, with persistence, so that a restart keeps the limit.
    const server = await ownedRedisServer(["--appendonly", "yes"]);
    const lazy = new Redis(server.url, { ...failFastRedisOptions(1_000), lazyConnect: true });
    lazy.on("error", () => {});
    let connecting: Redis | undefined;
    try {
      // Never connected (lazyConnect): the first call connects it and waits for it.
      expect(lazy.status).toBe("wait");
      const quota = new RedisQuota(lazy, { keyPrefix, timeoutMs: 30_000 });
      await quota.setLimit("acct", 100);
      expect(await quota.reserve({ holdId: "lazy", account: "acct", amount: 10, ttlMs: 60_000 })).toEqual({
        granted: true,
        remaining: 90,
      });
      // Created just now, still connecting: the call waits for "ready".
      connecting = new Redis(server.url, failFastRedisOptions(1_000));
      connecting.on("error", () => {});
      expect(connecting.status).toBe("connecting");
      expect(
        await new RedisQuota(connecting, { keyPrefix, timeoutMs: 5_000 }).reserve({
          holdId: "connecting",
          account: "acct",
          amount: 10,
          ttlMs: 60_000,
        }),
      ).toEqual({ granted: true, remaining: 80 });
      const counter = new RedisUsageCounter(connecting, { keyPrefix, timeoutMs: 30_000 });
      // The server goes down, then comes back while the calls wait (their deadline is 30 s: a
      // restart on a loaded machine can take seconds).
      await server.stop();
      const reserve = quota.reserve({ holdId: "during", account: "acct", amount: 10, ttlMs: 60_000 });
      const add = counter.add("usage", "2026-12", 5);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await server.start();
      expect(await reserve).toEqual({ granted: true, remaining: 70 });
      expect(await add).toBe(0);
      expect(await quota.balance("acct")).toEqual({ limit: 100, spent: 0, held: 30, available: 70 });
    } finally {
      lazy.disconnect();
      connecting?.disconnect();
      await server.dispose();
    }
  });
});
