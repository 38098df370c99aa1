import { sumDecimals } from "@latch/core";
import type { CreditLedger } from "@latch/core/adapter";
import fc from "fast-check";
import { beforeEach, describe, expect, it } from "vitest";
import { seededIntegers } from "../../expect-errors.js";
import { uniqueId } from "../../fixtures.js";
import type { CreditLedgerParts } from "./context.js";
import { expectConserved, featureOf } from "./support.js";

/** fast-check properties: conservation, no negative balance, order independence. */
export function propertyCases(suite: CreditLedgerParts): void {
  const { runs } = suite;
  describe("properties", () => {
    let credits: CreditLedger;
    let featureId: string;
    beforeEach(() => {
      ({ credits, featureId } = suite.current());
    });

    const day = (n: number) => new Date(Date.UTC(2026, 0, 1) + n * 86_400_000).toISOString();
    const amountArb = fc.oneof(
      fc.integer({ min: 1, max: 200 }).map(String),
      fc
        .tuple(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 1, max: 99 }))
        .map(([a, b]) => `${a}.${String(b).padStart(2, "0")}`),
    );
    const grantArb = fc.record({
      amount: amountArb,
      priority: fc.integer({ min: 1, max: 3 }),
      start: fc.integer({ min: 0, max: 40 }),
      expiration: fc.option(
        fc.record({
          count: fc.integer({ min: 1, max: 3 }),
          unit: fc.constantFrom("DAY" as const, "WEEK" as const),
        }),
        { nil: undefined },
      ),
      rollover: fc.option(
        fc.record({
          type: fc.constantFrom("ORIGINAL_AMOUNT" as const, "REMAINING_AMOUNT" as const),
          maxAmount: fc.option(amountArb, { nil: undefined }),
        }),
        { nil: undefined },
      ),
      voidAt: fc.option(fc.integer({ min: 0, max: 60 }), { nil: undefined }),
    });
    const scenarioArb = fc.record({
      grants: fc.array(grantArb, { minLength: 1, maxLength: 5 }),
      resets: fc.uniqueArray(fc.integer({ min: 1, max: 60 }), { maxLength: 2 }),
      usage: fc.array(fc.record({ amount: amountArb, at: fc.integer({ min: 0, max: 60 }) }), {
        minLength: 1,
        maxLength: 12,
      }),
      seed: fc.integer(),
    });
    type Scenario = typeof scenarioArb extends fc.Arbitrary<infer S> ? S : never;
    /** The same scenarios for a money feature, whose usage may be a refund (negative). */
    const refundScenarioArb: fc.Arbitrary<Scenario> = scenarioArb.chain((s) =>
      fc.array(fc.boolean(), { minLength: s.usage.length, maxLength: s.usage.length }).map((negative) => ({
        ...s,
        usage: s.usage.map((u, i) => (negative[i] ? { ...u, amount: `-${u.amount}` } : u)),
      })),
    );
    const moneyFeature = async () => {
      const id = uniqueId("usd");
      await credits.createFeature({ featureId: id, measure: { kind: "money", currency: "USD" } });
      return id;
    };

    /** Sets up a fresh ledger with the scenario's grants, voids and resets; usage in `order`. */
    async function apply(s: Scenario, order: number[], feature = featureId): Promise<string> {
      const id = uniqueId("prop");
      await credits.createLedger({ ledgerId: id, subject: { tenantId: "prop" } });
      for (const [i, g] of s.grants.entries()) {
        await credits.grant({
          grantId: `${id}:g${i}`,
          ledgerId: id,
          featureId: feature,
          amount: g.amount,
          priority: g.priority,
          effectiveAt: day(g.start),
          ...(g.expiration ? { expiration: g.expiration } : {}),
          ...(g.rollover ? { rollover: g.rollover.maxAmount ? g.rollover : { type: g.rollover.type } } : {}),
        });
      }
      for (const [i, g] of s.grants.entries()) {
        if (g.voidAt !== undefined)
          await credits.voidGrant({ ledgerId: id, grantId: `${id}:g${i}`, at: day(g.voidAt) });
      }
      for (const r of [...s.resets].sort((a, b) => a - b)) await credits.reset({ ledgerId: id, at: day(r) });
      for (const i of order) {
        const u = s.usage[i] as Scenario["usage"][number];
        await credits.recordUsage({
          ledgerId: id,
          featureId: feature,
          eventId: `u${i}`,
          amount: u.amount,
          at: day(u.at),
        });
      }
      return id;
    }

    /** Balances with the ledger and grant ids made comparable across ledgers. */
    async function view(id: string, at: string) {
      const b = await credits.balance(id, at);
      return JSON.parse(JSON.stringify({ ...b, ledgerId: "" }).replaceAll(`${id}:`, ""));
    }

    it("granted = balance + burned + expired + voided per grant and in total; nothing is ever negative", async () => {
      await fc.assert(
        fc.asyncProperty(scenarioArb, async (s) => {
          const id = await apply(
            s,
            s.usage.map((_, i) => i),
          );
          for (const at of [0, 7, 15, 30, 45, 61]) expectConserved(await credits.balance(id, day(at)));
          // Usage is never lost: burned + overage = every unit recorded.
          const end = await credits.balance(id, day(61));
          expect(featureOf(end, featureId).usage).toBe(sumDecimals(s.usage.map((u) => u.amount)));
        }),
        { numRuns: runs },
      );
    });

    it("replaying the same usage events in any order gives the same balances and history", async () => {
      await fc.assert(
        fc.asyncProperty(scenarioArb, async (s) => {
          const forward = s.usage.map((_, i) => i);
          const next = seededIntegers(s.seed);
          const shuffled = [...forward];
          for (let i = shuffled.length - 1; i > 0; i--) {
            const j = next(0, i);
            [shuffled[i], shuffled[j]] = [shuffled[j] as number, shuffled[i] as number];
          }
          const a = await apply(s, forward);
          const b = await apply(s, shuffled);
          for (const at of [10, 30, 61]) expect(await view(b, day(at))).toEqual(await view(a, day(at)));
          const h = async (id: string) =>
            JSON.parse(
              JSON.stringify(
                await credits.history({ ledgerId: id, from: day(0), to: day(62), limit: 10_000 }),
              ).replaceAll(`${id}:`, ""),
            );
          expect(await h(b)).toEqual(await h(a));
        }),
        { numRuns: runs },
      );
    });
    it("with refunds (a money feature): every grant conserved, usage = burned + overage, any order the same", async () => {
      const usd = await moneyFeature();
      await fc.assert(
        fc.asyncProperty(refundScenarioArb, async (s) => {
          const forward = s.usage.map((_, i) => i);
          const next = seededIntegers(s.seed);
          const shuffled = [...forward];
          for (let i = shuffled.length - 1; i > 0; i--) {
            const j = next(0, i);
            [shuffled[i], shuffled[j]] = [shuffled[j] as number, shuffled[i] as number];
          }
          const a = await apply(s, forward, usd);
          const b = await apply(s, shuffled, usd);
          for (const at of [0, 7, 15, 30, 45, 61])
            expectConserved(await credits.balance(a, day(at)), { refunds: true });
          const end = await credits.balance(a, day(61));
          expect(featureOf(end, usd).usage).toBe(sumDecimals(s.usage.map((u) => u.amount)));
          for (const at of [10, 30, 61]) expect(await view(b, day(at))).toEqual(await view(a, day(at)));
        }),
        { numRuns: runs },
      );
    });

    it("with one grant covering everything, the credits burned are the net usage (0 when refunds exceed it)", async () => {
      const usd = await moneyFeature();
      await fc.assert(
        fc.asyncProperty(refundScenarioArb, async (s) => {
          const covering = {
            ...s,
            grants: [{ ...(s.grants[0] as Scenario["grants"][number]) }],
            resets: [],
          };
          const only = covering.grants[0] as Scenario["grants"][number];
          Object.assign(only, { amount: "100000", start: 0, expiration: undefined, voidAt: undefined });
          const id = await apply(
            covering,
            s.usage.map((_, i) => i),
            usd,
          );
          const f = featureOf(await credits.balance(id, day(61)), usd);
          const net = sumDecimals(s.usage.map((u) => u.amount));
          expect(f.burned).toBe(net.startsWith("-") ? "0" : net);
          expect(f.overage).toBe(net.startsWith("-") ? net : "0");
        }),
        { numRuns: runs },
      );
    });
  });
}
