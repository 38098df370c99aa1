import { LatchError } from "./latch-error.js";

const marker = Symbol.for("latch.error.quota_unavailable");

/** `quota_unavailable`: the quota store did not answer. Quota fails closed. */
export class QuotaUnavailableError extends LatchError {
  readonly [marker] = true;
  declare readonly code: "quota_unavailable";
  constructor({ reason, cause }: { reason: string; cause?: unknown }) {
    super({
      code: "quota_unavailable",
      message: `Quota store unavailable: ${reason}`,
      cause,
      isRetryable: true,
    });
    this.name = "QuotaUnavailableError";
  }

  static override isInstance(error: unknown): error is QuotaUnavailableError {
    return LatchError.hasMarker(error, marker);
  }
}
