import { LatchError } from "./latch-error.js";

const marker = Symbol.for("latch.error.no_snapshot_for_tier");

/**
 * `no_snapshot_for_tier`: the model is priced at this time, but not in the call's service tier.
 * Never priced at another tier's snapshot unless that snapshot lists the tier in `fallbackTiers`.
 */
export class NoSnapshotForTierError extends LatchError {
  readonly [marker] = true;
  declare readonly code: "no_snapshot_for_tier";
  readonly billableModel: string;
  /** The call's service tier (canonical name). */
  readonly tier: string;
  /** The snapshot that was refused, when one was offered (the rating engine's check). */
  readonly snapshotId: string | undefined;
  constructor({
    billableModel,
    tier,
    snapshotId,
  }: { billableModel: string; tier: string; snapshotId?: string }) {
    super({
      code: "no_snapshot_for_tier",
      message:
        snapshotId === undefined
          ? `No price snapshot for model ${billableModel} prices service tier ${tier}`
          : `Snapshot ${snapshotId} does not price service tier ${tier} (neither its tier nor a fallbackTiers entry)`,
    });
    this.name = "NoSnapshotForTierError";
    this.billableModel = billableModel;
    this.tier = tier;
    this.snapshotId = snapshotId;
  }

  static override isInstance(error: unknown): error is NoSnapshotForTierError {
    return LatchError.hasMarker(error, marker);
  }
}
