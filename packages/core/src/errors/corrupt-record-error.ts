import { LatchError } from "./latch-error.js";

const marker = Symbol.for("latch.error.corrupt_record");

/** `corrupt_record`: stored data fails its schema or hash. Our fault, not the caller's. */
export class CorruptRecordError extends LatchError {
  readonly [marker] = true;
  declare readonly code: "corrupt_record";
  readonly id: string;
  constructor({ id, reason, cause }: { id: string; reason: string; cause?: unknown }) {
    super({ code: "corrupt_record", message: `Stored record ${id} is corrupt: ${reason}`, cause });
    this.name = "CorruptRecordError";
    this.id = id;
  }

  static override isInstance(error: unknown): error is CorruptRecordError {
    return LatchError.hasMarker(error, marker);
  }
}
