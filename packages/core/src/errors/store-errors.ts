import { LatchError } from "./latch-error.js";

/** `idempotency_conflict`: the id is known with a different payload (compared by canonical hash). */
export class IdempotencyConflictError extends LatchError {
  readonly id: string;
  readonly existingHash: string;
  readonly incomingHash: string;
  constructor({
    id,
    existingHash,
    incomingHash,
  }: { id: string; existingHash: string; incomingHash: string }) {
    super({
      code: "idempotency_conflict",
      message: `Id ${id} already exists with a different payload (stored ${existingHash}, incoming ${incomingHash})`,
    });
    this.name = "IdempotencyConflictError";
    this.id = id;
    this.existingHash = existingHash;
    this.incomingHash = incomingHash;
  }
}

/** `corrupt_record`: stored data fails its schema or hash. Our fault, not the caller's. */
export class CorruptRecordError extends LatchError {
  readonly id: string;
  constructor({ id, reason, cause }: { id: string; reason: string; cause?: unknown }) {
    super({ code: "corrupt_record", message: `Stored record ${id} is corrupt: ${reason}`, cause });
    this.name = "CorruptRecordError";
    this.id = id;
  }
}

/** `quota_unavailable`: the quota store did not answer. Quota fails closed. */
export class QuotaUnavailableError extends LatchError {
  constructor({ reason, cause }: { reason: string; cause?: unknown }) {
    super({
      code: "quota_unavailable",
      message: `Quota store unavailable: ${reason}`,
      cause,
      isRetryable: true,
    });
    this.name = "QuotaUnavailableError";
  }
}

/** `hold_already_resolved`: the hold was committed, voided or expired before. */
export class HoldAlreadyResolvedError extends LatchError {
  readonly holdId: string;
  readonly state: string;
  constructor({ holdId, state }: { holdId: string; state: string }) {
    super({ code: "hold_already_resolved", message: `Hold ${holdId} is already ${state}` });
    this.name = "HoldAlreadyResolvedError";
    this.holdId = holdId;
    this.state = state;
  }
}

export type ExportErrorKind = "connection" | "auth" | "invalid_data" | "rate_limited";

/** `export_failed`: an export batch could not be written. `kind` says whether a retry can help. */
export class ExportError extends LatchError {
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
}
