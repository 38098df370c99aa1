import type { UsageCounter } from "@latch/core/adapter";
import { beforeEach, describe, expect, it } from "vitest";
import { abortedSignal, expectInvalidInput, expectLatchError, seededIntegers } from "../expect-errors.js";
import { uniqueId } from "../fixtures.js";
import { type ConformanceSuite, type DescribeOptions, describeSuite, type SuiteOptions } from "../suite.js";
import { usageCounterStringCases } from "./strings.js";

export interface UsageCounterSuiteOptions extends SuiteOptions<UsageCounter> {}

/**
 * The `UsageCounter` contract as a vitest suite: `add` is atomic and returns the previous
 * total (1,000 concurrent adds line up in one serial order), keys and periods are isolated,
 * overflow and bad input change nothing; an add with an opId counts once however often it is
 * replayed, raced or retried, and returns the first answer. Every test always runs; none can be switched off.
 *
 * @example
 * runConformance({
 *   name: "memory",
 *   suites: [usageCounterSuite({ create: () => new MemoryUsageCounter() })],
 * });
 */
export function usageCounterSuite(options: UsageCounterSuiteOptions): ConformanceSuite {
  return { name: "UsageCounter", register: (title) => usageCounterTests(title, options) };
}

/**
 * `usageCounterSuite` registered on its own, titled `UsageCounter: <name>`.
 *
 * @deprecated Use `runConformance({ name, suites: [usageCounterSuite(options)] })`.
 */
export function describeUsageCounter(options: UsageCounterSuiteOptions & DescribeOptions): void {
  describeSuite(usageCounterSuite(options), options);
}

