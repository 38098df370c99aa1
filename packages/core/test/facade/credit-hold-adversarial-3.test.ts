/**
 * Adversarial review 3 of 1185a88: its `claimRefused()` (any `invalid_input` from `commitHold`
 * naming neither `featureId` nor `holdId` retried the commit without the `ledgerId` claim), the
 * restructured `commitLinkedHold` and `settle()`. The defects it found (C1, C2, C5, C6) are fixed:
 * only a ledger that does not know the field (a root-level issue naming `ledgerId`) gets the commit
 * without the claim; a refusal naming `ledgerId` is never committed (settle() throws naming
 * `hold.account`; a later burn reports it).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type CreditCommitInput,
  type CreditCommitResult,
  type CreditReserveInput,
  type CreditReserveResult,
  createIngestRecorder,
  type ObservationStore,
} from "../../src/adapter.js";
import { LatchValidationError } from "../../src/errors/index.js";
import {
  createLatch,
  type LatchConfig,
  type LatchWarning,
  MemoryCreditLedger,
  MemoryObservationStore,
  MemoryRatedRecordStore,
  type RecordResult,
} from "../../src/index.js";
import { call, granted, MemoryLog, NOW, pricingOf, usageOf } from "./support/credit-fixtures.js";

let dir: string;
let warnings: LatchWarning[];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-holdadv3-"));
  warnings = [];
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

type Route = NonNullable<LatchConfig["credits"]>["route"];

function setup(
  ledger: MemoryCreditLedger,
  options: { featureId?: string; inline?: boolean; route?: Route } = {},
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
  const worker = createIngestRecorder({
    ...stores,
    credits,
    clock: () => new Date(NOW),
    onWarning,
    retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
  });
  const work = async () => {
    const results: RecordResult[] = [];
    for (const obs of log.published.values()) results.push(await worker.record(obs));
    return results;
  };
  return { latch, log, work };
}

async function withLedgers<L extends MemoryCreditLedger>(
  ledger: L,
  ids: string[] = ["acme", "platform"],
): Promise<L> {
  await ledger.createFeature({
    featureId: "tokens",
    measure: { kind: "quantity", meters: ["input_tokens", "output_tokens"] },
  });
  await ledger.createFeature({ featureId: "usd", measure: { kind: "money", currency: "USD" } });
  for (const ledgerId of ids) {
    await ledger.createLedger({ ledgerId, subject: { tenantId: ledgerId } });
    for (const [featureId, amount] of [
      ["usd", "1"],
      ["tokens", "10000"],
    ] as const)
      await ledger.grant({
        grantId: `${ledgerId}-${featureId}`,
        ledgerId,
        featureId,
        amount,
        effectiveAt: "2026-03-01T00:00:00Z",
      });
  }
  return ledger;
}

const memory = () => withLedgers(new MemoryCreditLedger({ clock: () => Date.parse(NOW) }));

const codes = () => warnings.map((w) => w.code);

/**
 * A third-party ledger that checks the `ledgerId` claim (as the contract asks) but names the
 * mismatch at its own path ("account"), as a ledger of its own design may.
 */
class AccountNamingLedger extends MemoryCreditLedger {
  readonly ledgerOf = new Map<string, string>();
  override async reserve(input: CreditReserveInput, signal?: AbortSignal): Promise<CreditReserveResult> {
    const result = await super.reserve(input, signal);
    this.ledgerOf.set(input.holdId, input.ledgerId);
    return result;
  }
  override async commitHold(input: CreditCommitInput, signal?: AbortSignal): Promise<CreditCommitResult> {
    const real = this.ledgerOf.get(input.holdId);
    if (input.ledgerId !== undefined && real !== undefined && input.ledgerId !== real)
      throw LatchValidationError.at("CreditCommit", "account", `hold ${input.holdId} is on another ledger`);
    const { ledgerId: _ignored, ...rest } = input;
    return super.commitHold(rest, signal);
  }
}

