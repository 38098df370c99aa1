import { LatchValidationError, NoSnapshotInEffectError } from "../errors/index.js";
import { type ModelRef, ModelRefSchema } from "../schemas/model.js";
import { parseWith } from "../schemas/parse.js";
import { type PriceSnapshot, PriceSnapshotSchema } from "../schemas/pricing.js";
import { IsoTimestampSchema } from "../schemas/time.js";

/** Where the rating path gets the snapshot in effect for a model at a time. */
export interface PricingSource {
  /** The snapshot in effect for `model` at `at` (ISO UTC), or undefined when none is. */
  resolve(model: ModelRef, at: string, signal?: AbortSignal): Promise<PriceSnapshot | undefined>;
}

interface Entry {
  snapshot: PriceSnapshot;
  from: number;
  until: number;
}

/** Snapshots of one model variant: same billableModel, region and tier. */
const variantKey = (m: ModelRef) => JSON.stringify([m.billableModel, m.region ?? null, m.tier ?? null]);

/**
 * An in-memory {@link PricingSource} over a fixed list of snapshots.
 *
 * Snapshots are effective on half-open intervals `[effectiveFrom, effectiveUntil)`. Two
 * snapshots for the same model variant (billableModel, region, tier) whose intervals overlap
 * are rejected at load, as are duplicate snapshot ids. A snapshot without `region`/`tier`
 * applies to every region/tier of its model; one that names them is preferred where it matches.
 *
 * @example
 * const pricing = new InMemoryPricingSource([gpt4oJan, gpt4oMar]);
 * const snapshot = await pricing.resolve({ billableModel: "gpt-4o" }, "2026-02-01T00:00:00Z");
 */
export class InMemoryPricingSource implements PricingSource {
  readonly #byModel = new Map<string, Entry[]>();

  readonly #ids = new Map<string, number>();
  readonly #variants = new Map<string, Array<Entry & { index: number }>>();
  #count = 0;

  constructor(snapshots: Iterable<PriceSnapshot> = []) {
    for (const snapshot of snapshots) this.#insert(snapshot, "snapshots");
  }

  /**
   * Adds a snapshot (a new price sheet, a model priced for the first time), with the same
   * checks as the constructor: a duplicate id or an interval overlapping the same model's
   * snapshots is rejected and nothing is added.
   */
  add(snapshot: PriceSnapshot): void {
    this.#insert(snapshot, "snapshot");
  }

  #insert(input: PriceSnapshot, where: "snapshots" | "snapshot"): void {
    const index = this.#count;
    const at = where === "snapshots" ? `snapshots.${index}` : "snapshot";
    const snapshot = parseWith(PriceSnapshotSchema, input, "PriceSnapshot", at);
    const seen = this.#ids.get(snapshot.snapshotId);
    if (seen !== undefined) {
      throw LatchValidationError.at("pricing", `${at}.snapshotId`, `duplicates snapshots.${seen}`);
    }
    const entry = {
      snapshot,
      index,
      from: Date.parse(snapshot.effectiveFrom),
      until:
        snapshot.effectiveUntil === undefined
          ? Number.POSITIVE_INFINITY
          : Date.parse(snapshot.effectiveUntil),
    };
    const key = variantKey(snapshot.model);
    for (const other of this.#variants.get(key) ?? []) {
      if (entry.from < other.until && other.from < entry.until) {
        throw LatchValidationError.at(
          "pricing",
          `${at}.effectiveFrom`,
          `interval overlaps snapshots.${other.index} (${other.snapshot.snapshotId}) for the same model`,
        );
      }
    }
    this.#ids.set(snapshot.snapshotId, index);
    this.#variants.set(key, [...(this.#variants.get(key) ?? []), entry]);
    const list = this.#byModel.get(snapshot.model.billableModel) ?? [];
    list.push(entry);
    this.#byModel.set(snapshot.model.billableModel, list);
    this.#count++;
  }

  async resolve(model: ModelRef, at: string, signal?: AbortSignal): Promise<PriceSnapshot | undefined> {
    signal?.throwIfAborted();
    return this.resolveSync(model, at);
  }

  /** Synchronous {@link resolve}, for callers already on a hot path. */
  resolveSync(model: ModelRef, at: string): PriceSnapshot | undefined {
    const ref = parseWith(ModelRefSchema, model, "ModelRef", "model");
    const time = Date.parse(parseWith(IsoTimestampSchema, at, "timestamp", "at"));
    let best: Entry | undefined;
    let bestScore = -1;
    for (const entry of this.#byModel.get(ref.billableModel) ?? []) {
      if (time < entry.from || time >= entry.until) continue;
      const m = entry.snapshot.model;
      if (m.region !== undefined && m.region !== ref.region) continue;
      if (m.tier !== undefined && m.tier !== ref.tier) continue;
      const score = (m.region !== undefined ? 2 : 0) + (m.tier !== undefined ? 1 : 0);
      if (score > bestScore) {
        best = entry;
        bestScore = score;
      }
    }
    return best?.snapshot;
  }

  /** Like {@link resolveSync}, but throws `no_snapshot_in_effect` instead of returning undefined. */
  require(model: ModelRef, at: string): PriceSnapshot {
    const snapshot = this.resolveSync(model, at);
    if (!snapshot) throw new NoSnapshotInEffectError({ billableModel: model.billableModel, at });
    return snapshot;
  }
}
