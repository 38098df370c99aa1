import type { QuotaReservator } from "../contracts/quota.js";
import type { RatedRecordStore } from "../contracts/rated-record-store.js";
import { LatchError, LatchValidationError } from "../errors/index.js";
import { parseObservation } from "../observation/parse.js";
import type { UsageObservation } from "../schemas/observation.js";
import type { RatedUsageRecord } from "../schemas/rating.js";
import { isCallerFault, type RetryPolicy, withRetry } from "./retry.js";

/** The change-log consumer `reconcileQuota` walks. */
export const QUOTA_CURSOR = "latch:quota";

/** The hold `record(input, { hold })` links: a quota hold's id, or a credit hold's id, feature and ledger. */
export interface HoldLink {
  holdId: string;
  /** A credit hold's feature (`correlation.holdFeatureId`); absent for a quota hold. */
  featureId?: string;
  /** A credit hold's ledger, its `account` (`correlation.holdLedgerId`); absent for a quota hold. */
  ledgerId?: string;
}

/**
 * The observation with its hold linked (`correlation.holdId`, and for a credit hold
 * `correlation.holdFeatureId` and `holdLedgerId`), so that the stored record names the hold it
 * must be committed against, and the ledger its hold-only feature burns on. A caller-given
 * `correlation.holdId`, `holdFeatureId` or `holdLedgerId` that names another hold, feature or
 * ledger, or any hold when `record()` was given none, is `invalid_input`: `reconcileQuota` and
 * a later credit burn commit the hold a record names, whatever its account, so only a hold the
 * caller holds may be named. The link is part of the observation (and its idempotency hash):
 * the same call recorded again with the same hold is the same observation.
 */
export function linkHold(observation: UsageObservation, link: HoldLink | undefined): UsageObservation {
  const existing = observation.correlation?.holdId;
  const existingFeature = observation.correlation?.holdFeatureId;
  const existingLedger = observation.correlation?.holdLedgerId;
  if (link === undefined) {
    if (existing === undefined && existingFeature === undefined && existingLedger === undefined)
      return observation;
    throw LatchValidationError.at(
      "record",
      `observation.correlation.${existing !== undefined ? "holdId" : existingFeature !== undefined ? "holdFeatureId" : "holdLedgerId"}`,
      "is set by record(input, { hold }): pass the granted hold instead",
    );
  }
  if (existing !== undefined && existing !== link.holdId) {
    throw LatchValidationError.at(
      "record",
      "observation.correlation.holdId",
      "names another hold than options.hold",
    );
  }
  if (existingFeature !== undefined && existingFeature !== link.featureId) {
    throw LatchValidationError.at(
      "record",
      "observation.correlation.holdFeatureId",
      "names another feature than options.hold (a credit hold of that feature)",
    );
  }
  if (existingLedger !== undefined && existingLedger !== link.ledgerId) {
    throw LatchValidationError.at(
      "record",
      "observation.correlation.holdLedgerId",
      "names another ledger than options.hold (a credit hold of that ledger)",
    );
  }
  if (existing === link.holdId && existingFeature === link.featureId && existingLedger === link.ledgerId)
    return observation;
  const correlation = {
    ...observation.correlation,
    holdId: link.holdId,
    ...(link.featureId === undefined ? {} : { holdFeatureId: link.featureId }),
    ...(link.ledgerId === undefined ? {} : { holdLedgerId: link.ledgerId }),
  };
  return parseObservation({ ...observation, correlation });
}

/** `LatchConfig.quotaUnits`: see its TSDoc. */
export type QuotaUnits = (observation: UsageObservation, record?: RatedUsageRecord) => number | undefined;

/**
 * The units `quotaUnits` gives a call: a safe integer ≥ 0, or `undefined` when no record is
 * given (its units need the rated record, not stored yet). Anything else is a configuration
 * bug, `invalid_input` naming `LatchConfig.quotaUnits` — `undefined` for a rated record, a
 * number that is not a safe integer ≥ 0 (NaN, Infinity, -1, 1.5), another type, or an
 * exception it threw (the `cause`) — so that no such amount ever reaches a quota store.
 */
