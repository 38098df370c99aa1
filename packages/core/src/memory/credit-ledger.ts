import { DEFAULT_MEMORY_HOLD_RETENTION_MS, parseHoldRetentionMs } from "../contracts/hold-retention.js";
import type {
  CreditBalance,
  CreditCommitResult,
  CreditGrant,
  CreditHistoryPage,
  CreditLedger,
  CreditLedgerPage,
  CreditReserveResult,
  CreditUsageResult,
} from "../credits/contract.js";
import {
  allocationOf,
  balanceAt,
  enforcementCheck,
  grantFact,
  type HoldFact,
  heldAvailability,
  historyPage,
  holdCheck,
  type LedgerFacts,
  type LedgerSnapshot,
  type SnapshotCapture,
  type UsageFact,
  withHolds,
} from "../credits/engine.js";
import {
  assertNotBeforeHighWatermark,
  assertSameBody,
  assertUsageAmountFits,
  buildGrant,
  compareCodePoints,
  ledgerListPage,
  parseCreditCommit,
  parseCreditFeature,
  parseCreditGrant,
  parseCreditHistoryQuery,
  parseCreditLedger,
  parseCreditLedgerListQuery,
  parseCreditReserve,
  parseCreditReset,
  parseCreditUsage,
  parseCreditVoid,
  parseFeatureIdArg,
  parseHoldIdArg,
  parseLedgerIdArg,
  parseTimeArg,
  subjectMatches,
  unknownId,
  usageDecision,
  voidHash,
} from "../credits/requests.js";
import type {
  CreditCommitInput,
  CreditFeature,
  CreditFeatureInput,
  CreditGrantInput,
  CreditHistoryQuery,
  CreditLedgerInfo,
  CreditLedgerInput,
  CreditLedgerListQuery,
  CreditReserveInput,
  CreditResetInput,
  CreditUsageInput,
  CreditVoidInput,
} from "../credits/schemas.js";
import {
  dropSnapshotsAfter,
  parseSnapshotEvery,
  parseSnapshotThinning,
  type SnapshotThinning,
  snapshotAtOrBefore,
  THINNING_WINDOW,
  type ThinningRule,
  thinAfterWrite,
  voidChangesFrom,
} from "../credits/snapshots.js";
import { HoldAlreadyResolvedError } from "../errors/index.js";
import { HoldPurger } from "./hold-purger.js";

interface LedgerState {
  readonly info: CreditLedgerInfo;
  readonly hash: string;
  /** In creation order. */
  readonly grants: CreditGrant[];
  readonly resets: number[];
  highWatermark: number | null;
  /** By feature and event, in first-recorded order; a higher version replaces the entry. */
  readonly usage: Map<string, { fact: UsageFact; hash: string; version: number }>;
  /** The same usage facts by time (ties in recording order): the events after a snapshot. */
  readonly timeline: UsageFact[];
  /** Balance snapshots by position (see `credits/snapshots.ts`). */
  readonly snapshots: LedgerSnapshot[];
  /** Holds not resolved yet (some may have expired). */
  readonly holds: Map<string, HoldState>;
}

interface HoldState {
  readonly holdId: string;
  readonly ledgerId: string;
  readonly featureId: string;
  readonly amount: bigint;
  readonly hash: string;
  readonly expiresMs: number;
  status: "held" | "committed" | "voided";
  /** When it was committed or voided, by the store's clock (a "held" one resolves at expiresMs). */
  resolvedMs?: number;
  commitHash?: string;
  eventId?: string;
}

/** Options of {@link MemoryCreditLedger}. */
export interface MemoryCreditLedgerOptions {
  /** The store's clock in epoch milliseconds: hold times and expiry. Default `Date.now`. */
  clock?: () => number;
  /**
   * How long a resolved hold (committed, voided, or expired: from its expiry) is kept so that
   * retries stay idempotent; after it, the holdId is unknown (`commitHold` and `voidHold` throw
   * `invalid_input`, never burning twice). Default one hour. See `contracts/hold-retention.ts`.
   */
  holdRetentionMs?: number;
  /**
   * Usage events between two balance snapshots (default 64; 0: none, every question replays
   * the whole ledger). See `credits/snapshots.ts`.
   */
  snapshotEvery?: number;
  /**
   * How old snapshots are thinned: the newest `keepNewest` (default 64) are all kept, older
   * ones one per `sparseEvery` usage events (default 8 × `snapshotEvery`); `false` keeps every
   * one. Never changes a number. See `credits/snapshots.ts`.
   */
  snapshotThinning?: SnapshotThinning | false;
}

