import type { LatchErrorCode } from "./codes.js";

const marker = Symbol.for("latch.error");

export interface LatchErrorOptions {
  code: LatchErrorCode;
  message: string;
  cause?: unknown;
  isRetryable?: boolean;
}

/**
 * Base of every error Latch throws. Use {@link LatchError.isInstance} rather than
 * `instanceof`: it also recognises errors from a second copy of the package.
 *
 * Messages and fields carry ids, paths and hashes, never payloads, keys or amounts.
 *
 * @example
 * try { engine.rate(obs, snapshot, ctx) } catch (e) {
 *   if (LatchError.isInstance(e) && e.code === "no_price_for_meter") { … }
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

  static isInstance(error: unknown): error is LatchError {
    return typeof error === "object" && error !== null && (error as { [marker]?: unknown })[marker] === true;
  }
}
