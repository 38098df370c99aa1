import type { RatedRecordStore } from "../contracts/rated-record-store.js";
import type { CreditLedger } from "../credits/contract.js";
import { creditUsageOf } from "../credits/features.js";
import type { CreditFeature } from "../credits/schemas.js";
import { LatchValidationError } from "../errors/index.js";
import type { UsageObservation } from "../schemas/observation.js";
import type { RatedUsageRecord } from "../schemas/rating.js";
import { mayPassLater, type RetryPolicy, withRetry } from "./retry.js";
import type { CreditRoute, LatchCreditsConfig, RecordResult, Warn } from "./types.js";

/** The change-log consumer `reconcileCredits` walks. */
export const CREDITS_CURSOR = "latch:credits";

export interface CreditBurnDeps {
  /** `undefined`: no credits configured, so nothing burns. */
  credits: LatchCreditsConfig | undefined;
  retry: RetryPolicy;
  warn: Warn;
  /** Keeps an observation for replay when its burn failed on a store error (see `spoolingTo`). */
  spool: (obs: UsageObservation) => Promise<void>;
}

/**
 * Burning the credits of recorded calls. Each route's burn is a usage event keyed by the
 * observation's eventId and versioned by the rated record's version, so retries, spool replays
 * and re-rating burn once, and a correction replaces the burn (up or down).
 */
export interface CreditBurns {
  /** True when no credits are configured: every burn is a no-op. */
  readonly none: boolean;
  /** A credit feature, read once (features never change once created); `invalid_input` if unknown. */
  feature(featureId: string): Promise<CreditFeature>;
  /**
   * Burns a stored observation's credits on every route. A money feature burns only once
   * `record` is there; a money feature in another currency throws `currency_mismatch` after the
   * other routes burned. Store errors throw.
   */
  burn(obs: UsageObservation, record?: RatedUsageRecord): Promise<void>;
  /**
   * The burn of a call `record()` just stored, failing open like recording: a store error
   * spools the observation (its replay burns again, idempotently) or, when `mayspool` is false
   * (a replay), throws; an error no retry can fix is reported and dropped.
   */
  burnRecorded(obs: UsageObservation, result: RecordResult, mayspool: boolean): Promise<void>;
  /**
   * The burn of a rated record that is already stored (a correction, a reconcile): a store error
   * throws (so the caller can run again); an error no retry can fix is reported.
   */
  burnStored(record: RatedUsageRecord): Promise<void>;
  /**
   * Burns every rated-record version stored since the last run (consumer {@link CREDITS_CURSOR});
   * each page's cursor is saved only after its burns.
   */
  reconcile(rated: RatedRecordStore): Promise<{ versions: number }>;
}

/** Reports a burn that a retry cannot fix (no ledger for the tenant, a conflict, a corrupt record). */
function reportUnfixable(warn: Warn, eventId: string, error: unknown): void {
  warn({
    code: "credit_burn_failed",
    message: `burning credits for ${eventId} failed and a retry cannot help: ${(error as Error).message}`,
    eventId,
    cause: error,
  });
}

export function createCreditBurns({ credits, retry, warn, spool }: CreditBurnDeps): CreditBurns {
  const features = new Map<string, CreditFeature>();

  async function feature(featureId: string): Promise<CreditFeature> {
    const known = features.get(featureId);
    if (known !== undefined) return known;
    const ledger = (credits as LatchCreditsConfig).ledger;
    const found = await withRetry(() => ledger.getFeature(featureId), retry);
    if (found === undefined)
      throw LatchValidationError.at("LatchConfig", "credits.featureId", `no credit feature ${featureId}`);
    features.set(featureId, found);
    return found;
  }

  function routesOf(obs: UsageObservation): readonly CreditRoute[] {
    if (credits === undefined) return [];
    if (credits.route === undefined)
      return [{ ledgerId: obs.subject.tenantId, featureId: credits.featureId as string }];
    const routed = credits.route(obs);
    if (routed === undefined) return [];
    return Array.isArray(routed) ? routed : [routed as CreditRoute];
  }

  async function burn(obs: UsageObservation, record?: RatedUsageRecord): Promise<void> {
    if (credits === undefined) return;
    const ledger: CreditLedger = credits.ledger;
    let mismatch: unknown; // a money feature in another currency: thrown once the other routes burned
    for (const route of routesOf(obs)) {
      const counted = await feature(route.featureId);
      let amount: string | undefined;
      try {
        amount = creditUsageOf(counted, obs, record);
      } catch (error) {
        mismatch ??= error;
        continue;
      }
      if (amount === undefined) continue;
      await withRetry(
        () =>
          ledger.recordUsage({
            ledgerId: route.ledgerId,
            featureId: route.featureId,
            eventId: obs.eventId,
            amount,
            at: obs.timing.completedAt,
            version: record?.version ?? 1,
          }),
        retry,
      );
    }
    if (mismatch !== undefined) throw mismatch;
  }

  async function burnRecorded(obs: UsageObservation, result: RecordResult, mayspool: boolean): Promise<void> {
    try {
      await burn(obs, result.status === "rated" ? result.record : undefined);
    } catch (error) {
      if (!mayPassLater(error)) return reportUnfixable(warn, obs.eventId, error);
      warn({
        code: "credit_burn_failed",
        message: `burning credits for ${obs.eventId} failed${mayspool ? "; spooling" : ""}`,
        eventId: obs.eventId,
        cause: error,
      });
      if (!mayspool) throw error;
      await spool(obs);
    }
  }

  async function burnStored(record: RatedUsageRecord): Promise<void> {
    try {
      await burn(record.observation, record);
    } catch (error) {
      if (mayPassLater(error)) throw error;
      reportUnfixable(warn, record.eventId, error);
    }
  }

  async function reconcile(rated: RatedRecordStore): Promise<{ versions: number }> {
    let versions = 0;
    let cursor = await withRetry(() => rated.getCursor(CREDITS_CURSOR), retry);
    for (;;) {
      const page = await withRetry(() => rated.listSince(cursor, 1_000), retry);
      if (page.items.length === 0 || page.cursor === undefined) break;
      // A store error stops the run before the cursor moves: the next run retries this page.
      for (const { record } of page.items) await burnStored(record);
      const next = page.cursor;
      await withRetry(() => rated.saveCursor(CREDITS_CURSOR, next), retry);
      cursor = next;
      versions += page.items.length;
    }
    return { versions };
  }

  return { none: credits === undefined, feature, burn, burnRecorded, burnStored, reconcile };
}
