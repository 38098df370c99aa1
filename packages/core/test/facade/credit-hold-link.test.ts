/**
 * A credit hold linked to its call (`record(input, { hold })` sets `correlation.holdId` and
 * `holdFeatureId`): when `settle()` must leave a money hold open because the call is not rated
 * yet (`accepted` by an ingest log, `spooled`), the call's later burn — an ingest worker's, the
 * spool replay's, `rerateUnpriced()`'s, `reconcileCredits()`'s — commits the hold as that burn.
 * The call then counts as held until it is stored, and as burned (once) after: never both until
 * the hold's TTL. On the memory ledger; `@latch/nats` runs the same against JetStream and the
 * Postgres credit ledger.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createIngestRecorder, type ObservationStore } from "../../src/adapter.js";
import {
  createLatch,
  type Hold,
  type LatchConfig,
  type LatchWarning,
  type MemoryCreditLedger,
  MemoryObservationStore,
  MemoryRatedRecordStore,
  parseObservation,
  type RecordResult,
  type UsageObservation,
} from "../../src/index.js";
import { acmeLedger, call, gpt4o, granted, MemoryLog, NOW, pricingOf } from "./support/credit-fixtures.js";

let dir: string;
let warnings: LatchWarning[];
let now: number;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-credit-link-"));
  warnings = [];
  now = Date.parse(NOW);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Ledger "acme": 10,000 tokens and $1 granted; its clock is `now`. */
const ledgerWithGrants = (holdRetentionMs?: number) =>
  acmeLedger({ clock: () => now, ...(holdRetentionMs === undefined ? {} : { holdRetentionMs }) });

/**
 * A gateway (the facade, with an ingest log unless `inline`) and an ingest worker over the same
 * stores and ledger. Usage burns `featureId` (default "usd") of the tenant's ledger.
 */
function setup(
  ledger: MemoryCreditLedger,
  options: {
    featureId?: string;
    inline?: boolean;
    config?: Partial<LatchConfig>;
    route?: NonNullable<LatchConfig["credits"]>["route"];
  } = {},
) {
  const stores = {
    observations: new MemoryObservationStore() as ObservationStore,
    rated: new MemoryRatedRecordStore(),
    pricing: pricingOf(),
    ...options.config,
  };
  const credits = {
    ledger,
    featureId: options.featureId ?? "usd",
    ...(options.route === undefined ? {} : { route: options.route }),
  };
  const log = new MemoryLog();
  const onWarning = (w: LatchWarning) => warnings.push(w);
  const latch = createLatch({
    ...stores,
    credits: { ...credits, enforce: true },
    ...(options.inline === true ? {} : { ingest: log }),
    clock: () => new Date(NOW),
    spoolDir: join(dir, "spool"),
    retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
    onWarning,
  });
  const worker = createIngestRecorder({ ...stores, credits, clock: () => new Date(NOW), onWarning });
  /** Runs the worker over everything the log holds (again: a redelivery). */
  const work = async () => {
    const results: RecordResult[] = [];
    for (const obs of log.published.values()) results.push(await worker.record(obs));
    return results;
  };
  return { latch, log, work, stores };
}

async function feature(ledger: MemoryCreditLedger, featureId: string) {
  const balance = await ledger.balance("acme", "2026-03-02T00:00:00Z");
  return balance.features.find((f) => f.featureId === featureId);
}

/** Adds ledger `ledgerId` (its own tenant) with $1 of "usd" granted to `ledger`. */
async function addUsdLedger(ledger: MemoryCreditLedger, ledgerId: string): Promise<void> {
  await ledger.createLedger({ ledgerId, subject: { tenantId: ledgerId } });
  await ledger.grant({
    grantId: `${ledgerId}-usd`,
    ledgerId,
    featureId: "usd",
    amount: "1",
    effectiveAt: "2026-03-01T00:00:00Z",
  });
}

/**
 * Whether `amount` of the feature can be held now: a probe hold, voided at once (so a probe
 * changes nothing). What `available` is, exactly, without arithmetic in the test.
 */
async function canHold(ledger: MemoryCreditLedger, featureId: string, amount: string): Promise<boolean> {
  const holdId = `probe-${Math.random()}`;
  const answer = await ledger.reserve({ holdId, ledgerId: "acme", featureId, amount, ttlMs: 1_000 });
  if (answer.granted) await ledger.voidHold(holdId);
  return answer.granted;
}

const codes = () => warnings.map((w) => w.code);

