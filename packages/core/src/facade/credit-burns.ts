import type { RatedRecordStore } from "../contracts/rated-record-store.js";
import type { CreditLedger } from "../credits/contract.js";
import { creditUsageOf } from "../credits/features.js";
import type { CreditFeature } from "../credits/schemas.js";
import { LatchValidationError } from "../errors/index.js";
import type { UsageObservation } from "../schemas/observation.js";
import type { RatedUsageRecord } from "../schemas/rating.js";
import { isCode, namesField } from "./error-code.js";
import { isCallerFault, mayPassLater, type RetryPolicy, withRetry } from "./retry.js";
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
   * Refuses a granted credit hold of another ledger than every ledger the call burns
   * (`invalid_input` naming `path`): committing it (as `settle()` or the call's later burn
   * does) would burn the call in that ledger too, on top of its routes — twice, and in another
   * customer's ledger. A call that routes nowhere (no route) is not checked here: the hold's
   * commit (and the hold's own route, the same usage event: see `burn`) is then its only burn.
   * Nor is `hold.account` compared with the ledger the hold really is on (this reads no ledger):
   * `settle()` and the call's later burn commit the hold naming that ledger (`commitHold`'s
   * `ledgerId`), and the hold's own route burns only once the ledger checked it (see `burn`). A route
   * function that throws is left to the burn to report.
   */
  assertHoldLedger(obs: UsageObservation, hold: { account: string }, where: string, path: string): void;
  /**
   * Whether a route of the call burns `featureId` (on `ledgerId`, when given: a hold's own
   * ledger): then the route's burn counts the call there and a hold of that feature released
   * without a commit loses nothing. False for a hold-only feature (held, not routed: the hold's
   * commit is the call's only burn of it), and when the route function throws (the burn
   * reports that; the hold's commit is made before the routes).
   */
  routesFeature(obs: UsageObservation, featureId: string, ledgerId?: string): boolean;
  /**
   * Burns a stored observation's credits on every route. A money feature burns only once
   * `record` is there; a money feature in another currency throws `currency_mismatch` after the
   * other routes burned. Store errors throw. With `resolveHold`, first commits the credit hold
   * the observation links (see `commitLinkedHold`).
   *
   * A linked credit hold whose ledger and feature (`correlation.holdLedgerId`,
   * `holdFeatureId`) are none of the call's routes (a hold-only feature) is a route of its
   * own (see `holdRoute`) — but only in a burn where the ledger checked the link first: with
   * `resolveHold` (ingest worker, spool replay, `rerateUnpriced()`, `reconcileCredits()`,
   * `settle()` of a hold the stored call does not link), of version 1, and once the hold's
   * commit (naming `holdLedgerId` and `holdFeatureId`) committed, or was answered
   * `hold_already_resolved` (voided) or `idempotency_conflict` (committed with another body):
   * the memory and Postgres ledgers check the claimed feature and ledger before the hold's
   * state, so both confirm the link. A purged or unknown hold (`invalid_input` naming `holdId`)
   * cannot be checked (a hold id the ledger never knew would name any ledger and feature): the
   * route does not burn, so a call whose hold expired past retention before it was priced is
   * reported, not burned; nor when the ledger refused the `ledgerId` claim (another ledger, or
   * a ledger that does not know the field: the hold is committed without it). The route burns the usage event keyed by the call's
   * `eventId`, the event the hold's commit records (same amount, time, version 1), so the ledger
   * burns it once whichever comes first, also when the hold was voided first. Never in a
   * caller's own `record()` burn (no `resolveHold`: there `settle()`'s commit burns the feature,
   * checked by the ledger), nor in a correction's (version 2+: hold commits are version 1
   * only, so nothing checks the link; a correction does not reach a hold-only feature, which
   * keeps version 1's amount). An observation an older release linked has no `holdLedgerId`:
   * its hold's commit stays the only burn of such a feature.
   */
  burn(obs: UsageObservation, record?: RatedUsageRecord, resolveHold?: boolean): Promise<void>;
  /**
   * The burn of a call the record path just stored, failing open like recording: a store error
   * spools the observation (its replay burns again, idempotently) or, when `mayspool` is false
   * (a replay, an ingest worker), throws; an error no retry can fix is reported and dropped.
   * `resolveHold`: the burn is a later one (an ingest worker, a spool replay, `rerateUnpriced`),
   * so it also commits the linked credit hold; a caller's own `record()` leaves that to its
   * `settle()`.
   */
  burnRecorded(
    obs: UsageObservation,
    result: RecordResult,
    mayspool: boolean,
    resolveHold?: boolean,
  ): Promise<void>;
  /**
   * The burn of a rated record that is already stored (a correction, a reconcile), committing
   * its linked credit hold (first version only): a store error throws (so the caller can run
   * again); an error no retry can fix is reported.
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

/**
 * Outcomes a retry cannot change when committing a linked hold, so the burn goes on without
 * it: the hold was voided (`hold_already_resolved`), purged or never known (`invalid_input`
 * naming `holdId`), of another feature (`invalid_input` naming `featureId`), or committed with
 * another body (`idempotency_conflict`).
 */
