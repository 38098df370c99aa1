import type { UsageObservation } from "@latch/core";
import { type ObservationStore, observationHash } from "@latch/core/adapter";
import { beforeEach, describe, expect, it } from "vitest";
import { abortedSignal, expectInvalidInput, expectLatchError } from "../expect-errors.js";
import { makeObservation, uniqueId } from "../fixtures.js";
import { type ConformanceSuite, type DescribeOptions, describeSuite, type SuiteOptions } from "../suite.js";
import { observationStoreStringCases } from "./strings.js";

/** Reads the backend directly, without going through the adapter under test. */
export interface ObservationStoreInspector {
  /** How many stored copies of `eventId` the backend holds (rows, keys): 0 or 1 when correct. */
  countObservations(eventId: string): Promise<number>;
}

export interface ObservationStoreSuiteOptions extends SuiteOptions<ObservationStore> {
  /** An independent raw reader of the backend; when given, writes are also checked through it. */
  inspect?: ObservationStoreInspector;
}

/**
 * The `ObservationStore` contract as a vitest suite: idempotent appends compared by canonical
 * hash, conflicts that overwrite nothing, all-or-nothing batches, unpriced paging, input
 * validation. Every test always runs; none can be switched off.
 *
 * @example
 * runConformance({
 *   name: "memory",
 *   suites: [observationStoreSuite({ create: () => new MemoryObservationStore() })],
 * });
 */
export function observationStoreSuite(options: ObservationStoreSuiteOptions): ConformanceSuite {
  return { name: "ObservationStore", register: (title) => observationStoreTests(title, options) };
}

/**
 * `observationStoreSuite` registered on its own, titled `ObservationStore: <name>`.
 *
 * @deprecated Use `runConformance({ name, suites: [observationStoreSuite(options)] })`.
 */
export function describeObservationStore(options: ObservationStoreSuiteOptions & DescribeOptions): void {
  describeSuite(observationStoreSuite(options), options);
}

