import { describe, expect, it } from "vitest";
import { MemoryQuotaReservator, MemoryRatedRecordStore, MemoryUsageCounter } from "../../src/memory/index.js";
import { parseObservation } from "../../src/observation/parse.js";
import { DefaultRatingEngine, type RatingEngine } from "../../src/rating/engine.js";
import { rateSealed } from "../../src/rating/sealed-record.js";
import { PriceSnapshotSchema } from "../../src/schemas/pricing.js";
import { ctx, observation, snapshot } from "../support.js";

// What the shared conformance suites (packages/testkit/test/memory.test.ts) cannot reach:
// the injected clock, and cursors that only this store can judge.
describe("MemoryQuotaReservator with an injected clock", () => {
  it("expires a hold exactly ttlMs after it was granted, and a late commit still charges", async () => {
    let now = 1_000;
    const quota = new MemoryQuotaReservator({ clock: () => now });
    await quota.setLimit("acme", 10);
    await quota.reserve({ holdId: "h1", account: "acme", amount: 8, ttlMs: 500 });
    now = 1_499;
    expect(await quota.balance("acme")).toEqual({ limit: 10, spent: 0, held: 8, available: 2 });
    now = 1_500;
    expect(await quota.balance("acme")).toEqual({ limit: 10, spent: 0, held: 0, available: 10 });
    // A retried reserve of an expired hold holds it again (never "granted" with nothing held).
    expect(await quota.reserve({ holdId: "h1", account: "acme", amount: 8, ttlMs: 500 })).toEqual({
      granted: true,
      remaining: 2,
    });
    now = 1_999;
    expect(await quota.balance("acme")).toEqual({ limit: 10, spent: 0, held: 8, available: 2 });
    expect(await quota.commit("h1", 9)).toEqual({ committed: 9 });
    expect(await quota.balance("acme")).toEqual({ limit: 10, spent: 9, held: 0, available: 1 });
  });
});

describe("MemoryRatedRecordStore cursors", () => {
  it("rejects a cursor past the end of its change log, naming cursor", async () => {
    const store = new MemoryRatedRecordStore();
    const priced = PriceSnapshotSchema.parse(snapshot({ prices: { input_tokens: { perMillion: "1" } } }));
    const record = new DefaultRatingEngine().rate(observation({ input_tokens: 10 }), priced, ctx);
    await store.put(record);
    expect((await store.listSince("1", 10)).items).toEqual([]);
    await expect(store.listSince("2", 10)).rejects.toMatchObject({
      code: "invalid_input",
      issues: [{ path: "cursor" }],
    });
    await expect(store.saveCursor("exporter", "2")).rejects.toMatchObject({ code: "invalid_input" });
    expect(await store.getCursor("exporter")).toBeUndefined();
  });
});

describe("MemoryRatedRecordStore validation", () => {
  it("refuses a record without an observation, naming the field, and stores nothing", async () => {
    const store = new MemoryRatedRecordStore();
    const record = new DefaultRatingEngine().rate(
      observation({ input_tokens: 1 }),
      PriceSnapshotSchema.parse(snapshot({ prices: { input_tokens: { perMillion: "1" } } })),
      ctx,
    );
    await expect(store.put({ ...record, observation: undefined } as never)).rejects.toMatchObject({
      code: "invalid_input",
      issues: [{ path: "observation" }],
    });
    expect(await store.current(record.eventId)).toBeUndefined();
  });
});

