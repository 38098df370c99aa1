import type {
  CreditCommitInput,
  CreditFeature,
  CreditFeatureInput,
  CreditGrantInput,
  CreditGrantRequest,
  CreditHistoryQuery,
  CreditLedgerInfo,
  CreditLedgerInput,
  CreditLedgerListQuery,
  CreditReserveInput,
  CreditResetInput,
  CreditUsageInput,
  CreditVoidInput,
} from "./schemas.js";

/** A stored grant: the request as parsed, plus what the ledger derived from it. */
export interface CreditGrant extends CreditGrantRequest {
  /**
   * `effectiveAt + expiration`, calendar-correct in the ledger's time zone (ISO 8601 UTC,
   * millisecond precision). Absent when the grant has no expiration.
   */
  expiresAt?: string;
  /** Creation order within the ledger (1, 2, 3…): the last tie-break of the burn-down order. */
  sequence: number;
  /** The time the grant was voided from, when it was. */
  voidedAt?: string;
}

/**
 * Where one usage event's amount went. Amounts are canonical decimal strings, and `burned`
 * plus `overage` add up to the event's amount.
 */
export interface CreditAllocation {
  /**
   * Grants burned, in burn-down order. For a refund (negative usage), the credit it returned,
   * as negative amounts, per grant in the order the burns were undone (newest first).
   */
  burned: Array<{ grantId: string; amount: string }>;
  /**
   * What no grant covered. Reported, never lost. It also holds the part of a usage taken from
   * a refund owed back (see refunds on {@link CreditLedger}); for a refund it is negative: the
   * overage it undid plus what it left owed back.
   */
  overage: string;
}

/**
 * What `recordUsage` did, with where the event's stored amount went: `recorded` (stored now, or
 * a higher version replaced the stored one), `duplicate` (this version was stored before;
 * nothing changed) or `superseded` (a higher version is stored; nothing changed, the allocation
 * is the stored version's); or `denied` (enforced, would add overage; nothing stored) with the
 * feature's available balance at the usage's time.
 */
export type CreditUsageResult =
  | ({ status: "recorded" | "duplicate" | "superseded"; eventId: string } & CreditAllocation)
  | { status: "denied"; eventId: string; reason: "insufficient_credits"; available: string };

/**
 * What `reserve` did. `available` is the feature's balance at the store's current time minus
 * every unexpired hold, this one included when granted (a decimal string ≥ 0).
 */
export type CreditReserveResult =
  | { granted: true; holdId: string; available: string }
  | { granted: false; holdId: string; reason: "insufficient_credits"; available: string };

/** What `commitHold` did: the usage event recorded for the hold, and where its amount went. */
export interface CreditCommitResult extends CreditAllocation {
  status: "committed";
  holdId: string;
  eventId: string;
}

/** One grant's account at a time `t`. `granted = balance + burned + expired + voided`, always. */
export interface CreditGrantBalance {
  grantId: string;
  featureId: string;
  priority: number;
  effectiveAt: string;
  expiresAt?: string;
  voidedAt?: string;
  /** In effect at `t`: effective, not expired, not voided. */
  active: boolean;
  /** The amount, plus every refill of an ORIGINAL_AMOUNT rollover, up to `t`. 0 before `effectiveAt`. */
  granted: string;
  balance: string;
  burned: string;
  /** Ended by expiry or by a reset (the part that did not roll over). */
  expired: string;
  voided: string;
}

/** One feature's totals at `t` over the ledger's grants of that feature. */
export interface CreditFeatureBalance {
  featureId: string;
  balance: string;
  granted: string;
  burned: string;
  expired: string;
  voided: string;
  /** All usage up to `t` (refunds subtracted): `burned + overage`. */
  usage: string;
  /**
   * Usage that no grant covered. Negative only for a money feature whose refunds exceeded
   * everything allocated before them: owed back, and taken first by its next usage.
   */
  overage: string;
}

/** A ledger's balances at one time. */
export interface CreditBalance {
  ledgerId: string;
  /** The time asked for (ISO 8601 UTC, millisecond precision). */
  at: string;
  /** Every feature with a grant or usage in the ledger, by featureId. */
  features: CreditFeatureBalance[];
  /** Every grant of the ledger (zero before it is effective), in creation order. */
  grants: CreditGrantBalance[];
}

/** A `[from, to)` interval (ISO 8601 UTC). */
export interface CreditPeriod {
  from: string;
  to: string;
}

