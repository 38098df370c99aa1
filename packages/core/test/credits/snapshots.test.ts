import { describe, expect, it } from "vitest";
import {
  allocationOf,
  balanceAt,
  decodeLedgerSnapshot,
  dropSnapshotsAfter,
  encodeLedgerSnapshot,
  type GrantFact,
  type LedgerFacts,
  type LedgerSnapshot,
  snapshotAtOrBefore,
  snapshotsToThin,
  thinAfterWrite,
  toCreditUnits,
  type UsageFact,
} from "../../src/adapter.js";
import { LatchError, MemoryCreditLedger } from "../../src/index.js";

const day = (n: number) => Date.UTC(2026, 0, 1 + n);
const grant = (
  grantId: string,
  amount: string,
  sequence: number,
  fields: Partial<GrantFact> = {},
): GrantFact => ({
  grantId,
  featureId: "usd",
  amount: toCreditUnits(amount),
  priority: 1,
  effectiveMs: day(0),
  expiresMs: null,
  rollover: null,
  voidedMs: null,
  sequence,
  ...fields,
});
const use = (eventId: string, amount: string, atMs: number): UsageFact => ({
  featureId: "usd",
  eventId,
  amount: toCreditUnits(amount),
  atMs,
});

describe("balance snapshots in the credit engine", () => {
  const grants = [grant("a", "10", 1, { expiresMs: day(6) }), grant("b", "100", 2, { priority: 2 })];
  const usage = [
    use("u1", "4", day(1)),
    use("u2", "4", day(2)),
    use("u3", "-1.5", day(3)),
    use("u4", "6", day(4)),
    use("u5", "7", day(5)),
    use("u6", "3", day(7)),
    use("u7", "-20", day(8)),
  ];
  const facts: LedgerFacts = { grants, resets: [day(4) + 1], usage };

  function snapshots(every: number): LedgerSnapshot[] {
    const taken: LedgerSnapshot[] = [];
    allocationOf(facts, "usd", "u1", { every, onSnapshot: (s) => taken.push(s) });
    return taken;
  }

  it("takes one before a usage event at a new millisecond every `every` events, and survives JSON", () => {
    const taken = snapshots(2);
    expect(taken.map((s) => s.position)).toEqual([day(3), day(5), day(8)]);
    for (const s of taken) {
      expect(decodeLedgerSnapshot("l", JSON.parse(JSON.stringify(encodeLedgerSnapshot(s))))).toEqual(s);
    }
  });

  it("from any snapshot, balances and allocations are those of a replay from scratch", () => {
    const grantsOut = grants.map((g) => ({
      grantId: g.grantId,
      ledgerId: "l",
      featureId: "usd",
      amount: "1",
      priority: g.priority,
      effectiveAt: new Date(g.effectiveMs).toISOString(),
      sequence: g.sequence,
    }));
    for (const from of snapshots(1)) {
      const tail = { ...facts, usage: usage.filter((u) => u.atMs >= from.position), from };
      // A snapshot answers for times it covers entirely: at ≥ position - 1 (events ≤ at).
      for (const at of [from.position - 1, from.position, day(6), day(9)].filter(
        (x) => x >= from.position - 1,
      )) {
        expect(balanceAt("l", tail, at, grantsOut)).toEqual(balanceAt("l", facts, at, grantsOut));
      }
      for (const u of usage.filter((x) => x.atMs >= from.position)) {
        expect(allocationOf(tail, "usd", u.eventId)).toEqual(allocationOf(facts, "usd", u.eventId));
      }
    }
  });

  it("finds the latest snapshot at or before a time, and drops those after one", () => {
    const list = [{ position: 10 }, { position: 20 }, { position: 30 }];
    expect(snapshotAtOrBefore(list, 9)).toBeUndefined();
    expect(snapshotAtOrBefore(list, 20)).toEqual({ position: 20 });
    expect(snapshotAtOrBefore(list, 29)).toEqual({ position: 20 });
    dropSnapshotsAfter(list, 20);
    expect(list).toEqual([{ position: 10 }, { position: 20 }]);
  });

  it("refuses to answer for a time before a snapshot's position from it", () => {
    const [from] = snapshots(2).slice(-1) as [LedgerSnapshot];
    const tail = { ...facts, usage: usage.filter((u) => u.atMs >= from.position), from };
    expect(() => balanceAt("l", tail, from.position - 2, [])).toThrow(/snapshot/);
  });

  it("refuses a stored snapshot that does not parse as corrupt_record", () => {
    expect(() => decodeLedgerSnapshot("l", { position: "x" })).toThrow(
      expect.objectContaining({ code: "corrupt_record", id: "l" }),
    );
  });

  it("snapshotEvery must be a whole number ≥ 0; bad values name the option", () => {
    for (const bad of [-1, 1.5, "64", Number.NaN]) {
      try {
        new MemoryCreditLedger({ snapshotEvery: bad as number });
        expect.fail("accepted a bad snapshotEvery");
      } catch (error) {
        expect(LatchError.isInstance(error) && error.code).toBe("invalid_input");
        expect((error as Error).message).toContain("snapshotEvery");
        expect((error as Error).message).not.toContain(String(bad));
      }
    }
    expect(() => new MemoryCreditLedger({ snapshotEvery: 0 })).not.toThrow();
  });

  it("snapshots carry the usage count before their position, from scratch and from a snapshot", () => {
    const all = snapshots(1);
    expect(all.map((x) => x.count)).toEqual(all.map((x) => usage.filter((u) => u.atMs < x.position).length));
    const from = all[2] as LedgerSnapshot;
    const taken: LedgerSnapshot[] = [];
    allocationOf({ ...facts, from }, "usd", "u7", { every: 1, onSnapshot: (x) => taken.push(x) });
    expect(taken).toEqual(all.filter((x) => x.position > from.position));
    const { count: _count, ...legacy } = from;
    const after: LedgerSnapshot[] = [];
    allocationOf({ ...facts, from: legacy }, "usd", "u7", { every: 1, onSnapshot: (x) => after.push(x) });
    expect(after.every((x) => x.count === undefined)).toBe(true);
  });

  it("thinning keeps the newest dense and the first snapshot of each bucket before them, idempotently", () => {
    const rule = { keepNewest: 3, sparseEvery: 10 };
    const list = Array.from({ length: 20 }, (_, i) => ({ position: 100 + i, count: i * 3 }));
    const dropped = snapshotsToThin(list, rule);
    const kept = list.filter((x) => !dropped.includes(x.position));
    // Buckets of 10 events: counts 0,3,6,9 | 12,15,18 | 21,24,27 | 30,... and the newest 3 kept.
    expect(kept.map((x) => x.count)).toEqual([0, 12, 21, 30, 42, 51, 54, 57]);
    expect(snapshotsToThin(kept, rule)).toEqual([]);
    // Without a count (stored before counts were kept): never dropped.
    expect(
      snapshotsToThin([{ position: 1 }, { position: 2 }, { position: 3 }], { keepNewest: 1, sparseEvery: 5 }),
    ).toEqual([]);
    // A write's pass: stored window + taken, a taken position already stored is not stored twice.
    const stored = list.slice(0, 10);
    const taken = list.slice(9).map((x) => ({ ...x, fresh: true }));
    const { store, drop } = thinAfterWrite(stored, taken, rule);
    expect(drop).toEqual(dropped.filter((p) => p < 110));
    expect(store.map((x) => x.position)).toEqual(
      kept.filter((x) => x.position >= 110).map((x) => x.position),
    );
  });

  it("snapshotThinning: false, or keepNewest and sparseEvery whole numbers ≥ 1; bad values name the option", () => {
    for (const bad of [{ keepNewest: 0 }, { sparseEvery: 1.5 }, { keep: 3 }, true, "64"]) {
      try {
        new MemoryCreditLedger({ snapshotThinning: bad as never });
        expect.fail("accepted a bad snapshotThinning");
      } catch (error) {
        expect(LatchError.isInstance(error) && error.code).toBe("invalid_input");
        expect((error as Error).message).toContain("snapshotThinning");
      }
    }
    expect(() => new MemoryCreditLedger({ snapshotThinning: false })).not.toThrow();
    expect(
      () => new MemoryCreditLedger({ snapshotThinning: { keepNewest: 1, sparseEvery: 1 } }),
    ).not.toThrow();
  });
});
