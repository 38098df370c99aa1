import { Buffer } from "node:buffer";
import {
  DefaultRatingEngine,
  type LatchError,
  type LinesQuery,
  type MeterSet,
  type PriceSnapshot,
  type RatedUsageRecord,
  type SummaryQuery,
  type SummaryRow,
  sumDecimals,
  summarize,
  type UsageObservation,
} from "@latch/core";
import {
  type ChangeLogEntry,
  checkVersionChain,
  compareLinesSortKeys,
  decodeLinesCursor,
  encodeLinesCursor,
  type LinesSortKey,
  type RatedRecordStore,
  ratedRecordHash,
  selectLines,
  TOKEN_GROUP_NAMES,
  tokenGroupsOf,
} from "@latch/core/adapter";
import { toBillingRecord } from "@latch/core/export";
import fc from "fast-check";
import { beforeEach, describe, expect, it } from "vitest";
import { abortedSignal, expectInvalidInput, expectLatchError, yieldToOthers } from "../expect-errors.js";
import { makeCorrection, makeObservation, makeRatedRecord, makeSnapshot, uniqueId } from "../fixtures.js";
import { type ConformanceSuite, type DescribeOptions, describeSuite, type SuiteOptions } from "../suite.js";
import { changeLogStatusCases } from "./change-log-status.js";
import { ratedRecordStoreStringCases } from "./strings.js";

/** Reads the backend directly, without going through the adapter under test. */
export interface RatedRecordStoreInspector {
  /** How many versions of `eventId` the backend holds (rows, keys). */
  countVersions(eventId: string): Promise<number>;
}

export interface RatedRecordStoreSuiteOptions extends SuiteOptions<RatedRecordStore> {
  /** An independent raw reader of the backend; when given, writes are also checked through it. */
  inspect?: RatedRecordStoreInspector;
}

/** A report window that holds every fixture record (they complete in early March 2026). */
const MARCH = { start: "2026-02-20T00:00:00Z", end: "2026-04-01T00:00:00Z" } as const;
const DAY_MS = 86_400_000;
const BASE_MS = Date.parse("2026-03-01T00:00:00Z");

/** Follows the change log from `cursor` until a page comes back empty; returns every entry and the final cursor. */
async function drain(
  store: RatedRecordStore,
  cursor: string | undefined,
  limit = 500,
): Promise<{ entries: ChangeLogEntry[]; cursor: string | undefined }> {
  const entries: ChangeLogEntry[] = [];
  for (let pages = 0; pages < 100_000; pages++) {
    const page = await store.listSince(cursor, limit);
    expect(page.items.length).toBeLessThanOrEqual(limit);
    if (page.items.length === 0) {
      expect(page.cursor).toBe(cursor);
      return { entries, cursor };
    }
    entries.push(...page.items);
    cursor = page.cursor;
  }
  throw new Error("listSince never reached the end");
}

/**
 * Follows the change log from `cursor` until `done(entries)` holds, for up to a minute. A
 * change log that never skips (Postgres) holds back rows while any older transaction on the
 * server is still open — another test run's, on a shared server — so what a test just wrote
 * may appear a little later; it must appear, once, in order.
 */
