/**
 * Adversarial review 2 of the hold-only credit feature burn and settle()'s re-run branch
 * (200b4f4..ba5f2e2). B3 and B4 found defects, fixed since (the hold route burns only when the
 * ledger confirmed the link; a ledger refusing the `ledgerId` claim is committed without it);
 * B1 pins a known defect (see there); B2, B5, B6 pin documented limits.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import {
  type CreditCommitInput,
  type CreditCommitResult,
  createIngestRecorder,
  type ObservationStore,
} from "../../src/adapter.js";
import { CreditCommitSchema } from "../../src/credits/schemas.js";
import {
  createLatch,
  type LatchConfig,
  type LatchWarning,
  MemoryCreditLedger,
  MemoryObservationStore,
  MemoryRatedRecordStore,
  type RecordResult,
  type UsageObservation,
} from "../../src/index.js";
import { parseWith } from "../../src/schemas/parse.js";
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
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-holdadv2-"));
  warnings = [];
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function setup(
  ledger: MemoryCreditLedger,
  options: {
    featureId?: string;
    inline?: boolean;
    route?: NonNullable<LatchConfig["credits"]>["route"];
  } = {},
) {
  const stores = {
    observations: new MemoryObservationStore() as ObservationStore,
    rated: new MemoryRatedRecordStore(),
    pricing: pricingOf(),
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

/** Both route ledgers burn usd: a tokens hold on either passes assertHoldLedger, and tokens is hold-only. */
const usdOnBoth: NonNullable<LatchConfig["credits"]>["route"] = () => [
  { ledgerId: "acme", featureId: "usd" },
  { ledgerId: "platform", featureId: "usd" },
];

// KNOWN DEFECT (older than the hold route: the same at 200b4f4; in the issue note): these two
// tests pin today's double burn so that a fix shows here. The fix proposed: settle() of an
// `accepted`/`spooled` call leaves a quantity hold open like a money hold (the call's later burn
// commits the hold it links), and record()'s duplicate branch voids the incoming hold.
describe("B1 (KNOWN DEFECT): the handler re-run (A1) with a QUANTITY hold-only feature when record() does not see the stored call", () => {
  // Run 1 reserves acme's tokens (hold-only: the routes burn usd), records, crashes before
  // settle. Run 2 reserves platform's tokens and records the same call: with an ingest log
  // the answer is `accepted` carrying run 2's observation (linking h2), so settle()'s re-run
  // branch (which reads the stored link) never fires, and a quantity feature counts the call
  // already: settle commits h2 on platform. The worker burns the stored call (run 1's message,
  // linking h1): commits h1 on acme. 1,100 tokens held by the call, 2,200 burned.
  it("ingest log: tokens burned on both acme and platform (twice)", async () => {
    const ledger = await acmeLedger();
    await addLedger(ledger, "platform");
    const { latch, work } = setup(ledger, { route: usdOnBoth });
    const h1 = granted(await latch.reserve({ account: "acme", amount: "5000", featureId: "tokens" }));
    expect((await latch.record(call(1), { hold: h1 })).status).toBe("accepted");
    // crash: h1 never settled
    const h2 = granted(await latch.reserve({ account: "platform", amount: "5000", featureId: "tokens" }));
    const again = await latch.record(call(1), { hold: h2 });
    expect(again.status).toBe("accepted");
    expect(await latch.settle(h2, again)).toEqual({ settled: true });
    await work();
    await latch.reconcileCredits();
    const burned = [await usageOf(ledger, "acme", "tokens"), await usageOf(ledger, "platform", "tokens")];
    expect(burned).toEqual(["1100", "1100"]); // once is right: see the KNOWN DEFECT above
  });

  it("inline, the store down on the re-run (spooled): tokens burned on both acme and platform (twice)", async () => {
    const ledger = await acmeLedger();
    await addLedger(ledger, "platform");
    const { latch } = setup(ledger, { inline: true, route: usdOnBoth });
    const h1 = granted(await latch.reserve({ account: "acme", amount: "5000", featureId: "tokens" }));
    const first = await latch.record(call(1), { hold: h1 });
    expect(first.status).toBe("rated");
    // Run 2 cannot see the stored call (simulated: its result is the spooled answer of run 2's
    // own observation, as record() returns when the store's append fails).
    const h2 = granted(await latch.reserve({ account: "platform", amount: "5000", featureId: "tokens" }));
    const obs2 = {
      ...(first.status === "rated" ? first.record.observation : ({} as UsageObservation)),
      correlation: { holdId: h2.holdId, holdFeatureId: "tokens", holdLedgerId: "platform" },
    } as UsageObservation;
    expect(await latch.settle(h2, { status: "spooled", eventId: obs2.eventId, observation: obs2 })).toEqual({
      settled: true,
    });
    await latch.reconcileCredits(); // the stored call's burn: commits h1
    const burned = [await usageOf(ledger, "acme", "tokens"), await usageOf(ledger, "platform", "tokens")];
    expect(burned).toEqual(["1100", "1100"]); // once is right: see the KNOWN DEFECT above
  });
});

