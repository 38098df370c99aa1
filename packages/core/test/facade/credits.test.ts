import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { CreditLedger, ObservationStore } from "../../src/adapter.js";
import {
  createLatch,
  type LatchConfig,
  type LatchWarning,
  type MemoryCreditLedger,
  MemoryObservationStore,
  MemoryQuotaReservator,
  MemoryRatedRecordStore,
} from "../../src/index.js";
import { acmeLedger, call, gpt4o, NOW, pricingOf } from "./support/credit-fixtures.js";

let dir: string;
let warnings: LatchWarning[];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-credits-"));
  warnings = [];
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A ledger "acme" with a token feature (10,000 tokens granted) and a USD feature ($1 granted). */
const ledgerWithGrants = () => acmeLedger();

function setup(
  ledger: CreditLedger,
  credits: Partial<NonNullable<LatchConfig["credits"]>> = {},
  overrides: Partial<LatchConfig> = {},
) {
  const observations = new MemoryObservationStore();
  const config: LatchConfig = {
    observations,
    rated: new MemoryRatedRecordStore(),
    pricing: pricingOf(),
    credits: { ledger, featureId: "tokens", ...credits },
    clock: () => new Date(NOW),
    spoolPath: join(dir, "spool.jsonl"),
    retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
    onWarning: (w) => warnings.push(w),
    ...overrides,
  };
  return { latch: createLatch(config), observations, config };
}

async function feature(ledger: CreditLedger, featureId: string) {
  const balance = await ledger.balance("acme", "2026-03-02T00:00:00Z");
  return balance.features.find((f) => f.featureId === featureId);
}