describe("a money credit hold left open by settle() is committed by the call's later burn", () => {
  it("ingest worker: the call counts as held until the worker stores it, then as burned only, once", async () => {
    const ledger = await ledgerWithGrants();
    const { latch, log, work } = setup(ledger);
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", holdId: "h-1" }));
    const result = await latch.record(call(1), { hold });
    expect(result.status).toBe("accepted");
    expect(log.published.get("req-1:0:openai")?.correlation).toEqual({
      holdId: "h-1",
      holdFeatureId: "usd",
      holdLedgerId: "acme",
    });
    expect(await latch.settle(hold, result)).toEqual({ settled: true });
    // Not rated yet: the hold stays (other reserves cannot spend it).
    expect(await canHold(ledger, "usd", "0.6")).toBe(false);

    expect((await work()).map((r) => r.status)).toEqual(["rated"]);
    expect(await feature(ledger, "usd")).toMatchObject({
      usage: "0.0035",
      burned: "0.0035",
      balance: "0.9965",
    });
    // The hold is resolved by the burn: everything but the burn can be held again at once.
    expect(await canHold(ledger, "usd", "0.9965")).toBe(true);
    expect(await canHold(ledger, "usd", "0.99651")).toBe(false);
    // A redelivery to the worker burns nothing more; settle() again changes nothing either.
    await work();
    expect(await latch.settle(hold, result)).toEqual({ settled: true });
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0.0035", burned: "0.0035" });
    expect(await canHold(ledger, "usd", "0.9965")).toBe(true);
    expect(codes()).toEqual([]);
  });

  it("a hold of another feature than the routes' is committed with what its own feature counts", async () => {
    const ledger = await ledgerWithGrants();
    // Usage burns tokens (credits.featureId); the hold is of usd (reserve names it).
    const { latch, work } = setup(ledger, { featureId: "tokens" });
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    const result = await latch.record(call(1), { hold });
    expect(result.status === "accepted" && result.observation.correlation?.holdFeatureId).toBe("usd");
    await latch.settle(hold, result);
    await work();
    await work();
    expect(await feature(ledger, "tokens")).toMatchObject({ usage: "1100" });
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0.0035", balance: "0.9965" });
    expect(await canHold(ledger, "usd", "0.9965")).toBe(true);
    expect(codes()).toEqual([]);
  });

  it("spool replay without an ingest log: the flush's burn commits the hold", async () => {
    const ledger = await ledgerWithGrants();
    const inner = new MemoryObservationStore();
    let down = true;
    const observations: ObservationStore = {
      append: async (o) => {
        if (down) throw new Error("connection reset");
        return inner.append(o);
      },
      appendMany: (o) => inner.appendMany(o),
      get: (id) => inner.get(id),
      listUnpriced: (q) => inner.listUnpriced(q),
      markPriced: (ids) => inner.markPriced(ids),
    };
    const { latch } = setup(ledger, { inline: true, config: { observations } });
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5" }));
    const result = await latch.record(call(1), { hold });
    expect(result.status).toBe("spooled");
    await latch.settle(hold, result);
    expect(await canHold(ledger, "usd", "0.6")).toBe(false);
    down = false;
    expect(await latch.flushSpool()).toMatchObject({ replayed: 1, remaining: 0 });
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0.0035", balance: "0.9965" });
    expect(await canHold(ledger, "usd", "0.9965")).toBe(true);
    expect(codes()).toEqual(["store_retry_exhausted", "spooled"]);
  });

  it("spool replay through the ingest log: the worker's burn of the replayed call commits the hold", async () => {
    const ledger = await ledgerWithGrants();
    const { latch, log, work } = setup(ledger);
    log.down = true;
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5" }));
    const result = await latch.record(call(1), { hold });
    expect(result.status).toBe("spooled");
    await latch.settle(hold, result);
    log.down = false;
    expect(await latch.flushSpool()).toMatchObject({ replayed: 1 });
    expect(log.published.get("req-1:0:openai")?.correlation?.holdId).toBe(hold.holdId);
    expect(await canHold(ledger, "usd", "0.6")).toBe(false);
    await work();
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0.0035", balance: "0.9965" });
    expect(await canHold(ledger, "usd", "0.9965")).toBe(true);
  });

  it("a call the worker stores unpriced: rerateUnpriced() burns it and commits the hold", async () => {
    const ledger = await ledgerWithGrants();
    const pricing = pricingOf([]);
    const { latch, work } = setup(ledger, { config: { pricing } });
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5" }));
    await latch.settle(hold, await latch.record(call(1), { hold }));
    expect((await work()).map((r) => r.status)).toEqual(["unpriced"]);
    expect(await canHold(ledger, "usd", "0.6")).toBe(false); // nothing burned, still held
    pricing.add(gpt4o);
    expect(await latch.rerateUnpriced()).toEqual({ rated: 1, stillUnpriced: 0 });
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0.0035", balance: "0.9965" });
    expect(await canHold(ledger, "usd", "0.9965")).toBe(true);
    expect(codes()).toEqual([]);
  });

  it("reconcileCredits(): a worker that stored the call but never burned it (a crash) — reconcile burns and commits", async () => {
    const ledger = await ledgerWithGrants();
    const { latch, log, stores } = setup(ledger);
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5" }));
    await latch.settle(hold, await latch.record(call(1), { hold }));
    // The crashed worker stored and rated it, and died before its burn.
    const crashed = createIngestRecorder({ ...stores, clock: () => new Date(NOW) });
    await crashed.record(log.published.get("req-1:0:openai") as UsageObservation);
    expect(await canHold(ledger, "usd", "0.6")).toBe(false);
    expect(await latch.reconcileCredits()).toEqual({ versions: 1 });
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0.0035", balance: "0.9965" });
    expect(await canHold(ledger, "usd", "0.9965")).toBe(true);
  });
});