describe("B2: settle()'s re-run branch (void + burnStored)", () => {
  async function rerun() {
    const ledger = await acmeLedger();
    await addLedger(ledger, "platform");
    const fixture = setup(ledger, {
      inline: true,
      route: () => [
        { ledgerId: "acme", featureId: "tokens" },
        { ledgerId: "platform", featureId: "tokens" },
      ],
    });
    const { latch } = fixture;
    const h1 = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    await latch.record(call(1), { hold: h1 });
    const h2 = granted(await latch.reserve({ account: "platform", amount: "0.5", featureId: "usd" }));
    const again = await latch.record(call(1), { hold: h2 });
    return { ledger, ...fixture, h1, h2, again };
  }
  const usd = async (ledger: MemoryCreditLedger) => [
    await usageOf(ledger, "acme", "usd"),
    await usageOf(ledger, "platform", "usd"),
  ];

  it("settle() called twice (and then settle(failed)): settled each time, usd once on acme, both holds resolved", async () => {
    const { ledger, latch, h2, again } = await rerun();
    expect(await latch.settle(h2, again)).toEqual({ settled: true });
    expect(await latch.settle(h2, again)).toEqual({ settled: true });
    expect(await latch.settle(h2, { status: "failed" })).toEqual({ settled: true });
    await latch.reconcileCredits();
    expect(await usd(ledger)).toEqual(["0.0035", "0"]);
    // nothing held any more on either ledger
    for (const ledgerId of ["acme", "platform"])
      expect(
        await ledger.reserve({
          holdId: `p-${ledgerId}`,
          ledgerId,
          featureId: "usd",
          amount: "0.9965",
          ttlMs: 1000,
        }),
      ).toMatchObject({ granted: true });
    expect(codes()).toEqual([]);
  });

  it("settle(failed) of the re-run: h2 voided; the stored call's usd burns only when reconcileCredits() runs (NOTE)", async () => {
    const { ledger, latch, h2 } = await rerun();
    expect(await latch.settle(h2, { status: "failed" })).toEqual({ settled: true });
    expect(await usd(ledger)).toEqual(["0", "0"]); // h1 still held, usd unburned
    await latch.reconcileCredits();
    expect(await usd(ledger)).toEqual(["0.0035", "0"]);
  });

  it("the stored call's burn throws (ledger outage): settled:false; a retried settle() burns once", async () => {
    const { ledger, latch, h2, again } = await rerun();
    const recordUsage = ledger.recordUsage.bind(ledger);
    let failures = 2; // = retry attempts
    ledger.recordUsage = async (...args) => {
      if (failures-- > 0) throw new Error("ledger down");
      return recordUsage(...args);
    };
    expect(await latch.settle(h2, again)).toEqual({ settled: false });
    expect(codes()).toContain("settle_failed");
    expect(await latch.settle(h2, again)).toEqual({ settled: true });
    await latch.reconcileCredits();
    expect(await usd(ledger)).toEqual(["0.0035", "0"]);
  });

  it("a crash between the void and the stored call's burn: nothing lost once reconcileCredits() runs", async () => {
    const { ledger, latch, h2 } = await rerun();
    await ledger.voidHold(h2.holdId); // what settle() did before crashing
    expect(await usd(ledger)).toEqual(["0", "0"]);
    await latch.reconcileCredits();
    expect(await usd(ledger)).toEqual(["0.0035", "0"]);
  });

  it("a re-run whose stored call links a credit hold of ANOTHER feature (tokens): settle(h2 usd) commits h2 normally, each feature once", async () => {
    const ledger = await acmeLedger();
    const { latch } = setup(ledger, { inline: true, route: () => [] });
    const h1 = granted(await latch.reserve({ account: "acme", amount: "5000", featureId: "tokens" }));
    await latch.record(call(1), { hold: h1 });
    const h2 = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    const again = await latch.record(call(1), { hold: h2 });
    expect(again.status).toBe("rated");
    expect(await latch.settle(h2, again)).toEqual({ settled: true });
    await latch.reconcileCredits();
    // The call is charged under both features it held: run 1's tokens and run 2's usd.
    expect([await usageOf(ledger, "acme", "tokens"), await usageOf(ledger, "acme", "usd")]).toEqual([
      "1100",
      "0.0035",
    ]);
  });
});

