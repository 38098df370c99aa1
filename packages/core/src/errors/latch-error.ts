import type { LatchErrorCode } from "./codes.js";
import type { LatchErrorFor } from "./error-classes.js";

const marker = Symbol.for("latch.error");

export interface LatchErrorOptions {
  code: LatchErrorCode;
  message: string;
  cause?: unknown;
  isRetryable?: boolean;
}

/**
 * Base of every error Latch throws. Each code has one class (see {@link LatchErrorClasses});
 * every package throws that class, never a bare `LatchError`. Use {@link LatchError.is} or a
 * class's own `isInstance` rather than `instanceof`: they also recognise errors from a second
 * copy of the package (a `Symbol.for` marker per class, in the global symbol registry).
 *
 * Messages and fields carry ids, paths and hashes, never payloads, keys or amounts.
 *
 * @example
 * try { engine.rate(obs, snapshot, ctx) } catch (e) {
 *   if (LatchError.is(e, "no_price_for_meter")) console.warn(e.meter, e.snapshotId);
 * }
 */
export class LatchError extends Error {
  /** Marks Latch errors across package copies; see {@link LatchError.isInstance}. */
  readonly [marker] = true;
  readonly code: LatchErrorCode;
  readonly isRetryable: boolean;

  constructor({ code, message, cause, isRetryable = false }: LatchErrorOptions) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "LatchError";
    this.code = code;
    this.isRetryable = isRetryable;
  }

  /** Whether `error` is a Latch error of any code, from this copy of the package or another. */
  static isInstance(error: unknown): error is LatchError {
    return LatchError.hasMarker(error, marker);
  }

  /**
   * Whether `error` is a Latch error with `code`, narrowed to that code's class (`store_busy`
   * to `PostgresBusyError` once `@latch/postgres` is imported). It compares the code, so it
   * also recognises an error of another copy or version of the package.
   *
   * @example
   * if (LatchError.is(e, "idempotency_conflict")) log(e.id, e.existingHash, e.incomingHash);
   */
  static is<C extends LatchErrorCode>(error: unknown, code: C): error is LatchErrorFor<C> {
    return LatchError.isInstance(error) && error.code === code;
  }

  /** Whether `error` carries the class marker `symbol` (set to `true` by the class's field). */
  protected static hasMarker(error: unknown, symbol: symbol): boolean {
    return typeof error === "object" && error !== null && (error as Record<symbol, unknown>)[symbol] === true;
  }
}
