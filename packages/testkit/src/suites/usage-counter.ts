import type { UsageCounter } from "@latch/core";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { abortedSignal, expectInvalidInput, expectLatchError, seededIntegers } from "../expect-errors.js";
import { uniqueId } from "../fixtures.js";
import { usageCounterStringCases } from "./strings.js";

export interface UsageCounterSuiteOptions {
  /** Shown in the test names, e.g. `redis` or `memory`. */
  name: string;
  /** A counter to test. Called before every test; tests use fresh keys, so a shared backend is fine. */
  create: () => Promise<UsageCounter> | UsageCounter;
  /** Runs once after the suite (close clients, delete test keys). */
  cleanup?: () => Promise<void> | void;
}

/**
 * The `UsageCounter` contract as a vitest suite: `add` is atomic and returns the previous
 * total (1,000 concurrent adds line up in one serial order), keys and periods are isolated,
 * overflow and bad input change nothing. Every test always runs; none can be switched off.
 *
 * @example
 * describeUsageCounter({ name: "memory", create: () => new MemoryUsageCounter() });
 */
export function describeUsageCounter(options: UsageCounterSuiteOptions): void {
  describe(`UsageCounter: ${options.name}`, () => {
    let counter: UsageCounter;
    let key: string;

    beforeEach(async () => {
      counter = await options.create();
      key = uniqueId("usage");
    });

    afterAll(async () => {
      await options.cleanup?.();
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
      expect(await counter.get(key, "2026-03")).toBe(0);
    });
  });
}
