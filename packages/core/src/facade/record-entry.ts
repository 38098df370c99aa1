import type { UsageObservation } from "../schemas/observation.js";
import type { CreditBurns } from "./credit-burns.js";
import { toObservation } from "./provider-usage.js";
import { type HoldLink, linkHold } from "./quota-reconcile.js";
import type { Hold, RecordInput, RecordResult } from "./types.js";

export interface RecordEntryDeps {
  /** The start-up spool replay: calls made before it finished wait for it. */
  startup: Promise<void>;
  /** The record path for a parsed observation (the recorder's, or the ingest publisher's). */
  recordParsed: (obs: UsageObservation, mayspool: boolean) => Promise<RecordResult>;
  /** Refuses a credit hold of another ledger than the call's routes (`CreditBurns.assertHoldLedger`). */
  assertHoldLedger: CreditBurns["assertHoldLedger"];
  /** The embedded default's synchronous answer (`Recorder.recordInline`), when there is no ingest log. */
  recordInline: ((obs: UsageObservation) => RecordResult | undefined) | undefined;
}

/**
 * `latch.record(input, { hold })`: parses the input (a ready observation or a provider payload),
 * links the granted hold (quota or credits, see `linkHold`), and records it. Every error, a
 * validation error included, rejects the returned promise (nothing is thrown synchronously).
 *
 * Calls made before the start-up spool replay finished wait for it; after it, no call does
 * (one await fewer per call). On the embedded default the answer is ready when the call
 * returns (`recordInline`), so a call costs one already-resolved promise.
 */
export function createRecordEntry({
  startup,
  recordParsed,
  assertHoldLedger,
  recordInline,
}: RecordEntryDeps): (input: RecordInput, options?: { hold?: Hold }) => Promise<RecordResult> {
  let started = false;
  void startup.then(() => {
    started = true;
  });

  function recordNow(input: RecordInput, options?: { hold?: Hold }): Promise<RecordResult> {
    let obs: UsageObservation;
    try {
      const hold = options?.hold;
      // A granted hold is linked: a quota hold by its id, a credit hold with its feature and
      // ledger (the later burn of a call not rated yet commits it with what that feature
      // counts; a feature no route burns is burned on that ledger, see `CreditBurns.burn`).
      const link: HoldLink | undefined =
        hold === undefined || !hold.granted
          ? undefined
          : hold.kind === "credits"
            ? { holdId: hold.holdId, featureId: hold.featureId, ledgerId: hold.account }
            : { holdId: hold.holdId };
      obs = linkHold(toObservation(input), link);
      if (hold?.kind === "credits" && hold.granted)
        assertHoldLedger(obs, hold, "record", "options.hold.account");
      const done = recordInline?.(obs);
      if (done !== undefined) return Promise.resolve(done);
    } catch (error) {
      return Promise.reject(error);
    }
    return recordParsed(obs, true);
  }

  // Named, as the facade's method was (`latch.record.name === "record"`).
  const record = (input: RecordInput, options?: { hold?: Hold }): Promise<RecordResult> =>
    started ? recordNow(input, options) : startup.then(() => recordNow(input, options));
  return record;
}
