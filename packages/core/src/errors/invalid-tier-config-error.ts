import { LatchError } from "./latch-error.js";

const marker = Symbol.for("latch.error.invalid_tier_config");

/** `invalid_tier_config`: a snapshot's tiers cannot be applied unambiguously. */
export class InvalidTierConfigError extends LatchError {
  readonly [marker] = true;
  declare readonly code: "invalid_tier_config";
  readonly snapshotId: string;
  /** Path inside the snapshot, e.g. `tiers.0.boundaries.1.upTo`. */
  readonly path: string;
  constructor({ snapshotId, path, reason }: { snapshotId: string; path: string; reason: string }) {
    super({ code: "invalid_tier_config", message: `Snapshot ${snapshotId}: ${path}: ${reason}` });
    this.name = "InvalidTierConfigError";
    this.snapshotId = snapshotId;
    this.path = path;
  }

  static override isInstance(error: unknown): error is InvalidTierConfigError {
    return LatchError.hasMarker(error, marker);
  }
}
