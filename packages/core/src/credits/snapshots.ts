import { z } from "zod";
import { CorruptRecordError } from "../errors/index.js";
import { parseWith } from "../schemas/parse.js";
import type { LedgerSnapshot } from "./engine.js";

/**
 * Balance snapshots (checkpoints) of a credit ledger, the same rule on every backend:
 *
 * - A snapshot at `position` is the engine's replay state after every event with a time before
 *   `position`: each grant's account, each feature's usage and the allocations a refund may
 *   still undo, the reset count. Balances, enforcement and allocations start from the latest
 *   snapshot that is valid for the question and replay only the events at or after it, so a
 *   write costs the events since the last snapshot, not the ledger's history.
 * - Writers take them: the replay after a stored usage event takes one before a usage event at
 *   a new millisecond once `snapshotEvery` usage events were replayed since the last one.
 * - Writers thin them ({@link snapshotsToThin}): the newest `keepNewest` (default 64) are all
 *   kept — in-order writes and usage arriving a little late start from one of them, within
 *   `snapshotEvery` events. Older ones are kept one per `sparseEvery` usage events (default
 *   8 × `snapshotEvery`): the first snapshot of each such bucket of the ledger's usage count
 *   (`count`). So a ledger keeps about `keepNewest + events / sparseEvery` snapshots, and late
 *   usage far back, or the allocation of an old event (a duplicate, a reconcile run), replays at
 *   most about `sparseEvery + snapshotEvery` events. Dropping a snapshot never changes a number
 *   (any valid snapshot, or none, gives the replay from scratch); a pass looks at a bounded
 *   window of the newest snapshots and at the ones the write just took, so its cost does not
 *   grow with the ledger. Snapshots stored without `count` (before this rule) are never thinned.
 * - A fact dated before a snapshot's position changes what it summarises, so every write drops
 *   the snapshots after the earliest time it touches, before it replays: usage (late usage, the
 *   old and the new time of a correction), a grant (`effectiveAt`), a void (from the later of the
 *   void time and `effectiveAt`), a reset (its time). The next write takes new ones.
 * - A question that adds events of its own (enforcement: the usage and the holds at the store's
 *   clock; `balance` and `history` at a time) uses a snapshot at or before the earliest of them.
 *   Holds are never in a snapshot.
 *
 * So the numbers are those of a replay from scratch, exactly: the testkit checks it across
 * snapshot boundaries on every backend.
 *
 * @packageDocumentation
 */

/** Usage events between two snapshots unless a store is told otherwise. */
export const DEFAULT_SNAPSHOT_EVERY = 64;

const SnapshotEverySchema = z
  .number({ error: "expected a whole number of usage events ≥ 0 (0: no snapshots)" })
  .int({ error: "expected a whole number of usage events ≥ 0 (0: no snapshots)" })
  .min(0, { error: "expected a whole number of usage events ≥ 0 (0: no snapshots)" })
  .max(1_000_000_000, { error: "expected a whole number of usage events ≥ 0 (0: no snapshots)" });

/** `snapshotEvery` of a store's options (0 disables snapshots: every question replays it all). */
export function parseSnapshotEvery(value: unknown, subject: string): number {
  return value === undefined
    ? DEFAULT_SNAPSHOT_EVERY
    : parseWith(SnapshotEverySchema, value, subject, "snapshotEvery");
}

/** How a store thins old snapshots (see {@link snapshotsToThin}); `false` keeps every one. */
export interface SnapshotThinning {
  /** The newest snapshots a ledger always keeps, all of them (default 64, at least 1). */
  keepNewest?: number;
  /** Older snapshots: one kept per this many usage events (default 8 × `snapshotEvery`). */
  sparseEvery?: number;
}

/** A thinning rule with its defaults filled in; `null`: snapshots are never thinned. */
export interface ThinningRule {
  keepNewest: number;
  sparseEvery: number;
}

