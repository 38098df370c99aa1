import type { Cluster, Redis } from "ioredis";
import type { RedisClient } from "./client.js";
import { isTransient, sendWithin } from "./transient.js";
import { UnsafeServerSettingError } from "./unsafe-server-setting-error.js";

/** The one `maxmemory-policy` under which Redis never evicts a key: writes fail instead (OOM). */
export const SAFE_EVICTION_POLICY = "noeviction";

const isCluster = (client: RedisClient): client is Cluster => client.isCluster;

const isReplyError = (error: unknown): boolean => error instanceof Error && error.name === "ReplyError";

/**
 * A node's `maxmemory-policy`: `CONFIG GET`, or where the server refuses CONFIG (managed Redis
 * often renames or forbids it) the `maxmemory_policy` field of `INFO memory`; `undefined` when
 * the server refuses both. Connection errors are thrown (the caller may try again later).
 */
export async function readEvictionPolicy(node: Redis, until: number): Promise<string | undefined> {
  try {
    const reply = await sendWithin(node, until, isTransient, () => node.config("GET", "maxmemory-policy"));
    const value = Array.isArray(reply) ? reply[1] : undefined;
    if (typeof value === "string" && value !== "") return value;
  } catch (error) {
    if (!isReplyError(error)) throw error;
  }
  try {
    const info = await sendWithin(node, until, isTransient, () => node.info("memory"));
    return /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
  } catch (error) {
    if (!isReplyError(error)) throw error;
    return undefined;
  }
}

const nodeName = (node: Redis) => `${node.options.host ?? "?"}:${node.options.port ?? "?"}`;

/**
 * Refuses a server (every node of a Cluster the client knows: masters and replicas) whose
 * `maxmemory-policy` can evict keys — `allkeys-*` and `volatile-*` alike (Latch's hold records
 * carry a TTL, so `volatile-*` evicts them first) — or whose policy cannot be read, with an
 * {@link UnsafeServerSettingError} naming the setting, the value and the node. Resolves when
 * every node answers `noeviction`. Bounded by `until` (epoch ms).
 *
 * @example
 * await checkEvictionPolicy(redis, Date.now() + 5_000); // throws on volatile-lru
 */
export async function checkEvictionPolicy(client: RedisClient, until: number): Promise<void> {
  // A Cluster lists its nodes once its slot map is loaded: wait for that (bounded).
  const nodes = isCluster(client)
    ? await sendWithin(client, until, isTransient, async () => client.nodes("all"))
    : [client];
  for (const node of nodes) {
    const policy = await readEvictionPolicy(node, until);
    if (policy === SAFE_EVICTION_POLICY) continue;
    throw new UnsafeServerSettingError({
      setting: "maxmemory-policy",
      value: policy,
      node: nodeName(node),
      reason:
        policy === undefined
          ? "could not be read (the server refused CONFIG GET and INFO); set noeviction and pass allowEvictingPolicy: true to start anyway"
          : `is ${policy}, which lets the server evict quota holds and limits; set noeviction, or pass allowEvictingPolicy: true to accept the risk`,
    });
  }
}
