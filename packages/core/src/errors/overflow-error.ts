import { LatchError } from "./latch-error.js";

const marker = Symbol.for("latch.error.overflow");

/** `overflow`: a quantity or amount left the exactly representable range. */
export class OverflowError extends LatchError {
  readonly [marker] = true;
  declare readonly code: "overflow";
  readonly path: string;
  constructor({ path, reason }: { path: string; reason: string }) {
    super({ code: "overflow", message: `${path}: ${reason}` });
    this.name = "OverflowError";
    this.path = path;
  }

  static override isInstance(error: unknown): error is OverflowError {
    return LatchError.hasMarker(error, marker);
  }
}