/** One history entry; `at` is ISO 8601 UTC and amounts are canonical decimal strings. */
export type CreditHistoryEntry =
  | { type: "GRANT"; at: string; grantId: string; featureId: string; amount: string }
  /** `amount` is the balance the void removed (0 for a grant already spent or expired). */
  | { type: "VOID"; at: string; grantId: string; featureId: string; amount: string }
  | {
      type: "RESET";
      at: string;
      /** Each grant in effect at the reset: its balance before and after (what rolled over). */
      grants: Array<{ grantId: string; featureId: string; before: string; after: string }>;
    }
  /**
   * What usage burned from one grant within `period`; periods are cut at every grant start,
   * expiry, void and reset, and at the query's `from` and `to`. `at` is `period.from`. The net
   * of burns and refunds: negative when refunds returned more than the period burned (a period
   * where they cancel out has no entry).
   */
  | {
      type: "GRANT_USAGE";
      at: string;
      grantId: string;
      featureId: string;
      amount: string;
      period: CreditPeriod;
    };

/** A page of {@link CreditLedger.history}. */
export interface CreditHistoryPage {
  items: CreditHistoryEntry[];
  /** Pass as `cursor` for the next page; absent on the last page. */
  next?: string;
}

/** A page of {@link CreditLedger.listLedgers}. */
export interface CreditLedgerPage {
  /** The page's ledgers, in ledgerId order. */
  items: CreditLedgerInfo[];
  /** Pass as `cursor` for the next page; absent on the last page. */
  next?: string;
}