const holdStands = (error: unknown): boolean =>
  isCallerFault(error) || isCode(error, "hold_already_resolved");

/** A linked credit hold the burn could not commit, and why (see `commitLinkedHold`). */
interface UnresolvedHold {
  holdId: string;
  /** The hold's feature (`correlation.holdFeatureId`). */
  featureId: string;
  /**
   * Whether `featureId` is burned on the hold's ledger anyway: a route, or the hold's own route
   * (`holdLedgerId` known); else (an older release's observation) the failed commit was its only
   * burn: not burned.
   */
  routed: boolean;
  error: unknown;
  /**
   * The link names another ledger (`ledgerId`) or feature (`featureId`) than the real hold's
   * (the ledger refused the commit naming it): the hold's own route does not burn.
   */
  mislinked?: "ledgerId" | "featureId";
}

/** What committing a linked hold left for the rest of the burn. */
interface LinkedHoldOutcome {
  /** The hold's money feature met a call rated in another currency: thrown after the routes. */
  mismatch?: unknown;
  /**
   * Purged, unknown, committed with another body or of another feature: reported after the
   * routes burned.
   */
  unresolved?: UnresolvedHold;
  /**
   * The ledger confirmed that the link names the hold's own ledger and feature, in this burn:
   * the hold's own route may burn (see `burn`). Set when the commit (with the `ledgerId` claim)
   * committed, or was answered `hold_already_resolved` or `idempotency_conflict` (both after the
   * ledger's feature and ledger checks: memory and Postgres ledgers; the testkit suite refuses a
   * wrong claim whatever the hold's state). Not for a purged or unknown hold (`invalid_input`
   * naming `holdId`: cannot be checked), nor when the claim was refused.
   */
  holdRoute?: true;
}

/**
 * The ledger does not know a commit's `ledgerId` claim (a third-party ledger of an older
 * release whose strict schema refuses the unrecognized key: `invalid_input` whose every issue
 * is at the input's root and names `ledgerId`). The commit is then made again without the
 * claim. A ledger that checks the claim refuses a mismatch naming `ledgerId` (the hold is on
 * another ledger): that is never committed. @internal
 */
