import { describe, expect, it } from "vitest";
import { describeHolder, formatAge, heldBackNote } from "../src/commands/export-status.js";

describe("latch export status: wording", () => {
  it("formats ages for people, never as a float", () => {
    expect(formatAge(0)).toBe("0 ms");
    expect(formatAge(850)).toBe("850 ms");
    expect(formatAge(12_345)).toBe("12.3 s");
    expect(formatAge(59_999)).toBe("59.9 s");
    expect(formatAge(303_000)).toBe("5 min 3 s");
    expect(formatAge(2 * 3_600_000 + 4 * 60_000 + 59_000)).toBe("2 h 4 min");
    expect(formatAge(3 * 86_400_000 + 2 * 3_600_000)).toBe("3 d 2 h");
  });

  it("names each kind of holder with what an operator needs to end it", () => {
    expect(
      describeHolder({
        by: "transaction",
        pid: 4242,
        xid: "73112",
        state: "idle in transaction",
        applicationName: "psql",
        user: "ops",
        database: "billing",
        startedAt: "2026-03-02T09:00:00.000Z",
        ageMs: 5_400_000,
      }),
    ).toBe(
      'transaction pid 4242 (application "psql", user ops, database billing), idle in transaction, open for 1 h 30 min since 2026-03-02T09:00:00.000Z, xid 73112',
    );
    // A role without pg_read_all_stats sees the pid and xid only.
    expect(describeHolder({ by: "transaction", pid: 7, xid: "9" })).toBe("transaction pid 7, xid 9");
    expect(
      describeHolder({
        by: "prepared_transaction",
        xid: "12",
        gid: "tx-1",
        owner: "app",
        database: "billing",
        startedAt: "2026-03-02T09:00:00.000Z",
        ageMs: 61_000,
      }),
    ).toBe(
      'prepared transaction "tx-1" (owner app, database billing), prepared 1 min 1 s ago at 2026-03-02T09:00:00.000Z, xid 12',
    );
    expect(describeHolder({ by: "unknown", xid: "5" })).toBe(
      "transaction xid 5 (no session shows it: it may have just ended)",
    );
  });

  it("adds a note to latch export only when versions wait", () => {
    const base = { cursor: "1", ready: 0, capped: false };
    expect(heldBackNote(undefined, false)).toBeUndefined();
    expect(heldBackNote({ ...base, waiting: 0 }, false)).toBeUndefined();
    expect(
      heldBackNote({ ...base, waiting: 2, heldBack: { by: "transaction", pid: 7, xid: "9" } }, true),
    ).toBe(
      "2 more versions stored after the cursor are held back by transaction pid 7, xid 9; they are exported once it ends (latch export status)\n",
    );
    expect(heldBackNote({ ...base, waiting: 1 }, false)).toBe(
      "1 version stored after the cursor is held back by a transaction that has just ended: run latch export again\n",
    );
  });
});