describe("a linked hold the later burn cannot commit: the call burns once through its routes", () => {
  it("purged (expired unresolved, then past the ledger's hold retention): reported, burned once, not retried", async () => {
    const ledger = await ledgerWithGrants(1_000);
    const { latch, work } = setup(ledger);
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", ttlMs: 1_000 }));
    await latch.settle(hold, await latch.record(call(1), { hold }));
    now += 5_000; // expired, and purged once its retention passed
    expect((await ledger.purgeResolvedHolds()).purged).toBe(1);
    // The worker's record resolves (the message is acknowledged, not redelivered forever).
    expect((await work()).map((r) => r.status)).toEqual(["rated"]);
    expect(warnings).toEqual([
      expect.objectContaining({
        code: "credit_hold_unresolved",
        eventId: "req-1:0:openai",
        cause: expect.objectContaining({ code: "invalid_input" }),
      }),
    ]);
    expect(await feature(ledger, "usd")).toMatchObject({
      usage: "0.0035",
      burned: "0.0035",
      balance: "0.9965",
    });
    expect(await canHold(ledger, "usd", "0.9965")).toBe(true);
    // A redelivery: the call was burned by the first delivery, so nothing new to report.
    await work();
    expect(codes()).toEqual(["credit_hold_unresolved"]);
    expect(await feature(ledger, "usd")).toMatchObject({ burned: "0.0035" });
  });

  it("committed for another call (one hold passed to two calls): reported, each call burned once", async () => {
    const ledger = await ledgerWithGrants();
    const { latch, work } = setup(ledger);
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5" }));
    await latch.settle(hold, await latch.record(call(1), { hold }));
    await latch.record(call(2), { hold });
    await work();
    expect(warnings).toEqual([
      expect.objectContaining({
        code: "credit_hold_unresolved",
        eventId: "req-2:0:openai",
        cause: expect.objectContaining({ code: "idempotency_conflict" }),
      }),
    ]);
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0.007", balance: "0.993" });
    expect(await canHold(ledger, "usd", "0.993")).toBe(true);
  });

  it("reconcileCredits() over old inline calls whose holds settle() committed and the ledger purged: nothing reported", async () => {
    const ledger = await ledgerWithGrants(1_000);
    const { latch } = setup(ledger, { inline: true });
    for (const i of [1, 2]) {
      const hold = granted(await latch.reserve({ account: "acme", amount: "0.5" }));
      await latch.settle(hold, await latch.record(call(i), { hold }));
    }
    now += 5_000;
    expect((await ledger.purgeResolvedHolds()).purged).toBe(2);
    expect(await latch.reconcileCredits()).toEqual({ versions: 2 });
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0.007", balance: "0.993" });
    expect(codes()).toEqual([]);
  });

  it("voided (released on purpose before the worker stored the call): burned once, nothing reported", async () => {
    const ledger = await ledgerWithGrants();
    const { latch, work } = setup(ledger);
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5" }));
    await latch.settle(hold, await latch.record(call(1), { hold }));
    await ledger.voidHold(hold.holdId);
    expect((await work()).map((r) => r.status)).toEqual(["rated"]);
    expect(await feature(ledger, "usd")).toMatchObject({
      usage: "0.0035",
      burned: "0.0035",
      balance: "0.9965",
    });
    expect(await canHold(ledger, "usd", "0.9965")).toBe(true);
    expect(codes()).toEqual([]);
  });

  it("an unpriced inline call: settle voids the money hold, rerateUnpriced() burns once without a report", async () => {
    const ledger = await ledgerWithGrants();
    const pricing = pricingOf([]);
    const { latch } = setup(ledger, { inline: true, config: { pricing } });
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5" }));
    await latch.settle(hold, await latch.record(call(1), { hold }));
    expect(await canHold(ledger, "usd", "1")).toBe(true);
    pricing.add(gpt4o);
    await latch.rerateUnpriced();
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0.0035", balance: "0.9965" });
    expect(codes()).toEqual([]);
  });
});

describe("a hold-only feature (held, none of the call's routes): its hold's commit is the call's only burn of it", () => {
  it("an unpriced inline call: settle() leaves the usd hold open, rerateUnpriced() commits it once", async () => {
    // Before: settle() voided the hold of the unpriced call and rerateUnpriced()'s commit met
    // hold_already_resolved, silently: usd was never burned for the call.
    const ledger = await ledgerWithGrants();
    const pricing = pricingOf([]);
    const { latch } = setup(ledger, { featureId: "tokens", inline: true, config: { pricing } });
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    const result = await latch.record(call(1), { hold });
    expect(result.status).toBe("unpriced");
    expect(await latch.settle(hold, result)).toEqual({ settled: true });
    expect(await canHold(ledger, "usd", "0.6")).toBe(false); // still held
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0" });
    pricing.add(gpt4o);
    expect(await latch.rerateUnpriced()).toEqual({ rated: 1, stillUnpriced: 0 });
    expect(await feature(ledger, "usd")).toMatchObject({
      usage: "0.0035",
      burned: "0.0035",
      balance: "0.9965",
    });
    expect(await canHold(ledger, "usd", "0.9965")).toBe(true);
    expect(await canHold(ledger, "usd", "0.99651")).toBe(false);
    // Later burns commit nothing more.
    expect(await latch.rerateUnpriced()).toEqual({ rated: 0, stillUnpriced: 0 });
    expect(await latch.reconcileCredits()).toEqual({ versions: 1 });
    expect(await latch.settle(hold, result)).toEqual({ settled: true });
    expect(await feature(ledger, "usd")).toMatchObject({
      usage: "0.0035",
      burned: "0.0035",
      balance: "0.9965",
    });
    expect(await feature(ledger, "tokens")).toMatchObject({ usage: "1100", balance: "8900" });
    expect(codes()).toEqual([]);
  });

  it("a route of the held feature on another ledger does not make it routed: the unpriced call's hold stays open", async () => {
    // Routes: acme's tokens and platform's usd; the hold is acme's usd (acme is a route ledger).
    const ledger = await ledgerWithGrants();
    await addUsdLedger(ledger, "platform");
    const pricing = pricingOf([]);
    const { latch } = setup(ledger, {
      inline: true,
      config: { pricing },
      route: () => [
        { ledgerId: "acme", featureId: "tokens" },
        { ledgerId: "platform", featureId: "usd" },
      ],
    });
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    const result = await latch.record(call(1), { hold });
    expect(result.status).toBe("unpriced");
    expect(await latch.settle(hold, result)).toEqual({ settled: true });
    expect(await canHold(ledger, "usd", "0.6")).toBe(false); // acme's usd still held
    pricing.add(gpt4o);
    expect(await latch.rerateUnpriced()).toEqual({ rated: 1, stillUnpriced: 0 });
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0.0035", balance: "0.9965" });
    const platform = await ledger.balance("platform", "2026-03-02T00:00:00Z");
    expect(platform.features.find((f) => f.featureId === "usd")).toMatchObject({ usage: "0.0035" });
    expect(codes()).toEqual([]);
  });

  it("voided before the call's later burn: the worker burns usd on the hold's ledger all the same, once", async () => {
    // Before holdLedgerId: the commit's hold_already_resolved was reported (earlier still,
    // dropped silently) and usd was never burned for the call (usage 0). An older release's
    // observation still gets that report: see "observations of an older release" below.
    const ledger = await ledgerWithGrants();
    const { latch, work } = setup(ledger, { featureId: "tokens" });
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    const result = await latch.record(call(1), { hold });
    expect(result.status).toBe("accepted");
    expect(await latch.settle(hold, { status: "failed" })).toEqual({ settled: true });
    expect((await work()).map((r) => r.status)).toEqual(["rated"]);
    await work();
    expect(await feature(ledger, "usd")).toMatchObject({
      usage: "0.0035",
      burned: "0.0035",
      balance: "0.9965",
    });
    expect(await feature(ledger, "tokens")).toMatchObject({ usage: "1100", burned: "1100" });
    expect(await canHold(ledger, "usd", "0.9965")).toBe(true);
    expect(codes()).toEqual([]);
  });
});

