import { LatchValidationError } from "@latch/core";
import { ExportError } from "@latch/core/errors";
import { classifyS3Error } from "./errors.js";

/** How failed S3 requests are retried: exponential backoff with full jitter. */
export interface S3RetryOptions {
  /** Attempts per request, including the first; 1 disables retries. Default 6. */
  maxAttempts?: number;
  /** Backoff cap of the first retry, in ms. Default 100. */
  baseDelayMs?: number;
  /** Largest backoff, in ms. Default 5,000. */
  maxDelayMs?: number;
}

export interface RetryPolicy {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Uniform in [0, 1): replaced in tests. */
  random: () => number;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function checkInteger(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    throw LatchValidationError.at(
      "S3Exporter options",
      `retry.${field}`,
      `expected an integer from ${min} to ${max}`,
    );
  }
  return value;
}

export function retryPolicy(options: S3RetryOptions | undefined): RetryPolicy {
  return {
    maxAttempts: checkInteger(options?.maxAttempts ?? 6, "maxAttempts", 1, 100),
    baseDelayMs: checkInteger(options?.baseDelayMs ?? 100, "baseDelayMs", 0, 600_000),
    maxDelayMs: checkInteger(options?.maxDelayMs ?? 5_000, "maxDelayMs", 0, 3_600_000),
    random: Math.random,
    sleep,
  };
}

/**
 * The wait before retry number `retry` (1-based): full jitter over
 * `min(maxDelayMs, baseDelayMs × 2^(retry-1))`, and at least the server's `Retry-After`.
 */
export function backoffMs(policy: RetryPolicy, retry: number, retryAfterMs?: number): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(retry - 1, 30));
  const jittered = Math.floor(policy.random() * cap);
  return Math.max(jittered, Math.min(retryAfterMs ?? 0, policy.maxDelayMs));
}

/**
 * Runs `request` until it succeeds, a failure that retrying cannot help, or `maxAttempts`.
 * `onExists` / `onMissing` turn a 412 / 404 into a value (else they are `invalid_data`).
 * Exhausted retries throw `ExportError` `connection` or `rate_limited` (with `retryAfterMs`,
 * the wait the next attempt would have had). An aborted signal rethrows its reason at once.
 */
export async function withRetries<T>(
  policy: RetryPolicy,
  what: string,
  request: () => Promise<T>,
  handlers: { onExists?: () => Promise<T>; onMissing?: () => T | Promise<T> },
  signal?: AbortSignal,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    try {
      return await request();
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      const failure = classifyS3Error(error, what);
      if (failure.type === "exists" && handlers.onExists !== undefined) return handlers.onExists();
      if (failure.type === "missing" && handlers.onMissing !== undefined) return handlers.onMissing();
      if (failure.type === "fatal") throw failure.error;
      if (failure.type !== "retry") {
        throw new ExportError({
          kind: "invalid_data",
          reason: `${what}: unexpected ${failure.type === "exists" ? "412 Precondition Failed" : "404 Not Found"}`,
          cause: error,
        });
      }
      const wait = backoffMs(policy, attempt, failure.retryAfterMs);
      if (attempt >= policy.maxAttempts) {
        throw new ExportError({
          kind: failure.kind,
          reason: `${failure.reason} (gave up after ${attempt} attempt${attempt === 1 ? "" : "s"})`,
          ...(failure.kind === "rate_limited" ? { retryAfterMs: Math.max(wait, 1) } : {}),
          cause: error,
        });
      }
      await policy.sleep(wait, signal);
    }
  }
}