const usageKey = (featureId: string, eventId: string) => `${featureId}\u0000${eventId}`;

/**
 * The embedded {@link CreditLedger}: prepaid credits in process memory, with exactly the
 * contract's semantics (balances replayed from the stored facts by core's credit engine, the
 * same engine every backend uses). A question replays only the usage since the latest valid
 * balance snapshot (one every `snapshotEvery` usage events, default 64; see
 * `credits/snapshots.ts`), so its cost does not grow with the ledger's history.
 *
 * Every method is a synchronous critical section behind an async signature (no `await`
 * between read and write), so concurrent enforced usage and concurrent reserves never overdraw
 * a ledger. Holds expire by the injectable `clock`; resolved holds are kept `holdRetentionMs`
 * (default one hour) after they resolve so that retries stay idempotent, then purged lazily (a
 * pass every `max(1,000, holds / 2)` reserves) or by `purgeResolvedHolds()`.
 *
 * @example
 * const credits = new MemoryCreditLedger();
 * await credits.createFeature({ featureId: "usd", measure: { kind: "money", currency: "USD" } });
 * await credits.createLedger({ ledgerId: "acme", subject: { tenantId: "acme" } });
 * await credits.grant({ grantId: "topup-1", ledgerId: "acme", featureId: "usd", amount: "20", effectiveAt: "2026-03-01T00:00:00Z" });
 */
export class MemoryCreditLedger implements CreditLedger {
  readonly #features = new Map<string, { feature: CreditFeature; hash: string }>();
  readonly #ledgers = new Map<string, LedgerState>();
  /** grantId → the ledger it belongs to and its request hash. */
  readonly #grants = new Map<string, { ledgerId: string; hash: string; grant: CreditGrant }>();
  /** Every hold ever granted, by holdId. */
  readonly #holds = new Map<string, HoldState>();
  readonly #clock: () => number;
  readonly #retentionMs: number;
  readonly #purger: HoldPurger<HoldState>;
  readonly #snapshotEvery: number;
  readonly #thinning: ThinningRule | null;