describe("record(input, { hold }) with a credit hold", () => {
  it("a retry of the same call with the same hold is the same observation: idempotent inline and through the log", async () => {
    const ledger = await ledgerWithGrants();
    const inline = setup(ledger, { inline: true });
    const hold = granted(await inline.latch.reserve({ account: "acme", amount: "0.5" }));
    const first = await inline.latch.record(call(1), { hold });
    const again = await inline.latch.record(call(1), { hold });
    expect(again).toEqual(first);
    await inline.latch.settle(hold, again);
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0.0035" });

    const { latch, log, work } = setup(ledger);
    const held = granted(await latch.reserve({ account: "acme", amount: "0.5" }));
    const a = await latch.record(call(2), { hold: held });
    const b = await latch.record(call(2), { hold: held });
    expect(b).toEqual(a);
    expect(log.published.size).toBe(1);
    await latch.settle(held, b);
    // The worker gets the same message twice (a redelivery): an idempotent append, one burn.
    const [obs] = [...log.published.values()];
    log.published.set("copy", obs as UsageObservation);
    expect((await work()).map((r) => r.status)).toEqual(["rated", "rated"]);
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0.007", balance: "0.993" });
    expect(await canHold(ledger, "usd", "0.993")).toBe(true);
    expect(codes()).toEqual([]);
  });

  it("an observation naming a hold or hold feature itself is invalid_input, naming the field", async () => {
    const ledger = await ledgerWithGrants();
    const { latch } = setup(ledger);
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5" }));
    const named = (correlation: Record<string, string>) => ({ ...call(1), correlation });
    await expect(latch.record(named({ holdId: hold.holdId, holdFeatureId: "usd" }))).rejects.toMatchObject({
      code: "invalid_input",
      issues: [{ path: "observation.correlation.holdId" }],
    });
    await expect(latch.record(named({ holdFeatureId: "usd" }))).rejects.toMatchObject({
      issues: [{ path: "observation.correlation.holdFeatureId" }],
    });
    await expect(latch.record(named({ holdFeatureId: "tokens" }), { hold })).rejects.toMatchObject({
      issues: [{ path: "observation.correlation.holdFeatureId" }],
    });
    await expect(latch.record(named({ holdLedgerId: "acme" }))).rejects.toMatchObject({
      issues: [{ path: "observation.correlation.holdLedgerId" }],
    });
    await expect(latch.record(named({ holdLedgerId: "globex" }), { hold })).rejects.toMatchObject({
      issues: [{ path: "observation.correlation.holdLedgerId" }],
    });
    // A quota hold links no ledger: one named with it is refused too.
    const quotaLike = { ...hold, kind: "quota" as const, amount: 1 } as unknown as Hold;
    await expect(latch.record(named({ holdLedgerId: "acme" }), { hold: quotaLike })).rejects.toMatchObject({
      issues: [{ path: "observation.correlation.holdLedgerId" }],
    });
    // Naming exactly the hold passed is the same observation record() builds.
    const same = await latch.record(named({ holdId: hold.holdId, holdFeatureId: "usd" }), { hold });
    expect(same).toEqual(await latch.record(call(1), { hold }));
  });

  it("settle() of a call not rated yet and recorded WITHOUT its hold: reported, the hold stays until its TTL", async () => {
    const ledger = await ledgerWithGrants();
    const { latch, work } = setup(ledger);
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", ttlMs: 60_000 }));
    const result = await latch.record(call(1));
    expect(await latch.settle(hold, result)).toEqual({ settled: true });
    expect(warnings).toEqual([
      expect.objectContaining({ code: "credit_hold_unresolved", eventId: "req-1:0:openai" }),
    ]);
    await work();
    // Burned, and still held: the early denial this link avoids, until the hold expires.
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0.0035" });
    expect(await canHold(ledger, "usd", "0.9965")).toBe(false);
    now += 60_000;
    expect(await canHold(ledger, "usd", "0.9965")).toBe(true);
  });

  it("settle() of a call recorded under another hold voids this one: the burn commits the other", async () => {
    const ledger = await ledgerWithGrants();
    const { latch, work } = setup(ledger);
    const a = granted(await latch.reserve({ account: "acme", amount: "0.25" }));
    const b = granted(await latch.reserve({ account: "acme", amount: "0.25" }));
    const result = await latch.record(call(1), { hold: a });
    expect(await latch.settle(b, result)).toEqual({ settled: true }); // voids b
    expect(await canHold(ledger, "usd", "0.75")).toBe(true); // only a is held
    await latch.settle(a, result);
    await work();
    expect(await canHold(ledger, "usd", "0.9965")).toBe(true);
    expect(codes()).toEqual([]);
  });
});