describe("B3: a Hold whose holdId the ledger never knew (made up, or forged) with a route function routing the call nowhere", () => {
  it("reconcileCredits() does not burn a made-up hold's (account, feature) that settle() refused", async () => {
    const ledger = await acmeLedger();
    await addLedger(ledger, "victim");
    const { latch } = setup(ledger, { inline: true, route: () => undefined });
    const forged = {
      kind: "credits" as const,
      granted: true as const,
      holdId: "never-reserved",
      account: "victim",
      featureId: "usd",
      amount: "0.5",
      available: "1",
    };
    const result = await latch.record(call(1), { hold: forged });
    expect(result.status).toBe("rated");
    await expect(latch.settle(forged, result)).rejects.toMatchObject({ code: "invalid_input" });
    expect(await usageOf(ledger, "victim", "usd")).toBe("0");
    await latch.reconcileCredits();
    // Before this change: nothing (the commit was the only burn). Now: victim's usd is burned.
    expect(await usageOf(ledger, "victim", "usd")).toBe("0"); // 0.0035 before the fix
  });
});

/** A third-party ledger that validates commitHold with its own strict schema of the previous release (no `ledgerId`). */
class OlderStrictLedger extends MemoryCreditLedger {
  override async commitHold(input: CreditCommitInput, signal?: AbortSignal): Promise<CreditCommitResult> {
    parseWith(CreditCommitSchema.omit({ ledgerId: true }).strict(), input, "CreditCommit");
    return super.commitHold(input, signal);
  }
}

async function olderLedger(): Promise<OlderStrictLedger> {
  const ledger = new OlderStrictLedger({ clock: () => Date.parse(NOW) });
  await ledger.createFeature({
    featureId: "tokens",
    measure: { kind: "quantity", meters: ["input_tokens", "output_tokens"] },
  });
  await ledger.createFeature({ featureId: "usd", measure: { kind: "money", currency: "USD" } });
  await addLedger(ledger, "acme");
  return ledger;
}

describe("B4 (compatibility): a third-party ledger whose strict commit schema predates `ledgerId`", () => {
  it("settle() of an ordinary routed credit hold still commits it (before this change it did)", async () => {
    const ledger = await olderLedger();
    const { latch } = setup(ledger, { inline: true, featureId: "tokens" });
    const hold = granted(await latch.reserve({ account: "acme", amount: "5000", featureId: "tokens" }));
    const result = await latch.record(call(1), { hold });
    // Before the fix: rejected invalid_input (zod: unrecognized key "ledgerId", path "")
    await expect(latch.settle(hold, result)).resolves.toEqual({ settled: true });
  });

  it("the worker's burn commits the linked hold (the hold released, not held until its TTL), without a warning", async () => {
    const ledger = await olderLedger();
    const { latch, work } = setup(ledger, { featureId: "tokens" });
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    await latch.record(call(1), { hold });
    await work();
    expect(await usageOf(ledger, "acme", "usd")).toBe("0.0035"); // before the fix: 0 (hold-only usd lost)
    expect(codes()).toEqual([]); // before the fix: credit_hold_unresolved
  });
});

/** A third-party ledger that refuses the unknown `ledgerId` naming it (a validator that names unknown fields). */
class NamingLedger extends MemoryCreditLedger {
  override async commitHold(input: CreditCommitInput, signal?: AbortSignal): Promise<CreditCommitResult> {
    if ((input as { ledgerId?: string }).ledgerId !== undefined)
      throw parseWith(
        CreditCommitSchema.extend({
          ledgerId: CreditCommitSchema.shape.featureId.pipe(z.never()).optional(),
        }),
        input,
        "CreditCommit",
      );
    return super.commitHold(input, signal);
  }
}

