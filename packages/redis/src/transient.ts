import { LatchError } from "@latch/core";
import type { RedisClient } from "./client.js";

/**
 * Replies by which a server refuses a command it did not run, for a state that passes by
 * itself: a slot being migrated (`TRYAGAIN`), a Cluster without a quorum or during a failover
 * (`CLUSTERDOWN`, `MASTERDOWN`), a server loading its data set (`LOADING`), a node demoted to
 * replica (`READONLY`).
 */
const REFUSALS = ["TRYAGAIN", "CLUSTERDOWN", "LOADING", "MASTERDOWN", "READONLY"] as const;

/** ioredis's own errors for a command it never sent (no connection, no slot map yet). */
const NOT_SENT = [
  "Stream isn't writeable and enableOfflineQueue options is false",
  "Cluster isn't ready and enableOfflineQueue options is false",
] as const;

const isReplyError = (error: Error): boolean => error.name === "ReplyError";

/**
 * True when the command surely did not run: a refusal reply (see {@link REFUSALS}) or a
 * command the client never sent. Sending it again is safe even for a call that is not
 * idempotent (a counter add).
 */
export function isRefusal(error: unknown): boolean {
  if (!(error instanceof Error) || LatchError.isInstance(error)) return false;
  const { message } = error;
  if (isReplyError(error)) return REFUSALS.some((code) => message.startsWith(code));
  return NOT_SENT.some((text) => message === text);
}

/**
 * True when the same call may succeed if sent again shortly: a refusal, or anything the client
 * raises that is not a reply of the server (a connection closed or refused, a command timeout,
 * too many Cluster redirections while slots move). The command may have run: only idempotent
 * calls (every quota operation) retry on these. Server replies other than refusals (`OOM`,
 * script errors) and Latch errors are final.
 */
export function isTransient(error: unknown): boolean {
  if (!(error instanceof Error) || LatchError.isInstance(error)) return false;
  return isReplyError(error) ? isRefusal(error) : true;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Short waits first (a TRYAGAIN clears within milliseconds), at most 100 ms apart. */
const backoff = (attempt: number) => Math.min(100, 5 * 2 ** attempt);

/**
 * Sends `send()` once the client is ready, and again after each error `retryable` accepts,
 * until `until` (epoch ms, `Date.now()` based): then the last error (or a not-ready error) is thrown. The common
 * case — a ready client and an answer — costs one status check and no extra promise.
 *
 * @param retryable {@link isTransient} for idempotent calls, {@link isRefusal} otherwise.
 */
export function sendWithin<T>(
  client: RedisClient,
  until: number,
  retryable: (error: unknown) => boolean,
  send: () => Promise<T>,
): Promise<T> {
  if (client.status !== "ready") return retrying(client, until, retryable, send, undefined);
  return send().then(undefined, (error: unknown) =>
    retryable(error) ? retrying(client, until, retryable, send, error) : Promise.reject(error),
  );
}

/**
 * {@link sendWithin} after the first attempt failed with `error`: waits, then sends again while
 * `retryable` accepts each error, until `until`. For hot paths that make the first attempt
 * themselves.
 */
export async function retrying<T>(
  client: RedisClient,
  until: number,
  retryable: (error: unknown) => boolean,
  send: () => Promise<T>,
  first: unknown,
): Promise<T> {
  let error = first;
  for (let attempt = 0; ; attempt++) {
    if (error !== undefined) {
      if (!retryable(error)) throw error;
      const remaining = until - Date.now();
      if (remaining <= 0) throw error;
      await sleep(Math.min(backoff(attempt), remaining));
    }
    await whenReady(client, until, error);
    try {
      return await send();
    } catch (next) {
      error = next;
    }
  }
}

/** Waits (polling, bounded by `until`) until the client is ready; connects a lazy one. */
async function whenReady(client: RedisClient, until: number, lastError: unknown): Promise<void> {
  while (client.status !== "ready") {
    if (client.status === "end") throw lastError ?? new Error("the Redis client has been closed");
    if (client.status === "wait") client.connect().catch(() => undefined); // lazyConnect
    const remaining = until - Date.now();
    if (remaining <= 0) throw lastError ?? new Error(`the Redis client is not ready (${client.status})`);
    await sleep(Math.min(10, remaining));
  }
}
