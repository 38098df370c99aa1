import { LatchError } from "./latch-error.js";

const marker = Symbol.for("latch.error.ambiguous_model");

/** `ambiguous_model`: the call's model id matches several priced models at one rule; never a guess. */
export class AmbiguousModelError extends LatchError {
  readonly [marker] = true;
  declare readonly code: "ambiguous_model";
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

  static override isInstance(error: unknown): error is AmbiguousModelError {
    return LatchError.hasMarker(error, marker);
  }
}