describe("B5 (LIMIT): a third-party ledger that refuses the unknown `ledgerId` naming it", () => {
  it("is taken at its word (the hold is on another ledger): settle() throws naming hold.account and commits nothing; the route still burns the call once, the hold stays held", async () => {
    const ledger = new NamingLedger({ clock: () => Date.parse(NOW) });
    await ledger.createFeature({
      featureId: "tokens",
      measure: { kind: "quantity", meters: ["input_tokens", "output_tokens"] },
    });
    await ledger.createFeature({ featureId: "usd", measure: { kind: "money", currency: "USD" } });
    await addLedger(ledger, "acme");
    const { latch, work } = setup(ledger, { featureId: "tokens" });
    const hold = granted(await latch.reserve({ account: "acme", amount: "5000", featureId: "tokens" }));
    const result = await latch.record(call(1), { hold });
    await expect(latch.settle(hold, result)).rejects.toMatchObject({
      code: "invalid_input",
      issues: [expect.objectContaining({ path: "hold.account" })],
    });
    await work();
    expect(await usageOf(ledger, "acme", "tokens")).toBe("1100"); // the route: once
    expect(codes()).toEqual(["credit_hold_unresolved"]); // the worker's commit refused too
    // Nothing committed: the 5,000 stay held (of 10,000 granted) until the hold's TTL.
    const probe = await ledger.reserve({
      holdId: "probe",
      ledgerId: "acme",
      featureId: "tokens",
      amount: "5000",
      ttlMs: 1_000,
    });
    expect(probe.granted).toBe(false);
  });
});

describe("B6 (NOTE): the re-run's settle() when the stored call was corrected in between (record() answers version 2)", () => {
  it("reconcileCredits() had walked version 1 (committed h1) before the correction: usd once on acme, h2 voided", async () => {
    const ledger = await acmeLedger();
    await addLedger(ledger, "platform");
    const { latch } = setup(ledger, {
      inline: true,
      route: () => [
        { ledgerId: "acme", featureId: "tokens" },
        { ledgerId: "platform", featureId: "tokens" },
      ],
    });
    const h1 = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    await latch.record(call(1), { hold: h1 });
    await latch.reconcileCredits(); // walks v1: commits h1
    const usdAfterV1Walk = await usageOf(ledger, "acme", "usd");
    await latch.correct("req-1:0:openai", { input_tokens: 2000, output_tokens: 100 });
    const h2 = granted(await latch.reserve({ account: "platform", amount: "0.5", featureId: "usd" }));
    const again = await latch.record(call(1), { hold: h2 });
    expect(again.status === "rated" && again.record.version).toBe(2);
    expect(await latch.settle(h2, again)).toEqual({ settled: true });
    await latch.reconcileCredits();
    expect([
      usdAfterV1Walk,
      await usageOf(ledger, "acme", "usd"),
      await usageOf(ledger, "platform", "usd"),
    ]).toEqual(["0.0035", "0.0035", "0"]);
  });

  it("LIMIT: without reconcileCredits() having walked version 1 first, settle() of the re-run leaves h1 held; reconcileCredits() burns the usd once", async () => {
    const ledger = await acmeLedger();
    await addLedger(ledger, "platform");
    const { latch } = setup(ledger, {
      inline: true,
      route: () => [
        { ledgerId: "acme", featureId: "tokens" },
        { ledgerId: "platform", featureId: "tokens" },
      ],
    });
    const h1 = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    await latch.record(call(1), { hold: h1 });
    await latch.correct("req-1:0:openai", { input_tokens: 2000, output_tokens: 100 });
    const h2 = granted(await latch.reserve({ account: "platform", amount: "0.5", featureId: "usd" }));
    const again = await latch.record(call(1), { hold: h2 });
    expect(await latch.settle(h2, again)).toEqual({ settled: true });
    // The stored call's burn (version 2) commits no hold: h1 stays held (0.5 of acme's usd)
    // until reconcileCredits() walks version 1, or its TTL.
    expect(await usageOf(ledger, "acme", "usd")).toBe("0");
    await latch.reconcileCredits();
    expect([await usageOf(ledger, "acme", "usd"), await usageOf(ledger, "platform", "usd")]).toEqual([
      "0.0035",
      "0",
    ]);
  });
});