/** A ledger whose first `failures` recordUsage calls throw a connection-style error. */
function flakyLedger(inner: MemoryCreditLedger, failures: number): CreditLedger {
  let left = failures;
  return new Proxy(inner, {
    get(target, key) {
      const value = Reflect.get(target, key, target) as unknown;
      if (key === "recordUsage") {
        return async (...args: Parameters<CreditLedger["recordUsage"]>) => {
          if (left > 0) {
            left--;
            throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });
          }
          return target.recordUsage(...args);
        };
      }
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

describe("the README's credits facade example", () => {
  it("reserves credits, records the call (burning 1,100 tokens) and settles the hold", async () => {
    const ledger = await ledgerWithGrants();
    const latch = createLatch({
      observations: new MemoryObservationStore(),
      rated: new MemoryRatedRecordStore(),
      pricing: pricingOf(),
      credits: { ledger, featureId: "tokens", enforce: true },
      clock: () => new Date(NOW),
      spoolPath: join(dir, "spool.jsonl"),
    });
    const hold = await latch.reserve({ account: "acme", amount: 4_000, holdId: "req-1:hold" });
    expect(hold).toEqual({
      granted: true,
      kind: "credits",
      holdId: "req-1:hold",
      account: "acme",
      featureId: "tokens",
      amount: "4000",
      available: "6000",
    });
    const result = await latch.record(call(1), { hold });
    expect(await latch.settle(hold, result)).toEqual({ settled: true });
    expect(await feature(ledger, "tokens")).toMatchObject({ balance: "8900", usage: "1100" });
    // The hold is released: the rest of the balance can be reserved again.
    expect(await latch.reserve({ account: "acme", amount: "8900" })).toMatchObject({
      granted: true,
      available: "0",
    });
  });
});

describe("createLatch({ credits }): recorded usage burns credits", () => {
  it("every rated call burns its credits once, however often it is recorded", async () => {
    const ledger = await ledgerWithGrants();
    const { latch } = setup(ledger, {
      route: (o) => [
        { ledgerId: o.subject.tenantId, featureId: "tokens" },
        { ledgerId: "acme", featureId: "usd" },
      ],
    });
    for (let i = 0; i < 3; i++) expect((await latch.record(call(1))).status).toBe("rated");
    await latch.record(call(2));
    expect(await feature(ledger, "tokens")).toMatchObject({ balance: "7800", usage: "2200" });
    // A money feature burns the exact rated total: 2 × 0.0035.
    expect(await feature(ledger, "usd")).toMatchObject({ balance: "0.993", usage: "0.007" });
    expect(warnings).toEqual([]);
  });

  it("a spooled call burns once, when the spool is flushed", async () => {
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
    const { latch } = setup(ledger, {}, { observations });
    expect((await latch.record(call(1))).status).toBe("spooled");
    expect(await feature(ledger, "tokens")).toMatchObject({ usage: "0" });
    down = false;
    expect(await latch.flushSpool()).toMatchObject({ replayed: 1, remaining: 0 });
    expect(await latch.flushSpool()).toMatchObject({ replayed: 0 });
    await latch.record(call(1)); // a late retry of the original call
    expect(await feature(ledger, "tokens")).toMatchObject({ balance: "8900", usage: "1100" });
  });

  it("a ledger that fails its burns: the call is still rated, spooled, and burned once by flushSpool", async () => {
    const inner = await ledgerWithGrants();
    const { latch } = setup(flakyLedger(inner, 2)); // both attempts of the first burn fail
    expect((await latch.record(call(1))).status).toBe("rated");
    expect(warnings.map((w) => w.code)).toEqual(["credit_burn_failed", "spooled"]);
    expect(await feature(inner, "tokens")).toMatchObject({ usage: "0" });
    expect(await latch.flushSpool()).toMatchObject({ replayed: 1, remaining: 0 });
    await latch.flushSpool();
    expect(await feature(inner, "tokens")).toMatchObject({ balance: "8900", usage: "1100" });
  });

  it("a call whose ledger does not exist is still rated; the burn is reported, not retried", async () => {
    const ledger = await ledgerWithGrants();
    const { latch } = setup(ledger);
    expect((await latch.record(call(1, { subject: { tenantId: "nobody" } }))).status).toBe("rated");
    expect(warnings.map((w) => w.code)).toEqual(["credit_burn_failed"]);
    expect(warnings[0]?.message).toMatch(/a retry cannot help/);
    expect(await latch.flushSpool()).toEqual({ replayed: 0, skipped: 0, remaining: 0 });
    // A correction of it is stored too, with the same report.
    expect(await latch.correct("req-1:0:openai", { input_tokens: 1 })).toMatchObject({ version: 2 });
    expect(warnings.map((w) => w.code)).toEqual(["credit_burn_failed", "credit_burn_failed"]);
  });

  it("a money feature burns once the call is rated: an unpriced call burns when rerateUnpriced prices it", async () => {
    const ledger = await ledgerWithGrants();
    const pricing = pricingOf([]);
    const { latch } = setup(ledger, { featureId: "usd" }, { pricing });
    expect(await latch.record(call(1))).toMatchObject({ status: "unpriced" });
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0" });
    pricing.add(gpt4o);
    expect(await latch.rerateUnpriced()).toEqual({ rated: 1, stillUnpriced: 0 });
    expect(await feature(ledger, "usd")).toMatchObject({ balance: "0.9965", usage: "0.0035" });
  });

  it("a quantity feature burns even while the call is unpriced, and re-rating does not burn again", async () => {
    const ledger = await ledgerWithGrants();
    const pricing = pricingOf([]);
    const { latch } = setup(ledger, {}, { pricing });
    expect(await latch.record(call(1))).toMatchObject({ status: "unpriced" });
    pricing.add(gpt4o);
    await latch.rerateUnpriced();
    expect(await feature(ledger, "tokens")).toMatchObject({ usage: "1100" });
  });

  it("correct() replaces the event's burn, down and up, and a retried correct() burns nothing more", async () => {
    const ledger = await ledgerWithGrants();
    const { latch } = setup(ledger, {
      route: () => [
        { ledgerId: "acme", featureId: "tokens" },
        { ledgerId: "acme", featureId: "usd" },
      ],
      featureId: "tokens",
    });
    await latch.record(call(1));
    await latch.correct("req-1:0:openai", { input_tokens: 200, output_tokens: 100 }); // 300 tokens, $0.0015
    expect(await feature(ledger, "tokens")).toMatchObject({ balance: "9700", usage: "300" });
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0.0015" });
    await latch.correct("req-1:0:openai", { input_tokens: 200, output_tokens: 100 });
    await latch.correct("req-1:0:openai", { input_tokens: 4000, output_tokens: 100 }); // v3: 4,100 tokens
    expect(await feature(ledger, "tokens")).toMatchObject({ balance: "5900", usage: "4100" });
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0.011" });
    // The original call recorded again (a late retry) burns nothing: v1 is superseded.
    await latch.record(call(1));
    expect(await feature(ledger, "tokens")).toMatchObject({ usage: "4100" });
  });

  it("routes each observation to its ledger and features; a route may burn nothing", async () => {
    const ledger = await ledgerWithGrants();
    await ledger.createLedger({
      ledgerId: "acme-search",
      subject: { tenantId: "acme", projectId: "search" },
    });
    await ledger.grant({
      grantId: "search-tokens",
      ledgerId: "acme-search",
      featureId: "tokens",
      amount: "5000",
      effectiveAt: "2026-03-01T00:00:00Z",
    });
    const { latch } = setup(ledger, {
      route: (o) =>
        o.subject.projectId === undefined
          ? undefined
          : { ledgerId: `${o.subject.tenantId}-${o.subject.projectId}`, featureId: "tokens" },
    });
    await latch.record(call(1, { subject: { tenantId: "acme", projectId: "search" } }));
    await latch.record(call(2));
    const search = await ledger.balance("acme-search", "2026-03-02T00:00:00Z");
    expect(search.features[0]).toMatchObject({ balance: "3900", usage: "1100" });
    expect(await feature(ledger, "tokens")).toMatchObject({ usage: "0" });
  });
});

describe("createLatch({ credits: { enforce: true } }): reserve() holds credits", () => {
  it("denies with a reason when the credits are exhausted; holds count against later reserves", async () => {
    const ledger = await ledgerWithGrants();
    const { latch } = setup(ledger, { enforce: true });
    expect(await latch.reserve({ account: "acme", amount: 6_000 })).toMatchObject({
      granted: true,
      available: "4000",
    });
    const denied = await latch.reserve({ account: "acme", amount: "4000.5" });
    expect(denied).toMatchObject({
      granted: false,
      kind: "credits",
      reason: "insufficient",
      available: "4000",
    });
    if (!denied.granted)
      expect(denied.message).toBe("credits exhausted for acme: 4000 tokens available, 4000.5 requested");
    // A hold on another feature, named in the request.
    expect(await latch.reserve({ account: "acme", amount: "0.5", featureId: "usd" })).toMatchObject({
      granted: true,
      featureId: "usd",
      available: "0.5",
    });
  });

  it("fails closed: a ledger error denies, saying so", async () => {
    const ledger = await ledgerWithGrants();
    ledger.reserve = async () => {
      throw new Error("connection reset");
    };
    const { latch } = setup(ledger, { enforce: true });
    const hold = await latch.reserve({ account: "acme", amount: 1 });
    expect(hold).toMatchObject({ granted: false, reason: "unavailable" });
    if (!hold.granted) expect(hold.message).toBe("credit ledger unavailable: denied (credits fail closed)");
  });

  it("a failed call voids its hold; a committed call burns its actual usage once, even above the hold", async () => {
    const ledger = await ledgerWithGrants();
    const { latch } = setup(ledger, { enforce: true });
    const failed = await latch.reserve({ account: "acme", amount: 9_000 });
    await latch.settle(failed, { status: "failed" });
    const small = await latch.reserve({ account: "acme", amount: 500, holdId: "h-small" });
    const result = await latch.record(call(1)); // uses 1,100: more than the 500 held
    expect(await latch.settle(small, result)).toEqual({ settled: true });
    expect(await latch.settle(small, result)).toEqual({ settled: true }); // a retried settle
    expect(await feature(ledger, "tokens")).toMatchObject({ balance: "8900", usage: "1100", overage: "0" });
    await expect(latch.settle(small, { status: "failed" })).rejects.toMatchObject({
      code: "hold_already_resolved",
    });
  });

  it("a spooled call commits its usage at settle; the spool flush then burns nothing more", async () => {
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
    const { latch } = setup(ledger, { enforce: true }, { observations });
    const hold = await latch.reserve({ account: "acme", amount: 2_000 });
    const result = await latch.record(call(1));
    expect(result.status).toBe("spooled");
    await latch.settle(hold, result);
    expect(await feature(ledger, "tokens")).toMatchObject({ usage: "1100" });
    down = false;
    await latch.flushSpool();
    expect(await feature(ledger, "tokens")).toMatchObject({ balance: "8900", usage: "1100" });
  });

  it("a money hold on an unpriced call is released at settle; the call burns when it is rated", async () => {
    const ledger = await ledgerWithGrants();
    const pricing = pricingOf([]);
    const { latch } = setup(ledger, { featureId: "usd", enforce: true }, { pricing });
    const hold = await latch.reserve({ account: "acme", amount: "0.9" });
    await latch.settle(hold, await latch.record(call(1)));
    expect(await latch.reserve({ account: "acme", amount: "1" })).toMatchObject({ granted: true });
    pricing.add(gpt4o);
    await latch.rerateUnpriced();
    expect(await feature(ledger, "usd")).toMatchObject({ usage: "0.0035" });
  });

  it("100 concurrent reserves through the facade never oversubscribe", async () => {
    const ledger = await ledgerWithGrants();
    const { latch } = setup(ledger, { enforce: true });
    const holds = await Promise.all(
      Array.from({ length: 100 }, () => latch.reserve({ account: "acme", amount: 300 })),
    );
    expect(holds.filter((h) => h.granted)).toHaveLength(33); // floor(10,000 / 300)
    expect(holds.filter((h) => !h.granted && h.reason === "insufficient")).toHaveLength(67);
  });
});

describe("createLatch({ credits }): bad input is a typed error naming the field", () => {
  const fails = (fn: () => unknown) => {
    try {
      fn();
    } catch (error) {
      return error;
    }
    return undefined;
  };

  it("config", async () => {
    const ledger = await ledgerWithGrants();
    const base = {
      observations: new MemoryObservationStore(),
      rated: new MemoryRatedRecordStore(),
      pricing: pricingOf(),
    };
    expect(fails(() => createLatch({ ...base, credits: { ledger } }))).toMatchObject({
      code: "invalid_input",
      issues: [{ path: "credits.featureId" }],
    });
    expect(
      fails(() =>
        createLatch({
          ...base,
          quota: new MemoryQuotaReservator(),
          credits: { ledger, featureId: "tokens", enforce: true },
        }),
      ),
    ).toMatchObject({ issues: [{ path: "credits.enforce" }] });
    expect(
      fails(() => createLatch({ ...base, credits: { ledger: {} as never, featureId: "tokens" } })),
    ).toMatchObject({
      issues: [{ path: "config.credits.ledger" }],
    });
    expect(fails(() => createLatch({ ...base, credits: { ledger, featureId: "" } }))).toMatchObject({
      issues: [{ path: "config.credits.featureId" }],
    });
  });

  it("reserve", async () => {
    const ledger = await ledgerWithGrants();
    const { latch } = setup(ledger, { enforce: true });
    for (const amount of [0, -1, 1.5, "0", "1e3", "abc"]) {
      await expect(latch.reserve({ account: "acme", amount })).rejects.toMatchObject({
        code: "invalid_input",
        issues: [{ path: "amount" }],
      });
    }
    await expect(latch.reserve({ account: "acme", amount: 1, featureId: "nope" })).rejects.toMatchObject({
      issues: [{ path: "featureId" }],
    });
    await expect(latch.reserve({ account: "nobody", amount: 1 })).rejects.toMatchObject({
      issues: [{ path: "ledgerId" }],
    });
    const routed = setup(ledger, { featureId: undefined, route: () => undefined, enforce: true }).latch;
    await expect(routed.reserve({ account: "acme", amount: 1 })).rejects.toMatchObject({
      issues: [{ path: "featureId" }],
    });
    await latch.reserve({ account: "acme", amount: 10, holdId: "same" });
    await expect(latch.reserve({ account: "acme", amount: 11, holdId: "same" })).rejects.toMatchObject({
      code: "idempotency_conflict",
    });
  });
});

describe("reconcileCredits", () => {
  it("burns what a crash between storing a call and burning it left undone, once, and never undoes a correction", async () => {
    const ledger = await ledgerWithGrants();
    // The "crashed" process: its calls are stored and rated, but its burns never happened.
    const crashed = setup(ledger, { route: () => undefined });
    for (let i = 0; i < 3; i++) expect((await crashed.latch.record(call(i))).status).toBe("rated");
    expect((await feature(ledger, "tokens"))?.burned).toBe("0");

    // The restarted process reconciles over the same stores.
    const restarted = setup(
      ledger,
      {},
      { observations: crashed.config.observations, rated: crashed.config.rated },
    );
    expect(await restarted.latch.reconcileCredits()).toEqual({ versions: 3 });
    expect((await feature(ledger, "tokens"))?.burned).toBe("3300");
    // Again: nothing new in the log, nothing burned twice.
    expect(await restarted.latch.reconcileCredits()).toEqual({ versions: 0 });
    expect((await feature(ledger, "tokens"))?.burned).toBe("3300");

    // A correction moves the burn (v2 replaces v1); reconciling then burns v2 again, idempotently.
    await restarted.latch.correct("req-0:0:openai", { input_tokens: 100, output_tokens: 0 });
    expect((await feature(ledger, "tokens"))?.burned).toBe("2300");
    expect(await restarted.latch.reconcileCredits()).toEqual({ versions: 1 });
    expect((await feature(ledger, "tokens"))?.burned).toBe("2300");
    // A process that never saw the correction replays v1 after v2: the lower version changes nothing.
    await ledger.recordUsage({
      ledgerId: "acme",
      featureId: "tokens",
      eventId: "req-0:0:openai",
      amount: "1100",
      at: "2026-03-01T12:00:01Z",
      version: 1,
    });
    expect((await feature(ledger, "tokens"))?.burned).toBe("2300");
  });

  it("needs credits configured, naming the field", async () => {
    const { latch } = setup(await ledgerWithGrants(), {}, { credits: undefined });
    await expect(latch.reconcileCredits()).rejects.toMatchObject({ code: "invalid_input" });
  });
});
