import { formatFixed, parseFixed, pow10 } from "../money/decimal.js";
import type {
  CreditAllocation,
  CreditBalance,
  CreditFeatureBalance,
  CreditGrant,
  CreditGrantBalance,
  CreditHistoryEntry,
  CreditHistoryPage,
} from "./contract.js";

/**
 * The credit engine: balances, allocations and history as a pure function of a ledger's
 * stored facts (grants with their void times, resets, usage), by replaying them in time
 * order. Every backend stores the facts and asks this module for the numbers, so memory and
 * Postgres agree to the last digit. Amounts are bigint units at {@link CREDIT_SCALE} decimal
 * places: exact, no float anywhere.
 *
 * **Refunds** (negative usage, money features only: a volume period tier gives the event that
 * crosses a boundary a negative total, its reversal line repricing the period's earlier usage
 * lower). Replayed in time order like any usage, a refund of `r` undoes the feature's most
 * recent allocations first (LIFO), until `r` is used up:
 * - an earlier event's uncovered overage: the debt shrinks;
 * - a burn of grant `g`: `g.burned` falls by the part undone, which goes back to `g.balance`
 *   when `g` is still in effect and no reset happened since that burn; otherwise it counts
 *   where it would have gone had the burn been smaller: `g.voided` for a voided grant,
 *   `g.expired` for an expired grant or a burn from before a reset (a closed period is not
 *   reopened, whatever its rollover);
 * - what remains once nothing earlier is left to undo is owed back: the feature's `overage`
 *   goes negative, and the next usage of the feature takes it first (before any grant burns).
 * So each grant keeps `granted = balance + burned + expired + voided` (all ≥ 0), each feature
 * `usage = burned + overage`, and the credits burned over a period equal the sum of the rated
 * totals whenever the grants covered them. A refund never adds overage, so enforcement always
 * allows it.
 *
 * @packageDocumentation
 */

/** Fractional digits of the engine's fixed-point units (covers every accepted input exactly). */
export const CREDIT_SCALE = 40;

/** A decimal string → units at {@link CREDIT_SCALE}. The shape is validated before. */
export function toCreditUnits(text: string): bigint {
  const { units, scale } = parseFixed(text);
  return units * pow10(CREDIT_SCALE - scale);
}

/** Units at {@link CREDIT_SCALE} → a canonical decimal string. */
export function fromCreditUnits(units: bigint): string {
  return formatFixed(units, CREDIT_SCALE);
}

/** A grant as the engine needs it. Times are epoch milliseconds. */
export interface GrantFact {
  grantId: string;
  featureId: string;
  amount: bigint;
  priority: number;
  effectiveMs: number;
  expiresMs: number | null;
  rollover: { type: "ORIGINAL_AMOUNT" | "REMAINING_AMOUNT"; max: bigint | null } | null;
  voidedMs: number | null;
  sequence: number;
}

/** One recorded usage event; `amount` < 0 is a refund (money features only). */
export interface UsageFact {
  featureId: string;
  eventId: string;
  amount: bigint;
  atMs: number;
}

/**
 * Everything a ledger's numbers depend on. With `from`, the replay starts from that snapshot
 * instead of the ledger's beginning: `usage` then needs only the events at or after
 * `from.position` (earlier ones are ignored), and `grants` and `resets` are all of them.
 */
export interface LedgerFacts {
  grants: readonly GrantFact[];
  /** Reset times, any order. */
  resets: readonly number[];
  usage: readonly UsageFact[];
  /** A snapshot still valid for these facts (see `credits/snapshots.ts`). */
  from?: LedgerSnapshot;
}

/**
 * The replay's state after every event with a time before `position` (epoch ms): each grant's
 * account, each feature's usage with the allocations a refund may still undo, and the number of
 * resets so far. A pure function of the facts before `position`, so it stays valid until one of
 * them changes (late usage, a correction, a grant, a void or a reset dated before `position`).
 * Amounts are bigint units at {@link CREDIT_SCALE}.
 */