/**
 * Prepaid credits (OpenMeter-style, but exact): ledgers per subject, features that tie usage
 * to credits, grants with priority, effective dates, expiration and rollover, burned down by
 * usage; void, reset, balances at any time and a paginated history.
 *
 * **Amounts** are decimal strings and exact: no float ever touches them. Every amount returned
 * is canonical (`"1.5"`, not `"1.50"`). Times are ISO 8601 UTC and kept at millisecond
 * precision; returned times are `Date.prototype.toISOString()` strings.
 *
 * **Balances are a function of the stored facts**, computed by replaying them in time order,
 * so the same grants, voids, resets and usage events give the same balances whatever order
 * they were recorded in (late usage is applied where it belongs). At one instant the order is:
 * expiries, voids, the reset, grants becoming effective, then usage (by featureId, eventId).
 * A grant is in effect over `[effectiveAt, expiresAt)`, until it is voided.
 *
 * **Burn-down**: usage of a feature at `t` consumes the feature's grants in effect at `t` with
 * a balance, ordered by priority (1 first), then soonest `expiresAt` (none = last), then
 * creation order. What remains is **overage**: reported per event and per feature, never lost.
 * With `enforce: true` a usage that would add overage (anywhere in the replay) is denied up
 * front and nothing is stored; concurrent enforced usage never drives a balance below zero.
 *
 * **Reset** at `r` starts a new period: each grant in effect at `r` keeps
 * `min(amount, maxAmount)` (ORIGINAL_AMOUNT: refilled), `min(balance, maxAmount)`
 * (REMAINING_AMOUNT) or nothing (no rollover); the rest counts as expired. A grant effective
 * exactly at `r` belongs to the new period and is untouched.
 *
 * **High watermark**: the latest reset. Nothing may be granted (effectiveAt), voided or reset
 * before it: such a request throws `HighWatermarkError` (`high_watermark`). Usage may still
 * arrive late for an earlier period; it is applied there (never lost).
 *
 * **Idempotency**: features, ledgers and grants are created once by id; the same id with the
 * same body returns `already_exists`, with another body throws `IdempotencyConflictError`
 * (canonical hashes of the parsed bodies). Usage is keyed by `(ledgerId, featureId, eventId)`
 * the same way (`duplicate`, or a conflict on another amount or time); a denied usage stores
 * nothing, so its retry is evaluated afresh. A void at the same time twice is a no-op; at
 * another time it is a conflict. A reset at the latest reset's time is a no-op.
 *
 * **Corrections**: a usage event has a `version` (default 1). Recording a higher version
 * replaces the event's amount and time (balances are replayed, so the burn is adjusted up or
 * down wherever it lands); a lower version than the stored one changes nothing and answers
 * `superseded`.
 *
 * **Refunds** (money features only): a usage amount may be negative, as the rated total of an
 * event whose volume period tier reprices the period's earlier usage lower is. Replayed at its
 * time, a refund undoes the feature's most recent allocations first (LIFO): earlier overage,
 * then burns, newest first. Credit undone from a grant still in effect, with no reset since
 * that burn, returns to its balance; from a grant since expired or voided, or a burn before a
 * reset, it counts as expired (voided) — the closed period is not reopened, as if the burn had
 * been smaller. A refund larger than everything allocated before it leaves the feature's
 * overage negative (owed back), and the feature's next usage takes that first, before any
 * grant. So the credits a period burns equal the sum of its rated totals whenever the grants
 * cover them, in whatever order the events arrive. Enforcement never denies a refund. A
 * negative amount for a quantity feature is `invalid_input` naming `amount`. E.g. a volume
 * tier's calls rated 0.0016, then −0.0004 (the crossing call), then 0.0003 burn 0.0015 in all;
 * the second's allocation is `{ burned: [{ grantId, amount: "-0.0004" }], overage: "0" }`.
 *
 * **Holds** (two-phase, like `QuotaReservator`, but in exact credits and tied to usage events):
 * `reserve` holds an amount of a feature's credits for a call, so that concurrent reserves
 * never promise the same credits twice; `commitHold` records what the call used as a usage
 * event and releases the hold; `voidHold` releases it. Semantics:
 * - A reserve is granted when the amount, added as usage at the store's current time on top of
 *   every unexpired hold of the ledger, adds no overage (the enforcement rule). A denied reserve
 *   stores nothing. Holds are not usage: `balance` and `history` do not show them, but every
 *   later reserve and every enforced `recordUsage` counts them.
 * - Idempotent by `holdId` (unique across the store): the same request again answers `granted`
 *   without holding twice; another ledger, feature or amount throws `IdempotencyConflictError`.
 * - Each hold resolves once. `commitHold` records `{ eventId, amount, at, version }` against the
 *   hold's ledger and feature, never enforced: **the actual amount is charged in full, even
 *   above the hold** (the call has happened; what no grant covers is overage, reported, as
 *   `QuotaReservator.commit` charges above its hold). An event already recorded with the same
 *   body is not burned again (the hold just resolves), so recording usage and committing the
 *   hold of one call burn once. A commit after the hold expired still records the usage (late
 *   usage is never lost). Commit twice with the same body: the same result; with another body:
 *   `IdempotencyConflictError`. Commit after void: `HoldAlreadyResolvedError`.
 * - `commitHold` may name the feature the caller believes the hold is of (`featureId`,
 *   optional): when it is not the hold's feature, the commit is refused with `invalid_input`
 *   naming `featureId`, whatever the hold's state, and burns nothing (the hold stays as it
 *   was). It is a check, not part of the commit's body: a retry with or without it answers as
 *   the first commit did. Latch's facade always passes it (the amount it commits is what that
 *   feature counts of the call, so a hold of another feature must never take it). Latch's own
 *   ledgers check it; a third-party ledger must accept it and should check it (one that
 *   ignores it keeps working, without the protection).
 * - `voidHold` twice, or after expiry, is a no-op; after commit it throws
 *   `HoldAlreadyResolvedError`. An unknown holdId throws `invalid_input` naming `holdId`.
 * - A hold not resolved within `ttlMs` expires by the store's clock and frees its amount.
 * - A resolved hold (committed, voided, or expired) is kept the store's `holdRetentionMs`
 *   after it resolved, then purged: a later commit or void throws `invalid_input` naming
 *   `holdId`, and burns nothing (see `contracts/hold-retention.ts`).
 *
 * Holds belong to the ledger rather than to an adapter implementing core's `QuotaReservator`:
 * a hold must be decided under the same lock as the burns it competes with (so only the store
 * that keeps the burns can keep it atomic across processes), its amounts are exact decimals
 * rather than integer quota units, a grant-driven balance has no `setLimit`, and its commit must
 * name the usage event so that a call's burn and its hold's commit are one burn.
 *
 * **Errors**: bad input, an unknown ledger, feature, grant or hold throw `invalid_input` naming
 * the field (`amount`, `priority`, `expiration.count`, `featureId`, `holdId`, …). A grant's
 * feature must exist; a usage's or a hold's feature must exist.
 *
 * Checked by `@latch/testkit`'s `describeCreditLedger`. All methods take an optional
 * `AbortSignal` last.
 *
 * @example
 * await credits.createFeature({ featureId: "tokens", measure: { kind: "quantity", meters: ["input_tokens", "output_tokens"] } });
 * await credits.createLedger({ ledgerId: "acme", subject: { tenantId: "acme" } });
 * await credits.grant({ grantId: "acme-2026-03", ledgerId: "acme", featureId: "tokens", amount: "1000000",
 *   effectiveAt: "2026-03-01T00:00:00Z", expiration: { count: 1, unit: "MONTH" } });
 * await credits.recordUsage({ ledgerId: "acme", featureId: "tokens", eventId: "req-1:0:openai",
 *   amount: "1200", at: "2026-03-02T10:00:00Z" });
 * (await credits.balance("acme", "2026-03-03T00:00:00Z")).features[0]?.balance; // "998800"
 */