describe("C1 (fixed): a Hold rebuilt with another account, of a ROUTED feature", () => {
  // The route burns acme's usd (the default route: tenant acme, feature usd). The real hold is
  // platform's usd; the Hold passed to record()/settle() says acme (passes assertHoldLedger).
  // The ledger refuses the claim naming ledgerId; the facade commits the hold on platform anyway
  // (`commit(false)`), on top of acme's route burn: the call is burned twice, once in a ledger
  // no route of the call names — what assertHoldLedger exists to refuse.
  it("settle() (inline record): the call burns acme's usd once, not platform's too", async () => {
    const ledger = await memory();
    const { latch } = setup(ledger, { inline: true });
    const hold = granted(await latch.reserve({ account: "platform", amount: "0.5", featureId: "usd" }));
    const rebuilt = { ...hold, account: "acme" };
    const result = await latch.record(call(1), { hold: rebuilt });
    expect(result.status).toBe("rated");
    await latch.settle(rebuilt, result).catch(() => undefined);
    const burned = [await usageOf(ledger, "acme", "usd"), await usageOf(ledger, "platform", "usd")];
    expect(burned).toEqual(["0.0035", "0"]); // before the fix: ["0.0035", "0.0035"]
  });

  it("the worker's burn: the call burns acme's usd once, not platform's too", async () => {
    const ledger = await memory();
    const { latch, work } = setup(ledger);
    const hold = granted(await latch.reserve({ account: "platform", amount: "0.5", featureId: "usd" }));
    const rebuilt = { ...hold, account: "acme" };
    const result = await latch.record(call(1), { hold: rebuilt });
    expect(await latch.settle(rebuilt, result)).toEqual({ settled: true }); // left to the worker
    await work();
    const burned = [await usageOf(ledger, "acme", "usd"), await usageOf(ledger, "platform", "usd")];
    expect(burned).toEqual(["0.0035", "0"]); // before the fix: ["0.0035", "0.0035"]
    expect(codes()).toContain("credit_hold_unresolved");
  });
});

describe("C2 (fixed; a regression of 1185a88): a ledger that checks the claim but names it at its own path", () => {
  // ba5f2e2: settle() threw the refusal (`invalid_input`, nothing committed); the worker reported
  // it and committed nothing. Now claimRefused() takes it for "the ledger does not know the
  // field": the hold is committed on its real ledger, silently.
  it("settle() of a Hold rebuilt with another account (hold-only usd): reported or thrown, never silent", async () => {
    const ledger = await withLedgers(new AccountNamingLedger({ clock: () => Date.parse(NOW) }));
    const { latch } = setup(ledger, { inline: true, featureId: "tokens" });
    const hold = granted(await latch.reserve({ account: "platform", amount: "0.5", featureId: "usd" }));
    const rebuilt = { ...hold, account: "acme" };
    const result = await latch.record(call(1), { hold: rebuilt });
    const settled = await latch.settle(rebuilt, result).then(
      () => "settled",
      (e: { code?: string }) => e.code,
    );
    // ba5f2e2: "invalid_input". Observed: "settled" and warnings [] (platform's usd committed).
    expect(settled === "invalid_input" || codes().includes("credit_hold_unresolved")).toBe(true);
  });

  it("settle() of a ROUTED feature's rebuilt Hold: a silent double burn (acme by the route, platform by the hold)", async () => {
    const ledger = await withLedgers(new AccountNamingLedger({ clock: () => Date.parse(NOW) }));
    const { latch } = setup(ledger, { inline: true });
    const hold = granted(await latch.reserve({ account: "platform", amount: "0.5", featureId: "usd" }));
    const rebuilt = { ...hold, account: "acme" };
    const result = await latch.record(call(1), { hold: rebuilt });
    await latch.settle(rebuilt, result).catch(() => undefined);
    // ba5f2e2: ["0.0035", "0"] (settle threw, nothing committed).
    expect([await usageOf(ledger, "acme", "usd"), await usageOf(ledger, "platform", "usd")]).toEqual([
      "0.0035",
      "0",
    ]); // before the fix: ["0.0035", "0.0035"], warnings []
  });

  it("the worker's burn of a rebuilt Hold (hold-only usd): reported, as at ba5f2e2", async () => {
    const ledger = await withLedgers(new AccountNamingLedger({ clock: () => Date.parse(NOW) }));
    const { latch, work } = setup(ledger, { featureId: "tokens" });
    const hold = granted(await latch.reserve({ account: "platform", amount: "0.5", featureId: "usd" }));
    const rebuilt = { ...hold, account: "acme" };
    await latch.settle(rebuilt, await latch.record(call(1), { hold: rebuilt }));
    await work();
    expect(codes()).toContain("credit_hold_unresolved"); // before the fix: [] (platform's usd committed silently)
  });
});