/** The newest snapshots kept dense unless a store is told otherwise. */
export const DEFAULT_SNAPSHOT_KEEP_NEWEST = 64;
/** Older snapshots are kept one per this many times `snapshotEvery` usage events by default. */
export const DEFAULT_SNAPSHOT_SPARSE_FACTOR = 8;
/** Snapshots older than the newest `keepNewest` that one thinning pass looks at. */
export const THINNING_WINDOW = 64;

const Count = (what: string, min: number) =>
  z
    .number({ error: `expected a whole number of ${what} ≥ ${min}` })
    .int({ error: `expected a whole number of ${what} ≥ ${min}` })
    .min(min, { error: `expected a whole number of ${what} ≥ ${min}` })
    .max(1_000_000_000, { error: `expected a whole number of ${what} ≥ ${min}` });
const ThinningSchema = z.union([
  z.literal(false),
  z.strictObject({
    keepNewest: Count("snapshots", 1).optional(),
    sparseEvery: Count("usage events", 1).optional(),
  }),
]);

/**
 * `snapshotThinning` of a store's options, with `snapshotEvery` already parsed: the rule, or
 * `null` when snapshots are off or thinning is (`false`).
 */
export function parseSnapshotThinning(
  value: unknown,
  snapshotEvery: number,
  subject: string,
): ThinningRule | null {
  const parsed: z.output<typeof ThinningSchema> =
    value === undefined ? {} : parseWith(ThinningSchema, value, subject, "snapshotThinning");
  if (parsed === false || snapshotEvery === 0) return null;
  return {
    keepNewest: parsed.keepNewest ?? DEFAULT_SNAPSHOT_KEEP_NEWEST,
    sparseEvery: parsed.sparseEvery ?? DEFAULT_SNAPSHOT_SPARSE_FACTOR * snapshotEvery,
  };
}

/**
 * The positions a thinning pass drops from `newest`: a ledger's newest snapshots (at least the
 * newest `keepNewest + THINNING_WINDOW + 1` it has, any it just took included), sorted by
 * position. Every snapshot outside the newest `keepNewest` goes when the snapshot before it in
 * `newest` has a `count` in the same bucket of `sparseEvery` usage events: what stays is the
 * first snapshot of each bucket. Counts grow with positions, so the rule keeps the same
 * snapshots whatever order the passes ran in, and a second pass drops nothing more.
 */
export function snapshotsToThin(
  newest: ReadonlyArray<{ position: number; count?: number | undefined }>,
  rule: ThinningRule,
): number[] {
  const dropped: number[] = [];
  const bucket = (count: number | undefined) =>
    count === undefined ? undefined : Math.floor(count / rule.sparseEvery);
  const old = newest.length - rule.keepNewest;
  for (let i = 1; i < old; i++) {
    const b = bucket((newest[i] as { count?: number | undefined }).count);
    if (b !== undefined && b === bucket((newest[i - 1] as { count?: number | undefined }).count)) {
      dropped.push((newest[i] as { position: number }).position);
    }
  }
  return dropped;
}

/**
 * A write's thinning pass: `stored`, the ledger's newest stored snapshots after the write's own
 * drops (sorted by position, at least `keepNewest + THINNING_WINDOW + 1` of them when it has
 * that many), and `taken`, the snapshots its replay took (sorted; a position already stored
 * is stored already). Returns the taken snapshots to store and the stored positions to delete.
 */
export function thinAfterWrite<S extends { position: number; count?: number | undefined }>(
  stored: readonly { position: number; count?: number | undefined }[],
  taken: readonly S[],
  rule: ThinningRule,
): { store: S[]; drop: number[] } {
  const storedAt = new Set(stored.map((s) => s.position));
  const fresh = taken.filter((s) => !storedAt.has(s.position));
  const merged = [...stored, ...fresh].sort((a, b) => a.position - b.position);
  const dropped = new Set(snapshotsToThin(merged, rule));
  return {
    store: fresh.filter((s) => !dropped.has(s.position)),
    drop: stored.filter((s) => dropped.has(s.position)).map((s) => s.position),
  };
}