function observationStoreTests(title: string, options: ObservationStoreSuiteOptions): void {
  describe(title, () => {
    let store: ObservationStore;
    let prefix: string;

    beforeEach(async () => {
      store = await options.create();
      prefix = uniqueId("obs");
    });

    observationStoreStringCases({
      store: () => store,
      prefix: () => prefix,
      ...(options.inspect === undefined ? {} : { countObservations: options.inspect.countObservations }),
    });

    /** An observation whose eventId starts with this test's prefix. */
    const observation = (n: number, overrides: Partial<UsageObservation> = {}): UsageObservation =>
      makeObservation({ eventId: `${prefix}-${String(n).padStart(4, "0")}:0:openai`, ...overrides });

    async function expectStoredCopies(eventId: string, expected: number): Promise<void> {
      if (options.inspect !== undefined) {
        expect(await options.inspect.countObservations(eventId)).toBe(expected);
      }
      if (expected === 0) expect(await store.get(eventId)).toBeUndefined();
      else expect(await store.get(eventId)).toBeDefined();
    }

    /** Every unpriced eventId of this test, paging with `limit`, checking each page's size. */
    async function listUnpricedOfThisTest(limit: number): Promise<string[]> {
      const seen: string[] = [];
      let after: string | undefined = prefix;
      for (let pages = 0; pages < 10_000; pages++) {
        const page = await store.listUnpriced({ after, limit });
        expect(page.items.length).toBeLessThanOrEqual(limit);
        for (const item of page.items) {
          if (!item.eventId.startsWith(prefix)) return seen;
          seen.push(item.eventId);
        }
        if (page.next === undefined) return seen;
        after = page.next;
      }
      throw new Error("listUnpriced never reached the end");
    }

    it("appends a new observation and reads it back unchanged", async () => {
      const obs = observation(1);
      expect(await store.append(obs)).toBe("appended");
      expect(await store.get(obs.eventId)).toEqual(obs);
      await expectStoredCopies(obs.eventId, 1);
    });

    it("returns undefined for an event that was never appended", async () => {
      expect(await store.get(`${prefix}-missing:0:openai`)).toBeUndefined();
    });

    it("stores a duplicate append once and answers already_exists", async () => {
      const obs = observation(1);
      expect(await store.append(obs)).toBe("appended");
      expect(await store.append(structuredClone(obs))).toBe("already_exists");
      expect(await store.append(obs)).toBe("already_exists");
      await expectStoredCopies(obs.eventId, 1);
      expect(await store.get(obs.eventId)).toEqual(obs);
    });

    it("treats the same payload with its keys in another order as a duplicate", async () => {
      const obs = observation(1);
      await store.append(obs);
      const reordered = Object.fromEntries(
        Object.entries(structuredClone(obs)).reverse(),
      ) as UsageObservation;
      expect(await store.append(reordered)).toBe("already_exists");
    });

    it("rejects the same eventId with a different payload as a conflict and keeps the stored payload", async () => {
      const original = observation(1);
      await store.append(original);
      const changed = { ...structuredClone(original), meters: { input_tokens: 999_999 } };
      const error = await expectLatchError(store.append(changed), "idempotency_conflict");
      expect(error).toMatchObject({
        id: original.eventId,
        existingHash: observationHash(original),
        incomingHash: observationHash(changed),
      });
      expect(await store.get(original.eventId)).toEqual(original);
      await expectStoredCopies(original.eventId, 1);
    });

    it("appends a batch and answers in input order", async () => {
      const existing = observation(1);
      await store.append(existing);
      const a = observation(2);
      const b = observation(3);
      expect(await store.appendMany([a, existing, b])).toEqual(["appended", "already_exists", "appended"]);
      expect(await store.get(a.eventId)).toEqual(a);
      expect(await store.get(b.eventId)).toEqual(b);
    });

    it("answers appended then already_exists for the same payload twice in one batch", async () => {
      const obs = observation(1);
      expect(await store.appendMany([obs, structuredClone(obs)])).toEqual(["appended", "already_exists"]);
      await expectStoredCopies(obs.eventId, 1);
    });

    it("writes nothing from a batch in which one observation conflicts with the store", async () => {
      const stored = observation(1);
      await store.append(stored);
      const fresh1 = observation(2);
      const fresh2 = observation(3);
      const conflicting = { ...structuredClone(stored), outcome: { kind: "timeout" as const } };
      await expectLatchError(store.appendMany([fresh1, conflicting, fresh2]), "idempotency_conflict");
      await expectStoredCopies(fresh1.eventId, 0);
      await expectStoredCopies(fresh2.eventId, 0);
      expect(await store.get(stored.eventId)).toEqual(stored);
    });

    it("writes nothing from a batch that holds two payloads for one eventId", async () => {
      const first = observation(1);
      const other = observation(2);
      const second = { ...structuredClone(first), meters: { output_tokens: 7 } };
      await expectLatchError(store.appendMany([other, first, second]), "idempotency_conflict");
      await expectStoredCopies(first.eventId, 0);
      await expectStoredCopies(other.eventId, 0);
    });

    it("lists every unpriced observation exactly once, in eventId order, page by page", async () => {
      const numbers = Array.from({ length: 23 }, (_, i) => i);
      // Append out of order, in batches and one by one: the listing order is the eventId order.
      const shuffled = [...numbers].sort((x, y) => ((x * 7) % 23) - ((y * 7) % 23));
      await store.appendMany(shuffled.slice(0, 10).map((n) => observation(n)));
      for (const n of shuffled.slice(10)) await store.append(observation(n));
      const expected = numbers.map((n) => observation(n).eventId);
      expect(await listUnpricedOfThisTest(5)).toEqual(expected);
      expect(await listUnpricedOfThisTest(1)).toEqual(expected);
      expect(await listUnpricedOfThisTest(100)).toEqual(expected);
    });

    it("removes priced observations from the unpriced list, idempotently, ignoring unknown ids", async () => {
      const all = [0, 1, 2, 3, 4].map((n) => observation(n));
      await store.appendMany(all);
      const priced = [all[1], all[3]].map((o) => (o as UsageObservation).eventId);
      await store.markPriced(priced);
      await store.markPriced([...priced, `${prefix}-unknown:0:openai`]);
      expect(await listUnpricedOfThisTest(2)).toEqual([0, 2, 4].map((n) => observation(n).eventId));
      // Priced observations stay readable.
      expect(await store.get(priced[0] as string)).toEqual(all[1]);
    });

    it("keeps the stored observation unchanged when the caller mutates its objects", async () => {
      const obs = observation(1);
      const expected = structuredClone(obs);
      await store.append(obs);
      (obs.meters as Record<string, number>).input_tokens = 1;
      obs.subject.tenantId = "someone-else";
      expect(await store.get(obs.eventId)).toEqual(expected);
      const read = (await store.get(obs.eventId)) as UsageObservation;
      try {
        (read.meters as Record<string, number>).output_tokens = 1;
      } catch {
        // Frozen results are fine: mutation must simply not reach the store.
      }
      expect(await store.get(obs.eventId)).toEqual(expected);
    });

    it("rejects a bad observation naming the field, and writes nothing", async () => {
      const negative = observation(1, { meters: { input_tokens: -1 } });
      await expectInvalidInput(store.append(negative), "meters.input_tokens");
      await expectStoredCopies(negative.eventId, 0);

      const fraction = observation(2, { meters: { output_tokens: 1.5 } });
      await expectInvalidInput(store.append(fraction), "meters.output_tokens");
      await expectStoredCopies(fraction.eventId, 0);

      const noTenant = observation(3, { subject: { tenantId: "" } });
      await expectInvalidInput(store.append(noTenant), "subject.tenantId");

      const backwards = observation(4, {
        timing: { startedAt: "2026-03-01T12:00:01Z", completedAt: "2026-03-01T12:00:00Z" },
      });
      await expectInvalidInput(store.append(backwards), "timing.completedAt");
      await expectStoredCopies(backwards.eventId, 0);
    });

    it("rejects a batch with one bad observation, naming the field, and writes none of it", async () => {
      const good = observation(1);
      const bad = observation(2, { meters: { "not-a-meter": 3 } as Record<string, number> });
      await expectInvalidInput(store.appendMany([good, bad]), "meters.not-a-meter");
      await expectStoredCopies(good.eventId, 0);
      await expectStoredCopies(bad.eventId, 0);
    });

    it("rejects a bad listUnpriced limit naming limit", async () => {
      await expectInvalidInput(store.listUnpriced({ limit: 0 }), "limit");
      await expectInvalidInput(store.listUnpriced({ limit: 2.5 }), "limit");
    });

    it("rejects an aborted call and writes nothing", async () => {
      const obs = observation(1);
      await expect(store.append(obs, abortedSignal())).rejects.toThrow();
      await expect(store.appendMany([observation(2)], abortedSignal())).rejects.toThrow();
      await expectStoredCopies(obs.eventId, 0);
      await expectStoredCopies(observation(2).eventId, 0);
    });
  });
}
