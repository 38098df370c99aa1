import { MemoryCreditLedger, type SnapshotThinning } from "@latch/core";
import type {
  CreditFeatureInput,
  CreditGrantInput,
  CreditLedger,
  CreditResetInput,
  CreditUsageInput,
  CreditVoidInput,
} from "@latch/core/adapter";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { uniqueId } from "../../fixtures.js";
import { t } from "./support.js";

/**
 * A ledger under test with a small snapshot interval (`every` usage events) and, when given,
 * that thinning of old snapshots (`snapshotThinning` on Latch's backends; undefined: the
 * backend's default), or the suite's usual ledger when the backend takes no such options.
 */
export type SnapshotLedgerFactory = (
  every: number,
  thinning?: SnapshotThinning,
) => CreditLedger | Promise<CreditLedger>;

/** Both ledgers refused an operation with the same error code (already compared). */
class BothRefused extends Error {}

/**
 * Every operation applied to the ledger under test and to a reference that replays the whole
 * ledger from scratch for every question (`MemoryCreditLedger` with snapshots off): each answer,
 * balance, allocation and history page must be the same.
 */
class Mirror {
  readonly ledgerId = uniqueId("snap");
  readonly #recorded = new Map<string, CreditUsageInput>();
  readonly #times = new Set<string>();

  private constructor(
    readonly store: CreditLedger,
    readonly reference: CreditLedger,
    readonly featureId: string,
  ) {}

  static async open(store: CreditLedger, kind: "quantity" | "money"): Promise<Mirror> {
    const reference = new MemoryCreditLedger({ snapshotEvery: 0 });
    const mirror = new Mirror(store, reference, uniqueId(kind === "money" ? "usd" : "tokens"));
    const measure: CreditFeatureInput["measure"] =
      kind === "money" ? { kind: "money", currency: "USD" } : { kind: "quantity", meters: ["input_tokens"] };
    await mirror.#both((c) => c.createFeature({ featureId: mirror.featureId, measure }));
    await mirror.#both((c) => c.createLedger({ ledgerId: mirror.ledgerId, subject: { tenantId: "snap" } }));
    return mirror;
  }

  /** Runs `op` on both ledgers; the answers (or the error codes) must be equal. */
  async #both<T>(op: (c: CreditLedger) => Promise<T>): Promise<T> {
    const settle = (p: Promise<T>) =>
      p.then(
        (value) => ({ value }),
        (error: { code?: string }) => ({ error: error.code ?? String(error) }),
      );
    const actual = await settle(op(this.store));
    const expected = await settle(op(this.reference));
    expect(actual).toEqual(expected);
    if ("error" in actual) throw new BothRefused(actual.error);
    return actual.value;
  }

  gid(id: string): string {
    return `${this.ledgerId}:${id}`;
  }

  grant(id: string, amount: string, fields: Partial<CreditGrantInput> = {}) {
    this.#times.add(fields.effectiveAt ?? t("01-01"));
    return this.#both((c) =>
      c.grant({
        grantId: this.gid(id),
        ledgerId: this.ledgerId,
        featureId: this.featureId,
        amount,
        effectiveAt: t("01-01"),
        ...fields,
      }),
    );
  }

  use(eventId: string, amount: string, at: string, fields: Partial<CreditUsageInput> = {}) {
    const input: CreditUsageInput = {
      ledgerId: this.ledgerId,
      featureId: this.featureId,
      eventId,
      amount,
      at,
      ...fields,
    };
    this.#times.add(at);
    return this.#both(async (c) => {
      const result = await c.recordUsage(input);
      if (c === this.store && result.status === "recorded") this.#recorded.set(eventId, input);
      return result;
    });
  }

  voidGrant(id: string, at: string) {
    this.#times.add(at);
    const input: CreditVoidInput = { ledgerId: this.ledgerId, grantId: this.gid(id), at };
    return this.#both((c) => c.voidGrant(input));
  }

  reset(at: string) {
    this.#times.add(at);
    const input: CreditResetInput = { ledgerId: this.ledgerId, at };
    return this.#both((c) => c.reset(input));
  }

  reserve(holdId: string, amount: string) {
    const id = `${this.ledgerId}:${holdId}`;
    return this.#both((c) =>
      c.reserve({ holdId: id, ledgerId: this.ledgerId, featureId: this.featureId, amount, ttlMs: 60_000 }),
    );
  }

  /**
   * Balances at every time the test used (and just before and after each), the whole history
   * in small pages, and the allocation of every recorded event (its retry answers `duplicate`
   * with the allocation as the ledger has it now): all as a replay from scratch gives them.
   */
  async expectSameNumbers(): Promise<void> {
    const times = new Set<number>();
    for (const at of this.#times) {
      const ms = Date.parse(at);
      for (const d of [-1, 0, 1, 3_600_000]) times.add(ms + d);
    }
    times.add(Date.parse(t("12-31")));
    for (const ms of [...times].sort((a, b) => a - b)) {
      const at = new Date(ms).toISOString();
      await this.#both((c) => c.balance(this.ledgerId, at));
    }
    for (const from of [t("01-01"), t("01-04"), t("01-07")]) {
      let cursor: string | undefined;
      do {
        const query = {
          ledgerId: this.ledgerId,
          from,
          to: t("12-31"),
          limit: 3,
          ...(cursor ? { cursor } : {}),
        };
        const page = await this.#both((c) => c.history(query));
        cursor = page.next;
      } while (cursor !== undefined);
    }
    for (const input of this.#recorded.values()) {
      const again = await this.#both((c) => c.recordUsage(input));
      expect(["duplicate", "superseded"]).toContain(again.status);
    }
  }
}

