/**
 * Adversarial review of the hold-only credit feature burn (correlation.holdLedgerId, c113fcf):
 * attacks on double burns, wrong-ledger burns, lost burns and idempotency. Tests marked
 * "DEFECT" fail on purpose (they state the expected, correct behaviour).
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
import {
  acmeLedger,
  addLedger,
  call,
  granted,
  MemoryLog,
  NOW,
  pricingOf,
  usageOf,
} from "./support/credit-fixtures.js";

let dir: string;
let warnings: LatchWarning[];
let now: number;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-holdadv-"));
  warnings = [];
  now = Date.parse(NOW);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const ledgerWithGrants = (holdRetentionMs?: number) =>
  acmeLedger({ clock: () => now, ...(holdRetentionMs === undefined ? {} : { holdRetentionMs }) });

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
  const work = async () => {
    const results: RecordResult[] = [];
    for (const obs of log.published.values()) results.push(await worker.record(obs));
    return results;
  };
  return { latch, log, work, worker, stores };
}

const codes = () => warnings.map((w) => w.code);

describe("A1 (DEFECT, fixed: settle() voids a hold the stored call does not link): a handler re-run under a hold of ANOTHER ledger (sameCallOtherHold)", () => {
  // Routes: tokens on acme and on platform (a customer and a reseller ledger, both route
  // ledgers, so assertHoldLedger accepts a hold on either). Run 1 reserves acme's usd (hold-only),
  // records, crashes before settle. Run 2 finds acme's usd still held by run 1, falls back to
  // platform's usd, records the same call (a duplicate: the stored call keeps run 1's hold) and
  // settles its own hold. The call's usd must burn once; it burns on acme (the stored call's
  // hold route) AND on platform (settle commits run 2's hold with the rated call's amount).
  it("usd is burned once across acme and platform", async () => {
    const ledger = await ledgerWithGrants();
    await addLedger(ledger, "platform");
    const { latch } = setup(ledger, {
      inline: true,
      route: () => [
        { ledgerId: "acme", featureId: "tokens" },
        { ledgerId: "platform", featureId: "tokens" },
      ],
    });
    const h1 = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    const first = await latch.record(call(1), { hold: h1 });
    expect(first.status).toBe("rated");
    // crash: h1 is never settled
    const h2 = granted(await latch.reserve({ account: "platform", amount: "0.5", featureId: "usd" }));
    const again = await latch.record(call(1), { hold: h2 });
    expect(again.status).toBe("rated");
    if (again.status === "rated") expect(again.record.observation.correlation?.holdId).toBe(h1.holdId);
    expect(await latch.settle(h2, again)).toEqual({ settled: true });
    // settle(h2) voids h2 and gives the stored call its burn (commits h1): once, on acme.
    expect([await usageOf(ledger, "acme", "usd"), await usageOf(ledger, "platform", "usd")]).toEqual([
      "0.0035",
      "0",
    ]);
    await latch.reconcileCredits();
    const acme = await usageOf(ledger, "acme", "usd");
    const platform = await usageOf(ledger, "platform", "usd");
    // Observed: acme 0.0035 AND platform 0.0035 (0.007 in all for a $0.0035 call).
    expect([acme, platform].filter((u) => u !== "0")).toEqual(["0.0035"]);
  });
});

describe("A2: route functions against the hold route", () => {
  it("a route returning the hold's (ledger, feature) for some calls only, duplicates, and a real route of usd on another ledger: each burned once", async () => {
    const ledger = await ledgerWithGrants();
    await addLedger(ledger, "platform");
    // Call 1: routed to acme usd (the hold's own) twice over; call 2: not; both: platform usd.
    const { latch } = setup(ledger, {
      inline: true,
      route: (o) => [
        { ledgerId: "acme", featureId: "tokens" },
        { ledgerId: "acme", featureId: "tokens" },
        { ledgerId: "platform", featureId: "usd" },
        ...(o.eventId.startsWith("req-1:")
          ? [
              { ledgerId: "acme", featureId: "usd" },
              { ledgerId: "acme", featureId: "usd" },
            ]
          : []),
      ],
    });
    for (const i of [1, 2]) {
      const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
      const result = await latch.record(call(i), { hold });
      expect(await latch.settle(hold, i === 1 ? result : { status: "failed" })).toEqual({ settled: true });
    }
    await latch.reconcileCredits();
    await latch.reconcileCredits();
    expect(await usageOf(ledger, "acme", "usd")).toBe("0.007");
    expect(await usageOf(ledger, "platform", "usd")).toBe("0.007");
    expect(await usageOf(ledger, "acme", "tokens")).toBe("2200");
    expect(codes()).toEqual([]);
  });

  it("a route function that throws: the worker's burn throws (redelivered), nothing burned; the redelivery after the fix burns usd once", async () => {
    const ledger = await ledgerWithGrants();
    let broken = false;
    const { latch, work } = setup(ledger, {
      featureId: "tokens",
      route: (o) => {
        if (broken) throw new Error("route table unavailable");
        return { ledgerId: o.subject.tenantId, featureId: "tokens" };
      },
    });
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    await latch.record(call(1), { hold });
    await latch.settle(hold, { status: "failed" });
    broken = true;
    await expect(work()).rejects.toThrow("route table unavailable");
    expect(codes()).toEqual(["credit_burn_failed"]);
    expect(await usageOf(ledger, "acme", "usd")).toBe("0");
    broken = false;
    await work(); // the redelivery
    await latch.reconcileCredits();
    expect(await usageOf(ledger, "acme", "usd")).toBe("0.0035");
    expect(await usageOf(ledger, "acme", "tokens")).toBe("1100");
  });
});

describe("A3: correct() and races between the worker's burn and the caller's settle()", () => {
  // A quantity hold-only feature: hold tokens, routes burn usd. settle() of an `accepted` call
  // commits at once (tokens counts the meters), the worker's hold route records the same event.
  // Corrections do not reach a hold-only feature (nothing confirms the link for a version 2+
  // burn: see CreditBurns.burn): tokens keeps version 1's amount, once; the routes take v2.
  for (const order of ["settle-first", "worker-first", "concurrent"] as const)
    it(`tokens hold-only, ${order}, then correct(): tokens = v1 once (LIMIT: not corrected), hold resolved`, async () => {
      const ledger = await ledgerWithGrants();
      const { latch, work } = setup(ledger, { featureId: "usd" });
      const hold = granted(await latch.reserve({ account: "acme", amount: "5000", featureId: "tokens" }));
      const result = await latch.record(call(1), { hold });
      expect(result.status).toBe("accepted");
      if (order === "settle-first") {
        await latch.settle(hold, result);
        await work();
      } else if (order === "worker-first") {
        await work();
        await latch.settle(hold, result);
      } else await Promise.all([work(), latch.settle(hold, result), work()]);
      expect(await usageOf(ledger, "acme", "tokens")).toBe("1100");
      await latch.correct("req-1:0:openai", { input_tokens: 2000, output_tokens: 100 });
      await latch.settle(hold, result); // a late duplicate settle (v1): superseded
      await work();
      await latch.reconcileCredits();
      expect(await usageOf(ledger, "acme", "tokens")).toBe("1100");
      expect(await usageOf(ledger, "acme", "usd")).toBe("0.006");
      const probe = await ledger.reserve({
        holdId: "p",
        ledgerId: "acme",
        featureId: "tokens",
        amount: "8900",
        ttlMs: 1000,
      });
      expect(probe.granted).toBe(true);
      expect(codes()).toEqual([]);
    });

  it("correct() before the worker's first burn (worker crashed after storing), caller's settle last: tokens v1 once (LIMIT: not corrected)", async () => {
    const ledger = await ledgerWithGrants();
    const { latch, log, stores, work } = setup(ledger, { featureId: "usd" });
    const hold = granted(await latch.reserve({ account: "acme", amount: "5000", featureId: "tokens" }));
    const result = await latch.record(call(1), { hold });
    const crashed = createIngestRecorder({ ...stores, clock: () => new Date(NOW) });
    await crashed.record(log.published.get("req-1:0:openai") as UsageObservation);
    await latch.correct("req-1:0:openai", { input_tokens: 2000, output_tokens: 100 });
    expect(await usageOf(ledger, "acme", "tokens")).toBe("0"); // a v2 burn has no hold route
    await latch.settle(hold, result); // commits v1, the hold resolves
    await work();
    await latch.reconcileCredits();
    expect(await usageOf(ledger, "acme", "tokens")).toBe("1100");
    expect(await usageOf(ledger, "acme", "usd")).toBe("0.006");
    expect(codes()).toEqual([]);
  });

  it("NOTE: money hold-only, correct() before the worker's first burn, no reconcileCredits(): the hold stays held until its TTL (nothing lost or doubled)", async () => {
    const ledger = await ledgerWithGrants();
    const { latch, log, stores, work } = setup(ledger, { featureId: "tokens" });
    const hold = granted(
      await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd", ttlMs: 60_000 }),
    );
    await latch.settle(hold, await latch.record(call(1), { hold })); // accepted: left open
    const crashed = createIngestRecorder({ ...stores, clock: () => new Date(NOW) });
    await crashed.record(log.published.get("req-1:0:openai") as UsageObservation);
    await latch.correct("req-1:0:openai", { input_tokens: 2000, output_tokens: 100 });
    await work(); // the redelivery burns the stored v2: version 2 never commits the hold, nor burns it
    expect(await usageOf(ledger, "acme", "usd")).toBe("0");
    const probe = await ledger.reserve({
      holdId: "p",
      ledgerId: "acme",
      featureId: "usd",
      amount: "0.994",
      ttlMs: 1000,
    });
    expect(probe.granted).toBe(false); // still 0.5 held on top of the burn
    await latch.reconcileCredits(); // walks v1: commits the hold, resolving it (v1's amount)
    const again = await ledger.reserve({
      holdId: "p2",
      ledgerId: "acme",
      featureId: "usd",
      amount: "0.994",
      ttlMs: 1000,
    });
    expect(again.granted).toBe(true);
    expect(await usageOf(ledger, "acme", "usd")).toBe("0.0035");
  });

  it("money hold-only: unpriced, rerated, corrected, hold purged, reconcileCredits() re-walks v1 and v2 from scratch: usd = v1 once (LIMIT: not corrected); the re-walk reports the purged hold (it cannot be told from one the ledger never knew)", async () => {
    const ledger = await ledgerWithGrants(1_000);
    const pricing = pricingOf([]);
    const { latch, stores } = setup(ledger, { featureId: "tokens", inline: true, config: { pricing } });
    const hold = granted(
      await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd", ttlMs: 1_000 }),
    );
    const result = await latch.record(call(1), { hold });
    expect(result.status).toBe("unpriced");
    await latch.settle(hold, result);
    const { gpt4o } = await import("./support/credit-fixtures.js");
    pricing.add(gpt4o);
    await latch.rerateUnpriced();
    await latch.correct("req-1:0:openai", { input_tokens: 2000, output_tokens: 100 });
    now += 5_000;
    await ledger.purgeResolvedHolds();
    await latch.reconcileCredits();
    await stores.rated.saveCursor("latch:credits", "0");
    await latch.reconcileCredits();
    expect(await usageOf(ledger, "acme", "usd")).toBe("0.0035");
    expect(await usageOf(ledger, "acme", "tokens")).toBe("2100");
    // The walk from scratch meets v1's hold purged: unchecked, so its hold route does not burn,
    // and nothing shows the call burned it before (the hold's commit did): reported once.
    expect(codes()).toEqual(["credit_hold_unresolved"]);
  });
});

describe("A4: amounts and currencies of a hold-only feature", () => {
  it("a hold-only quantity feature counting 0 (a call with no tokens), hold voided: burned as 0 once, no warning, the hold released", async () => {
    const ledger = await ledgerWithGrants();
    const { latch, work } = setup(ledger, { featureId: "usd" });
    const hold = granted(await latch.reserve({ account: "acme", amount: "100", featureId: "tokens" }));
    const zero = call(1, { meters: { input_tokens: 0, output_tokens: 0 } });
    const result = await latch.record(zero, { hold });
    await latch.settle(hold, result); // tokens counts 0: committed as 0
    await work();
    await work();
    await latch.reconcileCredits();
    expect(await usageOf(ledger, "acme", "tokens")).toBe("0");
    const probe = await ledger.reserve({
      holdId: "p",
      ledgerId: "acme",
      featureId: "tokens",
      amount: "10000",
      ttlMs: 1000,
    });
    expect(probe.granted).toBe(true);
    expect(codes()).toEqual([]);
  });

  it("NOTE: a hold-only money feature in another currency (EUR hold, call rated in USD): nothing burned in EUR, hold released; reported by settle() and reconcileCredits() (record()'s own burn has no hold route)", async () => {
    const ledger = await ledgerWithGrants();
    await ledger.createFeature({ featureId: "eur", measure: { kind: "money", currency: "EUR" } });
    await ledger.grant({
      grantId: "acme-eur",
      ledgerId: "acme",
      featureId: "eur",
      amount: "1",
      effectiveAt: "2026-03-01T00:00:00Z",
    });
    const { latch } = setup(ledger, { featureId: "tokens", inline: true });
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "eur" }));
    const result = await latch.record(call(1), { hold });
    expect(result.status).toBe("rated");
    const afterRecord = codes().length;
    await latch.settle(hold, result);
    await latch.reconcileCredits();
    expect(await usageOf(ledger, "acme", "eur")).toBe("0");
    expect(await usageOf(ledger, "acme", "tokens")).toBe("1100");
    const probe = await ledger.reserve({
      holdId: "p",
      ledgerId: "acme",
      featureId: "eur",
      amount: "1",
      ttlMs: 1000,
    });
    expect(probe.granted).toBe(true); // released
    // As before c113fcf: settle()'s credit_burn_failed + reconcile's (record() burns no hold route).
    expect({ afterRecord, all: codes() }).toEqual({
      afterRecord: 0,
      all: ["credit_burn_failed", "credit_burn_failed"],
    });
  });
});

describe("A5: releases mixed (observations with and without holdLedgerId) and retries", () => {
  const older = (i: number, hold: { holdId: string; featureId: string }) =>
    parseObservation({ ...call(i), correlation: { holdId: hold.holdId, holdFeatureId: hold.featureId } });
  const newer = (i: number, hold: { holdId: string; featureId: string; account: string }) =>
    parseObservation({
      ...call(i),
      correlation: { holdId: hold.holdId, holdFeatureId: hold.featureId, holdLedgerId: hold.account },
    });

  it("newer stored and burned (hold voided first), the older release's message replayed to the worker: the stored one stands, usd once", async () => {
    const ledger = await ledgerWithGrants();
    const { latch, log, work } = setup(ledger, { featureId: "tokens" });
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    await latch.record(call(1), { hold });
    await latch.settle(hold, { status: "failed" });
    await work();
    log.published.set("old", older(1, hold));
    expect(
      (await work()).map((r) =>
        r.status === "rated" ? r.record.observation.correlation?.holdLedgerId : r.status,
      ),
    ).toEqual(["acme", "acme"]);
    await latch.reconcileCredits();
    expect(await usageOf(ledger, "acme", "usd")).toBe("0.0035");
    expect(await usageOf(ledger, "acme", "tokens")).toBe("1100");
    expect(codes()).toEqual([]);
  });

  it("older stored (hold voided: usd unburned, reported), then this release's retry of the same call: a duplicate, usd stays unburned (documented) — NOTE", async () => {
    const ledger = await ledgerWithGrants();
    const { latch, log, work } = setup(ledger, { featureId: "tokens" });
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    log.published.set("req-1:0:openai", older(1, hold));
    await latch.settle(hold, { status: "failed" });
    await work();
    log.published.set("new", newer(1, hold)); // the new gateway's retry, delivered
    await work();
    await latch.reconcileCredits();
    expect(await usageOf(ledger, "acme", "usd")).toBe("0");
    expect(codes()[0]).toBe("credit_hold_unresolved");
  });

  it("spool replay of an older release's entry after this release stored the call inline: a duplicate, usd once", async () => {
    const ledger = await ledgerWithGrants();
    const { latch, worker } = setup(ledger, { featureId: "tokens", inline: true });
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    await latch.settle(hold, await latch.record(call(1), { hold }));
    // An older release's spool entry (no holdLedgerId) replayed through a worker-like path.
    const replayed = await worker.record(older(1, hold));
    expect(replayed.status === "rated" && replayed.record.observation.correlation?.holdLedgerId).toBe("acme");
    await latch.reconcileCredits();
    expect(await usageOf(ledger, "acme", "usd")).toBe("0.0035");
    expect(codes()).toEqual([]);
  });

  it("a retry under the same hold with a DIFFERENT holdLedgerId is idempotency_conflict (nothing burned on the other ledger)", async () => {
    const ledger = await ledgerWithGrants();
    await addLedger(ledger, "globex");
    const { latch, worker } = setup(ledger, { featureId: "tokens", inline: true });
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    await latch.settle(hold, await latch.record(call(1), { hold }));
    await expect(worker.record(newer(1, { ...hold, account: "globex" }))).rejects.toMatchObject({
      code: "idempotency_conflict",
    });
    expect(await usageOf(ledger, "globex", "usd")).toBe("0");
    expect(await usageOf(ledger, "acme", "usd")).toBe("0.0035");
  });

  it("a message naming a hold-only (ledger, feature) under a hold id the ledger never knew is not burned there by a worker (reported)", async () => {
    const ledger = await ledgerWithGrants();
    await addLedger(ledger, "globex");
    const { worker } = setup(ledger, { featureId: "tokens" });
    // No such hold anywhere: the commit is refused (unknown holdId), and the hold route, which
    // only burns once the ledger checked the link, does not burn globex's usd.
    await worker.record(newer(1, { holdId: "forged", featureId: "usd", account: "globex" }));
    expect(await usageOf(ledger, "globex", "usd")).toBe("0");
    expect(codes()).toEqual(["credit_hold_unresolved"]);
  });
});

describe("A6: quota holds, hostile ids, hashes", () => {
  it("a quota Hold links only its id: no holdFeatureId / holdLedgerId, no hold route", async () => {
    const ledger = await ledgerWithGrants();
    const { latch } = setup(ledger, { featureId: "tokens", inline: true });
    const quota = {
      kind: "quota",
      granted: true,
      holdId: "q-1",
      account: "acme",
      amount: 10,
    } as unknown as Hold;
    const result = await latch.record(call(1), { hold: quota });
    expect(result.status === "rated" && result.record.observation.correlation).toEqual({ holdId: "q-1" });
    expect(await usageOf(ledger, "acme", "usd")).toBe("0");
    expect(await usageOf(ledger, "acme", "tokens")).toBe("1100");
  });

  it("hostile holdLedgerId values: the fast pre-check and the schema agree (U+0000, lone surrogates, 257 chars refused; '|' and 256 chars taken)", () => {
    const bad = ["a\u0000b", "\uD800", "x\uDC00", "a".repeat(257), ""];
    const good = ["a|b", "|", "a".repeat(256), "\uD83D\uDE00"];
    const at = (holdLedgerId: unknown) => ({
      ...call(1),
      correlation: { holdId: "h", holdFeatureId: "usd", holdLedgerId },
    });
    for (const v of bad) expect(() => parseObservation(at(v)), JSON.stringify(v)).toThrow();
    for (const v of good) expect(parseObservation(at(v)).correlation?.holdLedgerId).toBe(v);
    // A Proxy correlation answering differently on a second read: one value checked and kept.
    let reads = 0;
    const correlation = new Proxy(
      { holdId: "h", holdFeatureId: "usd", holdLedgerId: "acme" },
      {
        get(target, key, receiver) {
          if (key === "holdLedgerId") return reads++ === 0 ? "acme" : "a\u0000b";
          return Reflect.get(target, key, receiver);
        },
      },
    );
    let parsed: UsageObservation | undefined;
    try {
      parsed = parseObservation({ ...call(1), correlation });
    } catch {
      parsed = undefined; // refusing is fine too
    }
    if (parsed !== undefined) expect(["acme"]).toContain(parsed.correlation?.holdLedgerId);
  });

  it("a hold-only burn on a ledger whose id has '|' (no key aliasing with another ledger)", async () => {
    const ledger = await ledgerWithGrants();
    await addLedger(ledger, "acme|usd");
    const { latch } = setup(ledger, {
      inline: true,
      route: () => [{ ledgerId: "acme|usd", featureId: "tokens" }],
    });
    const hold = granted(await latch.reserve({ account: "acme|usd", amount: "0.5", featureId: "usd" }));
    await latch.record(call(1), { hold });
    await latch.settle(hold, { status: "failed" });
    await latch.reconcileCredits(); // the hold route burns in a burn that checked the link
    expect(await usageOf(ledger, "acme|usd", "usd")).toBe("0.0035");
    expect(await usageOf(ledger, "acme", "usd")).toBe("0");
  });

  it("the observation of a call without a hold is unchanged (no holdLedgerId key, same stored observation as before)", async () => {
    const obs = parseObservation(call(1));
    expect(obs.correlation).toBeUndefined();
    const withCorr = parseObservation({ ...call(1), correlation: { requestId: "r" } });
    expect(Object.keys(withCorr.correlation ?? {})).toEqual(["requestId"]);
  });
});

describe("A7: rolling deploy forward compatibility (NOTE)", () => {
  it("correlation is a strict object: a release whose schema lacks a key refuses an observation carrying it (an older worker dead-letters a newer gateway's message with holdLedgerId)", () => {
    // Stand-in for the older release's schema: an unknown correlation key, as holdLedgerId is to it.
    expect(() =>
      parseObservation({
        ...call(1),
        correlation: { holdId: "h", holdFeatureId: "usd", holdNextId: "acme" },
      }),
    ).toThrow(/holdNextId|Unrecognized|unknown/i);
  });
});

describe("A8: one hold-only hold passed to two calls, and A1 through the ingest log", () => {
  it("the second call's commit is idempotency_conflict (reported at each burn: NOTE); each call's usd is burned once on the hold's ledger", async () => {
    const ledger = await ledgerWithGrants();
    const { latch, work } = setup(ledger, { featureId: "tokens" });
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    await latch.settle(hold, await latch.record(call(1), { hold }));
    await latch.record(call(2), { hold });
    await work();
    await work();
    await latch.reconcileCredits();
    expect(await usageOf(ledger, "acme", "usd")).toBe("0.007");
    expect(await usageOf(ledger, "acme", "tokens")).toBe("2200");
    // NOTE: reported again at every delivery and reconcile walk (only a purged hold is muted).
    expect(codes()).toEqual(["credit_hold_unresolved", "credit_hold_unresolved", "credit_hold_unresolved"]);
  });

  it("A1's re-run through the ingest log: the log's duplicate keeps the stored call; usd burned once (acme), the platform hold left held until its TTL", async () => {
    const ledger = await ledgerWithGrants();
    await addLedger(ledger, "platform");
    const { latch, work } = setup(ledger, {
      route: () => [
        { ledgerId: "acme", featureId: "tokens" },
        { ledgerId: "platform", featureId: "tokens" },
      ],
    });
    const h1 = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    await latch.record(call(1), { hold: h1 });
    await work();
    const h2 = granted(
      await latch.reserve({ account: "platform", amount: "0.5", featureId: "usd", ttlMs: 60_000 }),
    );
    const again = await latch.record(call(1), { hold: h2 });
    expect(again.status).toBe("accepted");
    await latch.settle(h2, again); // money, not rated: left open for a burn that never comes
    await work();
    await latch.reconcileCredits();
    expect(await usageOf(ledger, "acme", "usd")).toBe("0.0035");
    expect(await usageOf(ledger, "platform", "usd")).toBe("0");
    const probe = await ledger.reserve({
      holdId: "p",
      ledgerId: "platform",
      featureId: "usd",
      amount: "0.6",
      ttlMs: 1000,
    });
    expect(probe.granted).toBe(false); // h2 still holds 0.5 (released at its TTL)
  });
});

describe("A9 (DEFECT, fixed: the hold route burns only once the ledger checked the link): a rebuilt Hold", () => {
  it("a Hold rebuilt with another featureId (a tokens hold presented as usd): record() burns usd, a feature never reserved (before: nothing burned on usd, the commit refused)", async () => {
    const ledger = await ledgerWithGrants();
    const { latch } = setup(ledger, { featureId: "tokens", inline: true });
    const hold = granted(await latch.reserve({ account: "acme", amount: "5000", featureId: "tokens" }));
    const rebuilt = { ...hold, featureId: "usd" };
    const result = await latch.record(call(1), { hold: rebuilt });
    expect(result.status).toBe("rated");
    await expect(latch.settle(rebuilt, result)).rejects.toMatchObject({
      issues: [{ path: "hold.featureId" }],
    });
    await latch.settle(hold, result);
    await latch.reconcileCredits();
    expect(await usageOf(ledger, "acme", "tokens")).toBe("1100");
    expect(await usageOf(ledger, "acme", "usd")).toBe("0"); // observed: 0.0035
  });

  it("a Hold rebuilt with another account (a route ledger): record() burns no usd; settle() refuses it naming hold.account and commits nothing", async () => {
    const ledger = await ledgerWithGrants();
    await addLedger(ledger, "platform");
    const { latch } = setup(ledger, {
      inline: true,
      route: () => [
        { ledgerId: "acme", featureId: "tokens" },
        { ledgerId: "platform", featureId: "tokens" },
      ],
    });
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    const rebuilt = { ...hold, account: "platform" };
    const result = await latch.record(call(1), { hold: rebuilt });
    // Before the fix: 0.0035 (burned by the hold route of record()'s own, unchecked burn).
    expect(await usageOf(ledger, "platform", "usd")).toBe("0");
    // settle() names hold.account in its commit (commitHold's ledgerId): refused, nothing committed.
    await expect(latch.settle(rebuilt, result)).rejects.toMatchObject({
      code: "invalid_input",
      issues: [expect.objectContaining({ path: "hold.account" })],
    });
    const burned = [await usageOf(ledger, "acme", "usd"), await usageOf(ledger, "platform", "usd")];
    expect(burned).toEqual(["0", "0"]); // before the fix: ["0.0035", "0.0035"]
    // The unchanged Hold settles it: acme's usd once.
    expect(await latch.settle(hold, result)).toEqual({ settled: true });
    expect([await usageOf(ledger, "acme", "usd"), await usageOf(ledger, "platform", "usd")]).toEqual([
      "0.0035",
      "0",
    ]);
  });
});

describe("A10: correct() of a call an older release stored (NOTE, documented)", () => {
  it("the hold-only usd keeps version 1's amount (no holdLedgerId on the stored observation)", async () => {
    const ledger = await ledgerWithGrants();
    const { latch, log, work } = setup(ledger, { featureId: "tokens" });
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    log.published.set(
      "req-1:0:openai",
      parseObservation({ ...call(1), correlation: { holdId: hold.holdId, holdFeatureId: "usd" } }),
    );
    await work();
    await latch.correct("req-1:0:openai", { input_tokens: 2000, output_tokens: 100 });
    await latch.reconcileCredits();
    expect(await usageOf(ledger, "acme", "tokens")).toBe("2100");
    expect(await usageOf(ledger, "acme", "usd")).toBe("0.0035"); // v2 would be 0.006
  });
});
