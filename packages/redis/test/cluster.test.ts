import { runConformance } from "@latch/testkit";
import type { Cluster } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { KeySpace, RedisQuota } from "../src/index.js";
import { redisSuites } from "./support/conformance.js";
import { expectLatchError } from "./support/expect.js";
import { quotaBehaviour } from "./support/quota-behaviour.js";
import { connectCluster, deleteByPrefix, keysByPrefix, runPrefix } from "./support/redis.js";
import { type OwnedCluster, ownedCluster } from "./support/servers.js";

// A 3-master Redis Cluster this file starts on spare loopback ports and tears down. Every
// test awaits it, so a cluster that cannot start fails each test (never a skip).
const keyPrefix = runPrefix("cluster");
const started: Promise<{ nodes: OwnedCluster; cluster: Cluster }> = ownedCluster(3).then(async (nodes) => {
  try {
    return { nodes, cluster: await connectCluster(nodes.ports) };
  } catch (error) {
    await nodes.dispose();
    throw error;
  }
});
started.catch(() => undefined); // reported by each test that awaits it
const cluster = async () => (await started).cluster;

afterAll(async () => {
  const ready = await started.catch(() => undefined);
  if (ready === undefined) return;
  for (const node of ready.cluster.nodes("master")) await deleteByPrefix(node, keyPrefix);
  for (const node of ready.cluster.nodes("master")) expect(await keysByPrefix(node, keyPrefix)).toEqual([]);
  await ready.cluster.quit();
  await ready.nodes.dispose();
});

const options = { keyPrefix, timeoutMs: 10_000 };
runConformance({ name: "redis cluster", suites: redisSuites(cluster, options) });

describe("RedisQuota on a 3-master Redis Cluster", () => {
  quotaBehaviour({
    keyPrefix,
    client: cluster,
    connect: async () => connectCluster((await started).nodes.ports),
    flushScripts: async () => {
      await Promise.all((await cluster()).nodes("master").map((node) => node.script("FLUSH")));
    },
  });

  it("runs with 3 masters, and puts every key of one account in one slot", async () => {
    const client = await cluster();
    expect(client.nodes("master")).toHaveLength(3);
    const keys = new KeySpace(keyPrefix);
    const { account, expiry } = keys.accountKeys("acme");
    const slots = await Promise.all(
      [account, expiry, keys.holdRecord("acme", "h-1"), keys.holdRecord("acme", "h-2")].map(
        (key) => client.cluster("KEYSLOT", key) as Promise<number>,
      ),
    );
    expect(new Set(slots).size).toBe(1);
    expect(await client.cluster("KEYSLOT", "acme")).toBe(slots[0]);
  });

  it("spreads accounts over the masters", async () => {
    const client = await cluster();
    const quota = new RedisQuota(client, options);
    const accounts = Array.from({ length: 30 }, (_, i) => `spread-${process.pid}-${i}`);
    for (const account of accounts) await quota.setLimit(account, 1);
    const perNode = await Promise.all(
      client.nodes("master").map(async (node) => (await keysByPrefix(node, `${keyPrefix}:quota`)).length),
    );
    expect(perNode.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
    expect(perNode.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(30);
  });

  it("grants a reserve whose locator claim failed once transiently (the retry is not refused by its own take-back)", async () => {
    const client = await cluster();
    // The first locator claim (SET … NX GET) fails as a dropped connection would; all else passes.
    let failures = 1;
    const flaky = new Proxy(client, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver);
        if (property !== "set" || typeof value !== "function") return value;
        return (...args: unknown[]) => {
          if (args.includes("NX") && failures > 0) {
            failures--;
            return Promise.reject(new Error("Connection is closed."));
          }
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const quota = new RedisQuota(flaky, options);
    const checker = new RedisQuota(client, options);
    const account = `claim-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    await checker.setLimit(account, 100);
    const holdId = `${account}-h`;
    expect(await quota.reserve({ holdId, account, amount: 10, ttlMs: 60_000 })).toEqual({
      granted: true,
      remaining: 90,
    });
    expect(failures).toBe(0);
    expect(await checker.balance(account)).toMatchObject({ held: 10 });
    expect(await checker.commit(holdId, 7)).toEqual({ committed: 7 });
    expect(await checker.balance(account)).toMatchObject({ spent: 7, held: 0 });
  });

  it("takes back a hold whose conflict check failed transiently once (the retry replays it)", async () => {
    const client = await cluster();
    let failures = 1;
    const flaky = new Proxy(client, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver);
        if (property !== "get" || typeof value !== "function") return value;
        return (...args: unknown[]) => {
          if (failures > 0) {
            failures--;
            return Promise.reject(new Error("Connection is closed."));
          }
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const quota = new RedisQuota(flaky, options);
    const checker = new RedisQuota(client, options);
    const tag = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    const [a, b] = [`conflict-a-${tag}`, `conflict-b-${tag}`];
    await checker.setLimit(a, 100);
    await checker.setLimit(b, 100);
    const holdId = `conflict-${tag}`;
    expect(await checker.reserve({ holdId, account: b, amount: 5, ttlMs: 60_000 })).toMatchObject({
      granted: true,
    });
    await expectLatchError(
      quota.reserve({ holdId, account: a, amount: 10, ttlMs: 60_000 }),
      "idempotency_conflict",
    );
    expect(failures).toBe(0);
    expect(await checker.balance(a)).toMatchObject({ held: 0, available: 100 });
    expect(await checker.balance(b)).toMatchObject({ held: 5 });
  });

  it("leaves no hold when every locator claim fails transiently until the deadline", async () => {
    const client = await cluster();
    const flaky = new Proxy(client, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver);
        if (property !== "set" || typeof value !== "function") return value;
        return (...args: unknown[]) =>
          args.includes("NX")
            ? Promise.reject(new Error("Connection is closed."))
            : (value as (...a: unknown[]) => unknown).apply(target, args);
      },
    });
    const quota = new RedisQuota(flaky, { keyPrefix, timeoutMs: 300 });
    const checker = new RedisQuota(client, options);
    const account = `claim-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    await checker.setLimit(account, 100);
    expect(await quota.reserve({ holdId: `${account}-h`, account, amount: 10, ttlMs: 60_000 })).toEqual({
      granted: false,
      reason: "unavailable",
    });
    for (let attempt = 0; ; attempt++) {
      const { held } = await checker.balance(account);
      if (held === 0) break;
      if (attempt >= 100) expect(held).toBe(0);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });
});