/** A ledger whose commit refuses the amount (naming "amount"), whatever the claim. */
class AmountRefusingLedger extends MemoryCreditLedger {
  commits = 0;
  override async commitHold(input: CreditCommitInput): Promise<CreditCommitResult> {
    this.commits += 1;
    throw LatchValidationError.at("CreditCommit", "amount", `${input.amount} has too many decimals`);
  }
}

describe("C3 (OK): an invalid amount is not the claim: the retry without it changes neither outcome nor warning", () => {
  it("settle() throws the amount's refusal (as at ba5f2e2), whether the commit is retried without the claim or not", async () => {
    const ledger = await withLedgers(new AmountRefusingLedger({ clock: () => Date.parse(NOW) }));
    const { latch } = setup(ledger, { inline: true, featureId: "tokens" });
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    const result = await latch.record(call(1), { hold });
    await expect(latch.settle(hold, result)).rejects.toMatchObject({
      code: "invalid_input",
      issues: [expect.objectContaining({ path: "amount" })],
    });
    // Observed 2 (the retry without the claim is a wasted round trip); 1 at ba5f2e2 and with the C2 fix.
    expect(ledger.commits).toBeGreaterThanOrEqual(1);
    expect(await usageOf(ledger, "acme", "usd")).toBe("0");
  });

  it("the worker reports the hold (cause: the amount), burns no hold route", async () => {
    const ledger = await withLedgers(new AmountRefusingLedger({ clock: () => Date.parse(NOW) }));
    const { latch, work } = setup(ledger, { featureId: "tokens" });
    const hold = granted(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" }));
    await latch.settle(hold, await latch.record(call(1), { hold }));
    await work();
    expect(codes()).toEqual(["credit_hold_unresolved"]);
    expect(warnings[0]?.cause).toMatchObject({ issues: [expect.objectContaining({ path: "amount" })] });
    expect(await usageOf(ledger, "acme", "usd")).toBe("0");
  });
});

/** Refuses the claim like the memory ledger; the commit without it fails `outages` times first (a store outage). */
class FlakyAfterRefusalLedger extends MemoryCreditLedger {
  outages = 0;
  override async commitHold(input: CreditCommitInput, signal?: AbortSignal): Promise<CreditCommitResult> {
    if (input.ledgerId === undefined && this.outages > 0) {
      this.outages -= 1;
      throw new Error("connection reset");
    }
    return super.commitHold(input, signal);
  }
}

describe("C4: a ledger that checks the claim is never sent the commit without it (a store outage there cannot matter)", () => {
  it("settle() of a Hold rebuilt with another account throws naming hold.account; no second commit", async () => {
    const ledger = await withLedgers(new FlakyAfterRefusalLedger({ clock: () => Date.parse(NOW) }));
    const { latch } = setup(ledger, { inline: true, featureId: "tokens" });
    const hold = granted(await latch.reserve({ account: "platform", amount: "0.5", featureId: "usd" }));
    const rebuilt = { ...hold, account: "acme" };
    const result = await latch.record(call(1), { hold: rebuilt });
    ledger.outages = 2;
    for (const _ of [1, 2])
      await expect(latch.settle(rebuilt, result)).rejects.toMatchObject({
        code: "invalid_input",
        issues: [expect.objectContaining({ path: "hold.account" })],
      });
    expect(ledger.outages).toBe(2); // no commit without the claim was attempted
    expect([await usageOf(ledger, "acme", "usd"), await usageOf(ledger, "platform", "usd")]).toEqual([
      "0",
      "0",
    ]);
  });

  it("the worker's burn reports the rebuilt Hold at every delivery and burns no usd on either ledger", async () => {
    const ledger = await withLedgers(new FlakyAfterRefusalLedger({ clock: () => Date.parse(NOW) }));
    const { latch, work } = setup(ledger, { featureId: "tokens" });
    const hold = granted(await latch.reserve({ account: "platform", amount: "0.5", featureId: "usd" }));
    const rebuilt = { ...hold, account: "acme" };
    await latch.settle(rebuilt, await latch.record(call(1), { hold: rebuilt }));
    ledger.outages = 2;
    await work();
    await work();
    expect(ledger.outages).toBe(2);
    expect([await usageOf(ledger, "acme", "usd"), await usageOf(ledger, "platform", "usd")]).toEqual([
      "0",
      "0",
    ]);
    expect(new Set(codes())).toEqual(new Set(["credit_hold_unresolved"]));
  });
});

describe("C5: the mislinked-ledger report never says the hold was committed", () => {
  it("a voided real hold: 'nothing committed', the claim's refusal as cause", async () => {
    const ledger = await memory();
    const { latch, work } = setup(ledger, { featureId: "tokens" });
    const hold = granted(await latch.reserve({ account: "platform", amount: "0.5", featureId: "usd" }));
    const rebuilt = { ...hold, account: "acme" };
    await latch.record(call(1), { hold: rebuilt });
    await ledger.voidHold(hold.holdId);
    await work();
    expect(await usageOf(ledger, "platform", "usd")).toBe("0");
    expect(codes()).toEqual(["credit_hold_unresolved"]);
    expect(warnings[0]?.message).not.toContain("committed on its own ledger");
    expect(warnings[0]?.message).toContain("nothing committed");
    expect(warnings[0]?.cause).toMatchObject({
      code: "invalid_input",
      issues: [expect.objectContaining({ path: "ledgerId" })],
    });
  });

  it("a hold committed for another call: 'nothing committed' for this one", async () => {
    const ledger = await memory();
    const { latch, work } = setup(ledger, { featureId: "tokens" });
    const hold = granted(await latch.reserve({ account: "platform", amount: "0.5", featureId: "usd" }));
    await ledger.commitHold({
      holdId: hold.holdId,
      featureId: "usd",
      eventId: "other-call",
      amount: "0.01",
      at: "2026-03-01T12:00:01Z",
      version: 1,
    });
    const rebuilt = { ...hold, account: "acme" };
    await latch.record(call(1), { hold: rebuilt });
    await work();
    expect(codes()).toEqual(["credit_hold_unresolved"]);
    expect(warnings[0]?.message).not.toContain("committed on its own ledger");
    expect(warnings[0]?.message).toContain("nothing committed");
    expect([await usageOf(ledger, "acme", "usd"), await usageOf(ledger, "platform", "usd")]).toEqual([
      "0",
      "0.01",
    ]);
  });
});

describe("C6 (fixed; older than the ledger claim): a Hold naming ANOTHER customer's real hold id, its account rewritten to the caller's ledger", () => {
  // Hold ids may be caller-chosen (`reserve({ holdId })`), so guessable. The ledger refuses the
  // claim ("not on acme") and the facade commits the hold anyway, on the victim's ledger, with
  // the attacker's call: the victim pays for it, and the victim's own settle() then fails.
  it("settle() never commits a hold the ledger said is not on the claimed ledger", async () => {
    const ledger = await withLedgers(new MemoryCreditLedger({ clock: () => Date.parse(NOW) }), [
      "acme",
      "victim",
    ]);
    const { latch } = setup(ledger, { inline: true, featureId: "tokens" }); // routes acme's tokens: usd is hold-only
    const victimHold = granted(
      await latch.reserve({ account: "victim", amount: "0.5", featureId: "usd", holdId: "victim-req-7" }),
    );
    const forged = { ...victimHold, account: "acme" }; // passes assertHoldLedger: acme is a route ledger
    const result = await latch.record(call(1), { hold: forged });
    await latch.settle(forged, result).catch(() => undefined);
    expect(await usageOf(ledger, "victim", "usd")).toBe("0"); // before the fix: 0.0035 (the attacker's call)
    const victimCall = await latch.record(call(2, { subject: { tenantId: "victim" } }), { hold: victimHold });
    await expect(latch.settle(victimHold, victimCall)).resolves.toEqual({ settled: true }); // before the fix: idempotency_conflict
  });
});

describe("C7: settle() of a rebuilt Hold whose real hold was committed for another call", () => {
  it("is refused naming hold.account (the ledger checks the claim before the hold's state); nothing more burned", async () => {
    const ledger = await memory();
    const { latch } = setup(ledger, { inline: true, featureId: "tokens" });
    const hold = granted(await latch.reserve({ account: "platform", amount: "0.5", featureId: "usd" }));
    await ledger.commitHold({
      holdId: hold.holdId,
      featureId: "usd",
      eventId: "other-call",
      amount: "0.01",
      at: "2026-03-01T12:00:01Z",
      version: 1,
    });
    const rebuilt = { ...hold, account: "acme" };
    const result = await latch.record(call(1), { hold: rebuilt });
    await expect(latch.settle(rebuilt, result)).rejects.toMatchObject({
      code: "invalid_input",
      issues: [expect.objectContaining({ path: "hold.account" })],
    });
    expect([await usageOf(ledger, "acme", "usd"), await usageOf(ledger, "platform", "usd")]).toEqual([
      "0",
      "0.01",
    ]);
  });
});