export function quotaUnitsOf(
  quotaUnits: QuotaUnits,
  observation: UsageObservation,
  record: RatedUsageRecord,
): number;
export function quotaUnitsOf(
  quotaUnits: QuotaUnits,
  observation: UsageObservation,
  record?: RatedUsageRecord,
): number | undefined;
export function quotaUnitsOf(
  quotaUnits: QuotaUnits,
  observation: UsageObservation,
  record?: RatedUsageRecord,
): number | undefined {
  const of = `event ${observation.eventId}${record === undefined ? " (no rated record yet)" : ""}`;
  let units: unknown;
  try {
    units = quotaUnits(observation, record);
  } catch (error) {
    // The thrown error is the cause, not the message: Latch messages carry no payloads.
    const kind = error instanceof Error ? `a ${error.name}` : `a ${typeof error}`;
    throw new LatchValidationError({
      subject: "LatchConfig",
      issues: [{ path: "quotaUnits", message: `threw ${kind} for ${of} (the error is the cause)` }],
      cause: error,
    });
  }
  if (units === undefined) {
    if (record === undefined) return undefined;
    throw LatchValidationError.at(
      "LatchConfig",
      "quotaUnits",
      `returned undefined for the rated record of ${of}: undefined means the units need the rated record, and it was given`,
    );
  }
  if (typeof units !== "number" || !Number.isSafeInteger(units) || units < 0) {
    throw LatchValidationError.at(
      "LatchConfig",
      "quotaUnits",
      `returned ${what(units)} for ${of}: expected a safe integer ≥ 0${record === undefined ? ", or undefined when the units need the rated record" : ""}`,
    );
  }
  return units === 0 ? 0 : units; // -0 is 0
}

/** What a bad `quotaUnits` answer is, without its amount (messages never carry amounts). */
function what(units: unknown): string {
  if (typeof units === "number") {
    if (Number.isNaN(units)) return "NaN";
    if (!Number.isFinite(units)) return units > 0 ? "Infinity" : "-Infinity";
    if (units < 0) return "a negative number";
    if (!Number.isInteger(units)) return "a fraction";
    return "a number above 2^53 - 1";
  }
  if (typeof (units as { then?: unknown } | null)?.then === "function")
    return "a Promise (quotaUnits must answer synchronously)";
  return units === null ? "null" : `a value of type ${typeof units}`;
}

export interface ReconcileQuotaDeps {
  rated: RatedRecordStore;
  quota: QuotaReservator;
  retry: RetryPolicy;
  quotaUnits: QuotaUnits;
  /**
   * Reports a hold that cannot be committed (already voided, committed with another amount,
   * unknown) or whose units `quotaUnits` cannot give (`invalid_input` naming it).
   */
  skipped: (record: RatedUsageRecord, error: unknown) => void;
}

/**
 * Outcomes a retry cannot change, so the hold stands as it is and the run goes on: the hold was
 * already resolved another way, or the commit itself is refused for its input (a caller fault,
 * the facade's one rule in `retry.ts`).
 */
const holdStands = (error: unknown): boolean =>
  isCallerFault(error) || (LatchError.isInstance(error) && error.code === "hold_already_resolved");

/**
 * Commits the quota hold of every rated-record version stored since the last run (the
 * change-log consumer {@link QUOTA_CURSOR}) whose observation names one (`correlation.holdId`).
 * Idempotent: a commit of an already committed hold with the same units charges nothing more;
 * a hold committed with other units, voided, or purged is skipped and reported, as is a record
 * `quotaUnits` gives no valid units for (`invalid_input` naming `LatchConfig.quotaUnits`). It is
 * also what charges a hold `settle` left open because its units need the rated record (an
 * `accepted`, `spooled` or `unpriced` call and a `quotaUnits` that answered `undefined`). A quota store
 * error stops the run before the page's cursor is saved, so the next run retries the page.
 */
export async function reconcileQuota(deps: ReconcileQuotaDeps): Promise<{ versions: number; holds: number }> {
  const { rated, quota, retry } = deps;
  let versions = 0;
  let holds = 0;
  let cursor = await withRetry(() => rated.getCursor(QUOTA_CURSOR), retry);
  for (;;) {
    const page = await withRetry(() => rated.listSince(cursor, 1_000), retry);
    if (page.items.length === 0 || page.cursor === undefined) break;
    for (const { record } of page.items) {
      const holdId = record.observation.correlation?.holdId;
      // A credit hold (it names its feature) is committed by the call's credit burn, not here.
      if (holdId === undefined || record.observation.correlation?.holdFeatureId !== undefined) continue;
      try {
        // A bad quotaUnits is invalid_input: reported and skipped like any caller fault, so one
        // record cannot stop every later run at the same page.
        const units = quotaUnitsOf(deps.quotaUnits, record.observation, record);
        await withRetry(() => quota.commit(holdId, units), retry);
        holds++;
      } catch (error) {
        if (!holdStands(error)) throw error;
        deps.skipped(record, error);
      }
    }
    const next = page.cursor;
    await withRetry(() => rated.saveCursor(QUOTA_CURSOR, next), retry);
    cursor = next;
    versions += page.items.length;
  }
  return { versions, holds };
}