describe("a linked credit hold under corrections, several routes and another ledger", () => {
  it("a correction before the worker's burn (the worker crashed after storing): the hold resolves, v2 burned once", async () => {
    const ledger = await ledgerWithGrants();
    const { latch, log, stores, work } = setup(ledger);
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", ttlMs: 60_000 }));
    await latch.settle(hold, await latch.record(call(1), { hold }));
    const crashed = createIngestRecorder({ ...stores, clock: () => new Date(NOW) });
    await crashed.record(log.published.get("req-1:0:openai") as UsageObservation);
    const v2 = await latch.correct("req-1:0:openai", { input_tokens: 2000, output_tokens: 100 });
    expect(v2.version).toBe(2);
    // The redelivery commits the hold with v1's usage, which the ledger finds superseded.
    await work();
    expect(await latch.reconcileCredits()).toEqual({ versions: 2 });
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0.006", burned: "0.006", balance: "0.994" });
    expect(await canHold(ledger, "usd", "0.994")).toBe(true);
    expect(codes()).toEqual([]);
  });

  it("a crash between the hold's commit and the route's burn (fault injected): the redelivery burns nothing more", async () => {
    const ledger = await ledgerWithGrants();
    let killNextUsage = false;
    // The process dies at the route's recordUsage (every retry of it), after commitHold returned.
    const dying = new Proxy(ledger, {
      get(target, name) {
        const value = Reflect.get(target, name);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          if (name === "recordUsage" && killNextUsage) return Promise.reject(new Error("killed"));
          return value.apply(target, args);
        };
      },
    });
    const { latch, work } = setup(dying);
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5" }));
    await latch.settle(hold, await latch.record(call(1), { hold }));
    killNextUsage = true;
    await expect(work()).rejects.toThrow("killed"); // not acknowledged: redelivered
    killNextUsage = false;
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0.0035" }); // the commit burned it
    await Promise.all([work(), latch.reconcileCredits(), work()]);
    expect(await feature(ledger, "usd")).toMatchObject({
      usage: "0.0035",
      burned: "0.0035",
      balance: "0.9965",
    });
    expect(await canHold(ledger, "usd", "0.9965")).toBe(true);
  });

  it("a hold expired (not purged) before the worker: the late commit burns once, nothing reported", async () => {
    const ledger = await ledgerWithGrants(60_000);
    const { latch, work } = setup(ledger);
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", ttlMs: 1_000 }));
    await latch.settle(hold, await latch.record(call(1), { hold }));
    now += 5_000;
    expect(await canHold(ledger, "usd", "1")).toBe(true); // expired: held nothing any more
    await work();
    await work();
    expect(await feature(ledger, "usd")).toMatchObject({
      usage: "0.0035",
      burned: "0.0035",
      balance: "0.9965",
    });
    expect(await canHold(ledger, "usd", "0.9965")).toBe(true);
    expect(codes()).toEqual([]);
  });

  it("routes of two features and a quantity hold: each feature burned once, the hold resolved", async () => {
    const ledger = await ledgerWithGrants();
    const { latch, work } = setup(ledger, {
      featureId: "tokens",
      route: (o: UsageObservation) => [
        { ledgerId: o.subject.tenantId, featureId: "usd" },
        { ledgerId: o.subject.tenantId, featureId: "tokens" },
      ],
    });
    const hold = granted(await latch.reserve({ account: "acme", amount: "5000" }));
    await latch.settle(hold, await latch.record(call(1), { hold }));
    await work();
    await work();
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0.0035", balance: "0.9965" });
    expect(await feature(ledger, "tokens")).toMatchObject({ usage: "1100", balance: "8900" });
    expect(await canHold(ledger, "tokens", "8900")).toBe(true);
    expect(codes()).toEqual([]);
  });

  it("a hold of another ledger than the call's routes is invalid_input at record() and settle(): never burned in both ledgers", async () => {
    // Before: accepted, and the worker committed globex's hold with acme's call on top of
    // acme's route: 0.0035 burned in each ledger (settle() of an inline call did the same).
    const ledger = await ledgerWithGrants();
    await addUsdLedger(ledger, "globex");
    const globex = async () =>
      (await ledger.balance("globex", "2026-03-02T00:00:00Z")).features.find((f) => f.featureId === "usd");
    for (const inline of [false, true]) {
      const { latch, log, work } = setup(ledger, { inline });
      const hold = granted(await latch.reserve({ account: "globex", amount: "0.5", ttlMs: 60_000 }));
      await expect(latch.record(call(1), { hold })).rejects.toMatchObject({
        code: "invalid_input",
        issues: [{ path: "options.hold.account" }],
      });
      expect(log.published.size).toBe(0);
      // Recorded without it, settle() refuses to commit it for acme's call too.
      const result = await latch.record(call(1));
      await expect(latch.settle(hold, result)).rejects.toMatchObject({
        code: "invalid_input",
        issues: [{ path: "hold.account" }],
      });
      await work();
      expect(await latch.settle(hold, { status: "failed" })).toEqual({ settled: true });
    }
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0.0035", balance: "0.9965" });
    expect(await globex()).toMatchObject({ usage: "0", balance: "1" });
  });
});

describe("a credit Hold whose featureId is not its hold's feature (tampered, or rebuilt with the default feature)", () => {
  // A USD hold (reserve names "usd"); usage burns tokens (credits.featureId). A gateway that
  // keeps { holdId, account, amount } and rebuilds the Hold with the default feature hands
  // settle() / record() a Hold that says "tokens". Before: the hold was committed with what
  // "tokens" counts of the call, 1100 (as USD: usage 1100, overage 1099, for a $0.0035 call).
  it("settle(): invalid_input naming hold.featureId, nothing burned on the hold; the real Hold then settles it exactly", async () => {
    const ledger = await ledgerWithGrants();
    const { latch } = setup(ledger, { featureId: "tokens", inline: true });
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    const rebuilt = { ...hold, featureId: "tokens" };
    const result = await latch.record(call(1));
    expect(result.status).toBe("rated");
    const refused = latch.settle(rebuilt, result);
    await expect(refused).rejects.toMatchObject({
      code: "invalid_input",
      issues: [{ path: "hold.featureId" }],
    });
    await expect(refused).rejects.toMatchObject({
      cause: expect.objectContaining({
        code: "invalid_input",
        issues: [expect.objectContaining({ path: "featureId" })],
      }),
    });
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0", overage: "0", balance: "1" });
    expect(await feature(ledger, "tokens")).toMatchObject({ usage: "1100", balance: "8900" });
    expect(await canHold(ledger, "usd", "0.6")).toBe(false); // still held: nothing resolved it
    expect(await latch.settle(hold, result)).toEqual({ settled: true });
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0.0035", overage: "0", balance: "0.9965" });
    expect(await feature(ledger, "tokens")).toMatchObject({ usage: "1100", balance: "8900" });
    expect(await canHold(ledger, "usd", "0.9965")).toBe(true);
    expect(codes()).toEqual([]);
  });

  it("the worker's burn of a call recorded with it: reported, the call burned once through its routes, never the wrong amount", async () => {
    const ledger = await ledgerWithGrants();
    const { latch, log, work } = setup(ledger, { featureId: "tokens" });
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    const rebuilt = { ...hold, featureId: "tokens" };
    const result = await latch.record(call(1), { hold: rebuilt });
    expect(result.status).toBe("accepted");
    expect(log.published.get("req-1:0:openai")?.correlation).toEqual({
      holdId: hold.holdId,
      holdFeatureId: "tokens",
      holdLedgerId: "acme",
    });
    // settle() with the real Hold leaves it open for the worker (a money hold, not rated yet).
    expect(await latch.settle(hold, result)).toEqual({ settled: true });
    expect((await work()).map((r) => r.status)).toEqual(["rated"]);
    expect(warnings).toEqual([
      expect.objectContaining({
        code: "credit_hold_unresolved",
        eventId: "req-1:0:openai",
        cause: expect.objectContaining({
          code: "invalid_input",
          issues: [expect.objectContaining({ path: "featureId" })],
        }),
      }),
    ]);
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0", overage: "0", balance: "1" });
    expect(await feature(ledger, "tokens")).toMatchObject({ usage: "1100", burned: "1100", balance: "8900" });
    // A redelivery: reported again (still unresolvable), burned nothing more.
    expect((await work()).map((r) => r.status)).toEqual(["rated"]);
    expect(codes()).toEqual(["credit_hold_unresolved", "credit_hold_unresolved"]);
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0", overage: "0", balance: "1" });
    expect(await feature(ledger, "tokens")).toMatchObject({ usage: "1100", burned: "1100", balance: "8900" });
    // The hold was not committed: it is released at its TTL (or by a void).
    expect(await canHold(ledger, "usd", "0.6")).toBe(false);
    await latch.settle(hold, { status: "failed" });
    expect(await canHold(ledger, "usd", "1")).toBe(true);
  });
});