/** The latest snapshot with `position ≤ bound` in a list sorted by position, or undefined. */
export function snapshotAtOrBefore<S extends { position: number }>(
  sorted: readonly S[],
  bound: number,
): S | undefined {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as S).position <= bound) lo = mid + 1;
    else hi = mid;
  }
  return lo === 0 ? undefined : sorted[lo - 1];
}

/** Drops (in place) every snapshot a fact at `atMs` changes: those with `position > atMs`. */
export function dropSnapshotsAfter(sorted: Array<{ position: number }>, atMs: number): void {
  let keep = sorted.length;
  while (keep > 0 && (sorted[keep - 1] as { position: number }).position > atMs) keep--;
  sorted.length = keep;
}

/** The earliest time a void of a grant changes the replay: the later of the void and its start. */
export function voidChangesFrom(effectiveMs: number, voidedMs: number): number {
  return Math.max(effectiveMs, voidedMs);
}

const Units = z.string().regex(/^-?\d+$/);
const StoredSnapshotSchema = z.object({
  position: z.number().int(),
  epoch: z.number().int().min(0),
  count: z.number().int().min(0).optional(),
  grants: z.array(
    z.object({
      grantId: z.string(),
      started: z.boolean(),
      ended: z.boolean(),
      endedBy: z.enum(["expired", "voided"]).nullable(),
      granted: Units,
      balance: Units,
      burned: Units,
      expired: Units,
      voided: Units,
    }),
  ),
  features: z.array(
    z.object({
      featureId: z.string(),
      usage: Units,
      overage: Units,
      uncovered: Units,
      stack: z.array(
        z.tuple([z.enum(["burn", "uncovered", "offset"]), z.string().nullable(), z.number(), Units]),
      ),
    }),
  ),
});

/** A snapshot as JSON-safe data (units as integer strings), for a store's column. */
export function encodeLedgerSnapshot(snapshot: LedgerSnapshot): z.input<typeof StoredSnapshotSchema> {
  return {
    position: snapshot.position,
    epoch: snapshot.epoch,
    ...(snapshot.count === undefined ? {} : { count: snapshot.count }),
    grants: snapshot.grants.map((g) => ({
      grantId: g.grantId,
      started: g.started,
      ended: g.ended,
      endedBy: g.endedBy,
      granted: String(g.granted),
      balance: String(g.balance),
      burned: String(g.burned),
      expired: String(g.expired),
      voided: String(g.voided),
    })),
    features: snapshot.features.map((f) => ({
      featureId: f.featureId,
      usage: String(f.usage),
      overage: String(f.overage),
      uncovered: String(f.uncovered),
      stack: f.stack.map((x) => [x.kind, x.grantId, x.epoch, String(x.amount)] as const),
    })),
  };
}

/** The snapshot {@link encodeLedgerSnapshot} stored; anything else is `corrupt_record`. */
export function decodeLedgerSnapshot(id: string, stored: unknown): LedgerSnapshot {
  const parsed = StoredSnapshotSchema.safeParse(stored);
  if (!parsed.success)
    throw new CorruptRecordError({
      id,
      reason: "the stored credit snapshot does not parse",
      cause: parsed.error,
    });
  const s = parsed.data;
  return {
    position: s.position,
    epoch: s.epoch,
    ...(s.count === undefined ? {} : { count: s.count }),
    grants: s.grants.map((g) => ({
      grantId: g.grantId,
      started: g.started,
      ended: g.ended,
      endedBy: g.endedBy,
      granted: BigInt(g.granted),
      balance: BigInt(g.balance),
      burned: BigInt(g.burned),
      expired: BigInt(g.expired),
      voided: BigInt(g.voided),
    })),
    features: s.features.map((f) => ({
      featureId: f.featureId,
      usage: BigInt(f.usage),
      overage: BigInt(f.overage),
      uncovered: BigInt(f.uncovered),
      stack: f.stack.map(([kind, grantId, epoch, amount]) => ({
        kind,
        grantId,
        epoch,
        amount: BigInt(amount),
      })),
    })),
  };
}
