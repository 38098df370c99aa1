import { LatchError } from "./latch-error.js";

const marker = Symbol.for("latch.error.hold_already_resolved");

/** `hold_already_resolved`: the hold was committed, voided or expired before. */
export class HoldAlreadyResolvedError extends LatchError {
  readonly [marker] = true;
  declare readonly code: "hold_already_resolved";
  readonly holdId: string;
  readonly state: string;
  constructor({ holdId, state }: { holdId: string; state: string }) {
    super({ code: "hold_already_resolved", message: `Hold ${holdId} is already ${state}` });
    this.name = "HoldAlreadyResolvedError";
    this.holdId = holdId;
    this.state = state;
  }

  static override isInstance(error: unknown): error is HoldAlreadyResolvedError {
    return LatchError.hasMarker(error, marker);
  }
}
