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

/** Codes that are the caller's input: the same input fails the same way on every attempt and store. */
const CALLER_FAULTS: ReadonlySet<string> = new Set([
  "invalid_input",
  "idempotency_conflict",
  "currency_mismatch",
]);

/**
 * An error in what the caller gave (`invalid_input`, `idempotency_conflict`,
 * `currency_mismatch`): thrown to the caller, never spooled or reported away.
 */
export function isCallerFault(error: unknown): boolean {
  return LatchError.isInstance(error) && CALLER_FAULTS.has(error.code);
}

/** Codes that are the deployment's: every call fails the same way until someone migrates or upgrades. */
const DEPLOYMENT_FAULTS: ReadonlySet<string> = new Set(["schema_not_migrated", "schema_incompatible"]);

/**
 * An error in how Latch is deployed (`schema_not_migrated`: run `migrate()` / `latch migrate`;
 * `schema_incompatible`: upgrade the package): thrown to the caller at the first call —
 * never spooled, never turned into a quota denial — so a forgotten migration shows at once
 * instead of filling a spool. `latch.ready()` finds it before the first call.
 */
export function isDeploymentFault(error: unknown): boolean {
  return LatchError.isInstance(error) && DEPLOYMENT_FAULTS.has(error.code);
}

/**
 * Whether a later attempt can succeed where this one failed, with nobody changing anything:
 * true for everything but a caller fault, a deployment fault and `corrupt_record` (stored
 * data no replay can read). The one rule for what is kept for later — spooled by `record()`,
 * left before the cursor by `reconcileCredits()` — rather than thrown or reported.
 */
export function mayPassLater(error: unknown): boolean {
  return (
    !isCallerFault(error) &&
    !isDeploymentFault(error) &&
    !(LatchError.isInstance(error) && error.code === "corrupt_record")
  );
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
 *
 * The first attempt runs without an async frame of its own (the record path calls this several
 * times per call, and the first attempt nearly always answers); only a failure enters the loop.
 */
export function withRetry<T>(
  fn: () => Promise<T>,
  policy: RetryPolicy = {},
  signal?: AbortSignal,
): Promise<T> {
  let first: Promise<T>;
  try {
    first = Promise.resolve(fn());
  } catch (error) {
    return retryAfter(error, fn, policy, signal);
  }
  return first.then(undefined, (error: unknown) => retryAfter(error, fn, policy, signal));
}

/** The attempts after a first one failed with `error`. */
async function retryAfter<T>(
  error: unknown,
  fn: () => Promise<T>,
  policy: RetryPolicy,
  signal: AbortSignal | undefined,
): Promise<T> {
  const attempts = Math.max(1, policy.attempts ?? 4);
  const base = policy.baseDelayMs ?? 25;
  const max = policy.maxDelayMs ?? 1_000;
  let failure = error;
  for (let attempt = 1; ; attempt++) {
    if (attempt >= attempts || !isRetryable(failure) || signal?.aborted) throw failure;
    await sleep(Math.random() * Math.min(max, base * 2 ** (attempt - 1)), signal);
    try {
      return await fn();
    } catch (next) {
      failure = next;
    }
  }
}
