import { LatchError } from "@latch/core";
import { QuotaUnavailableError } from "@latch/core/errors";
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

interface Pending {
  /** `performance.now()` after which the operation is rejected. */
  deadline: number;
  /** Cleared once the operation settles (so its closure can be collected). */
  reject: ((error: Error) => void) | undefined;
}

/**
 * Rejects operations that do not settle within `ms`, with one timer for all of them instead of
 * a timer per call. Every operation gets the same `ms`, so deadlines arrive in the order the
 * operations started: a FIFO queue, a timer armed for its oldest unsettled entry, and settled
 * entries dropped from its head as they go. The timer keeps the process alive only while some
 * operation is pending.
 */
export class Deadlines {
  readonly #ms: number;
  #queue: Pending[] = [];
  #head = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(ms: number) {
    this.#ms = ms;
  }

  /**
   * Resolves or rejects like `promise`, or rejects after `ms` with a timeout error. With
   * `onRejected`, a rejection (the timeout's too) settles as `onRejected(error)` instead:
   * its value, or what it throws (one promise fewer than a `.catch` after it).
   */
  run<T, R = never>(promise: Promise<T>, onRejected?: (error: unknown) => R): Promise<T | R> {
    return new Promise<T | R>((resolve, reject) => {
      const fail =
        onRejected === undefined
          ? reject
          : (error: unknown) => {
              try {
                resolve(onRejected(error));
              } catch (mapped) {
                reject(mapped);
              }
            };
      const entry: Pending = { deadline: performance.now() + this.#ms, reject: fail };
      this.#queue.push(entry);
      if (this.#timer === undefined) this.#arm(this.#ms);
      else if (this.#queue.length - this.#head === 1) this.#timer.ref();
      promise.then(
        (value) => {
          this.#settled(entry);
          resolve(value);
        },
        (error: unknown) => {
          // Past its deadline the timeout has settled it (and run onRejected): not again.
          const pending = entry.reject !== undefined;
          this.#settled(entry);
          if (pending) fail(error);
        },
      );
    });
  }

  /** How many operations are pending (for tests). */
  get pending(): number {
    let n = 0;
    for (let i = this.#head; i < this.#queue.length; i++) if (this.#queue[i]?.reject !== undefined) n++;
    return n;
  }

  #settled(entry: Pending): void {
    entry.reject = undefined;
    const queue = this.#queue;
    let head = this.#head;
    while (head < queue.length && (queue[head] as Pending).reject === undefined) head++;
    if (head === queue.length) {
      queue.length = 0;
      head = 0;
      this.#timer?.unref(); // nothing pending: do not hold the process open
    } else if (head > 1_024 && head * 2 > queue.length) {
      this.#queue = queue.slice(head);
      head = 0;
    }
    this.#head = head;
  }

  #arm(delay: number): void {
    this.#timer = setTimeout(() => this.#expire(), delay);
  }

  #expire(): void {
    this.#timer = undefined;
    const now = performance.now();
    const queue = this.#queue;
    let head = this.#head;
    const expired: Array<(error: Error) => void> = [];
    while (head < queue.length) {
      const entry = queue[head] as Pending;
      if (entry.reject !== undefined) {
        if (entry.deadline > now) break;
        expired.push(entry.reject);
        entry.reject = undefined;
      }
      head++;
    }
    if (head === queue.length) {
      queue.length = 0;
      head = 0;
    }
    this.#head = head;
    if (head < queue.length) this.#arm(Math.max(1, Math.ceil((queue[head] as Pending).deadline - now)));
    for (const reject of expired) reject(new Error(`no answer from Redis within ${this.#ms} ms`));
  }
}

/** Latch errors pass through; anything else from the client means the store did not answer. */
export function toQuotaError(error: unknown): LatchError {
  if (LatchError.isInstance(error)) return error;
  const reason = error instanceof Error ? error.message : "unknown error";
  return new QuotaUnavailableError({ reason, cause: error });
}