function usageCounterTests(title: string, options: UsageCounterSuiteOptions): void {
  describe(title, () => {
    let counter: UsageCounter;
    let key: string;

    beforeEach(async () => {
      counter = await options.create();
      key = uniqueId("usage");
    });

    usageCounterStringCases({ counter: () => counter });

    it("returns the previous total from add, and get reads the current one", async () => {
      expect(await counter.get(key, "2026-03")).toBe(0);
      expect(await counter.add(key, "2026-03", 5)).toBe(0);
      expect(await counter.add(key, "2026-03", 7)).toBe(5);
      expect(await counter.add(key, "2026-03", 0)).toBe(12);
      expect(await counter.get(key, "2026-03")).toBe(12);
    });

    it("lines up 1,000 concurrent adds in one serial order: distinct previous totals that sum up", async () => {
      const next = seededIntegers(20_260_301);
      const quantities = Array.from({ length: 1_000 }, () => next(1, 5_000));
      const previous = await Promise.all(quantities.map((q) => counter.add(key, "2026-03", q)));
      const sum = quantities.reduce((a, b) => a + b, 0);
      expect(await counter.get(key, "2026-03")).toBe(sum);
      expect(new Set(previous).size).toBe(previous.length);
      // Sorted by the total each add saw, every add starts where the one before it ended.
      const order = quantities
        .map((q, i) => ({ q, prev: previous[i] as number }))
        .sort((a, b) => a.prev - b.prev);
      expect(order[0]?.prev).toBe(0);
      for (let i = 0; i + 1 < order.length; i++) {
        const here = order[i] as { q: number; prev: number };
        expect((order[i + 1] as { prev: number }).prev).toBe(here.prev + here.q);
      }
      const last = order[order.length - 1] as { q: number; prev: number };
      expect(last.prev + last.q).toBe(sum);
    });

    it("keeps keys and periods apart", async () => {
      const other = uniqueId("usage");
      await counter.add(key, "2026-03", 10);
      await counter.add(key, "2026-04", 20);
      await counter.add(other, "2026-03", 30);
      expect(await counter.get(key, "2026-03")).toBe(10);
      expect(await counter.get(key, "2026-04")).toBe(20);
      expect(await counter.get(other, "2026-03")).toBe(30);
      expect(await counter.get(other, "2026-04")).toBe(0);
      // Keys that would collide if naively joined stay apart.
      await counter.add(`${key}:a`, "b", 1);
      await counter.add(key, "a:b", 2);
      expect(await counter.get(`${key}:a`, "b")).toBe(1);
      expect(await counter.get(key, "a:b")).toBe(2);
    });

    it("counts up to 2^53-1 exactly and rejects a total past it as overflow, changing nothing", async () => {
      expect(await counter.add(key, "2026-03", Number.MAX_SAFE_INTEGER - 1)).toBe(0);
      expect(await counter.add(key, "2026-03", 1)).toBe(Number.MAX_SAFE_INTEGER - 1);
      await expectLatchError(counter.add(key, "2026-03", 1), "overflow");
      expect(await counter.get(key, "2026-03")).toBe(Number.MAX_SAFE_INTEGER);
    });

    it("rejects bad input naming the field, and counts nothing", async () => {
      await expectInvalidInput(counter.add(key, "2026-03", -1), "quantity");
      await expectInvalidInput(counter.add(key, "2026-03", 1.5), "quantity");
      await expectInvalidInput(counter.add(key, "2026-03", Number.NaN), "quantity");
      await expectInvalidInput(counter.add(key, "2026-03", 2 ** 53), "quantity");
      await expectInvalidInput(counter.add("", "2026-03", 1), "key");
      await expectInvalidInput(counter.add(key, "", 1), "period");
      expect(await counter.get(key, "2026-03")).toBe(0);
    });

    it("rejects an aborted add and counts nothing", async () => {
      await expect(counter.add(key, "2026-03", 5, abortedSignal())).rejects.toThrow();
      await expect(
        counter.add(key, "2026-03", 5, { opId: "op-1", signal: abortedSignal() }),
      ).rejects.toThrow();
      expect(await counter.get(key, "2026-03")).toBe(0);
    });

    describe("operation ids (an event counted once)", () => {
      it("a replayed add returns the first answer and counts nothing again", async () => {
        expect(await counter.add(key, "2026-03", 2_000, { opId: "evt-1" })).toBe(0);
        expect(await counter.add(key, "2026-03", 500, { opId: "evt-2" })).toBe(2_000);
        // Re-rated three times (the bug this guards against counted 2000 → 4000 → 6000 → 8000).
        for (let i = 0; i < 3; i++)
          expect(await counter.add(key, "2026-03", 2_000, { opId: "evt-1" })).toBe(0);
        expect(await counter.add(key, "2026-03", 500, { opId: "evt-2" })).toBe(2_000);
        expect(await counter.get(key, "2026-03")).toBe(2_500);
        // Adds without an opId are not deduplicated.
        expect(await counter.add(key, "2026-03", 1)).toBe(2_500);
        expect(await counter.add(key, "2026-03", 1)).toBe(2_501);
      });

      it("200 concurrent adds of one opId (raced workers, retries) count once and all get the same answer", async () => {
        await counter.add(key, "2026-03", 7, { opId: "before" });
        const answers = await Promise.all(
          Array.from({ length: 200 }, (_, i) =>
            i % 2 === 0
              ? counter.add(key, "2026-03", 1_000, { opId: "raced" })
              : counter.add(key, "2026-03", 1, { opId: `other-${i}` }),
          ),
        );
        const raced = answers.filter((_, i) => i % 2 === 0);
        expect(new Set(raced).size).toBe(1);
        expect(await counter.get(key, "2026-03")).toBe(7 + 1_000 + 100);
        // Every add, replays included, sees a total consistent with one serial order: the
        // distinct answers are 101 adds' starting points.
        const distinct = [...new Set(answers)].sort((a, b) => a - b);
        expect(distinct.length).toBe(101);
        expect(distinct[0]).toBe(7);
      });

      it("an opId replayed with another quantity is an idempotency conflict and changes nothing", async () => {
        expect(await counter.add(key, "2026-03", 40, { opId: "evt-x" })).toBe(0);
        const error = await expectLatchError(
          counter.add(key, "2026-03", 41, { opId: "evt-x" }),
          "idempotency_conflict",
        );
        expect(error.message).not.toContain("41");
        expect(await counter.get(key, "2026-03")).toBe(40);
      });

      it("scopes an opId to its key and period", async () => {
        const other = uniqueId("usage");
        expect(await counter.add(key, "2026-03", 5, { opId: "evt-s" })).toBe(0);
        expect(await counter.add(key, "2026-04", 6, { opId: "evt-s" })).toBe(0);
        expect(await counter.add(other, "2026-03", 7, { opId: "evt-s" })).toBe(0);
        expect(await counter.get(key, "2026-03")).toBe(5);
        expect(await counter.get(key, "2026-04")).toBe(6);
        expect(await counter.get(other, "2026-03")).toBe(7);
      });

      it("an add that overflows records no operation: a replay is evaluated afresh", async () => {
        await counter.add(key, "2026-03", Number.MAX_SAFE_INTEGER - 1);
        await expectLatchError(counter.add(key, "2026-03", 5, { opId: "evt-o" }), "overflow");
        expect(await counter.add(key, "2026-03", 1, { opId: "evt-o" })).toBe(Number.MAX_SAFE_INTEGER - 1);
      });

      it("rejects a bad opId naming the field, and counts nothing", async () => {
        await expectInvalidInput(counter.add(key, "2026-03", 1, { opId: "" }), "opId");
        await expectInvalidInput(counter.add(key, "2026-03", 1, { opId: "x".repeat(513) }), "opId");
        await expectInvalidInput(counter.add(key, "2026-03", 1, { opId: 7 as unknown as string }), "opId");
        expect(await counter.get(key, "2026-03")).toBe(0);
      });

      it("ids with a lone surrogate or U+0000 are refused as invalid_input or stored exactly: never aliased, never an untyped error", async () => {
        // Drivers encode a lone surrogate as U+FFFD: x\uD800, x\uDC00 and x\uFFFD would be one id.
        const hostile = ["x\uD800", "x\uDC00", "x\uFFFD", "x\u0000"];
        /** Adds 1 with `value` in `field`; true when stored, false when refused as invalid_input. */
        const attempt = async (field: "key" | "period" | "opId", value: string): Promise<boolean> => {
          const add =
            field === "key"
              ? counter.add(`${key}${value}`, "2026-03", 1, { opId: "evt-h" })
              : field === "period"
                ? counter.add(key, `2026-03${value}`, 1, { opId: "evt-h" })
                : counter.add(key, "2026-05", 1, { opId: value });
          const outcome = await add.then(
            () => true,
            (e: unknown) => e,
          );
          if (outcome === true) return true;
          await expectInvalidInput(Promise.reject(outcome), field);
          return false;
        };
        for (const field of ["key", "period", "opId"] as const) {
          const stored: string[] = [];
          for (const value of hostile) if (await attempt(field, value)) stored.push(value);
          // Each stored id is its own counter or operation: one add each, none merged.
          for (const value of stored) {
            if (field === "key") expect(await counter.get(`${key}${value}`, "2026-03")).toBe(1);
            if (field === "period") expect(await counter.get(key, `2026-03${value}`)).toBe(1);
          }
          if (field === "opId") expect(await counter.get(key, "2026-05")).toBe(stored.length);
        }
      });

      it("stores opIds exactly: ids differing only in case, separators or trailing spaces stay apart", async () => {
        const ids = ["evt|a", "evt:a", "EVT|a", "evt|a ", "evt\ta", "évt|a"];
        for (const [i, opId] of ids.entries()) expect(await counter.add(key, "2026-03", 1, { opId })).toBe(i);
        for (const [i, opId] of ids.entries()) expect(await counter.add(key, "2026-03", 1, { opId })).toBe(i);
        expect(await counter.get(key, "2026-03")).toBe(ids.length);
      });
    });
  });
}
