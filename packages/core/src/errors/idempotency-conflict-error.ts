import { LatchError } from "./latch-error.js";

const marker = Symbol.for("latch.error.idempotency_conflict");

/** `idempotency_conflict`: the id is known with a different payload (compared by canonical hash). */
export class IdempotencyConflictError extends LatchError {
  readonly [marker] = true;
  declare readonly code: "idempotency_conflict";
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

  static override isInstance(error: unknown): error is IdempotencyConflictError {
    return LatchError.hasMarker(error, marker);
  }
}