describe("MemoryUsageCounter operation records", () => {
  it("answers a replay within the retention, adds again after it, and sweeps expired records", async () => {
    let now = 1_000_000;
    const counter = new MemoryUsageCounter({ opRetentionMs: 60_000, now: () => now });
    expect(await counter.add("k", "2026-03", 5, { opId: "a" })).toBe(0);
    now += 59_999;
    expect(await counter.add("k", "2026-03", 5, { opId: "a" })).toBe(0);
    expect(await counter.get("k", "2026-03")).toBe(5);
    now += 1;
    // Past the retention the record no longer answers: the add applies again (documented).
    expect(await counter.add("k", "2026-03", 5, { opId: "a" })).toBe(5);
    // Storage stays bounded: 100,000 adds over time keep only the unexpired records.
    for (let i = 0; i < 100_000; i++) {
      now += 10;
      await counter.add("k", "2026-03", 1, { opId: `op-${i}` });
    }
    expect(counter.opCount).toBeLessThanOrEqual(60_000 / 10 + 10_000);
    expect(await counter.get("k", "2026-03")).toBe(100_010);
  });
});

// The record path keeps the default engine's records as they are (no parse, no copy): they
// must be frozen all the way down, and anything else (a copy, a plain engine.rate() result,
// a custom engine's) parsed and copied in full.
describe("MemoryRatedRecordStore and sealed records", () => {
  const prices = { input_tokens: { perMillion: "2.5" } };
  const rate = (engine: RatingEngine = new DefaultRatingEngine()) =>
    rateSealed(
      engine,
      parseObservation(observation({ input_tokens: 10 })),
      PriceSnapshotSchema.parse(snapshot({ prices })),
      ctx,
    );

  it("keeps a sealed record itself, frozen all the way down", async () => {
    const store = new MemoryRatedRecordStore();
    const record = rate();
    expect(await store.put(record)).toBe("stored");
    const stored = await store.current(record.eventId);
    expect(stored).toBe(record);
    for (const part of [stored, stored?.lineItems, stored?.lineItems[0], stored?.observation]) {
      expect(Object.isFrozen(part)).toBe(true);
    }
    expect(await store.put(record)).toBe("already_exists");
  });

  // A sealed first version skips the version-chain check (it holds by construction); a sealed
  // correction is checked as any record is.
  it("checks the chain of a sealed correction: its superseded version must be stored, in its currency", async () => {
    const engine = new DefaultRatingEngine();
    const obs = parseObservation(observation({ input_tokens: 10 }));
    const priced = PriceSnapshotSchema.parse(snapshot({ prices }));
    const v2 = rateSealed(engine, obs, priced, { ...ctx, version: 2 });
    const store = new MemoryRatedRecordStore();
    await expect(store.put(v2)).rejects.toMatchObject({ code: "invalid_input" });
    const v1 = rateSealed(engine, obs, PriceSnapshotSchema.parse(snapshot({ prices, currency: "EUR" })), ctx);
    expect(await store.put(v1)).toBe("stored");
    await expect(store.put(v2)).rejects.toMatchObject({ code: "currency_mismatch" });
    const v3 = rateSealed(engine, obs, priced, { ...ctx, version: 3, supersedes: `${obs.eventId}:v1` });
    await expect(store.put(v3)).rejects.toMatchObject({ code: "invalid_input" });
    expect((await store.current(obs.eventId))?.version).toBe(1);
  });

  // Versions are kept by eventId: a ratedRecordId is read back as `<eventId>:v<version>`.
  it("finds a version by its exact ratedRecordId only, whatever the eventId holds", async () => {
    const engine = new DefaultRatingEngine();
    const priced = PriceSnapshotSchema.parse(snapshot({ prices }));
    const store = new MemoryRatedRecordStore();
    const obs = parseObservation(observation({ input_tokens: 10 }, { eventId: "a:v2:v" }));
    const v1 = rateSealed(engine, obs, priced, ctx);
    expect(await store.put(v1)).toBe("stored");
    const v2 = rateSealed(engine, obs, priced, { ...ctx, version: 2 });
    expect(await store.put(v2)).toBe("stored");
    expect(await store.get("a:v2:v:v1")).toBe(v1);
    expect(await store.get("a:v2:v:v2")).toBe(v2);
    for (const id of [
      "a:v2:v",
      "a:v2",
      "a:v2:v:v01",
      "a:v2:v:v1.0",
      "a:v2:v:v 1",
      "a:v2:v:v0",
      "a:v2:v:v3",
      "a:v2:v:v1e0",
    ]) {
      expect(await store.get(id)).toBeUndefined();
    }
    expect(await store.current("a:v2:v")).toBe(v2);
    expect(await store.current("a:v2")).toBeUndefined();
    // A plain (unsealed) copy of a stored version is found by its id: the same record, already stored.
    expect(await store.put(structuredClone({ ...v1 }))).toBe("already_exists");
    expect((await store.listSince(undefined, 10)).items.map((e) => e.record)).toEqual([v1, v2]);
  });

  it("copies anything else: a plain engine.rate() result, a custom engine's record", async () => {
    const plain = new DefaultRatingEngine().rate(
      parseObservation(observation({ input_tokens: 10 })),
      PriceSnapshotSchema.parse(snapshot({ prices })),
      ctx,
    );
    expect(Object.isFrozen(plain)).toBe(false); // the engine's own result stays the caller's to change
    const custom = rate({ rate: (o, s, c) => new DefaultRatingEngine().rate(o, s, c) });
    for (const record of [plain, custom]) {
      const store = new MemoryRatedRecordStore();
      await store.put(record);
      const stored = await store.current(record.eventId);
      expect(stored).not.toBe(record);
      expect(stored).toEqual(record);
      expect(Object.isFrozen(stored?.lineItems[0])).toBe(true);
    }
  });

  it("parses a changed copy of one in full: a bad amount is invalid_input, another total a conflict", async () => {
    const store = new MemoryRatedRecordStore();
    const record = rate();
    await expect(store.put({ ...record, total: "1e-5" })).rejects.toMatchObject({ code: "invalid_input" });
    expect(await store.put(record)).toBe("stored");
    await expect(store.put({ ...record, total: "1" })).rejects.toMatchObject({
      code: "idempotency_conflict",
    });
  });

  // Adversarial review: facts once rode on a symbol visible to Object.getOwnPropertySymbols,
  // so a caller could reach whatever hung off it. They are a private field now: nothing to
  // reach, and a copy with every own property and descriptor (symbols included) is no parsed
  // observation. Neither the seal nor the cached canonical JSON can be forged.
  it("cannot be forged through the observation's facts (seal, cached hash, look-alike facts)", async () => {
    const { MemoryObservationStore } = await import("../../src/memory/index.js");
    const record = rate();
    const obs = record.observation;
    expect(Reflect.ownKeys(obs).every((key) => typeof key === "string")).toBe(true);
    const descriptors = Object.getOwnPropertyDescriptors(obs);

    // A caller-built observation with the parsed one's every descriptor, whose "seal" names a forged record.
    const fake = Object.defineProperties(
      {},
      { ...descriptors, meters: { value: { input_tokens: -5 }, enumerable: true } },
    );
    const forged: Record<string, unknown> = { ...record, total: "999", observation: fake };
    const store = new MemoryRatedRecordStore();
    await expect(store.put(forged as never)).rejects.toMatchObject({ code: "invalid_input" });
    const observations = new MemoryObservationStore();
    await expect(observations.append(fake as never)).rejects.toMatchObject({ code: "invalid_input" });

    // A valid look-alike is parsed and copied: changing it afterwards changes nothing stored.
    const lookAlike: Record<string | symbol, unknown> = structuredClone({ ...record.observation });
    const copy: Record<string, unknown> = { ...record, observation: lookAlike };
    expect(await store.put(copy as never)).toBe("stored");
    copy.total = "999";
    (lookAlike.subject as Record<string, unknown>).tenantId = "other";
    const stored = await store.current(record.eventId);
    expect(stored).not.toBe(copy);
    expect(stored?.total).toBe(record.total);
    expect(stored?.observation.subject.tenantId).toBe("acme");
  });
});