/** Cases that cross snapshot boundaries, each compared with a replay from scratch. */
export function snapshotCases(create: SnapshotLedgerFactory, runs: number): void {
  describe("balance snapshots (each compared with a replay from scratch)", () => {
    const open = async (kind: "quantity" | "money" = "quantity", every = 2, thinning?: SnapshotThinning) =>
      Mirror.open(await create(every, thinning), kind);
    // Thinned hard: the newest 2 snapshots dense, older ones one per 5 usage events.
    const thin: SnapshotThinning = { keepNewest: 2, sparseEvery: 5 };
    const day = (n: number, hour = 0) => new Date(Date.UTC(2026, 0, 1 + n, hour)).toISOString();

    it("late usage dated before a snapshot is applied where it belongs", async () => {
      const m = await open();
      await m.grant("soon", "100", { expiration: { count: 10, unit: "DAY" } });
      await m.grant("later", "100", { priority: 2 });
      for (let i = 1; i <= 9; i++) await m.use(`e${i}`, "15", day(i));
      // Before every snapshot so far: the early grant now runs out sooner, later burns shift.
      expect(await m.use("late", "40", day(1, 12))).toMatchObject({ status: "recorded" });
      await m.expectSameNumbers();
      for (let i = 10; i <= 14; i++) await m.use(`f${i}`, "10", day(i));
      // Enforced late usage that would push later events into overage is denied on both.
      await m.use("late-big", "80", day(2, 6), { enforce: true });
      await m.use("late-small", "5", day(2, 6), { enforce: true });
      await m.expectSameNumbers();
    });

    it("a correction moves an event across snapshots, earlier and later", async () => {
      const m = await open("quantity", 1);
      await m.grant("a", "50", { expiration: { count: 5, unit: "DAY" } });
      await m.grant("b", "100", { priority: 2 });
      for (let i = 1; i <= 8; i++) await m.use(`e${i}`, "12", day(i));
      await m.use("e7", "30", day(1, 6), { version: 2 });
      await m.use("e2", "5", day(8, 6), { version: 2 });
      await m.use("e2", "1", day(8, 6)); // superseded
      await m.expectSameNumbers();
    });

    it("a void dated before the latest snapshot, and one from before a grant started", async () => {
      const m = await open();
      await m.grant("a", "60");
      await m.grant("b", "60", { priority: 2 });
      await m.grant("c", "40", { effectiveAt: day(3) });
      for (let i = 1; i <= 10; i++) await m.use(`e${i}`, "9", day(i));
      await m.voidGrant("a", day(4, 12));
      await m.voidGrant("c", day(0)); // voided whole from its start at day 3
      await m.expectSameNumbers();
      for (let i = 11; i <= 13; i++) await m.use(`e${i}`, "9", day(i));
      await m.use("late", "7", day(2));
      await m.expectSameNumbers();
    });

    it("a reset after snapshots, with rollover, late usage on both sides and refunds", async () => {
      const m = await open("money");
      await m.grant("orig", "20", { rollover: { type: "ORIGINAL_AMOUNT" } });
      await m.grant("rest", "30", { priority: 2, rollover: { type: "REMAINING_AMOUNT", maxAmount: "10" } });
      for (let i = 1; i <= 10; i++) await m.use(`e${i}`, "3.5", day(i));
      // Dated before the latest snapshots: every snapshot after it summarised the old period.
      await m.reset(day(6, 12));
      await m.use("refund-old", "-4", day(5));
      await m.use("refund-new", "-2.25", day(8, 1));
      await m.use("late-new", "6", day(7, 3));
      for (let i = 11; i <= 14; i++) await m.use(`e${i}`, "4", day(i));
      await m.expectSameNumbers();
      await m.use("refund-big", "-100", day(13, 2));
      await m.use("after", "1.5", day(15));
      await m.expectSameNumbers();
    });

    it("a grant dated before snapshots, reserves and enforced usage read the same balances", async () => {
      const m = await open();
      await m.grant("a", "100");
      for (let i = 1; i <= 8; i++) await m.use(`e${i}`, "10", day(i));
      await m.grant("back", "15", { effectiveAt: day(2), expiration: { count: 3, unit: "DAY" } });
      expect(await m.reserve("h1", "20")).toMatchObject({ granted: true });
      expect(await m.reserve("h2", "50")).toMatchObject({ granted: false });
      await m.use("enforced", "25", day(9), { enforce: true });
      await m.use("enforced-ok", "2", day(9), { enforce: true });
      await m.expectSameNumbers();
    });

    it("thinned: late usage before a thinned-out snapshot, and corrections across one", async () => {
      const m = await open("quantity", 1, thin);
      await m.grant("soon", "120", { expiration: { count: 12, unit: "DAY" } });
      await m.grant("later", "400", { priority: 2 });
      for (let i = 1; i <= 30; i++) await m.use(`e${i}`, String(3 + (i % 4)), day(i));
      await m.expectSameNumbers();
      // Between kept snapshots, in the sparse part: the write starts from the kept one before.
      await m.use("late-1", "9", day(6, 12));
      await m.use("late-2", "4", day(17, 3));
      await m.use("e22", "11", day(2, 6), { version: 2 }); // moved far back
      await m.use("e3", "1", day(28, 1), { version: 2 }); // moved forward past the dense part
      for (let i = 31; i <= 36; i++) await m.use(`e${i}`, "5", day(i));
      await m.use("late-enforced", "500", day(9, 9), { enforce: true }); // denied on both
      await m.expectSameNumbers();
    });

    it("thinned: a void and a reset dated after thinned-out snapshots, with refunds", async () => {
      const m = await open("money", 1, thin);
      await m.grant("a", "60", { rollover: { type: "REMAINING_AMOUNT", maxAmount: "15" } });
      await m.grant("b", "90", { priority: 2, expiration: { count: 20, unit: "DAY" } });
      await m.grant("c", "40", { priority: 3, rollover: { type: "ORIGINAL_AMOUNT" } });
      for (let i = 1; i <= 24; i++) await m.use(`e${i}`, (1.5 + (i % 3)).toFixed(2), day(i));
      await m.voidGrant("b", day(9, 12)); // after the sparse snapshots around day 5
      await m.expectSameNumbers();
      await m.reset(day(14, 12));
      await m.use("refund-before", "-6", day(12)); // before the reset, after the void
      await m.use("refund-after", "-2.5", day(16, 3));
      for (let i = 25; i <= 32; i++) await m.use(`e${i}`, "3", day(i));
      await m.expectSameNumbers();
      await m.reset(day(33, 12));
      await m.use("late", "7", day(30, 6));
      await m.expectSameNumbers();
    });

    it("any sequence of grants, voids, resets, late usage, refunds and corrections: as from scratch", async () => {
      const op = fc.oneof(
        {
          arbitrary: fc.record({
            kind: fc.constant("use" as const),
            at: fc.integer({ min: 0, max: 40 }),
            amount: fc.integer({ min: -6, max: 25 }),
            event: fc.integer({ min: 0, max: 12 }),
            version: fc.integer({ min: 1, max: 3 }),
            enforce: fc.boolean(),
          }),
          weight: 8,
        },
        {
          arbitrary: fc.record({
            kind: fc.constant("grant" as const),
            at: fc.integer({ min: 0, max: 40 }),
            amount: fc.integer({ min: 1, max: 80 }),
            priority: fc.integer({ min: 1, max: 3 }),
            days: fc.option(fc.integer({ min: 1, max: 15 }), { nil: undefined }),
            rollover: fc.constantFrom(undefined, "ORIGINAL_AMOUNT" as const, "REMAINING_AMOUNT" as const),
          }),
          weight: 2,
        },
        {
          arbitrary: fc.record({
            kind: fc.constant("void" as const),
            at: fc.integer({ min: 0, max: 40 }),
            grant: fc.nat(),
          }),
          weight: 1,
        },
        {
          arbitrary: fc.record({ kind: fc.constant("reset" as const), at: fc.integer({ min: 0, max: 40 }) }),
          weight: 1,
        },
      );
      await fc.assert(
        fc.asyncProperty(
          fc.array(op, { minLength: 5, maxLength: 30 }),
          fc.integer({ min: 1, max: 3 }),
          fc.option(
            fc.record({
              keepNewest: fc.integer({ min: 1, max: 3 }),
              sparseEvery: fc.integer({ min: 1, max: 6 }),
            }),
            { nil: undefined },
          ),
          async (ops, every, thinning) => {
            const m = await open("money", every, thinning);
            let grants = 0;
            const versions = new Map<number, number>();
            const tolerate = async (p: Promise<unknown>) => {
              // Both refused the same way (a high watermark, a conflict): already compared.
              await p.catch((error: unknown) => {
                if (!(error instanceof BothRefused)) throw error;
              });
            };
            for (const o of ops) {
              if (o.kind === "grant") {
                const fields: Partial<CreditGrantInput> = { priority: o.priority, effectiveAt: day(o.at) };
                if (o.days !== undefined) fields.expiration = { count: o.days, unit: "DAY" };
                if (o.rollover !== undefined) fields.rollover = { type: o.rollover };
                await tolerate(m.grant(`g${grants++}`, String(o.amount), fields));
              } else if (o.kind === "void") {
                if (grants > 0) await tolerate(m.voidGrant(`g${o.grant % grants}`, day(o.at, 6)));
              } else if (o.kind === "reset") {
                await tolerate(m.reset(day(o.at, 12)));
              } else {
                const version = Math.max(versions.get(o.event) ?? 0, o.version);
                versions.set(o.event, version);
                await tolerate(
                  m.use(`u${o.event}`, (o.amount / 4).toString(), day(o.at, 18), {
                    version,
                    enforce: o.enforce,
                  }),
                );
              }
            }
            await m.expectSameNumbers();
          },
        ),
        { numRuns: runs },
      );
    });
  });
}
