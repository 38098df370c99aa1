import { LatchError } from "./latch-error.js";

const marker = Symbol.for("latch.error.currency_mismatch");

/**
 * `currency_mismatch`: amounts in two currencies were combined, or an event would be billed in
 * two: a rated-record version in another currency than the version it supersedes, or a money
 * credit feature met with a rated record in another currency. `eventId` and `path` (the field
 * holding the other currency, e.g. `currency` or `2.currency` in a batch) say where, when known.
 * Amounts are never part of it.
 *
 * @example
 * try { await rated.put(correction) } catch (e) {
 *   if (CurrencyMismatchError.isInstance(e)) { … } // nothing was written
 * }
 */
export class CurrencyMismatchError extends LatchError {
  readonly [marker] = true;
  declare readonly code: "currency_mismatch";
  readonly expected: string;
  readonly actual: string;
  /** The event whose currency clashed, when one is known. */
  readonly eventId: string | undefined;
  /** The field holding `actual`, e.g. `currency` or `2.currency` (a batch's index first). */
  readonly path: string | undefined;
  constructor({
    expected,
    actual,
    eventId,
    path,
    reason,
  }: {
    expected: string;
    actual: string;
    eventId?: string;
    path?: string;
    /** Why `expected` is expected, e.g. "the currency of the version it supersedes". */
    reason?: string;
  }) {
    const where = eventId === undefined ? "" : `Event ${eventId}: `;
    const field = path === undefined ? "currency" : path;
    const why = reason === undefined ? "" : ` (${reason})`;
    super({
      code: "currency_mismatch",
      message: `${where}${field} is ${actual}, expected ${expected}${why}`,
    });
    this.name = "CurrencyMismatchError";
    this.expected = expected;
    this.actual = actual;
    this.eventId = eventId;
    this.path = path;
  }

  static override isInstance(error: unknown): error is CurrencyMismatchError {
    return LatchError.hasMarker(error, marker);
  }
}
