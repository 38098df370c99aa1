import { LatchError } from "@latch/core";
import { sqlState } from "./schema.js";

const marker = Symbol.for("latch.error.store_busy");

/** Why the database gave up on a transaction; each is worth retrying. */
export type BusyReason = "lock_timeout" | "statement_timeout" | "serialization_failure" | "deadlock";

/** SQLSTATE → reason. `57014` is also a cancel by `pg_cancel_backend`: a retry is as safe. */
const REASONS: Readonly<Record<string, BusyReason>> = {
  "55P03": "lock_timeout",
  "57014": "statement_timeout",
  "40001": "serialization_failure",
  "40P01": "deadlock",
};

/**
 * `store_busy`: the database did not finish a Latch transaction in time or aborted it to stay
 * consistent: a lock wait ran past `lockTimeoutMs` (`reason: "lock_timeout"`), a statement past
 * `statementTimeoutMs` (`"statement_timeout"`), or the server cancelled the transaction with a
 * serialization failure or a deadlock (after Latch's own bounded retries, or inside your
 * transaction, which Latch never retries). Nothing of the call was written, so a retry is
 * safe: `isRetryable` is true. Quota never throws it: `reserve` denies `unavailable` and the
 * other quota methods throw `QuotaUnavailableError` with this error as the `cause`.
 *
 * @example
 * try { await counter.add(key, period, 1) } catch (e) {
 *   if (PostgresBusyError.isInstance(e)) retryLater(e.reason);
 * }
 */
export class PostgresBusyError extends LatchError {
  readonly [marker] = true;
  declare readonly code: "store_busy";
  declare readonly isRetryable: true;
  readonly reason: BusyReason;
  /** The SQLSTATE the server answered. */
  readonly sqlState: string;
  constructor({ reason, sqlState, cause }: { reason: BusyReason; sqlState: string; cause?: unknown }) {
    super({
      code: "store_busy",
      message: `The database gave up on a Latch transaction (${reason}, SQLSTATE ${sqlState}); retry`,
      cause,
      isRetryable: true,
    });
    this.name = "PostgresBusyError";
    this.reason = reason;
    this.sqlState = sqlState;
  }

  static override isInstance(error: unknown): error is PostgresBusyError {
    return LatchError.hasMarker(error, marker);
  }
}

declare module "@latch/core/adapter" {
  interface LatchErrorClasses {
    store_busy: PostgresBusyError;
  }
}

/** The reason of a lock/statement timeout, serialization failure or deadlock; else undefined. */
export function busyReason(error: unknown): BusyReason | undefined {
  const state = sqlState(error);
  return state === undefined ? undefined : REASONS[state];
}

/** `error` as a {@link PostgresBusyError} when it is one of the retryable SQLSTATEs, else unchanged. */
export function asBusy(error: unknown): unknown {
  const reason = busyReason(error);
  if (reason === undefined || PostgresBusyError.isInstance(error)) return error;
  return new PostgresBusyError({ reason, sqlState: sqlState(error) as string, cause: error });
}
