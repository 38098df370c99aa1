import type {
  CreditBalance,
  CreditGrant,
  CreditHistoryPage,
  CreditLedger,
  CreditUsageResult,
} from "../credits/contract.js";
import {
  allocationOf,
  balanceAt,
  enforcementCheck,
  grantFact,
  historyPage,
  type LedgerFacts,
  type UsageFact,
} from "../credits/engine.js";
import {
  assertNotBeforeHighWatermark,
  assertSameBody,
  buildGrant,
  parseCreditFeature,
  parseCreditGrant,
  parseCreditHistoryQuery,
  parseCreditLedger,
  parseCreditReset,
  parseCreditUsage,
  parseCreditVoid,
  parseFeatureIdArg,
  parseLedgerIdArg,
  parseTimeArg,
  unknownId,
  voidHash,
} from "../credits/requests.js";
import type {
  CreditFeature,
  CreditFeatureInput,
  CreditGrantInput,
  CreditHistoryQuery,
  CreditLedgerInfo,
  CreditLedgerInput,
  CreditResetInput,
  CreditUsageInput,
  CreditVoidInput,
} from "../credits/schemas.js";

interface LedgerState {
  readonly info: CreditLedgerInfo;
  readonly hash: string;
  /** In creation order. */
  readonly grants: CreditGrant[];
  readonly resets: number[];
  highWatermark: number | null;
  readonly usage: Map<string, { fact: UsageFact; hash: string }>;
  readonly usageFacts: UsageFact[];
}

const usageKey = (featureId: string, eventId: string) => `${featureId}\u0000${eventId}`;

/**
 * The embedded {@link CreditLedger}: prepaid credits in process memory, with exactly the
 * contract's semantics (balances replayed from the stored facts by core's credit engine, the
 * same engine every backend uses).
 *
 * Every method is a synchronous critical section behind an async signature (no `await`
 * between read and write), so concurrent enforced usage never overdraws a ledger.
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
      usageFacts: [],
    });
    return { status: "created" as const, ledger };
  }

  async getLedger(ledgerId: string, signal?: AbortSignal): Promise<CreditLedgerInfo | undefined> {
    signal?.throwIfAborted();
    return this.#ledgers.get(parseLedgerIdArg(ledgerId, "CreditLedger.getLedger"))?.info;
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
    state.resets.push(atMs);
    state.highWatermark = atMs;
    return { status: "reset" as const, at };
  }

  async recordUsage(input: CreditUsageInput, signal?: AbortSignal): Promise<CreditUsageResult> {
    signal?.throwIfAborted();
    const { usage, hash, fact } = parseCreditUsage(input);
    const state = this.#ledger(usage.ledgerId, "CreditUsage");
    if (!this.#features.has(usage.featureId)) throw unknownId("CreditUsage", "featureId", "feature");
    const key = usageKey(usage.featureId, usage.eventId);
    const existing = state.usage.get(key);
    if (existing !== undefined) {
      assertSameBody(usage.eventId, existing.hash, hash);
      const allocation = allocationOf(this.#facts(state), usage.featureId, usage.eventId);
      return { status: "duplicate", eventId: usage.eventId, ...allocation };
    }
    if (usage.enforce) {
      const check = enforcementCheck(this.#facts(state), fact);
      if (!check.allowed) {
        return {
          status: "denied",
          eventId: usage.eventId,
          reason: "insufficient_credits",
          available: check.available,
        };
      }
    }
    state.usage.set(key, { fact, hash });
    state.usageFacts.push(fact);
    const allocation = allocationOf(this.#facts(state), usage.featureId, usage.eventId);
    return { status: "recorded", eventId: usage.eventId, ...allocation };
  }

  async balance(ledgerId: string, at: string, signal?: AbortSignal): Promise<CreditBalance> {
    signal?.throwIfAborted();
    const id = parseLedgerIdArg(ledgerId, "CreditLedger.balance");
    const atMs = parseTimeArg(at, "CreditLedger.balance", "at");
    const state = this.#ledger(id, "CreditLedger.balance");
    return balanceAt(id, this.#facts(state), atMs, state.grants);
  }

  async history(query: CreditHistoryQuery, signal?: AbortSignal): Promise<CreditHistoryPage> {
    signal?.throwIfAborted();
    const q = parseCreditHistoryQuery(query);
    const state = this.#ledger(q.ledgerId, "CreditHistoryQuery");
    return historyPage(this.#facts(state), q.fromMs, q.toMs, q.limit, q.cursor);
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

  #facts(state: LedgerState): LedgerFacts {
    return { grants: state.grants.map(grantFact), resets: state.resets, usage: state.usageFacts };
  }
}
