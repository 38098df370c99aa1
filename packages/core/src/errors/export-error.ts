import { LatchError } from "./latch-error.js";

const marker = Symbol.for("latch.error.export_failed");

export type ExportErrorKind = "connection" | "auth" | "invalid_data" | "rate_limited";

/** `export_failed`: an export batch could not be written. `kind` says whether a retry can help. */
export class ExportError extends LatchError {
  readonly [marker] = true;
  declare readonly code: "export_failed";
  readonly kind: ExportErrorKind;
  readonly retryAfterMs: number | undefined;
  constructor({
    kind,
    reason,
    retryAfterMs,
    cause,
  }: { kind: ExportErrorKind; reason: string; retryAfterMs?: number; cause?: unknown }) {
    super({
      code: "export_failed",
      message: `Export failed (${kind}): ${reason}`,
      cause,
      isRetryable: kind === "connection" || kind === "rate_limited",
    });
    this.name = "ExportError";
    this.kind = kind;
    this.retryAfterMs = retryAfterMs;
  }

  static override isInstance(error: unknown): error is ExportError {
    return LatchError.hasMarker(error, marker);
  }
}