export function claimUnknown(error: unknown, claimedLedgerId: string | undefined): boolean {
  return (
    claimedLedgerId !== undefined &&
    LatchValidationError.isInstance(error) &&
    error.issues.length > 0 &&
    error.issues.every((i) => i.path === "" && i.message.includes("ledgerId"))
  );
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

  /**
   * The route a linked credit hold adds (see `burn`): its ledger and feature when the
   * observation names both (`holdLedgerId`, set since this release by `record(input, { hold })`)
   * and no route of the call burns that feature on that ledger; `undefined` otherwise (a quota
   * hold, no hold, an older release's link, or a routed feature).
   */
  function holdRoute(obs: UsageObservation, routes: readonly CreditRoute[]): CreditRoute | undefined {
    const c = obs.correlation;
    if (c?.holdId === undefined || c.holdFeatureId === undefined || c.holdLedgerId === undefined)
      return undefined;
    const { holdLedgerId: ledgerId, holdFeatureId: featureId } = c;
    if (routes.some((r) => r.ledgerId === ledgerId && r.featureId === featureId)) return undefined;
    return { ledgerId, featureId };
  }

  function routesFeature(obs: UsageObservation, featureId: string, ledgerId?: string): boolean {
    try {
      return routesOf(obs).some(
        (r) => r.featureId === featureId && (ledgerId === undefined || r.ledgerId === ledgerId),
      );
    } catch {
      return false; // the burn reports it
    }
  }

  /**
   * Commits the credit hold `obs` links (`correlation.holdId` with `holdFeatureId`, set by
   * `record(input, { hold })`) with the usage event the call's burn records: `{ eventId,
   * amount, at, version }`, the amount being what the hold's feature counts of the call. So a
   * hold `settle()` left open (a money feature, the call accepted or spooled, not rated yet) is
   * released by the burn itself, and the call never counts as held and burned past it. Where
   * the hold's ledger and feature are one of the call's routes (the usual case), the route's
   * burn is the same event: it burns once, whichever of the two the ledger saw first.
   *
   * Only the first version commits (a hold resolves once; a correction replaces the burn
   * through the route). Nothing is committed while the feature counts nothing of the call (a
   * money feature before it is rated: the burn of the rated record commits it). A hold that
   * cannot be committed holds nothing any more, so the burn goes on through the routes and
   * nothing is lost or doubled; it is never retried. "Routed" below means a route burns the
   * hold's feature on the hold's ledger — always so when the observation names that ledger
   * (`holdLedgerId`): a hold-only feature is then burned there by the hold's own route (see
   * `burn`); for an older release's observation (no `holdLedgerId`), a route of the feature on
   * any ledger:
   * - voided (`hold_already_resolved`): released on purpose (`settle()` of an unpriced call of
   *   a routed feature, of a failed call, or of a call recorded under another hold): not
   *   reported when routed (the route's burn counts the call there); reported
   *   (`credit_hold_unresolved`) for a hold-only feature of an older release's observation,
   *   whose commit was the call's only burn of it: that feature is not burned for the call;
   * - purged or unknown (`invalid_input` naming `holdId`: it resolved, or expired, longer ago
   *   than the ledger's hold retention): reported (`credit_hold_unresolved`, the error as
   *   `cause`) when this burn is the call's first on the hold's feature; when a route of that
   *   feature had burned the call before (a caller's record() and settle, an earlier delivery:
   *   `reconcileCredits()` walking old records), the hold resolved back then: not reported;
   * - committed with another body (`idempotency_conflict`: e.g. one hold passed to two calls):
   *   reported;
   * - of another feature than `holdFeatureId` (`invalid_input` naming `featureId`: the Hold
   *   passed to `record(input, { hold })` was changed after `reserve()`, e.g. rebuilt with the
   *   default feature): the amount counted for `holdFeatureId` is never committed to it; the
   *   hold stays held until its TTL (or a void); reported at every delivery. The link is
   *   wrong, so the hold's own route does not burn `holdFeatureId` either (see `burn`);
   * - on another ledger than `holdLedgerId` (`invalid_input` naming `ledgerId`: the commit
   *   names the link's ledger; the Hold's `account` was changed, e.g. rebuilt wrongly from
   *   stored fields, or made up from another customer's hold id): nothing is committed (the
   *   hold is left as it is), the hold's own route does not burn the claimed ledger, and it is
   *   reported at every delivery. Both checks run whatever the hold's state (voided,
   *   committed): the link is checked as long as the ledger knows the hold. A ledger whose
   *   strict schema refuses the claim as an unrecognized key (an issue at the root naming
   *   `ledgerId`: an older third-party ledger) gets the same commit without it, silently. A purged or unknown hold cannot be
   *   checked: the hold's own route does not burn then (a made-up hold id would name any
   *   ledger and feature). The outcome says
   *   whether the hold's own route may burn (`holdRoute`); a burn without `resolveHold` or of
   *   version 2+ never checks, so it never burns that route.
   * A call rated in another currency than the hold's money feature burns nothing there: the
   * hold is voided (as `settle()` does) and the mismatch thrown after the routes, as for a
   * route. A ledger error throws, as a route's does (the burn is retried later: spool,
   * redelivery, `reconcileCredits()`).
   */
  async function commitLinkedHold(
    obs: UsageObservation,
    record: RatedUsageRecord | undefined,
  ): Promise<LinkedHoldOutcome> {
    const holdId = obs.correlation?.holdId;
    const featureId = obs.correlation?.holdFeatureId;
    if (holdId === undefined || featureId === undefined || (record?.version ?? 1) !== 1) return {};
    const ledger = (credits as LatchCreditsConfig).ledger;
    let amount: string | undefined;
    try {
      amount = creditUsageOf(await feature(featureId), obs, record);
    } catch (error) {
      if (!holdStands(error)) throw error;
      // An unknown feature, or a call rated in another currency: the hold counts nothing of it.
      try {
        await withRetry(() => ledger.voidHold(holdId), retry);
      } catch (voidError) {
        if (!holdStands(voidError)) throw voidError;
      }
      return { mismatch: error };
    }
    if (amount === undefined) return {};
    const holdLedgerId = obs.correlation?.holdLedgerId;
    const commit = (claimLedger: boolean) =>
      withRetry(
        () =>
          ledger.commitHold({
            holdId,
            // Refused by the ledger when the hold is of another feature or on another ledger
            // than the link says (see above).
            featureId,
            ...(claimLedger && holdLedgerId !== undefined ? { ledgerId: holdLedgerId } : {}),
            eventId: obs.eventId,
            amount,
            at: obs.timing.completedAt,
            version: 1, // only the first version commits (see above)
          }),
        retry,
      );
    let claimChecked = holdLedgerId !== undefined;
    try {
      try {
        await commit(true);
        return { holdRoute: true };
      } catch (error) {
        // A ledger that does not know the claim (an older strict schema): the same commit
        // without it (the hold's feature is still checked); the ledger did not confirm the
        // linked ledger, so the hold's own route does not burn.
        if (!claimUnknown(error, holdLedgerId)) throw error;
        claimChecked = false;
        await commit(false);
      }
      return {};
    } catch (error) {
      if (!holdStands(error)) throw error;
      // The link does not match the real hold (another feature, or another ledger: a Hold
      // changed after reserve(), or made up from another's hold id): nothing committed, and its
      // own route must not burn what it claims.
      if (namesField(error, "featureId"))
        return { unresolved: { holdId, featureId, routed: false, error, mislinked: "featureId" } };
      if (holdLedgerId !== undefined && namesField(error, "ledgerId"))
        return { unresolved: { holdId, featureId, routed: false, error, mislinked: "ledgerId" } };
      // Voided: released on purpose (settle() voids a routed money hold of an unpriced call, which
      // rerateUnpriced() burns later; a failed call; a call recorded under another hold). It
      // holds nothing: when a route burns its feature on its ledger, nothing is lost. With the
      // hold's ledger known, the burn's hold route burns a hold-only feature there (see `burn`);
      // for an older release's observation, a hold-only feature's only burn was this commit,
      // so that feature goes unburned for the call: reported.
      // The ledger checks the claimed feature and ledger before the hold's state, so a voided
      // or differently committed hold confirms the link (when the claim was made and checked).
      // A purged or unknown hold (`invalid_input` naming `holdId`) cannot be checked: a hold id
      // the ledger never knew (a made-up Hold) would name any ledger and feature, so its own
      // route does not burn; a hold-only feature whose hold expired past the ledger's retention
      // before the call was priced is reported, not burned.
      if (isCode(error, "hold_already_resolved")) {
        if (claimChecked) return { holdRoute: true };
        if (routesFeature(obs, featureId, holdLedgerId)) return {};
      }
      const confirmed = claimChecked && isCode(error, "idempotency_conflict");
      const routed = confirmed || routesFeature(obs, featureId, holdLedgerId);
      return { unresolved: { holdId, featureId, routed, error }, ...(confirmed ? { holdRoute: true } : {}) };
    }
  }

  /**
   * Reports a linked hold the burn could not commit — unless it is only purged (or unknown) and
   * a route of the hold's feature had burned this call before (`duplicate`, `superseded`): the
   * call was fully burned earlier (a caller's record() and its settle, an earlier delivery), so
   * the hold resolved back then; e.g. `reconcileCredits()` walking old records, which would
   * otherwise report every hold past the ledger's retention.
   */
  function reportUnresolved(eventId: string, hold: UnresolvedHold, burnedBefore: boolean): void {
    if (burnedBefore && namesField(hold.error, "holdId")) return;
    if (hold.mislinked !== undefined) {
      const claimed =
        hold.mislinked === "featureId"
          ? `the held feature ${JSON.stringify(hold.featureId)} (correlation.holdFeatureId) is not the hold's: nothing committed, the hold stays held until its TTL`
          : `the ledger it links (correlation.holdLedgerId) is not the hold's ledger: nothing committed (the hold is left as it is: held until its TTL unless resolved otherwise)`;
      warn({
        code: "credit_hold_unresolved",
        message: `the credit hold ${hold.holdId} of ${eventId} does not match its link (${(hold.error as Error).message}): ${claimed}; the linked ${hold.mislinked} is not burned for this call (the Hold passed to record() was changed after reserve())`,
        eventId,
        cause: hold.error,
      });
      return;
    }
    warn({
      code: "credit_hold_unresolved",
      message: `the credit hold ${hold.holdId} of ${eventId} cannot be committed (${(hold.error as Error).message}); ${hold.routed ? "the call burns through its routes" : `the held feature ${JSON.stringify(hold.featureId)} is not among the call's routes, so it is not burned for this call here`}`,
      eventId,
      cause: hold.error,
    });
  }

  async function burn(obs: UsageObservation, record?: RatedUsageRecord, resolveHold = false): Promise<void> {
    if (credits === undefined) return;
    const ledger: CreditLedger = credits.ledger;
    const linked: LinkedHoldOutcome = resolveHold ? await commitLinkedHold(obs, record) : {};
    // A money feature in another currency: thrown once the other routes burned.
    let mismatch: unknown = linked.mismatch;
    let burnedBefore = false; // a route of the linked hold's feature had burned this call already
    const routes = routesOf(obs);
    // A hold-only feature burns on the hold's ledger: the event its hold's commit records. Only
    // once the ledger confirmed the link in this burn (`resolveHold`, version 1: see
    // `commitLinkedHold`); never in a caller's own record() burn (settle()'s commit burns it)
    // nor a correction's (nothing confirms the link: it keeps version 1's amount).
    const held = linked.holdRoute === true ? holdRoute(obs, routes) : undefined;
    const holdLedgerId = obs.correlation?.holdLedgerId;
    for (const route of held === undefined ? routes : [...routes, held]) {
      const counted = await feature(route.featureId);
      let amount: string | undefined;
      try {
        amount = creditUsageOf(counted, obs, record);
      } catch (error) {
        mismatch ??= error;
        continue;
      }
      if (amount === undefined) continue;
      const burned = await withRetry(
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
      if (
        route.featureId === obs.correlation?.holdFeatureId &&
        (holdLedgerId === undefined || route.ledgerId === holdLedgerId) &&
        burned.status !== "recorded"
      )
        burnedBefore = true;
    }
    if (linked.unresolved !== undefined) reportUnresolved(obs.eventId, linked.unresolved, burnedBefore);
    if (mismatch !== undefined) throw mismatch;
  }

  async function burnRecorded(
    obs: UsageObservation,
    result: RecordResult,
    mayspool: boolean,
    resolveHold = false,
  ): Promise<void> {
    try {
      // A rated call burns what its stored record counts: a redelivery of version 1 that finds
      // a correction stored burns the correction's meters, not its own (a quantity feature
      // counts the observation's meters at the record's version).
      if (result.status === "rated") await burn(result.record.observation, result.record, resolveHold);
      else await burn(obs, undefined, resolveHold);
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
      await burn(record.observation, record, true);
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

  function assertHoldLedger(
    obs: UsageObservation,
    hold: { account: string },
    where: string,
    path: string,
  ): void {
    let routes: readonly CreditRoute[];
    try {
      routes = routesOf(obs);
    } catch {
      return; // the burn reports it
    }
    if (routes.length === 0 || routes.some((r) => r.ledgerId === hold.account)) return;
    throw LatchValidationError.at(
      where,
      path,
      `is ledger ${JSON.stringify(hold.account)}, but ${obs.eventId} burns ${routes.map((r) => JSON.stringify(r.ledgerId)).join(", ")}: committing the hold would burn the call twice`,
    );
  }

  return {
    none: credits === undefined,
    feature,
    assertHoldLedger,
    routesFeature,
    burn,
    burnRecorded,
    burnStored,
    reconcile,
  };
}