export interface LedgerSnapshot {
  position: number;
  epoch: number;
  /**
   * Usage events replayed before `position` since the ledger's beginning (what thinning buckets
   * snapshots by, see `credits/snapshots.ts`); absent on snapshots stored before it was kept.
   */
  count?: number;
  grants: Array<{
    grantId: string;
    started: boolean;
    ended: boolean;
    endedBy: "expired" | "voided" | null;
    granted: bigint;
    balance: bigint;
    burned: bigint;
    expired: bigint;
    voided: bigint;
  }>;
  features: Array<{
    featureId: string;
    usage: bigint;
    overage: bigint;
    uncovered: bigint;
    /** Oldest first; `grantId` null for overage. */
    stack: Array<{
      kind: "burn" | "uncovered" | "offset";
      grantId: string | null;
      epoch: number;
      amount: bigint;
    }>;
  }>;
}

/** A stored grant → its fact. */
export function grantFact(grant: CreditGrant): GrantFact {
  return {
    grantId: grant.grantId,
    featureId: grant.featureId,
    amount: toCreditUnits(grant.amount),
    priority: grant.priority,
    effectiveMs: Date.parse(grant.effectiveAt),
    expiresMs: grant.expiresAt === undefined ? null : Date.parse(grant.expiresAt),
    rollover:
      grant.rollover === undefined
        ? null
        : {
            type: grant.rollover.type,
            max: grant.rollover.maxAmount === undefined ? null : toCreditUnits(grant.rollover.maxAmount),
          },
    voidedMs: grant.voidedAt === undefined ? null : Date.parse(grant.voidedAt),
    sequence: grant.sequence,
  };
}

// Event ranks at one instant: expiries, voids, the reset, grant starts, usage.
const EXPIRE = 0;
const VOID = 1;
const RESET = 2;
const START = 3;
const USAGE = 4;

interface ReplayEvent {
  at: number;
  rank: number;
  /** Tie-breaks within a rank: grant sequence (then 0 start / 1 void-at-start) or usage key. */
  seq: number;
  sub: number;
  key: string;
  grant?: GrantFact;
  usage?: UsageFact;
}

interface GrantAccount {
  fact: GrantFact;
  started: boolean;
  ended: boolean;
  /** How it ended: where credit a refund returns after its end goes. */
  endedBy: "expired" | "voided" | null;
  granted: bigint;
  balance: bigint;
  burned: bigint;
  expired: bigint;
  voided: bigint;
}

interface FeatureUsage {
  usage: bigint;
  /** Signed: below 0 when refunds exceeded everything allocated before them (owed back). */
  overage: bigint;
  /** The overage no grant covered and no refund undid yet (≥ 0): what enforcement guards. */
  uncovered: bigint;
  /** Allocations a refund may undo, oldest first. */
  stack: Allocation[];
}

/**
 * One allocated part of a usage event: burned from a grant (in the reset period `epoch`), or
 * put to overage, either `uncovered` (no grant left) or an `offset` against an earlier refund
 * owed back. `amount` is what a refund can still undo of it.
 */
interface Allocation {
  kind: "burn" | "uncovered" | "offset";
  account: GrantAccount | null;
  epoch: number;
  amount: bigint;
}

/** History entries with their sort key. */
interface KeyedEntry {
  at: number;
  rank: number; // 1 VOID, 2 RESET, 3 GRANT, 4 GRANT_USAGE
  seq: number;
  entry: CreditHistoryEntry;
}

interface ReplayOptions {
  /** Replay events with a time < until (or ≤ until when inclusive). */
  until: number;
  inclusive: boolean;
  /** Report where this usage event went. */
  track?: { featureId: string; eventId: string };
  /** Collect history entries for `[from, until)`. */
  history?: { from: number };
  /** Stop right after the tracked event (its allocation depends only on what came before). */
  stopAtTracked?: boolean;
  /** Snapshots to take on the way (a replay of stored facts only, to the end). */
  capture?: SnapshotCapture;
}

/**
 * Takes a snapshot before a usage event at a new millisecond once `every` usage events were
 * replayed since the last one (or since the replay's start).
 */
export interface SnapshotCapture {
  every: number;
  onSnapshot: (snapshot: LedgerSnapshot) => void;
}

