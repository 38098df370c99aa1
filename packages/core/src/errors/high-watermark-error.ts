import { LatchError } from "./latch-error.js";

const marker = Symbol.for("latch.error.high_watermark");

/**
 * `high_watermark`: a credit grant, void or reset was dated before the ledger's latest reset
 * (its high watermark). Periods before a reset are closed: grant, void or reset at or after
 * `highWatermark` instead.
 */
export class HighWatermarkError extends LatchError {
  readonly [marker] = true;
  declare readonly code: "high_watermark";
  readonly ledgerId: string;
  /** The latest reset of the ledger (ISO 8601 UTC). */
  readonly highWatermark: string;
  /** The input field that was too early, e.g. `effectiveAt` or `at`. */
  readonly field: string;
  constructor({
    ledgerId,
    highWatermark,
    field,
  }: { ledgerId: string; highWatermark: string; field: string }) {
    super({
      code: "high_watermark",
      message: `Ledger ${ledgerId}: ${field} is before the high watermark ${highWatermark} (the latest reset); nothing may be granted, voided or reset before it`,
    });
    this.name = "HighWatermarkError";
    this.ledgerId = ledgerId;
    this.highWatermark = highWatermark;
    this.field = field;
  }

  static override isInstance(error: unknown): error is HighWatermarkError {
    return LatchError.hasMarker(error, marker);
  }
}
