import { LatchError } from "../errors/index.js";

export interface RetryPolicy {
  /** Attempts in all, the first included. Default 4. */
  attempts?: number;
  /** Backoff before the second attempt, doubled each time. Default 25 ms. */
  baseDelayMs?: number;
  /** Ceiling of one backoff. Default 1,000 ms. */
  maxDelayMs?: number;
}

/**
 * Errors worth retrying: a Latch error that says so, or anything that is not a Latch error
 * (a driver's connection reset, a timeout). Validation errors, conflicts and corrupt records
 * never are: the same input would fail the same way. The one predicate of the facade: it
 * decides what `withRetry` retries, and what recording spools (or, for a burn, throws to a
 * later retry) rather than throws or reports.
 */
export function isRetryable(error: unknown): boolean {
  return LatchError.isInstance(error) ? error.isRetryable : true;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Runs `fn` until it succeeds, a non-retryable error is thrown, or the attempts run out;
 * between attempts it waits an exponential backoff with full jitter (a random delay between 0
 * and the backoff), so a fleet of callers does not retry in lockstep.
 */
export async function withRetry<T>(
  fn: () => Promise<T>,
  policy: RetryPolicy = {},
  signal?: AbortSignal,
): Promise<T> {
  const attempts = Math.max(1, policy.attempts ?? 4);
  const base = policy.baseDelayMs ?? 25;
  const max = policy.maxDelayMs ?? 1_000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= attempts || !isRetryable(error) || signal?.aborted) throw error;
      await sleep(Math.random() * Math.min(max, base * 2 ** (attempt - 1)), signal);
    }
  }
}