export interface CreditLedger {
  /** Creates a feature (idempotent by featureId). */
  createFeature(
    input: CreditFeatureInput,
    signal?: AbortSignal,
  ): Promise<{ status: "created" | "already_exists"; feature: CreditFeature }>;
  getFeature(featureId: string, signal?: AbortSignal): Promise<CreditFeature | undefined>;
  /** Creates a ledger (idempotent by ledgerId). */
  createLedger(
    input: CreditLedgerInput,
    signal?: AbortSignal,
  ): Promise<{ status: "created" | "already_exists"; ledger: CreditLedgerInfo }>;
  getLedger(ledgerId: string, signal?: AbortSignal): Promise<CreditLedgerInfo | undefined>;
  /**
   * The ledgers whose subject has every field given in `query.subject` (equal, exactly; the
   * fields not given are not constrained, so `{}` lists every ledger), in ledgerId order:
   * code-point order, the order of the ids' UTF-8 bytes (PostgreSQL's `COLLATE "C"`), the
   * same on every backend. `limit` (1–1000) per page; pass `next` back as `cursor` for the
   * ledgers after the page (keyset pagination: a ledger created between pages appears on a
   * later page when it sorts after the cursor, and no ledger is returned twice). The cursor is
   * opaque: one that `listLedgers` did not return throws `invalid_input` naming `cursor`; bad
   * input names the field (`limit`, `subject.tenantId`, …).
   *
   * @example
   * let page = await credits.listLedgers({ subject: { tenantId: "acme" }, limit: 100 });
   * while (page.next !== undefined) {
   *   page = await credits.listLedgers({ subject: { tenantId: "acme" }, limit: 100, cursor: page.next });
   * }
   */
  listLedgers(query: CreditLedgerListQuery, signal?: AbortSignal): Promise<CreditLedgerPage>;
  /** Adds a grant (idempotent by grantId). `effectiveAt` must not be before the high watermark. */
  grant(
    input: CreditGrantInput,
    signal?: AbortSignal,
  ): Promise<{ status: "granted" | "already_exists"; grant: CreditGrant }>;
  /** The ledger's grants in creation order. */
  listGrants(ledgerId: string, signal?: AbortSignal): Promise<CreditGrant[]>;
  /**
   * Voids a grant from `at` on: its balance at `at` is voided and it burns nothing after.
   * `at` at or before `effectiveAt` voids the whole amount. Not before the high watermark.
   */
  voidGrant(
    input: CreditVoidInput,
    signal?: AbortSignal,
  ): Promise<{ status: "voided" | "already_voided"; grant: CreditGrant }>;
  /** Starts a new period at `at` (see the interface's TSDoc). Not before the high watermark. */
  reset(
    input: CreditResetInput,
    signal?: AbortSignal,
  ): Promise<{ status: "reset" | "already_reset"; at: string }>;
  /**
   * Records one usage event and burns credits (see burn-down, enforcement and corrections
   * above). An enforced usage also leaves every unexpired hold's amount untouched.
   */
  recordUsage(input: CreditUsageInput, signal?: AbortSignal): Promise<CreditUsageResult>;
  /**
   * Holds `amount` of a feature's credits for `ttlMs` (see holds above): granted only when the
   * ledger can still cover it after every other unexpired hold.
   *
   * @example
   * const hold = await credits.reserve({ holdId: "req-1", ledgerId: "acme", featureId: "tokens", amount: "4000", ttlMs: 60_000 });
   * if (hold.granted) await credits.commitHold({ holdId: "req-1", featureId: "tokens", eventId: "req-1:0:openai", amount: "1200", at: completedAt });
   */
  reserve(input: CreditReserveInput, signal?: AbortSignal): Promise<CreditReserveResult>;
  /**
   * Resolves a hold with what the call used: records the usage event (charged in full, even
   * above the hold) and releases the hold (see holds above). A `featureId` that is not the
   * hold's feature is `invalid_input` naming `featureId`, and a `ledgerId` that is not the
   * hold's ledger `invalid_input` naming `ledgerId`: nothing is committed, whatever the hold's
   * state. Neither is part of the commit's body (a retry with or without them is the same commit).
   */
  commitHold(input: CreditCommitInput, signal?: AbortSignal): Promise<CreditCommitResult>;
  /** Releases a hold without recording usage (the call failed). See holds above. */
  voidHold(holdId: string, signal?: AbortSignal): Promise<void>;
  /** Balances per feature and per grant at `at` (events at exactly `at` included). */
  balance(ledgerId: string, at: string, signal?: AbortSignal): Promise<CreditBalance>;
  /**
   * History entries with a time in `[from, to)`, ordered by time, then VOID, RESET, GRANT,
   * GRANT_USAGE, then grant creation order; `limit` per page, `next` to continue.
   */
  history(query: CreditHistoryQuery, signal?: AbortSignal): Promise<CreditHistoryPage>;
  /** The latest reset (ISO 8601 UTC), or undefined when the ledger was never reset. */
  highWatermark(ledgerId: string, signal?: AbortSignal): Promise<string | undefined>;
}
