import { LatchError } from "./latch-error.js";

const marker = Symbol.for("latch.error.no_price_for_meter");

/** `no_price_for_meter`: a meter with a non-zero quantity has no price. Never billed as zero. */
export class NoPriceForMeterError extends LatchError {
  readonly [marker] = true;
  declare readonly code: "no_price_for_meter";
  readonly meter: string;
  readonly snapshotId: string;
  constructor({ meter, snapshotId }: { meter: string; snapshotId: string }) {
    super({
      code: "no_price_for_meter",
      message: `Snapshot ${snapshotId} has no price for meter ${meter}, which has a non-zero quantity`,
    });
    this.name = "NoPriceForMeterError";
    this.meter = meter;
    this.snapshotId = snapshotId;
  }

  static override isInstance(error: unknown): error is NoPriceForMeterError {
    return LatchError.hasMarker(error, marker);
  }
}
