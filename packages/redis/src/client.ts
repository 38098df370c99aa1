import { LatchError, QuotaUnavailableError } from "@latch/core";
import type { Cluster, Redis, RedisOptions } from "ioredis";

/** A standalone `Redis` client or a `Cluster` client of ioredis. */
export type RedisClient = Redis | Cluster;

/**
 * ioredis options under which nothing waits forever for a server that is down or stuck:
 * commands fail at once while disconnected (no offline queue), are not retried on a fresh
 * connection, and time out after `commandTimeout`. Spread them into `new Redis(url, {...})`
 * or a Cluster's `redisOptions`; quota fails closed either way (see `timeoutMs`), but these
 * keep the client from queueing work behind a dead connection.
 *
 * @example
 * const redis = new Redis(process.env.REDIS_URL, { ...failFastRedisOptions(500) });
 */
export function failFastRedisOptions(commandTimeoutMs = 1_000): RedisOptions {
  return {
    commandTimeout: commandTimeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    connectTimeout: Math.max(commandTimeoutMs, 1_000),
    retryStrategy: (times: number) => Math.min(50 * times, 1_000),
  };
}

/** Resolves or rejects like `promise`, or rejects after `ms` with a timeout error. */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer from Redis within ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** Latch errors pass through; anything else from the client means the store did not answer. */
export function toQuotaError(error: unknown): LatchError {
  if (LatchError.isInstance(error)) return error;
  const reason = error instanceof Error ? error.message : "unknown error";
  return new QuotaUnavailableError({ reason, cause: error });
}
