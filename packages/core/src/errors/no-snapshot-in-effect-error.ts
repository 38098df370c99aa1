import { LatchError } from "./latch-error.js";

const marker = Symbol.for("latch.error.no_snapshot_in_effect");

/** `no_snapshot_in_effect`: nothing prices this model at this time. */
export class NoSnapshotInEffectError extends LatchError {
  readonly [marker] = true;
  declare readonly code: "no_snapshot_in_effect";
  readonly billableModel: string;
  readonly at: string;
  constructor({ billableModel, at }: { billableModel: string; at: string }) {
    super({
      code: "no_snapshot_in_effect",
      message: `No price snapshot for model ${billableModel} is in effect at ${at}`,
    });
    this.name = "NoSnapshotInEffectError";
    this.billableModel = billableModel;
    this.at = at;
  }

  static override isInstance(error: unknown): error is NoSnapshotInEffectError {
    return LatchError.hasMarker(error, marker);
  }
}