  constructor(options: MemoryCreditLedgerOptions = {}) {
    this.#clock = options.clock ?? Date.now;
    this.#snapshotEvery = parseSnapshotEvery(options.snapshotEvery, "MemoryCreditLedger options");
    this.#thinning = parseSnapshotThinning(
      options.snapshotThinning,
      this.#snapshotEvery,
      "MemoryCreditLedger options",
    );
    this.#retentionMs = parseHoldRetentionMs(
      options.holdRetentionMs,
      DEFAULT_MEMORY_HOLD_RETENTION_MS,
      "MemoryCreditLedger options",
    );
    this.#purger = new HoldPurger(
      this.#holds,
      (hold) =>
        (hold.status === "held" ? hold.expiresMs : (hold.resolvedMs ?? hold.expiresMs)) + this.#retentionMs,
      (hold) => {
        this.#holds.delete(hold.holdId);
        this.#ledgers.get(hold.ledgerId)?.holds.delete(hold.holdId);
      },
    );
  }

  async createFeature(input: CreditFeatureInput, signal?: AbortSignal) {
    signal?.throwIfAborted();
    const { feature, hash } = parseCreditFeature(input);
    const existing = this.#features.get(feature.featureId);
    if (existing !== undefined) {
      assertSameBody(feature.featureId, existing.hash, hash);
      return { status: "already_exists" as const, feature: existing.feature };
    }
    this.#features.set(feature.featureId, { feature, hash });
    return { status: "created" as const, feature };
  }

  async getFeature(featureId: string, signal?: AbortSignal): Promise<CreditFeature | undefined> {
    signal?.throwIfAborted();
    return this.#features.get(parseFeatureIdArg(featureId, "CreditLedger.getFeature"))?.feature;
  }

  async createLedger(input: CreditLedgerInput, signal?: AbortSignal) {
    signal?.throwIfAborted();
    const { ledger, hash } = parseCreditLedger(input);
    const existing = this.#ledgers.get(ledger.ledgerId);
    if (existing !== undefined) {
      assertSameBody(ledger.ledgerId, existing.hash, hash);
      return { status: "already_exists" as const, ledger: existing.info };
    }
    this.#ledgers.set(ledger.ledgerId, {
      info: ledger,
      hash,
      grants: [],
      resets: [],
      highWatermark: null,
      usage: new Map(),
      timeline: [],
      snapshots: [],
      holds: new Map(),
    });
    return { status: "created" as const, ledger };
  }

  async getLedger(ledgerId: string, signal?: AbortSignal): Promise<CreditLedgerInfo | undefined> {
    signal?.throwIfAborted();
    return this.#ledgers.get(parseLedgerIdArg(ledgerId, "CreditLedger.getLedger"))?.info;
  }

  async listLedgers(query: CreditLedgerListQuery, signal?: AbortSignal): Promise<CreditLedgerPage> {
    signal?.throwIfAborted();
    const { subject, limit, after } = parseCreditLedgerListQuery(query);
    const matching: CreditLedgerInfo[] = [];
    for (const { info } of this.#ledgers.values()) {
      if (after !== undefined && compareCodePoints(info.ledgerId, after) <= 0) continue;
      if (subjectMatches(info.subject, subject)) matching.push(info);
    }
    matching.sort((a, b) => compareCodePoints(a.ledgerId, b.ledgerId));
    return ledgerListPage(matching.slice(0, limit + 1), limit);
  }

  async grant(input: CreditGrantInput, signal?: AbortSignal) {
    signal?.throwIfAborted();
    const { request, hash } = parseCreditGrant(input);
    const state = this.#ledger(request.ledgerId, "CreditGrant");
    if (!this.#features.has(request.featureId)) throw unknownId("CreditGrant", "featureId", "feature");
    const existing = this.#grants.get(request.grantId);
    if (existing !== undefined) {
      assertSameBody(request.grantId, existing.hash, hash);
      return { status: "already_exists" as const, grant: { ...existing.grant } };
    }
    assertNotBeforeHighWatermark(
      request.ledgerId,
      state.highWatermark,
      Date.parse(request.effectiveAt),
      "effectiveAt",
    );
    const grant = buildGrant(request, state.info, state.grants.length + 1);
    dropSnapshotsAfter(state.snapshots, Date.parse(grant.effectiveAt));
    state.grants.push(grant);
    this.#grants.set(grant.grantId, { ledgerId: request.ledgerId, hash, grant });
    return { status: "granted" as const, grant: { ...grant } };
  }

  async listGrants(ledgerId: string, signal?: AbortSignal): Promise<CreditGrant[]> {
    signal?.throwIfAborted();
    const state = this.#ledger(
      parseLedgerIdArg(ledgerId, "CreditLedger.listGrants"),
      "CreditLedger.listGrants",
    );
    return state.grants.map((g) => ({ ...g }));
  }

  async voidGrant(input: CreditVoidInput, signal?: AbortSignal) {
    signal?.throwIfAborted();
    const { ledgerId, grantId, at } = parseCreditVoid(input);
    const state = this.#ledger(ledgerId, "CreditVoid");
    const entry = this.#grants.get(grantId);
    if (entry === undefined || entry.ledgerId !== ledgerId)
      throw unknownId("CreditVoid", "grantId", "grant in this ledger");
    const grant = entry.grant;
    if (grant.voidedAt !== undefined) {
      assertSameBody(grantId, voidHash(grant.voidedAt), voidHash(at));
      return { status: "already_voided" as const, grant: { ...grant } };
    }
    assertNotBeforeHighWatermark(ledgerId, state.highWatermark, Date.parse(at), "at");
    dropSnapshotsAfter(state.snapshots, voidChangesFrom(Date.parse(grant.effectiveAt), Date.parse(at)));
    grant.voidedAt = at;
    return { status: "voided" as const, grant: { ...grant } };
  }

  async reset(input: CreditResetInput, signal?: AbortSignal) {
    signal?.throwIfAborted();
    const { ledgerId, at } = parseCreditReset(input);
    const state = this.#ledger(ledgerId, "CreditReset");
    const atMs = Date.parse(at);
    if (state.highWatermark === atMs) return { status: "already_reset" as const, at };
    assertNotBeforeHighWatermark(ledgerId, state.highWatermark, atMs, "at");
    dropSnapshotsAfter(state.snapshots, atMs);
    state.resets.push(atMs);
    state.highWatermark = atMs;
    return { status: "reset" as const, at };
  }

  async recordUsage(input: CreditUsageInput, signal?: AbortSignal): Promise<CreditUsageResult> {
    signal?.throwIfAborted();
    const parsed = parseCreditUsage(input);
    const state = this.#ledger(parsed.usage.ledgerId, "CreditUsage");
    const feature = this.#features.get(parsed.usage.featureId);
    if (feature === undefined) throw unknownId("CreditUsage", "featureId", "feature");
    assertUsageAmountFits(feature.feature, parsed.usage.amount, "CreditUsage");
    return this.#burn(state, parsed);
  }

  async reserve(input: CreditReserveInput, signal?: AbortSignal): Promise<CreditReserveResult> {
    signal?.throwIfAborted();
    const { request, hash, amount } = parseCreditReserve(input);
    const state = this.#ledger(request.ledgerId, "CreditReserve");
    if (!this.#features.has(request.featureId)) throw unknownId("CreditReserve", "featureId", "feature");
    const now = this.#clock();
    this.#purger.tick(now);
    const existing = this.#holds.get(request.holdId);
    if (existing !== undefined) {
      assertSameBody(request.holdId, existing.hash, hash);
      // A retry: granted once, held once.
      const available = heldAvailability(
        this.#facts(state, now),
        this.#active(state, now),
        request.featureId,
        now,
      );
      return { granted: true, holdId: request.holdId, available };
    }
    const hold: HoldFact = { holdId: request.holdId, featureId: request.featureId, amount };
    const check = holdCheck(this.#facts(state, now), this.#active(state, now), hold, now);
    if (!check.allowed) {
      return {
        granted: false,
        holdId: request.holdId,
        reason: "insufficient_credits",
        available: check.available,
      };
    }
    const held: HoldState = {
      holdId: request.holdId,
      ledgerId: request.ledgerId,
      featureId: request.featureId,
      amount,
      hash,
      expiresMs: now + request.ttlMs,
      status: "held",
    };
    this.#holds.set(held.holdId, held);
    state.holds.set(held.holdId, held);
    return { granted: true, holdId: request.holdId, available: check.available };
  }

  async commitHold(input: CreditCommitInput, signal?: AbortSignal): Promise<CreditCommitResult> {
    signal?.throwIfAborted();
    const { commit, hash, usage, assertHoldFeature, assertHoldLedger } = parseCreditCommit(input);
    const hold = this.#hold(commit.holdId, "CreditCommit");
    assertHoldFeature(hold.featureId);
    assertHoldLedger(hold.ledgerId);
    const state = this.#ledger(hold.ledgerId, "CreditCommit");
    const done = (r: CreditUsageResult): CreditCommitResult => {
      if (r.status === "denied") throw new Error("a commit is never enforced");
      return {
        status: "committed",
        holdId: hold.holdId,
        eventId: r.eventId,
        burned: r.burned,
        overage: r.overage,
      };
    };
    if (hold.status === "voided")
      throw new HoldAlreadyResolvedError({ holdId: hold.holdId, state: "voided" });
    if (hold.status === "committed") {
      assertSameBody(hold.holdId, hold.commitHash as string, hash);
      const eventId = hold.eventId as string;
      const at = state.usage.get(usageKey(hold.featureId, eventId))?.fact.atMs ?? Number.NEGATIVE_INFINITY;
      const allocation = allocationOf(this.#facts(state, at, at), hold.featureId, eventId);
      return { status: "committed", holdId: hold.holdId, eventId: hold.eventId as string, ...allocation };
    }
    // Held, or expired unresolved: the call happened, so its usage is recorded in full.
    const feature = this.#features.get(hold.featureId);
    if (feature !== undefined) assertUsageAmountFits(feature.feature, commit.amount, "CreditCommit");
    const result = done(this.#burn(state, usage(hold.ledgerId, hold.featureId)));
    hold.status = "committed";
    hold.resolvedMs = this.#clock();
    hold.commitHash = hash;
    hold.eventId = commit.eventId;
    state.holds.delete(hold.holdId);
    return result;
  }

  async voidHold(holdId: string, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const hold = this.#hold(holdId, "CreditLedger.voidHold");
    if (hold.status === "committed") {
      throw new HoldAlreadyResolvedError({ holdId: hold.holdId, state: "committed" });
    }
    // A void after expiry changes nothing: a late commit of the hold still records its usage.
    const now = this.#clock();
    if (hold.status === "held" && hold.expiresMs > now) {
      hold.status = "voided";
      hold.resolvedMs = now;
      this.#ledgers.get(hold.ledgerId)?.holds.delete(hold.holdId);
    }
  }

  /** Records a parsed usage event (see the contract): the shared path of usage and commits. */
  #burn(state: LedgerState, parsed: ReturnType<typeof parseCreditUsage>): CreditUsageResult {
    const { usage, hash, fact } = parsed;
    const key = usageKey(usage.featureId, usage.eventId);
    const stored = state.usage.get(key);
    const decision = usageDecision(stored, { eventId: usage.eventId, hash, version: usage.version });
    if (decision !== "write") {
      const at = (stored as { fact: UsageFact }).fact.atMs;
      const allocation = allocationOf(this.#facts(state, at, at), usage.featureId, usage.eventId);
      return { status: decision, eventId: usage.eventId, ...allocation };
    }
    // The earliest time this write changes: snapshots after it no longer hold.
    const changesFrom = Math.min(fact.atMs, stored?.fact.atMs ?? fact.atMs);
    if (usage.enforce) {
      const now = this.#clock();
      const holds = this.#active(state, now);
      const bound = holds.length === 0 ? changesFrom : Math.min(changesFrom, now);
      const check = enforcementCheck(withHolds(this.#facts(state, bound), holds, now), fact);
      if (!check.allowed) {
        return {
          status: "denied",
          eventId: usage.eventId,
          reason: "insufficient_credits",
          available: check.available,
        };
      }
    }
    dropSnapshotsAfter(state.snapshots, changesFrom);
    if (stored !== undefined) removeFromTimeline(state.timeline, stored.fact);
    insertIntoTimeline(state.timeline, fact);
    state.usage.set(key, { fact, hash, version: usage.version });
    const taken: LedgerSnapshot[] = [];
    const capture: SnapshotCapture | undefined =
      this.#snapshotEvery === 0
        ? undefined
        : { every: this.#snapshotEvery, onSnapshot: (snapshot) => taken.push(snapshot) };
    const allocation = allocationOf(this.#facts(state, changesFrom), usage.featureId, usage.eventId, capture);
    this.#storeSnapshots(state, taken);
    return { status: "recorded", eventId: usage.eventId, ...allocation };
  }

  /**
   * Keeps the snapshots a write's replay took (every one after the last stored), thinned with
   * the newest stored ones (a bounded window: see `credits/snapshots.ts`).
   */
  #storeSnapshots(state: LedgerState, taken: readonly LedgerSnapshot[]): void {
    if (taken.length === 0) return;
    const rule = this.#thinning;
    if (rule === null) {
      for (const s of taken) state.snapshots.push(s);
      return;
    }
    const { snapshots } = state;
    const from = Math.max(0, snapshots.length - (rule.keepNewest + THINNING_WINDOW + 1));
    const { store, drop } = thinAfterWrite(snapshots.slice(from), taken, rule);
    if (drop.length > 0) {
      const dropped = new Set(drop);
      const kept = snapshots.slice(from).filter((s) => !dropped.has(s.position));
      snapshots.length = from;
      for (const s of kept) snapshots.push(s);
    }
    for (const s of store) snapshots.push(s);
  }

  /** The ledger's unexpired, unresolved holds at `now`. */
  #active(state: LedgerState, now: number): HoldFact[] {
    const active: HoldFact[] = [];
    for (const hold of state.holds.values()) {
      if (hold.expiresMs > now) active.push(hold);
      else state.holds.delete(hold.holdId); // expired: stays "held" in #holds for a late commit
    }
    return active;
  }

  /**
   * Purges now every hold resolved at least `holdRetentionMs` ago (committed, voided, or
   * expired unresolved), instead of waiting for the lazy pass; returns how many.
   *
   * @example
   * await credits.purgeResolvedHolds(); // { purged: 0 }
   */
  async purgeResolvedHolds(signal?: AbortSignal): Promise<{ purged: number }> {
    signal?.throwIfAborted();
    return { purged: this.#purger.purge(this.#clock()) };
  }

  /** How many hold records are kept now, resolved ones within their retention included (monitoring, tests). */
  get storedHolds(): number {
    return this.#holds.size;
  }

  #hold(holdId: unknown, subject: string): HoldState {
    const hold = this.#holds.get(parseHoldIdArg(holdId, subject));
    if (hold === undefined) throw unknownId(subject, "holdId", "hold");
    return hold;
  }

  async balance(ledgerId: string, at: string, signal?: AbortSignal): Promise<CreditBalance> {
    signal?.throwIfAborted();
    const id = parseLedgerIdArg(ledgerId, "CreditLedger.balance");
    const atMs = parseTimeArg(at, "CreditLedger.balance", "at");
    const state = this.#ledger(id, "CreditLedger.balance");
    return balanceAt(id, this.#facts(state, atMs + 1, atMs), atMs, state.grants);
  }

  async history(query: CreditHistoryQuery, signal?: AbortSignal): Promise<CreditHistoryPage> {
    signal?.throwIfAborted();
    const q = parseCreditHistoryQuery(query);
    const state = this.#ledger(q.ledgerId, "CreditHistoryQuery");
    return historyPage(this.#facts(state, q.fromMs, q.toMs), q.fromMs, q.toMs, q.limit, q.cursor);
  }

  async highWatermark(ledgerId: string, signal?: AbortSignal): Promise<string | undefined> {
    signal?.throwIfAborted();
    const state = this.#ledger(
      parseLedgerIdArg(ledgerId, "CreditLedger.highWatermark"),
      "CreditLedger.highWatermark",
    );
    return state.highWatermark === null ? undefined : new Date(state.highWatermark).toISOString();
  }

  #ledger(ledgerId: string, subject: string): LedgerState {
    const state = this.#ledgers.get(ledgerId);
    if (state === undefined) throw unknownId(subject, "ledgerId", "ledger");
    return state;
  }

  /**
   * The facts a question needs whose own events are at or after `bound`: the latest snapshot at
   * or before it, and the usage from its position on (all of it without one), up to `upTo`
   * inclusive when the question looks no further (a balance, an allocation, a history window).
   */
  #facts(state: LedgerState, bound: number, upTo = Number.POSITIVE_INFINITY): LedgerFacts {
    const grants = state.grants.map(grantFact);
    const from = snapshotAtOrBefore(state.snapshots, bound);
    const { timeline } = state;
    const start = from === undefined ? 0 : firstAtOrAfter(timeline, from.position);
    const end = upTo === Number.POSITIVE_INFINITY ? timeline.length : firstAtOrAfter(timeline, upTo + 1);
    const usage = start === 0 && end === timeline.length ? timeline : timeline.slice(start, end);
    return from === undefined
      ? { grants, resets: state.resets, usage }
      : { grants, resets: state.resets, usage, from };
  }
}

/** The index of the first fact with `atMs ≥ at` in a timeline sorted by time. */
function firstAtOrAfter(timeline: readonly UsageFact[], at: number): number {
  let lo = 0;
  let hi = timeline.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((timeline[mid] as UsageFact).atMs < at) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Inserts after every fact at the same time (appends when usage arrives in time order). */
function insertIntoTimeline(timeline: UsageFact[], fact: UsageFact): void {
  const last = timeline.at(-1);
  if (last === undefined || last.atMs <= fact.atMs) {
    timeline.push(fact);
    return;
  }
  timeline.splice(firstAtOrAfter(timeline, fact.atMs + 1), 0, fact);
}

function removeFromTimeline(timeline: UsageFact[], fact: UsageFact): void {
  for (let i = firstAtOrAfter(timeline, fact.atMs); i < timeline.length; i++) {
    if (timeline[i] === fact) {
      timeline.splice(i, 1);
      return;
    }
  }
}
