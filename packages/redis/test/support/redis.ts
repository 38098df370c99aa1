import { randomUUID } from "node:crypto";
import { Cluster, Redis } from "ioredis";
import { failFastRedisOptions } from "../../src/index.js";

/** The shared Redis every run uses; unreachable ⇒ the tests fail (never skip). */
export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/** A key prefix unique to this test file's run, so runs never see each other's keys. */
export function runPrefix(label: string): string {
  return `latch-test-${label}-${process.pid}-${randomUUID().slice(0, 8)}`;
}

/** A connected standalone client; rejects when the server is unreachable. */
export async function connectRedis(url = REDIS_URL, commandTimeoutMs = 10_000): Promise<Redis> {
  const client = new Redis(url, { ...failFastRedisOptions(commandTimeoutMs), lazyConnect: true });
  // Connection errors reach the caller through each command; no "Unhandled error event" noise.
  client.on("error", () => {});
  await client.connect();
  return client;
}

/** A connected Cluster client; rejects when the cluster is not ready. */
export async function connectCluster(ports: readonly number[], commandTimeoutMs = 10_000): Promise<Cluster> {
  const cluster = new Cluster(
    ports.map((port) => ({ host: "127.0.0.1", port })),
    {
      redisOptions: failFastRedisOptions(commandTimeoutMs),
      enableOfflineQueue: false,
      lazyConnect: true,
      clusterRetryStrategy: (times: number) => Math.min(50 * times, 1_000),
    },
  );
  cluster.on("error", () => {});
  await cluster.connect();
  return cluster;
}

/** Deletes every key under `prefix` on one node (SCAN + DEL); returns how many were deleted. */
export async function deleteByPrefix(node: Redis, prefix: string): Promise<number> {
  let cursor = "0";
  let deleted = 0;
  do {
    const [next, keys] = await node.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1_000);
    cursor = next;
    // One DEL per key: in a cluster, keys of one batch may live in different slots.
    for (const key of keys) deleted += await node.del(key);
  } while (cursor !== "0");
  return deleted;
}

/** Every key under `prefix` on one node. */
export async function keysByPrefix(node: Redis, prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await node.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1_000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== "0");
  return found;
}
