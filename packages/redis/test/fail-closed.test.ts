import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { RedisQuota } from "../src/index.js";
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
});