describe("a hold-only feature is burned on the hold's ledger (correlation.holdLedgerId), whatever became of its hold", () => {
  // Routes burn tokens (credits.featureId); the hold is acme's usd (reserve names it). Before,
  // the hold's commit was the call's only burn of usd: a hold voided or purged before it, or a
  // correction after it, lost the call's usd.
  const platformUsd = async (ledger: MemoryCreditLedger) =>
    (await ledger.balance("platform", "2026-03-02T00:00:00Z")).features.find((f) => f.featureId === "usd");

  it("record() links the hold's ledger with its id and feature", async () => {
    const ledger = await ledgerWithGrants();
    const { latch, log } = setup(ledger, { featureId: "tokens" });
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    await latch.record(call(1), { hold });
    expect(log.published.get("req-1:0:openai")?.correlation).toEqual({
      holdId: hold.holdId,
      holdFeatureId: "usd",
      holdLedgerId: "acme",
    });
  });

  it("case 1: voided by settle(failed) after record() had stored the call: usd burned once, by record() itself", async () => {
    // Before: usd usage 0 — record()'s burn left it to the hold's commit, the void released it,
    // and reconcileCredits() reported credit_hold_unresolved without burning.
    const ledger = await ledgerWithGrants();
    const { latch } = setup(ledger, { featureId: "tokens", inline: true });
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    const result = await latch.record(call(1), { hold });
    expect(result.status).toBe("rated");
    // The caller took the call for failed (its record() threw after the data landed).
    expect(await latch.settle(hold, { status: "failed" })).toEqual({ settled: true });
    expect(await latch.reconcileCredits()).toEqual({ versions: 1 });
    expect(await latch.reconcileCredits()).toEqual({ versions: 0 });
    expect(await feature(ledger, "usd")).toMatchObject({
      usage: "0.0035",
      burned: "0.0035",
      balance: "0.9965",
    });
    expect(await feature(ledger, "tokens")).toMatchObject({ usage: "1100", burned: "1100" });
    expect(await canHold(ledger, "usd", "0.9965")).toBe(true); // nothing left held
    expect(codes()).toEqual([]);
  });

  it("case 2 (LIMIT): expired and purged before the call was priced: rerateUnpriced() reports the purged hold, usd not burned", async () => {
    // The commit meets a purged hold (invalid_input naming holdId), which the ledger cannot tell
    // from a hold id it never knew (a made-up Hold would name any ledger and feature): the hold
    // route does not burn unchecked.
    const ledger = await ledgerWithGrants(1_000);
    const pricing = pricingOf([]);
    const { latch } = setup(ledger, { featureId: "tokens", inline: true, config: { pricing } });
    const hold = granted(
      await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd", ttlMs: 1_000 }),
    );
    const result = await latch.record(call(1), { hold });
    expect(result.status).toBe("unpriced");
    expect(await latch.settle(hold, result)).toEqual({ settled: true }); // left open for the burn
    now += 5_000;
    expect((await ledger.purgeResolvedHolds()).purged).toBe(1);
    pricing.add(gpt4o);
    expect(await latch.rerateUnpriced()).toEqual({ rated: 1, stillUnpriced: 0 });
    await latch.reconcileCredits();
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0", burned: "0", balance: "1" });
    expect(await feature(ledger, "tokens")).toMatchObject({ usage: "1100" });
    expect(warnings).toEqual([
      expect.objectContaining({
        code: "credit_hold_unresolved",
        eventId: "req-1:0:openai",
        cause: expect.objectContaining({ code: "invalid_input" }),
      }),
      // reconcileCredits() walks the record again: reported again.
      expect.objectContaining({ code: "credit_hold_unresolved", eventId: "req-1:0:openai" }),
    ]);
    expect(warnings[0]?.message).toContain("is not among the call's routes, so it is not burned");
  });

  it("case 3 (LIMIT): correct() does not reach the hold-only usd (keeps v1 on the hold's ledger), the routes take v2", async () => {
    // A correction's burn (version 2+) has no hold route: hold commits are version 1 only, so
    // nothing confirms the link (a Hold rebuilt with another account or featureId would burn
    // what it claims). As before the hold route existed, usd keeps v1's 0.0035.
    const ledger = await ledgerWithGrants();
    const { latch } = setup(ledger, { featureId: "tokens", inline: true });
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    await latch.settle(hold, await latch.record(call(1), { hold }));
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0.0035" });
    const v2 = await latch.correct("req-1:0:openai", { input_tokens: 2000, output_tokens: 100 });
    expect(v2.version).toBe(2);
    expect(await latch.reconcileCredits()).toEqual({ versions: 2 });
    expect(await feature(ledger, "usd")).toMatchObject({
      usage: "0.0035",
      burned: "0.0035",
      balance: "0.9965",
    });
    expect(await feature(ledger, "tokens")).toMatchObject({ usage: "2100", balance: "7900" });
    expect(await canHold(ledger, "usd", "0.9965")).toBe(true);
    expect(codes()).toEqual([]);
  });

  it("case 3 through the ingest log (LIMIT): the worker's burn commits the hold; a correction does not replace usd", async () => {
    const ledger = await ledgerWithGrants();
    const { latch, work } = setup(ledger, { featureId: "tokens" });
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    await latch.settle(hold, await latch.record(call(1), { hold }));
    await work();
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0.0035" });
    await latch.correct("req-1:0:openai", { input_tokens: 2000, output_tokens: 100 });
    await work(); // a redelivery of v1: burns the stored v2, which has no hold route
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0.0035", burned: "0.0035" });
    expect(await feature(ledger, "tokens")).toMatchObject({ usage: "2100" });
    expect(codes()).toEqual([]);
  });

  it("case 4: two ledgers (acme tokens, platform usd), acme's usd hold voided: acme's usd still burned once", async () => {
    // Before: silent, acme's usd never burned — platform's usd route counted the voided acme
    // hold as routed.
    const ledger = await ledgerWithGrants();
    await addUsdLedger(ledger, "platform");
    const { latch } = setup(ledger, {
      inline: true,
      route: () => [
        { ledgerId: "acme", featureId: "tokens" },
        { ledgerId: "platform", featureId: "usd" },
      ],
    });
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    const result = await latch.record(call(1), { hold });
    expect(result.status).toBe("rated");
    expect(await latch.settle(hold, { status: "failed" })).toEqual({ settled: true });
    expect(await latch.reconcileCredits()).toEqual({ versions: 1 });
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0.0035", balance: "0.9965" });
    expect(await platformUsd(ledger)).toMatchObject({ usage: "0.0035", balance: "0.9965" });
    expect(await feature(ledger, "tokens")).toMatchObject({ usage: "1100" });
    expect(codes()).toEqual([]);
  });

  it("case 4 through the ingest log: the worker burns acme's usd even though settle(failed) voided the hold", async () => {
    const ledger = await ledgerWithGrants();
    await addUsdLedger(ledger, "platform");
    const { latch, work } = setup(ledger, {
      route: () => [
        { ledgerId: "acme", featureId: "tokens" },
        { ledgerId: "platform", featureId: "usd" },
      ],
    });
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    await latch.record(call(1), { hold });
    await latch.settle(hold, { status: "failed" });
    await work();
    await work();
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0.0035", balance: "0.9965" });
    expect(await platformUsd(ledger)).toMatchObject({ usage: "0.0035" });
    expect(codes()).toEqual([]);
  });

  it("a routed feature's hold is not burned twice: the route and the hold's ledger are the same burn", async () => {
    const ledger = await ledgerWithGrants();
    const { latch, work } = setup(ledger);
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5" }));
    await latch.settle(hold, await latch.record(call(1), { hold }));
    await work();
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0.0035", burned: "0.0035" });
    await latch.correct("req-1:0:openai", { input_tokens: 2000, output_tokens: 100 });
    await work();
    await latch.reconcileCredits();
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0.006", burned: "0.006", balance: "0.994" });
    expect(codes()).toEqual([]);
  });
});

