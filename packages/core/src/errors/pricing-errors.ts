import { LatchError } from "./latch-error.js";

/** `no_price_for_meter`: a meter with a non-zero quantity has no price. Never billed as zero. */
export class NoPriceForMeterError extends LatchError {
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
}

/** `no_snapshot_in_effect`: nothing prices this model at this time. */
export class NoSnapshotInEffectError extends LatchError {
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
}

/**
 * `no_snapshot_for_tier`: the model is priced at this time, but not in the call's service tier.
 * Never priced at another tier's snapshot unless that snapshot lists the tier in `fallbackTiers`.
 */
export class NoSnapshotForTierError extends LatchError {
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
}

/** `ambiguous_model`: the call's model id matches several priced models at one rule; never a guess. */
export class AmbiguousModelError extends LatchError {
  readonly billableModel: string;
  /** The matching rule at which the candidates tied. */
  readonly rule: string;
  /** The snapshots' billableModels that matched, sorted. */
  readonly candidates: readonly string[];
  constructor({
    billableModel,
    rule,
    candidates,
  }: {
    billableModel: string;
    rule: string;
    candidates: readonly string[];
  }) {
    super({
      code: "ambiguous_model",
      message: `Model ${billableModel} matches ${candidates.length} priced models by ${rule}: ${candidates.join(", ")}`,
    });
    this.name = "AmbiguousModelError";
    this.billableModel = billableModel;
    this.rule = rule;
    this.candidates = candidates;
  }
}

/** `invalid_tier_config`: a snapshot's tiers cannot be applied unambiguously. */
export class InvalidTierConfigError extends LatchError {
  readonly snapshotId: string;
  /** Path inside the snapshot, e.g. `tiers.0.boundaries.1.upTo`. */
  readonly path: string;
  constructor({ snapshotId, path, reason }: { snapshotId: string; path: string; reason: string }) {
    super({ code: "invalid_tier_config", message: `Snapshot ${snapshotId}: ${path}: ${reason}` });
    this.name = "InvalidTierConfigError";
    this.snapshotId = snapshotId;
    this.path = path;
  }
}

/**
 * `currency_mismatch`: amounts in two currencies were combined, or an event would be billed in
 * two: a rated-record version in another currency than the version it supersedes, or a money
 * credit feature met with a rated record in another currency. `eventId` and `path` (the field
 * holding the other currency, e.g. `currency` or `2.currency` in a batch) say where, when known.
 * Amounts are never part of it.
 *
 * @example
 * try { await rated.put(correction) } catch (e) {
 *   if (LatchError.isInstance(e) && e.code === "currency_mismatch") { … } // nothing was written
 * }
 */
export class CurrencyMismatchError extends LatchError {
  readonly expected: string;
  readonly actual: string;
  /** The event whose currency clashed, when one is known. */
  readonly eventId: string | undefined;
  /** The field holding `actual`, e.g. `currency` or `2.currency` (a batch's index first). */
  readonly path: string | undefined;
  constructor({
    expected,
    actual,
    eventId,
    path,
    reason,
  }: {
    expected: string;
    actual: string;
    eventId?: string;
    path?: string;
    /** Why `expected` is expected, e.g. "the currency of the version it supersedes". */
    reason?: string;
  }) {
    const where = eventId === undefined ? "" : `Event ${eventId}: `;
    const field = path === undefined ? "currency" : path;
    const why = reason === undefined ? "" : ` (${reason})`;
    super({
      code: "currency_mismatch",
      message: `${where}${field} is ${actual}, expected ${expected}${why}`,
    });
    this.name = "CurrencyMismatchError";
    this.expected = expected;
    this.actual = actual;
    this.eventId = eventId;
    this.path = path;
  }
}

/** `overflow`: a quantity or amount left the exactly representable range. */
export class OverflowError extends LatchError {
  readonly path: string;
  constructor({ path, reason }: { path: string; reason: string }) {
    super({ code: "overflow", message: `${path}: ${reason}` });
    this.name = "OverflowError";
    this.path = path;
  }
}