interface ReplayResult {
  grants: GrantAccount[];
  features: Map<string, FeatureUsage>;
  tracked?: { burned: Array<{ grantId: string; amount: bigint }>; overage: bigint };
  entries: KeyedEntry[];
}

const iso = (ms: number) => new Date(ms).toISOString();

function compareEvents(a: ReplayEvent, b: ReplayEvent): number {
  if (a.at !== b.at) return a.at - b.at;
  if (a.rank !== b.rank) return a.rank - b.rank;
  if (a.seq !== b.seq) return a.seq - b.seq;
  if (a.sub !== b.sub) return a.sub - b.sub;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/** Burn-down order: priority, soonest expiry (none last), creation. */
function compareBurnOrder(a: GrantAccount, b: GrantAccount): number {
  if (a.fact.priority !== b.fact.priority) return a.fact.priority - b.fact.priority;
  const ea = a.fact.expiresMs ?? Number.POSITIVE_INFINITY;
  const eb = b.fact.expiresMs ?? Number.POSITIVE_INFINITY;
  if (ea !== eb) return ea < eb ? -1 : 1;
  return a.fact.sequence - b.fact.sequence;
}

function events(facts: LedgerFacts): ReplayEvent[] {
  const list = allEvents(facts);
  const from = facts.from?.position;
  return (from === undefined ? list : list.filter((e) => e.at >= from)).sort(compareEvents);
}

function allEvents(facts: LedgerFacts): ReplayEvent[] {
  const list: ReplayEvent[] = [];
  for (const g of facts.grants) {
    list.push({ at: g.effectiveMs, rank: START, seq: g.sequence, sub: 0, key: "", grant: g });
    if (g.expiresMs !== null)
      list.push({ at: g.expiresMs, rank: EXPIRE, seq: g.sequence, sub: 0, key: "", grant: g });
    if (g.voidedMs !== null) {
      // Voided at or before it starts: the whole amount is voided the moment it starts.
      if (g.voidedMs <= g.effectiveMs) {
        list.push({ at: g.effectiveMs, rank: START, seq: g.sequence, sub: 1, key: "", grant: g });
      } else {
        list.push({ at: g.voidedMs, rank: VOID, seq: g.sequence, sub: 0, key: "", grant: g });
      }
    }
  }
  for (const r of new Set(facts.resets)) list.push({ at: r, rank: RESET, seq: 0, sub: 0, key: "" });
  for (const u of facts.usage) {
    list.push({ at: u.atMs, rank: USAGE, seq: 0, sub: 0, key: `${u.featureId}\u0000${u.eventId}`, usage: u });
  }
  return list;
}

/** Pushes an allocation, merged into the top one when it is the same kind, grant and period. */
function pushAllocation(f: FeatureUsage, allocation: Allocation): void {
  const top = f.stack.at(-1);
  // Undoing a merged allocation LIFO does exactly what undoing its parts would: same effects.
  if (
    top !== undefined &&
    top.kind === allocation.kind &&
    top.account === allocation.account &&
    top.epoch === allocation.epoch
  ) {
    top.amount += allocation.amount;
    return;
  }
  f.stack.push(allocation);
}

function newAccount(fact: GrantFact): GrantAccount {
  return {
    fact,
    started: false,
    ended: false,
    endedBy: null,
    granted: 0n,
    balance: 0n,
    burned: 0n,
    expired: 0n,
    voided: 0n,
  };
}

/** The replay state as a snapshot at `position` (a copy: the replay goes on mutating its own). */
function snapshotOf(
  position: number,
  epoch: number,
  count: number | undefined,
  ordered: readonly GrantAccount[],
  features: Map<string, FeatureUsage>,
): LedgerSnapshot {
  return {
    position,
    epoch,
    ...(count === undefined ? {} : { count }),
    grants: ordered
      .filter((a) => a.started)
      .map((a) => ({
        grantId: a.fact.grantId,
        started: a.started,
        ended: a.ended,
        endedBy: a.endedBy,
        granted: a.granted,
        balance: a.balance,
        burned: a.burned,
        expired: a.expired,
        voided: a.voided,
      })),
    features: [...features].map(([featureId, f]) => ({
      featureId,
      usage: f.usage,
      overage: f.overage,
      uncovered: f.uncovered,
      stack: f.stack.map((x) => ({
        kind: x.kind,
        grantId: x.account === null ? null : x.account.fact.grantId,
        epoch: x.epoch,
        amount: x.amount,
      })),
    })),
  };
}

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

type Allocated = NonNullable<ReplayResult["tracked"]>;

/**
 * Allocates usage of `amount` ≥ 0: first against a refund owed back (negative overage), then
 * down the feature's grants in burn-down order; the rest is uncovered overage.
 */
function burn(
  f: FeatureUsage,
  u: UsageFact,
  ordered: readonly GrantAccount[],
  epoch: number,
  onBurn: (a: GrantAccount, amount: bigint) => void,
): Allocated {
  let rest = u.amount;
  const offset = f.overage < 0n ? min(rest, -f.overage) : 0n;
  if (offset > 0n) {
    rest -= offset;
    pushAllocation(f, { kind: "offset", account: null, epoch, amount: offset });
  }
  const burned: Array<{ grantId: string; amount: bigint }> = [];
  if (rest > 0n) {
    const candidates = ordered
      .filter((a) => a.started && !a.ended && a.balance > 0n && a.fact.featureId === u.featureId)
      .sort(compareBurnOrder);
    for (const a of candidates) {
      if (rest === 0n) break;
      const take = min(rest, a.balance);
      a.balance -= take;
      a.burned += take;
      rest -= take;
      burned.push({ grantId: a.fact.grantId, amount: take });
      pushAllocation(f, { kind: "burn", account: a, epoch, amount: take });
      onBurn(a, take);
    }
  }
  if (rest > 0n) {
    f.uncovered += rest;
    pushAllocation(f, { kind: "uncovered", account: null, epoch, amount: rest });
  }
  f.overage += offset + rest;
  return { burned, overage: offset + rest };
}

/**
 * A refund of `amount` > 0: undoes the feature's most recent allocations first (see the
 * module's TSDoc); what nothing earlier can take back is owed (negative overage). The
 * allocation it reports is negative: per grant, the credit returned; overage, the overage
 * undone plus what is owed.
 */
function refund(
  f: FeatureUsage,
  amount: bigint,
  epoch: number,
  onRefund: (a: GrantAccount, amount: bigint) => void,
): Allocated {
  let rest = amount;
  let overage = 0n;
  const returned = new Map<GrantAccount, bigint>(); // insertion order: the order undone
  while (rest > 0n) {
    const top = f.stack.at(-1);
    if (top === undefined) break;
    const take = min(rest, top.amount);
    top.amount -= take;
    rest -= take;
    if (top.amount === 0n) f.stack.pop();
    const a = top.account;
    if (a === null) {
      if (top.kind === "uncovered") f.uncovered -= take;
      overage += take;
      continue;
    }
    a.burned -= take;
    if (a.endedBy === "voided") a.voided += take;
    else if (a.ended || top.epoch !== epoch) a.expired += take;
    else a.balance += take;
    returned.set(a, (returned.get(a) ?? 0n) + take);
    onRefund(a, take);
  }
  overage += rest; // owed back: taken first by the feature's next usage
  f.overage -= overage;
  return {
    burned: [...returned].map(([a, take]) => ({ grantId: a.fact.grantId, amount: -take })),
    overage: -overage,
  };
}

/** Replays a ledger's facts in time order. */
export function replay(facts: LedgerFacts, options: ReplayOptions): ReplayResult {
  const accounts = new Map<string, GrantAccount>();
  const ordered: GrantAccount[] = [];
  for (const fact of [...facts.grants].sort((a, b) => a.sequence - b.sequence)) {
    const account = newAccount(fact);
    accounts.set(fact.grantId, account);
    ordered.push(account);
  }
  const features = new Map<string, FeatureUsage>();
  const entries: KeyedEntry[] = [];
  const history = options.history;
  let tracked: ReplayResult["tracked"];
  /** Resets replayed so far: a burn's period, which a refund does not reopen. */
  let epoch = 0;
  const from = facts.from;
  if (from !== undefined) {
    epoch = from.epoch;
    for (const saved of from.grants) {
      const a = accounts.get(saved.grantId);
      if (a === undefined)
        throw new Error(`credit snapshot names grant ${saved.grantId}, which is not stored`);
      a.started = saved.started;
      a.ended = saved.ended;
      a.endedBy = saved.endedBy;
      a.granted = saved.granted;
      a.balance = saved.balance;
      a.burned = saved.burned;
      a.expired = saved.expired;
      a.voided = saved.voided;
    }
    for (const saved of from.features) {
      features.set(saved.featureId, {
        usage: saved.usage,
        overage: saved.overage,
        uncovered: saved.uncovered,
        stack: saved.stack.map((x) => {
          const account = x.grantId === null ? null : (accounts.get(x.grantId) ?? null);
          if (x.grantId !== null && account === null)
            throw new Error(`credit snapshot names grant ${x.grantId}, which is not stored`);
          return { kind: x.kind, account, epoch: x.epoch, amount: x.amount };
        }),
      });
    }
  }
  const capture = options.capture;
  let capturedAt = from?.position ?? Number.NEGATIVE_INFINITY;
  let sinceCapture = 0;
  /** Usage events replayed before the current one since the ledger's start (unknown: undefined). */
  let count = from === undefined ? 0 : from.count;
  let previousAt = Number.NEGATIVE_INFINITY;

  // GRANT_USAGE: what each grant burned since the last boundary.
  let periodStart = Number.NEGATIVE_INFINITY;
  const periodBurn = new Map<GrantAccount, bigint>();
  const flush = (to: number) => {
    if (history === undefined || to <= periodStart) return;
    if (periodStart >= history.from) {
      const burned = [...periodBurn.entries()]
        .filter(([, amount]) => amount !== 0n) // refunds may net a period's burns to nothing
        .sort((a, b) => a[0].fact.sequence - b[0].fact.sequence);
      for (const [account, amount] of burned) {
        entries.push({
          at: periodStart,
          rank: 4,
          seq: account.fact.sequence,
          entry: {
            type: "GRANT_USAGE",
            at: iso(periodStart),
            grantId: account.fact.grantId,
            featureId: account.fact.featureId,
            amount: fromCreditUnits(amount),
            period: { from: iso(periodStart), to: iso(to) },
          },
        });
      }
    }
    periodBurn.clear();
    periodStart = to;
  };
  const inWindow = (at: number) => history !== undefined && at >= history.from;

  if (history !== undefined && facts.from !== undefined && facts.from.position > history.from) {
    throw new Error("a history replay needs a snapshot at or before the window's start");
  }
  // A snapshot answers only for times it covers entirely (every event up to `until`).
  if (
    facts.from !== undefined &&
    (options.inclusive ? options.until + 1 : options.until) < facts.from.position
  ) {
    throw new Error("a replay from a snapshot cannot stop before the snapshot's position");
  }
  const list = events(facts);
  if (history !== undefined) {
    // The window's start is a period boundary.
    list.push({ at: history.from, rank: -1, seq: 0, sub: 0, key: "" });
    list.sort(compareEvents);
  }
  for (const event of list) {
    if (options.inclusive ? event.at > options.until : event.at >= options.until) break;
    if (options.stopAtTracked === true && tracked !== undefined) break;
    if (capture !== undefined && event.rank === USAGE) {
      // Every event before this millisecond is replayed, none at it: a snapshot at event.at.
      if (sinceCapture >= capture.every && event.at > previousAt && event.at > capturedAt) {
        capture.onSnapshot(snapshotOf(event.at, epoch, count, ordered, features));
        capturedAt = event.at;
        sinceCapture = 0;
      }
      sinceCapture++;
    }
    previousAt = event.at;
    if (event.rank !== USAGE) flush(event.at);
    switch (event.rank) {
      case EXPIRE: {
        const a = accounts.get((event.grant as GrantFact).grantId) as GrantAccount;
        if (a.started && !a.ended) {
          a.expired += a.balance;
          a.balance = 0n;
          a.ended = true;
          a.endedBy = "expired";
        }
        break;
      }
      case VOID:
      case START: {
        const a = accounts.get((event.grant as GrantFact).grantId) as GrantAccount;
        if (event.rank === START && event.sub === 0) {
          a.started = true;
          a.granted += a.fact.amount;
          a.balance = a.fact.amount;
          if (inWindow(event.at)) {
            entries.push({
              at: event.at,
              rank: 3,
              seq: a.fact.sequence,
              entry: {
                type: "GRANT",
                at: iso(event.at),
                grantId: a.fact.grantId,
                featureId: a.fact.featureId,
                amount: fromCreditUnits(a.fact.amount),
              },
            });
          }
          break;
        }
        const removed = a.started && !a.ended ? a.balance : 0n;
        a.voided += removed;
        a.balance = 0n;
        if (!a.ended) a.endedBy = "voided";
        a.ended = true;
        if (inWindow(event.at)) {
          entries.push({
            at: event.at,
            rank: 1,
            seq: a.fact.sequence,
            entry: {
              type: "VOID",
              at: iso(event.at),
              grantId: a.fact.grantId,
              featureId: a.fact.featureId,
              amount: fromCreditUnits(removed),
            },
          });
        }
        break;
      }
      case RESET: {
        epoch++;
        const changes: Array<{ grantId: string; featureId: string; before: string; after: string }> = [];
        for (const a of ordered) {
          if (!a.started || a.ended) continue;
          const before = a.balance;
          const rollover = a.fact.rollover;
          let after = 0n;
          if (rollover?.type === "ORIGINAL_AMOUNT") {
            after = rollover.max === null ? a.fact.amount : min(a.fact.amount, rollover.max);
            a.expired += before;
            a.granted += after;
          } else {
            if (rollover?.type === "REMAINING_AMOUNT")
              after = rollover.max === null ? before : min(before, rollover.max);
            a.expired += before - after;
          }
          a.balance = after;
          changes.push({
            grantId: a.fact.grantId,
            featureId: a.fact.featureId,
            before: fromCreditUnits(before),
            after: fromCreditUnits(after),
          });
        }
        if (inWindow(event.at)) {
          entries.push({
            at: event.at,
            rank: 2,
            seq: 0,
            entry: { type: "RESET", at: iso(event.at), grants: changes },
          });
        }
        break;
      }
      case USAGE: {
        const u = event.usage as UsageFact;
        if (count !== undefined) count++;
        let f = features.get(u.featureId);
        if (f === undefined) {
          f = { usage: 0n, overage: 0n, uncovered: 0n, stack: [] };
          features.set(u.featureId, f);
        }
        const allocation =
          u.amount < 0n
            ? refund(f, -u.amount, epoch, (a, amount) => {
                if (history !== undefined) periodBurn.set(a, (periodBurn.get(a) ?? 0n) - amount);
              })
            : burn(f, u, ordered, epoch, (a, amount) => {
                if (history !== undefined) periodBurn.set(a, (periodBurn.get(a) ?? 0n) + amount);
              });
        f.usage += u.amount;
        if (
          options.track !== undefined &&
          options.track.featureId === u.featureId &&
          options.track.eventId === u.eventId
        ) {
          tracked = allocation;
        }
        break;
      }
      default:
        break; // the history window's start: a boundary only
    }
  }
  if (history !== undefined) flush(options.until);
  const result: ReplayResult = { grants: ordered, features, entries };
  if (tracked !== undefined) result.tracked = tracked;
  return result;
}

/** Balances per feature and per grant at `atMs` (events at exactly `atMs` included). */
export function balanceAt(
  ledgerId: string,
  facts: LedgerFacts,
  atMs: number,
  grants: readonly CreditGrant[],
): CreditBalance {
  const result = replay(facts, { until: atMs, inclusive: true });
  const byId = new Map(grants.map((g) => [g.grantId, g]));
  const totals = new Map<
    string,
    { balance: bigint; granted: bigint; burned: bigint; expired: bigint; voided: bigint }
  >();
  const grantBalances: CreditGrantBalance[] = [];
  for (const a of result.grants) {
    const g = byId.get(a.fact.grantId);
    let t = totals.get(a.fact.featureId);
    if (t === undefined) {
      t = { balance: 0n, granted: 0n, burned: 0n, expired: 0n, voided: 0n };
      totals.set(a.fact.featureId, t);
    }
    t.balance += a.balance;
    t.granted += a.granted;
    t.burned += a.burned;
    t.expired += a.expired;
    t.voided += a.voided;
    const row: CreditGrantBalance = {
      grantId: a.fact.grantId,
      featureId: a.fact.featureId,
      priority: a.fact.priority,
      effectiveAt: iso(a.fact.effectiveMs),
      active: a.started && !a.ended,
      granted: fromCreditUnits(a.granted),
      balance: fromCreditUnits(a.balance),
      burned: fromCreditUnits(a.burned),
      expired: fromCreditUnits(a.expired),
      voided: fromCreditUnits(a.voided),
    };
    if (a.fact.expiresMs !== null) row.expiresAt = iso(a.fact.expiresMs);
    if (g?.voidedAt !== undefined) row.voidedAt = g.voidedAt;
    grantBalances.push(row);
  }
  const featureIds = [...new Set([...totals.keys(), ...result.features.keys()])].sort();
  const features: CreditFeatureBalance[] = featureIds.map((featureId) => {
    const t = totals.get(featureId) ?? { balance: 0n, granted: 0n, burned: 0n, expired: 0n, voided: 0n };
    const u = result.features.get(featureId) ?? { usage: 0n, overage: 0n };
    return {
      featureId,
      balance: fromCreditUnits(t.balance),
      granted: fromCreditUnits(t.granted),
      burned: fromCreditUnits(t.burned),
      expired: fromCreditUnits(t.expired),
      voided: fromCreditUnits(t.voided),
      usage: fromCreditUnits(u.usage),
      overage: fromCreditUnits(u.overage),
    };
  });
  return { ledgerId, at: iso(atMs), features, grants: grantBalances };
}

/**
 * Where one recorded usage event went, given the facts that include it (`facts.from`, if any,
 * must be at or before the event's time). With `capture`, the replay goes on to the end and
 * takes snapshots on the way; without, it stops at the event.
 */
export function allocationOf(
  facts: LedgerFacts,
  featureId: string,
  eventId: string,
  capture?: SnapshotCapture,
): CreditAllocation {
  const options: ReplayOptions = {
    until: Number.POSITIVE_INFINITY,
    inclusive: true,
    track: { featureId, eventId },
  };
  if (capture === undefined) options.stopAtTracked = true;
  else options.capture = capture;
  const result = replay(facts, options);
  const tracked = result.tracked ?? { burned: [], overage: 0n };
  return {
    burned: tracked.burned.map((b) => ({ grantId: b.grantId, amount: fromCreditUnits(b.amount) })),
    overage: fromCreditUnits(tracked.overage),
  };
}

/**
 * The snapshots a replay of `facts` to the end takes every `every` usage events (nothing else
 * is computed). Replaying a long history in parts: pass a prefix in time of the usage after
 * `facts.from` (every usage event before the prefix's last time included); the snapshots it
 * returns are exact, and the last one is where the next part starts.
 */
export function snapshotsAlong(facts: LedgerFacts, every: number): LedgerSnapshot[] {
  const taken: LedgerSnapshot[] = [];
  replay(facts, {
    until: Number.POSITIVE_INFINITY,
    inclusive: true,
    capture: { every, onSnapshot: (snapshot) => taken.push(snapshot) },
  });
  return taken;
}

/**
 * The overage of one feature that no grant covered, over the whole replay (refunds owed back
 * do not offset it: enforcement guards spending beyond the credits, not the net).
 */
function featureOverage(facts: LedgerFacts, featureId: string): bigint {
  return (
    replay(facts, { until: Number.POSITIVE_INFINITY, inclusive: true }).features.get(featureId)?.uncovered ??
    0n
  );
}

const sameEvent = (a: UsageFact, b: UsageFact) => a.featureId === b.featureId && a.eventId === b.eventId;

/** A feature's summed grant balances at `atMs` (events at exactly `atMs` included). */
function availableAt(facts: LedgerFacts, featureId: string, atMs: number): bigint {
  let available = 0n;
  for (const a of replay(facts, { until: atMs, inclusive: true }).grants) {
    if (a.fact.featureId === featureId) available += a.balance;
  }
  return available;
}

/**
 * The enforcement decision: putting `usage` into `facts` (in place of a stored version of the
 * same event, if any) is allowed when it adds no overage to its feature anywhere in the replay
 * (late usage can push later events into overage, which counts). Returns the feature's
 * balance at the usage's time as `available`.
 */
export function enforcementCheck(
  facts: LedgerFacts,
  usage: UsageFact,
): { allowed: boolean; available: string } {
  const withIt: LedgerFacts = {
    ...facts,
    usage: [...facts.usage.filter((u) => !sameEvent(u, usage)), usage],
  };
  const allowed = featureOverage(withIt, usage.featureId) <= featureOverage(facts, usage.featureId);
  return { allowed, available: fromCreditUnits(availableAt(facts, usage.featureId, usage.atMs)) };
}

/** An unexpired hold, as the engine counts it: usage of `amount` at the time of the decision. */
export interface HoldFact {
  holdId: string;
  featureId: string;
  amount: bigint;
}

// Event ids no usage can collide with: a NUL starts them.
const holdUsage = (hold: HoldFact, atMs: number): UsageFact => ({
  featureId: hold.featureId,
  eventId: `\u0000hold\u0000${hold.holdId}`,
  amount: hold.amount,
  atMs,
});

/** The facts with every hold added as usage at `atMs`: what enforcement must leave untouched. */
export function withHolds(facts: LedgerFacts, holds: readonly HoldFact[], atMs: number): LedgerFacts {
  if (holds.length === 0) return facts;
  return { ...facts, usage: [...facts.usage, ...holds.map((h) => holdUsage(h, atMs))] };
}

/**
 * The reserve decision at `nowMs`: `hold` is granted when, as usage at `nowMs` on top of the
 * other `holds`, it adds no overage (the enforcement rule). `available` is the feature's
 * balance at `nowMs` minus every hold, after this one when it is granted.
 */
export function holdCheck(
  facts: LedgerFacts,
  holds: readonly HoldFact[],
  hold: HoldFact,
  nowMs: number,
): { allowed: boolean; available: string } {
  const base = withHolds(facts, holds, nowMs);
  const usage = holdUsage(hold, nowMs);
  const before = availableAt(base, hold.featureId, nowMs);
  const allowed =
    featureOverage({ ...base, usage: [...base.usage, usage] }, hold.featureId) <=
    featureOverage(base, hold.featureId);
  return { allowed, available: fromCreditUnits(allowed ? before - hold.amount : before) };
}

/** The feature's balance at `nowMs` minus every hold (a retried reserve's answer). */
export function heldAvailability(
  facts: LedgerFacts,
  holds: readonly HoldFact[],
  featureId: string,
  nowMs: number,
): string {
  return fromCreditUnits(availableAt(withHolds(facts, holds, nowMs), featureId, nowMs));
}

/** One page of history in `[fromMs, toMs)` after `cursor`. */
export function historyPage(
  facts: LedgerFacts,
  fromMs: number,
  toMs: number,
  limit: number,
  cursor: string | undefined,
): CreditHistoryPage {
  const { entries } = replay(facts, { until: toMs, inclusive: false, history: { from: fromMs } });
  entries.sort((a, b) => a.at - b.at || a.rank - b.rank || a.seq - b.seq);
  let start = 0;
  if (cursor !== undefined) {
    const [at, rank, seq] = cursor.split(".").map(Number) as [number, number, number];
    start = entries.findIndex(
      (e) => e.at > at || (e.at === at && (e.rank > rank || (e.rank === rank && e.seq > seq))),
    );
    if (start === -1) start = entries.length;
  }
  const page = entries.slice(start, start + limit);
  const last = page[page.length - 1];
  const result: CreditHistoryPage = { items: page.map((e) => e.entry) };
  if (last !== undefined && start + limit < entries.length)
    result.next = `${last.at}.${last.rank}.${last.seq}`;
  return result;
}