describe("a Hold whose link does not match its real hold (rebuilt wrongly, e.g. from stored fields after a restart)", () => {
  // commitHold is keyed by holdId: the hold's commit burns the REAL ledger and feature, while the
  // hold's own route (see burn) would burn the CLAIMED ones. The worker's commit names the
  // claimed ledger (commitHold's ledgerId) and feature: refused, nothing committed, and the hold
  // route does not burn.
  const ledgerUsd = async (ledger: MemoryCreditLedger, ledgerId: string) =>
    (await ledger.balance(ledgerId, "2026-03-02T00:00:00Z")).features.find((f) => f.featureId === "usd");
  const mismatch = (path: string) =>
    expect.objectContaining({
      code: "credit_hold_unresolved",
      eventId: "req-1:0:openai",
      message: expect.stringContaining(path),
      cause: expect.objectContaining({
        code: "invalid_input",
        issues: [expect.objectContaining({ path })],
      }),
    });

  for (const [label, route] of [
    ["no routes", () => undefined],
    ["routes elsewhere (acme's tokens)", () => ({ ledgerId: "acme", featureId: "tokens" })],
  ] as const)
    it(`a rewritten account, ${label}: nothing committed or burned for usd on either ledger (the real hold stays held until its TTL), reported`, async () => {
      // Before the ledger claim: platform's usd committed by the hold AND acme's usd burned by the
      // hold route. A Hold naming a hold id that is not on its account (changed, or made up from
      // another's hold id) is never committed: the ledger refuses the claim naming ledgerId.
      const ledger = await ledgerWithGrants();
      await addUsdLedger(ledger, "platform");
      const { latch, log, work } = setup(ledger, { route });
      const hold = granted(await latch.reserve({ account: "platform", amount: "0.5", featureId: "usd" }));
      const rebuilt = { ...hold, account: "acme" };
      const result = await latch.record(call(1), { hold: rebuilt });
      expect(result.status).toBe("accepted");
      expect(log.published.get("req-1:0:openai")?.correlation).toMatchObject({ holdLedgerId: "acme" });
      expect(await latch.settle(rebuilt, result)).toEqual({ settled: true }); // left to the worker
      expect((await work()).map((r) => r.status)).toEqual(["rated"]);
      expect(await ledgerUsd(ledger, "acme")).toMatchObject({ usage: "0", balance: "1" });
      expect(await ledgerUsd(ledger, "platform")).toMatchObject({ usage: "0", balance: "1" });
      expect(warnings).toEqual([mismatch("ledgerId")]);
      expect(warnings[0]?.message).toContain("is not the hold's ledger: nothing committed");
      // A redelivery and a reconcile burn nothing either (each reports it again).
      await work();
      await latch.reconcileCredits();
      expect(await ledgerUsd(ledger, "platform")).toMatchObject({ usage: "0", balance: "1" });
      expect(await ledgerUsd(ledger, "acme")).toMatchObject({ usage: "0", balance: "1" });
      expect(new Set(codes())).toEqual(new Set(["credit_hold_unresolved"]));
      expect(await feature(ledger, "tokens")).toMatchObject({ usage: route() === undefined ? "0" : "1100" });
      // The real hold was not committed: 0.5 of platform's usd still held until its TTL.
      const probe = await ledger.reserve({
        holdId: "probe",
        ledgerId: "platform",
        featureId: "usd",
        amount: "0.6",
        ttlMs: 1_000,
      });
      expect(probe.granted).toBe(false);
    });

  it("a rewritten featureId of a hold-only feature (no routes): the claimed feature (tokens) is not burned, reported", async () => {
    // Before: the hold route burned acme's tokens (1100) for a usd hold whose commit was refused.
    const ledger = await ledgerWithGrants();
    const { latch, work } = setup(ledger, { route: () => undefined });
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    const rebuilt = { ...hold, featureId: "tokens" };
    const result = await latch.record(call(1), { hold: rebuilt });
    expect(result.status).toBe("accepted");
    expect(await latch.settle(hold, result)).toEqual({ settled: true });
    expect((await work()).map((r) => r.status)).toEqual(["rated"]);
    expect(await feature(ledger, "tokens")).toMatchObject({ usage: "0", balance: "10000" });
    expect(warnings).toEqual([mismatch("featureId")]);
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0", balance: "1" });
    await work();
    await latch.reconcileCredits();
    expect(await feature(ledger, "tokens")).toMatchObject({ usage: "0", balance: "10000" });
    // The hold was not committed: still held until its TTL (or a void).
    expect(await canHold(ledger, "usd", "0.6")).toBe(false);
  });
});