async function drainUntil(
  store: RatedRecordStore,
  cursor: string | undefined,
  done: (entries: ChangeLogEntry[]) => boolean,
  limit = 500,
): Promise<{ entries: ChangeLogEntry[]; cursor: string | undefined }> {
  const entries: ChangeLogEntry[] = [];
  const deadline = Date.now() + 60_000;
  for (;;) {
    const page = await drain(store, cursor, limit);
    entries.push(...page.entries);
    cursor = page.cursor;
    if (done(entries) || Date.now() > deadline) return { entries, cursor };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The seqs of consecutive pages must strictly increase (as integers): one total order. */
function expectIncreasingSeqs(entries: readonly ChangeLogEntry[]): void {
  let previous = -1n;
  for (const { seq } of entries) {
    expect(seq).toMatch(/^[0-9]+$/);
    const value = BigInt(seq);
    expect(value > previous, `seq ${seq} after ${previous}`).toBe(true);
    previous = value;
  }
}

/** The error `fn` throws (the test fails when it returns). */
function thrownBy(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  return expect.fail("expected a throw");
}

/** What a caller sees of an error: its class, code, message and the fields naming what failed. */
function errorFields(error: unknown): Record<string, unknown> {
  const e = error as Record<string, unknown> & Error;
  const fields: Record<string, unknown> = { name: e.name, message: e.message };
  for (const key of ["code", "issues", "path", "expected", "actual", "eventId", "reason"]) {
    if (e[key] !== undefined) fields[key] = e[key];
  }
  return fields;
}

/** The highest version of each event among `records`. */
function currentOf(records: readonly RatedUsageRecord[]): RatedUsageRecord[] {
  const byEvent = new Map<string, RatedUsageRecord>();
  for (const r of records) {
    const seen = byEvent.get(r.eventId);
    if (seen === undefined || r.version > seen.version) byEvent.set(r.eventId, r);
  }
  return [...byEvent.values()];
}

const metersArbitrary: fc.Arbitrary<MeterSet> = fc.record({
  input_tokens: fc.nat({ max: 50_000 }),
  cached_input_tokens: fc.nat({ max: 20_000 }),
  cache_write_tokens: fc.nat({ max: 5_000 }),
  output_tokens: fc.nat({ max: 8_000 }),
  reasoning_tokens: fc.nat({ max: 2_000 }),
  audio_input_tokens: fc.constantFrom(0, 0, 0, 120),
});

const eventArbitrary = fc.record({
  provider: fc.constantFrom("openai", "anthropic", undefined),
  model: fc.constantFrom("gpt-4o", "claude-sonnet-4"),
  currency: fc.constantFrom("USD", "EUR"),
  projectId: fc.constantFrom("p-1", "p-2", undefined),
  feature: fc.constantFrom("chat", "search", undefined),
  atMs: fc.integer({ min: 0, max: 4 * DAY_MS - 1 }),
  outcome: fc.constantFrom<UsageObservation["outcome"]>(
    { kind: "success" },
    { kind: "success" },
    { kind: "error", code: "rate_limited" },
    { kind: "timeout" },
  ),
  meters: metersArbitrary,
  corrections: fc.array(metersArbitrary, { maxLength: 2 }),
});

/**
 * The `RatedRecordStore` contract as a vitest suite: idempotent, ratedAt-insensitive puts;
 * conflicts that overwrite nothing; version chains; all-or-nothing batches; a change log that
 * hands out every version exactly once under concurrent writers; forward-only consumer
 * cursors; `changeLogStatus` (cursor, ready versions, count limit); and reports equal to the reference `summarize` / `selectLines`. Every test always
 * runs; none can be switched off.
 *
 * @example
 * runConformance({
 *   name: "memory",
 *   suites: [ratedRecordStoreSuite({ create: () => new MemoryRatedRecordStore() })],
 * });
 */
export function ratedRecordStoreSuite(options: RatedRecordStoreSuiteOptions): ConformanceSuite {
  return { name: "RatedRecordStore", register: (title) => ratedRecordStoreTests(title, options) };
}

/**
 * `ratedRecordStoreSuite` registered on its own, titled `RatedRecordStore: <name>`.
 *
 * @deprecated Use `runConformance({ name, suites: [ratedRecordStoreSuite(options)] })`.
 */
export function describeRatedRecordStore(options: RatedRecordStoreSuiteOptions & DescribeOptions): void {
  describeSuite(ratedRecordStoreSuite(options), options);
}

function ratedRecordStoreTests(title: string, options: RatedRecordStoreSuiteOptions): void {
  describe(title, () => {
    let store: RatedRecordStore;
    let prefix: string;
    let tenantId: string;

    beforeEach(async () => {
      store = await options.create();
      prefix = uniqueId("rr");
      tenantId = uniqueId("tenant");
    });

    ratedRecordStoreStringCases({
      store: () => store,
      prefix: () => prefix,
      ...(options.inspect === undefined ? {} : { countVersions: options.inspect.countVersions }),
    });

    /** A version-1 record of this test's tenant, event `<prefix>-<n>:0:openai`. */
    const record = (n: number | string, observation: Partial<UsageObservation> = {}, currency = "USD") =>
      makeRatedRecord({
        observation: { eventId: `${prefix}-${n}:0:openai`, subject: { tenantId }, ...observation },
        currency,
      });

    changeLogStatusCases({ store: () => store, record: (n) => record(`status-${n}`) });

    async function expectVersions(eventId: string, expected: number): Promise<void> {
      if (options.inspect !== undefined) expect(await options.inspect.countVersions(eventId)).toBe(expected);
    }

    it("stores a record; current and get return it", async () => {
      const v1 = record(1);
      expect(await store.put(v1)).toBe("stored");
      expect(await store.current(v1.eventId)).toEqual(v1);
      expect(await store.get(v1.ratedRecordId)).toEqual(v1);
      await expectVersions(v1.eventId, 1);
    });

    it("keeps a record's model match (the rule and the matched id) through reads, the change log and a correction", async () => {
      const modelMatch = { rule: "dated_suffix", matchedModel: "gpt-4o" } as const;
      const v1 = makeRatedRecord({
        observation: {
          eventId: `${prefix}-m:0:openai`,
          subject: { tenantId },
          model: { billableModel: "gpt-4o-2024-08-06" },
        },
        modelMatch,
      });
      expect(v1.modelMatch).toEqual(modelMatch);
      const cursor = (await drain(store, undefined)).cursor;
      expect(await store.put(v1)).toBe("stored");
      expect(await store.current(v1.eventId)).toEqual(v1);
      expect(await store.get(v1.ratedRecordId)).toEqual(v1);
      const v2 = makeCorrection(v1, { input_tokens: 900, output_tokens: 450 });
      expect(await store.put(v2)).toBe("stored");
      const logged = (
        await drainUntil(store, cursor, (es) => es.filter((e) => e.record.eventId === v1.eventId).length >= 2)
      ).entries
        .map((e) => e.record)
        .filter((r) => r.eventId === v1.eventId);
      expect(logged).toEqual([v1, v2]);
      expect((await store.current(v1.eventId))?.modelMatch).toEqual(modelMatch);
      // The match is part of the record: the same version matched another way is a conflict.
      const other = { ...v1, modelMatch: { rule: "alias", matchedModel: "gpt-4o" } } as RatedUsageRecord;
      await expectLatchError(store.put(other), "idempotency_conflict");
      expect(await store.get(v1.ratedRecordId)).toEqual(v1);
    });

    it("returns undefined for an unknown event or version", async () => {
      expect(await store.current(`${prefix}-missing:0:openai`)).toBeUndefined();
      expect(await store.get(`${prefix}-missing:0:openai:v1`)).toBeUndefined();
    });

    it("answers already_exists for the same record again, even rated at another time", async () => {
      const v1 = record(1);
      await store.put(v1);
      expect(await store.put(structuredClone(v1))).toBe("already_exists");
      const reRated = { ...structuredClone(v1), ratedAt: "2026-03-09T00:00:00Z" };
      expect(await store.put(reRated)).toBe("already_exists");
      expect(await store.get(v1.ratedRecordId)).toEqual(v1);
      await expectVersions(v1.eventId, 1);
    });

    it("rejects a different record under the same ratedRecordId as a conflict and keeps the stored one", async () => {
      const v1 = record(1);
      await store.put(v1);
      const other = { ...structuredClone(v1), total: "123.45" };
      const error = await expectLatchError(store.put(other), "idempotency_conflict");
      expect(error).toMatchObject({
        id: v1.ratedRecordId,
        existingHash: ratedRecordHash(v1),
        incomingHash: ratedRecordHash(other),
      });
      expect(await store.get(v1.ratedRecordId)).toEqual(v1);
      await expectVersions(v1.eventId, 1);
    });

    it("keeps both versions of a correction; current is the newest and reports count only it", async () => {
      const v1 = record(1, { meters: { input_tokens: 1_000, output_tokens: 100 } });
      const v2 = makeCorrection(v1, { input_tokens: 4_000, output_tokens: 300 });
      expect(v2.total).not.toBe(v1.total);
      expect(await store.put(v1)).toBe("stored");
      expect(await store.put(v2)).toBe("stored");
      expect(await store.get(v1.ratedRecordId)).toEqual(v1);
      expect(await store.get(v2.ratedRecordId)).toEqual(v2);
      expect(await store.current(v1.eventId)).toEqual(v2);
      await expectVersions(v1.eventId, 2);

      const rows = await store.summary({ ...MARCH, groupBy: [], filters: { tenantId } });
      expect(rows).toEqual([
        {
          group: {},
          inputTokens: 4_000,
          outputTokens: 300,
          cacheReadTokens: 0,
          cacheWriteTokens: 0,
          totalTokens: 4_300,
          requests: 1,
          successes: 1,
          failures: 0,
          costByCurrency: { USD: v2.total },
        },
      ]);
      const page = await store.lines({ ...MARCH, filters: { tenantId }, limit: 10 });
      expect(page.items).toEqual([v2]);
      expect(page.next).toBeUndefined();
    });

    it("rejects a correction whose superseded version is not stored, naming supersedes", async () => {
      const v1 = record(1);
      const v2 = makeCorrection(v1, { input_tokens: 10 });
      await expectInvalidInput(store.put(v2), "supersedes");
      expect(await store.current(v1.eventId)).toBeUndefined();
      expect(await store.get(v2.ratedRecordId)).toBeUndefined();
      await expectVersions(v1.eventId, 0);
    });

    it("refuses every broken version chain with the error of core's checkVersionChain, in a put and in a batch, writing nothing", async () => {
      const v1 = record(1);
      const other = record(2);
      await store.put(v1);
      const v2 = makeCorrection(v1, { input_tokens: 10 });
      const v3 = makeCorrection(v2, { input_tokens: 20 });
      const broken: RatedUsageRecord[] = [
        { ...other, ratedRecordId: `${other.eventId}:v2` },
        { ...other, observation: { ...other.observation, eventId: v1.eventId } },
        { ...other, supersedes: v1.ratedRecordId },
        { ...v2, supersedes: `${v1.eventId}:v7` },
        { ...v2, supersedes: undefined },
        v3, // its v2 is not stored
        makeCorrection(v1, { input_tokens: 30 }, { currency: "EUR" }),
      ];
      const stored = new Map([[v1.ratedRecordId, v1]]);
      for (const bad of broken) {
        for (const [prefix, write] of [
          ["", () => store.put(bad)],
          ["1", () => store.putMany([record(3), bad])],
        ] as const) {
          const expected = thrownBy(() => checkVersionChain(bad, prefix, (id) => stored.get(id)));
          const error = await expectLatchError(write(), (expected as LatchError).code);
          expect(errorFields(error)).toEqual(errorFields(expected));
        }
      }
      expect(await store.current(v1.eventId)).toEqual(v1);
      expect(await store.current(other.eventId)).toBeUndefined();
      expect(await store.current(record(3).eventId)).toBeUndefined();
      await expectVersions(v1.eventId, 1);
    });

    it("rejects a version 2 that supersedes anything but version 1, naming supersedes", async () => {
      const v1 = record(1);
      await store.put(v1);
      const v2 = { ...makeCorrection(v1, { input_tokens: 10 }), supersedes: `${v1.eventId}:v7` };
      await expectInvalidInput(store.put(v2), "supersedes");
      expect(await store.current(v1.eventId)).toEqual(v1);
    });

    it("refuses a correction in another currency than the version it supersedes, naming the event and field; nothing is written", async () => {
      const v1 = record(1, { meters: { input_tokens: 1_000, output_tokens: 100 } });
      await store.put(v1);
      const inEuros = makeCorrection(v1, { input_tokens: 2_000, output_tokens: 100 }, { currency: "EUR" });
      const error = await expectLatchError(store.put(inEuros), "currency_mismatch");
      expect(error).toMatchObject({
        name: "CurrencyMismatchError",
        eventId: v1.eventId,
        path: "currency",
        expected: "USD",
        actual: "EUR",
      });
      // Ids and fields, never amounts.
      expect(error.message).toContain(v1.eventId);
      expect(error.message).not.toContain(inEuros.total);
      expect(await store.get(inEuros.ratedRecordId)).toBeUndefined();
      expect(await store.current(v1.eventId)).toEqual(v1);
      await expectVersions(v1.eventId, 1);
      // The event's chain is intact: a correction in its own currency is still taken.
      const inDollars = makeCorrection(v1, { input_tokens: 2_000, output_tokens: 100 });
      expect(await store.put(inDollars)).toBe("stored");
      expect(await store.current(v1.eventId)).toEqual(inDollars);
      // ...and the change of currency is refused at any version, not only the second.
      const v3 = makeCorrection(inDollars, { input_tokens: 3_000 }, { currency: "JPY" });
      await expectLatchError(store.put(v3), "currency_mismatch");
      await expectVersions(v1.eventId, 2);
    });

    it("writes nothing from a batch in which one correction changes its event's currency, stored or earlier in the batch", async () => {
      const stored = record(1);
      await store.put(stored);
      const fresh = record(2);
      const storedInEuros = makeCorrection(stored, { input_tokens: 7 }, { currency: "EUR" });
      const error = await expectLatchError(store.putMany([fresh, storedInEuros]), "currency_mismatch");
      expect(error).toMatchObject({ eventId: stored.eventId, path: "1.currency", expected: "USD" });
      expect(await store.get(fresh.ratedRecordId)).toBeUndefined();
      expect(await store.get(storedInEuros.ratedRecordId)).toBeUndefined();
      await expectVersions(fresh.eventId, 0);
      await expectVersions(stored.eventId, 1);

      const first = record(3, {}, "EUR");
      const second = makeCorrection(first, { input_tokens: 9 });
      const third = makeCorrection(second, { input_tokens: 11 }, { currency: "USD" });
      const batchError = await expectLatchError(store.putMany([first, second, third]), "currency_mismatch");
      expect(batchError).toMatchObject({ eventId: first.eventId, path: "2.currency", expected: "EUR" });
      expect(await store.current(first.eventId)).toBeUndefined();
      await expectVersions(first.eventId, 0);
    });

    it("after a refused change of currency, every version in the change log still becomes a billing row", async () => {
      // Before the rule, a stored correction in another currency stopped the billing export
      // for good: its cost delta against the superseded version cannot be computed.
      const start = (await drain(store, undefined)).cursor;
      const v1 = record(1, { meters: { input_tokens: 1_000, output_tokens: 100 } });
      const other = record(2, {}, "EUR");
      await store.putMany([v1, other]);
      await expectLatchError(
        store.put(makeCorrection(v1, { input_tokens: 5_000 }, { currency: "EUR" })),
        "currency_mismatch",
      );
      const v2 = makeCorrection(v1, { input_tokens: 5_000, output_tokens: 100 });
      await store.put(v2);

      const mine = (es: ChangeLogEntry[]) => es.filter((e) => e.record.eventId.startsWith(prefix));
      const ours = mine((await drainUntil(store, start, (es) => mine(es).length >= 3)).entries);
      expect(ours.map((e) => e.record.ratedRecordId)).toEqual([
        v1.ratedRecordId,
        other.ratedRecordId,
        v2.ratedRecordId,
      ]);
      const rows = [];
      for (const entry of ours) {
        const superseded = entry.record.supersedes;
        const previous = superseded === undefined ? undefined : await store.get(superseded);
        rows.push(toBillingRecord(entry, previous));
      }
      // The deltas of one event add up to its current total, in its one currency.
      const deltas = rows.filter((r) => r.event_id === v1.eventId);
      expect(deltas.map((r) => r.currency)).toEqual(["USD", "USD"]);
      expect(sumDecimals(deltas.map((r) => r.cost_delta))).toBe(v2.total);
    });

    it("stores a batch and answers in input order, a version and its correction included", async () => {
      const stored = record(1);
      await store.put(stored);
      const a = record(2);
      const aFixed = makeCorrection(a, { output_tokens: 5 });
      expect(await store.putMany([a, stored, aFixed, structuredClone(a)])).toEqual([
        "stored",
        "already_exists",
        "stored",
        "already_exists",
      ]);
      expect(await store.current(a.eventId)).toEqual(aFixed);
      await expectVersions(a.eventId, 2);
    });

    it("writes nothing from a batch in which one record conflicts", async () => {
      const stored = record(1);
      await store.put(stored);
      const fresh1 = record(2);
      const fresh2 = record(3);
      const conflicting = { ...structuredClone(stored), snapshotId: "another-snapshot" };
      await expectLatchError(store.putMany([fresh1, conflicting, fresh2]), "idempotency_conflict");
      expect(await store.get(fresh1.ratedRecordId)).toBeUndefined();
      expect(await store.get(fresh2.ratedRecordId)).toBeUndefined();
      expect(await store.get(stored.ratedRecordId)).toEqual(stored);
      await expectVersions(fresh1.eventId, 0);

      const twice = record(4);
      await expectLatchError(
        store.putMany([twice, { ...structuredClone(twice), total: "0" }]),
        "idempotency_conflict",
      );
      expect(await store.get(twice.ratedRecordId)).toBeUndefined();
    });

    it("writes nothing from a batch with a bad record, naming the field", async () => {
      const good = record(1);
      const bad = { ...record(2), currency: "DOLLARS" };
      await expectInvalidInput(store.putMany([good, bad]), "currency");
      expect(await store.get(good.ratedRecordId)).toBeUndefined();
      expect(await store.get(bad.ratedRecordId)).toBeUndefined();
    });

    it("rejects a bad record naming the field, and writes nothing", async () => {
      const badTotal = { ...record(1), total: "1,5" };
      await expectInvalidInput(store.put(badTotal), "total");
      expect(await store.get(badTotal.ratedRecordId)).toBeUndefined();
      const badMeter = record(2);
      const broken = {
        ...badMeter,
        observation: { ...badMeter.observation, meters: { input_tokens: -5 } },
      };
      await expectInvalidInput(store.put(broken), "observation.meters.input_tokens");
      expect(await store.get(badMeter.ratedRecordId)).toBeUndefined();
    });

    it("keeps the stored record unchanged when the caller mutates its objects", async () => {
      const v1 = structuredClone(record(1));
      const expected = structuredClone(v1);
      await store.put(v1);
      v1.total = "999";
      (v1.lineItems[0] as { quantity: number }).quantity = 1;
      (v1.observation.meters as Record<string, number>).input_tokens = 1;
      expect(await store.get(expected.ratedRecordId)).toEqual(expected);
      expect(await store.current(expected.eventId)).toEqual(expected);
    });

    it("pages the change log in one stable order; an empty page returns the same cursor", async () => {
      const start = (await drain(store, undefined)).cursor;
      const records = [1, 2, 3, 4, 5, 6, 7].map((n) => record(n));
      for (const r of records) await store.put(r);
      await store.put(makeCorrection(records[2] as RatedUsageRecord, { input_tokens: 1 }));

      const ours = (entries: ChangeLogEntry[]) =>
        entries
          .filter((e) => e.record.eventId.startsWith(prefix))
          .map((e) => [e.seq, e.record.ratedRecordId]);
      const small = await drainUntil(store, start, (es) => ours(es).length >= 8, 2);
      const large = await drainUntil(store, start, (es) => ours(es).length >= 8, 100);
      expect(ours(small.entries)).toHaveLength(8);
      expect(ours(small.entries)).toEqual(ours(large.entries));
      expectIncreasingSeqs(small.entries);
      // Versions of one event appear in version order; every stored version is there once.
      expect(ours(small.entries).map(([, id]) => id)).toEqual([
        ...records.map((r) => r.ratedRecordId),
        `${(records[2] as RatedUsageRecord).eventId}:v2`,
      ]);
      const entry = small.entries.find((e) => e.record.ratedRecordId === records[0]?.ratedRecordId);
      expect(entry?.record).toEqual(records[0]);
    });

    it("hands out every version exactly once while other writers store records concurrently", async () => {
      let cursor = (await drain(store, undefined)).cursor;
      const writers = 8;
      const perWriter = 12;
      const written: string[] = [];
      let writersDone = false;

      const writer = async (w: number) => {
        for (let i = 0; i < perWriter; i++) {
          const v1 = record(`w${w}-${i}`);
          if (i % 4 === 3) {
            const v2 = makeCorrection(v1, { input_tokens: i + 1 });
            await store.putMany([v1, v2]);
            written.push(v1.ratedRecordId, v2.ratedRecordId);
          } else {
            await store.put(v1);
            written.push(v1.ratedRecordId);
            if (i % 4 === 1) {
              const v2 = makeCorrection(v1, { output_tokens: i + 1 });
              await store.put(v2);
              written.push(v2.ratedRecordId);
            }
          }
        }
      };

      const seen: ChangeLogEntry[] = [];
      const seenIds = new Set<string>();
      const caughtUp = () => written.every((id) => seenIds.has(id));
      const reader = async () => {
        // A change log that never skips may hold rows back while any older transaction is still
        // open (on a shared server, someone else's). So an empty page does not mean caught up:
        // keep reading until every version written has been seen. A skipped version never
        // shows up, and the deadline turns that into a failure.
        const deadline = Date.now() + 30_000;
        while (Date.now() < deadline) {
          const finishedBefore = writersDone;
          const page = await store.listSince(cursor, 3);
          seen.push(...page.items);
          for (const e of page.items) seenIds.add(e.record.ratedRecordId);
          if (page.items.length === 0) {
            expect(page.cursor).toBe(cursor);
            if (finishedBefore && caughtUp()) return;
            if (finishedBefore) await new Promise((resolve) => setTimeout(resolve, 10));
            else await yieldToOthers();
          }
          cursor = page.cursor;
        }
        throw new Error("the reader never saw every version written: the change log skipped one");
      };

      await Promise.all([
        reader(),
        Promise.all(Array.from({ length: writers }, (_, w) => writer(w))).then(() => {
          writersDone = true;
        }),
      ]);

      expectIncreasingSeqs(seen);
      const ours = seen.filter((e) => e.record.eventId.startsWith(prefix)).map((e) => e.record.ratedRecordId);
      expect(new Set(ours).size).toBe(ours.length);
      expect([...ours].sort()).toEqual([...written].sort());
      expect(written).toHaveLength(writers * perWriter + writers * (perWriter / 2));
    });

    it("moves a consumer's saved cursor only forward", async () => {
      const name = uniqueId("exporter");
      expect(await store.getCursor(name)).toBeUndefined();
      await store.put(record(1));
      await store.put(record(2));
      const mine = (es: ChangeLogEntry[]) => es.filter((e) => e.record.eventId.startsWith(prefix));
      const { entries } = await drainUntil(store, undefined, (es) => mine(es).length >= 2);
      const ours = mine(entries);
      const [first, second] = ours.map((e) => e.seq);
      expect(first).toBeDefined();
      expect(second).toBeDefined();
      await store.saveCursor(name, second as string);
      expect(await store.getCursor(name)).toBe(second);
      await store.saveCursor(name, first as string);
      expect(await store.getCursor(name)).toBe(second);
      await store.saveCursor(name, second as string);
      expect(await store.getCursor(name)).toBe(second);
      // Consumers are independent.
      expect(await store.getCursor(uniqueId("exporter"))).toBeUndefined();
      // A saved cursor resumes the log right after the entry it names.
      const resumed = await store.listSince(first, 1);
      expect(resumed.items[0]?.seq).toBe(second);
    });

    it("refuses a cursor past the end of the change log in saveCursor and listSince, saving nothing", async () => {
      await store.put(record(1));
      const end = (
        await drainUntil(store, undefined, (es) =>
          es.some((e) => e.record.ratedRecordId === record(1).ratedRecordId),
        )
      ).cursor as string;
      const name = uniqueId("exporter");
      // Saved, it would skip every version written up to it; followed, it would never see them.
      for (const past of [BigInt(end) + 1n, BigInt(end) + 10n ** 25n]) {
        await expectInvalidInput(store.saveCursor(name, past.toString()), "cursor");
        await expectInvalidInput(store.listSince(past.toString(), 10), "cursor");
      }
      expect(await store.getCursor(name)).toBeUndefined();
      await store.saveCursor(name, end); // the end itself is a position
      expect(await store.getCursor(name)).toBe(end);
      await store.put(record(2));
      const next = await drainUntil(store, end, (es) =>
        es.some((e) => e.record.ratedRecordId === record(2).ratedRecordId),
      );
      expect(next.entries.map((e) => e.record.ratedRecordId)).toContain(record(2).ratedRecordId);
    });

    it("rejects bad change-log and report arguments naming the field", async () => {
      await expectInvalidInput(store.listSince(undefined, 0), "limit");
      await expectInvalidInput(store.listSince(undefined, 1.5), "limit");
      await expectInvalidInput(store.listSince("not-a-cursor", 10), "cursor");
      await expectInvalidInput(
        store.summary({ start: MARCH.end, end: MARCH.start, groupBy: [], filters: { tenantId } }),
        "end",
      );
      await expectInvalidInput(store.lines({ ...MARCH, filters: { tenantId }, limit: 0 }), "limit");
    });

    it("rejects an aborted call and writes nothing", async () => {
      const v1 = record(1);
      await expect(store.put(v1, abortedSignal())).rejects.toThrow();
      await expect(store.putMany([v1], abortedSignal())).rejects.toThrow();
      expect(await store.get(v1.ratedRecordId)).toBeUndefined();
    });

    it("hands out core's lines cursor, accepts one core encodes (even between records) and refuses the rest with core's error", async () => {
      const at = (minute: number) => new Date(BASE_MS + minute * 60_000).toISOString();
      const records = [3, 1, 2].map((minute) =>
        record(`lines-${minute}`, { timing: { startedAt: at(minute), completedAt: at(minute) } }),
      );
      await store.putMany(records);
      const key = (r: RatedUsageRecord): LinesSortKey => [
        Date.parse(r.observation.timing.completedAt),
        r.observation.timing.completedAt,
        r.eventId,
      ];
      const sorted = [...records].sort((a, b) => compareLinesSortKeys(key(a), key(b)));
      const query = { ...MARCH, filters: { tenantId }, limit: 1 };
      const first = await store.lines(query);
      expect(first).toEqual({
        items: [sorted[0]],
        next: encodeLinesCursor(key(sorted[0] as RatedUsageRecord)),
      });
      expect(first).toEqual(selectLines(sorted, query));
      const second = await store.lines({
        ...query,
        cursor: encodeLinesCursor(key(sorted[1] as RatedUsageRecord)),
      });
      expect(second).toEqual({ items: [sorted[2]] });
      // A key no record has: the records strictly after it.
      const [ms, completedAt, eventId] = key(sorted[0] as RatedUsageRecord);
      const between = encodeLinesCursor([ms, completedAt, `${eventId}~`]);
      expect(await store.lines({ ...query, limit: 5, cursor: between })).toEqual({ items: sorted.slice(1) });
      const json = (value: unknown) => Buffer.from(JSON.stringify(value), "utf8").toString("base64url");
      for (const cursor of [
        "not a cursor!",
        `${between}=`,
        json([ms + 1, completedAt, eventId]),
        json([ms, completedAt]),
        json({ ms, completedAt, eventId }),
      ]) {
        const expected = thrownBy(() => decodeLinesCursor(cursor));
        const error = await expectLatchError(store.lines({ ...query, cursor }), "invalid_input");
        expect(errorFields(error)).toEqual(errorFields(expected));
      }
    });

    it("sums every token meter into core's TOKEN_GROUPS, in summary rows as in the reference summarize", async () => {
      const meters: MeterSet = {
        input_tokens: 1,
        cached_input_tokens: 2,
        cache_write_tokens: 4,
        cache_write_1h_tokens: 8,
        output_tokens: 16,
        reasoning_tokens: 32,
        audio_input_tokens: 64,
        audio_output_tokens: 128,
        image_input_tokens: 256,
        image_output_tokens: 512,
        web_search_requests: 2_048,
        cached_audio_input_tokens: 4_096,
      };
      // The fixture snapshot with prices for the image, web-search and cached-audio meters too.
      const base = makeSnapshot();
      const snapshot: PriceSnapshot = {
        ...base,
        prices: {
          ...base.prices,
          image_input_tokens: { perMillion: "5" },
          image_output_tokens: { perMillion: "30" },
          web_search_requests: { perUnit: "0.01" },
          cached_audio_input_tokens: { perMillion: "0.1" },
        },
      };
      const everyMeter = new DefaultRatingEngine().rate(
        makeObservation({ eventId: `${prefix}-tokens-1:0:openai`, subject: { tenantId }, meters }),
        snapshot,
        { ratedAt: "2026-03-01T12:00:05Z" },
      );
      const records = [everyMeter, record("tokens-2", { meters: { input_tokens: 1_000 } })];
      await store.putMany(records);
      const query: SummaryQuery = { ...MARCH, groupBy: ["tenantId"], filters: { tenantId } };
      const [row] = await store.summary(query);
      // Hand-computed: input + audio input; output + reasoning + audio output; cached text +
      // cached audio; 5-minute + 1-hour writes.
      expect(row).toMatchObject({
        inputTokens: 1_065,
        outputTokens: 176,
        cacheReadTokens: 4_098,
        cacheWriteTokens: 12,
        totalTokens: 6_119,
        requests: 2,
      });
      const groups = tokenGroupsOf(meters);
      for (const group of TOKEN_GROUP_NAMES) {
        expect((row as SummaryRow)[group]).toBe(
          Number(groups[group]) + (group === "inputTokens" || group === "totalTokens" ? 1_000 : 0),
        );
      }
      expect(await store.summary(query)).toEqual(summarize(records, query));
    });

    it("reports exactly what the reference summarize and selectLines report, across currencies and corrections", async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(eventArbitrary, { minLength: 1, maxLength: 20 }), async (events) => {
          const tenant = uniqueId("tenant");
          const all: RatedUsageRecord[] = [];
          events.forEach((event, i) => {
            const completedAt = new Date(BASE_MS + event.atMs).toISOString();
            const observation: Partial<UsageObservation> = {
              eventId: `${tenant}-e${i}:0:${event.provider ?? "direct"}`,
              provider: event.provider === undefined ? undefined : { providerId: event.provider },
              subject: {
                tenantId: tenant,
                ...(event.projectId === undefined ? {} : { projectId: event.projectId }),
                ...(event.feature === undefined ? {} : { feature: event.feature }),
              },
              meters: event.meters,
              model: { billableModel: event.model },
              outcome: event.outcome,
              timing: { startedAt: completedAt, completedAt },
            };
            let version = makeRatedRecord({ observation, currency: event.currency });
            all.push(version);
            for (const meters of event.corrections) {
              version = makeCorrection(version, meters);
              all.push(version);
            }
          });
          // Half one by one, half in one batch: both paths must feed the reports.
          const half = Math.ceil(all.length / 2);
          for (const r of all.slice(0, half)) await store.put(r);
          await store.putMany(all.slice(half));
          const current = currentOf(all);

          const windows = [MARCH, { start: "2026-03-02T06:00:00Z", end: "2026-03-03T18:00:00.5Z" }];
          const groupings: SummaryQuery["groupBy"][] = [
            [],
            ["provider"],
            ["model", "day"],
            ["projectId", "feature"],
            ["day", "provider", "model", "tenantId"],
          ];
          const filterSets: NonNullable<SummaryQuery["filters"]>[] = [
            { tenantId: tenant },
            { tenantId: tenant, model: "gpt-4o" },
            { tenantId: tenant, provider: "anthropic", projectId: "p-1" },
          ];
          for (const window of windows) {
            for (const filters of filterSets) {
              for (const groupBy of groupings) {
                const query: SummaryQuery = { ...window, groupBy, filters };
                expect(await store.summary(query)).toEqual(summarize(current, query));
              }
              const expected = selectLines(current, { ...window, filters, limit: 10_000 }).items;
              const got: RatedUsageRecord[] = [];
              let cursor: string | undefined;
              for (let pages = 0; pages < 1_000; pages++) {
                const query: LinesQuery = { ...window, filters, limit: 4, ...(cursor ? { cursor } : {}) };
                const page = await store.lines(query);
                expect(page.items.length).toBeLessThanOrEqual(4);
                got.push(...page.items);
                if (page.next === undefined) break;
                cursor = page.next;
              }
              expect(got.map((r) => r.ratedRecordId)).toEqual(expected.map((r) => r.ratedRecordId));
              expect(got).toEqual(expected);
            }
          }
        }),
        { numRuns: 12 },
      );
    });
  });
}