describe("observations of an older release (no correlation.holdLedgerId)", () => {
  /** Call 1 linked to `hold` as a release before holdLedgerId linked it. */
  const older = (hold: { holdId: string; featureId: string }) =>
    parseObservation({ ...call(1), correlation: { holdId: hold.holdId, holdFeatureId: hold.featureId } });

  it("a worker burns one as before: a voided hold-only hold is reported, usd not burned", async () => {
    const ledger = await ledgerWithGrants();
    const { latch, log, work } = setup(ledger, { featureId: "tokens" });
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    log.published.set("req-1:0:openai", older(hold)); // in flight from an older gateway
    await latch.settle(hold, { status: "failed" });
    expect((await work()).map((r) => r.status)).toEqual(["rated"]);
    expect(codes()).toEqual(["credit_hold_unresolved"]);
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0" });
    expect(await feature(ledger, "tokens")).toMatchObject({ usage: "1100" });
  });

  it("a worker burns one as before: a committed hold burns usd once", async () => {
    const ledger = await ledgerWithGrants();
    const { latch, log, work } = setup(ledger, { featureId: "tokens" });
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    log.published.set("req-1:0:openai", older(hold));
    await work();
    await work();
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0.0035", balance: "0.9965" });
    expect(await canHold(ledger, "usd", "0.9965")).toBe(true);
    expect(codes()).toEqual([]);
  });

  it("a retry across releases (stored without holdLedgerId, retried with it, or the reverse) is a duplicate, not idempotency_conflict", async () => {
    const ledger = await ledgerWithGrants();
    // Stored by an older release; the same call recorded again by this one (inline).
    const a = setup(ledger, { featureId: "tokens", inline: true });
    const hold = granted(await a.latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    await a.stores.observations.append(older(hold));
    const again = await a.latch.record(call(1), { hold });
    expect(again.status).toBe("rated");
    // The stored call stands as stored (an older release's link): its burn is today's.
    if (again.status === "rated")
      expect(again.record.observation.correlation).toEqual({ holdId: hold.holdId, holdFeatureId: "usd" });
    await a.latch.settle(hold, again);
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0.0035" });
    expect(await feature(ledger, "tokens")).toMatchObject({ usage: "1100" });

    // Stored by this release (a worker); an older gateway's message of the same call redelivered.
    const b = setup(ledger, { featureId: "tokens" });
    const held = granted(await b.latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    const call2 = { ...call(2) };
    await b.latch.record(call2, { hold: held });
    await b.work();
    const oldMessage = parseObservation({
      ...call2,
      correlation: { holdId: held.holdId, holdFeatureId: "usd" },
    });
    b.log.published.set("old", oldMessage);
    expect((await b.work()).map((r) => r.status)).toEqual(["rated", "rated"]);
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0.007", balance: "0.993" });
    expect(await feature(ledger, "tokens")).toMatchObject({ usage: "2200" });

    // Another ledger on both sides is still a conflict.
    const c = setup(ledger, { featureId: "tokens" });
    await c.stores.observations.append(
      parseObservation({
        ...call(3),
        correlation: { holdId: "h-3", holdFeatureId: "usd", holdLedgerId: "acme" },
      }),
    );
    const worker = createIngestRecorder({
      ...c.stores,
      credits: { ledger, featureId: "tokens" },
      clock: () => new Date(NOW),
    });
    await expect(
      worker.record(
        parseObservation({
          ...call(3),
          correlation: { holdId: "h-3", holdFeatureId: "usd", holdLedgerId: "globex" },
        }),
      ),
    ).rejects.toMatchObject({ code: "idempotency_conflict" });
    expect(codes()).toEqual([]);
  });
});
