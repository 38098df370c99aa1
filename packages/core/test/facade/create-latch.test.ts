import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ObservationStore, RatedRecordStore } from "../../src/adapter.js";
import { createLatch, type LatchConfig, type LatchWarning } from "../../src/facade/create-latch.js";
import {
  LatchError,
  LatchValidationError,
  type PriceSnapshot,
  type PricingSource,
  type UsageObservationInput,
} from "../../src/index.js";
import {
  MemoryObservationStore,
  MemoryQuotaReservator,
  MemoryRatedRecordStore,
  MemoryUsageCounter,
} from "../../src/memory/index.js";

const gpt4o: PriceSnapshot = {
  snapshotId: "gpt-4o:2026",
  model: { billableModel: "gpt-4o" },
  currency: "USD",
  effectiveFrom: "2026-01-01T00:00:00Z",
  prices: {
    input_tokens: { perMillion: "2.5" },
    cached_input_tokens: { perMillion: "1.25" },
    output_tokens: { perMillion: "10" },
    reasoning_tokens: { as: "output_tokens" },
  },
};

/** A pricing source whose snapshots a test can add to (a price arriving later). */
function mutablePricing(initial: PriceSnapshot[] = [gpt4o]): PricingSource & { add(s: PriceSnapshot): void } {
  const snapshots = [...initial];
  return {
    add: (s) => snapshots.push(s),
    resolve: async (model) => snapshots.find((s) => s.model.billableModel === model.billableModel),
  };
}

const observation = (i: number, model = "gpt-4o"): UsageObservationInput => ({
  eventId: `req-${i}:0:openai`,
  subject: { tenantId: "acme" },
  meters: { input_tokens: 1000, output_tokens: 100 },
  model: { billableModel: model },
  provider: { providerId: "openai" },
  source: { kind: "provider_reported" },
  outcome: { kind: "success" },
  timing: { startedAt: "2026-03-01T12:00:00Z", completedAt: "2026-03-01T12:00:01Z" },
});

let dir: string;
let warnings: LatchWarning[];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-facade-"));
  warnings = [];
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function setup(overrides: Partial<LatchConfig> = {}) {
  const observations = new MemoryObservationStore();
  const rated = new MemoryRatedRecordStore();
  const quota = new MemoryQuotaReservator();
  const config: LatchConfig = {
    observations,
    rated,
    pricing: mutablePricing(),
    quota,
    counter: new MemoryUsageCounter(),
    clock: () => new Date("2026-03-01T12:00:05Z"),
    spoolPath: join(dir, "spool.jsonl"),
    retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
    onWarning: (w) => warnings.push(w),
    ...overrides,
  };
  return { latch: createLatch(config), observations, rated, quota, config };
}

/** An observation store whose first `failures` appends throw a connection-style error. */
function flakyStore(inner: ObservationStore, failures: number): ObservationStore & { calls: number } {
  let left = failures;
  const store = {
    calls: 0,
    append: async (obs: Parameters<ObservationStore["append"]>[0]) => {
      store.calls++;
      if (left > 0) {
        left--;
        throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });
      }
      return inner.append(obs);
    },
    appendMany: inner.appendMany.bind(inner),
    get: inner.get.bind(inner),
    listUnpriced: inner.listUnpriced.bind(inner),
    markPriced: inner.markPriced.bind(inner),
  };
  return store;
}

describe("createLatch: record", () => {
  it("normalizes a provider payload, stores it raw, rates it and stores the record", async () => {
    const { latch, observations, rated } = setup();
    const result = await latch.record({
      api: "openaiChat",
      usage: {
        prompt_tokens: 2000,
        completion_tokens: 500,
        total_tokens: 2500,
        prompt_tokens_details: { cached_tokens: 1500 },
      },
      observation: { ...observation(1), meters: undefined } as never,
    });
    expect(result.status).toBe("rated");
    if (result.status !== "rated") return;
    // 500 × 2.5 + 1500 × 1.25 + 500 × 10 = 8125 millionths
    expect(result.record.total).toBe("0.008125");
    expect(await observations.get("req-1:0:openai")).toBeDefined();
    expect((await rated.current("req-1:0:openai"))?.total).toBe("0.008125");
    expect((await observations.listUnpriced({ limit: 10 })).items).toEqual([]);
  });

  it("a retried record is the same record, stored once", async () => {
    const { latch, rated } = setup();
    const first = await latch.record(observation(1));
    const second = await latch.record(observation(1));
    expect(second).toEqual(first);
    const log = await rated.listSince(undefined, 100);
    expect(log.items).toHaveLength(1);
  });

  it("usage without a price is kept as unpriced, never billed as $0, and re-rated once a price exists", async () => {
    const pricing = mutablePricing();
    const { latch, observations } = setup({ pricing });
    const result = await latch.record(observation(7, "new-model"));
    expect(result).toMatchObject({ status: "unpriced", eventId: "req-7:0:openai", reason: "no_snapshot" });
    expect((await observations.listUnpriced({ limit: 10 })).items.map((o) => o.eventId)).toEqual([
      "req-7:0:openai",
    ]);
    expect(await latch.rerateUnpriced()).toEqual({ rated: 0, stillUnpriced: 1 });
    pricing.add({ ...gpt4o, snapshotId: "new-model:2026", model: { billableModel: "new-model" } });
    expect(await latch.rerateUnpriced()).toEqual({ rated: 1, stillUnpriced: 0 });
    expect((await observations.listUnpriced({ limit: 10 })).items).toEqual([]);
  });

  it("a meter without a price leaves the call unpriced rather than rated at $0", async () => {
    const { latch } = setup();
    const obs = { ...observation(3), meters: { input_tokens: 10, image_count: 1 } };
    expect(await latch.record(obs)).toMatchObject({ status: "unpriced", reason: "no_price" });
  });

  it("fails open: a store that fails its first appends never fails the caller; flushSpool stores each exactly once", async () => {
    const inner = new MemoryObservationStore();
    const flaky = flakyStore(inner, 7); // with 2 attempts per record, the first 3 records spool, the 4th's 1st try fails
    const { latch } = setup({ observations: flaky });
    const results = [];
    for (let i = 0; i < 6; i++) results.push(await latch.record(observation(i)));
    expect(results.map((r) => r.status)).toEqual([
      "spooled",
      "spooled",
      "spooled",
      "rated",
      "rated",
      "rated",
    ]);
    expect(warnings.filter((w) => w.code === "spooled")).toHaveLength(3);
    for (let i = 0; i < 3; i++) expect(await inner.get(`req-${i}:0:openai`)).toBeUndefined();

    expect(await latch.flushSpool()).toEqual({ replayed: 3, skipped: 0, remaining: 0 });
    for (let i = 0; i < 6; i++) expect(await inner.get(`req-${i}:0:openai`)).toBeDefined();
    // A second flush has nothing left; replaying again would be a no-op anyway (idempotent append).
    expect(await latch.flushSpool()).toEqual({ replayed: 0, skipped: 0, remaining: 0 });
  });

  it("replays the spool on the next start", async () => {
    const inner = new MemoryObservationStore();
    const first = setup({ observations: flakyStore(inner, 100) });
    expect((await first.latch.record(observation(1))).status).toBe("spooled");
    await first.latch.close();
    const second = setup({ observations: inner });
    await second.latch.ready();
    expect(await inner.get("req-1:0:openai")).toBeDefined();
  });

  it("a legacy spool file torn mid-line is migrated: its good lines replayed, the torn ones moved to rejected/ byte for byte", async () => {
    const spoolPath = join(dir, "torn.jsonl");
    const line = (i: number) => JSON.stringify({ v: 1, observation: observation(i) });
    const torn = line(2).slice(0, 40);
    const last = line(4).slice(0, 25);
    await writeFile(spoolPath, `${line(1)}\n${torn}\n${line(3)}\n${last}`);
    const { latch, observations } = setup({ spoolPath });
    await latch.ready();
    expect(await observations.get("req-1:0:openai")).toBeDefined();
    expect(await observations.get("req-2:0:openai")).toBeUndefined();
    expect(await observations.get("req-3:0:openai")).toBeDefined();
    const messages = warnings.filter((w) => w.code === "spool_torn_line").map((w) => w.message);
    expect(messages).toHaveLength(2);
    expect(messages[0]).toMatch(/^spool .*torn\.jsonl line 2 is not JSON; moved to rejected\/.+\.jsonl$/);
    expect(messages[1]).toMatch(
      /^spool .*torn\.jsonl line 4 is incomplete \(torn by a crash\); moved to rejected\/.+\.jsonl$/,
    );
    await expect(readFile(spoolPath)).rejects.toMatchObject({ code: "ENOENT" });
    // The spool directory is named after the legacy file; only rejected/ is left in it.
    expect(await readdir(join(dir, "torn"))).toEqual(["rejected"]);
    const [rejected] = await readdir(join(dir, "torn", "rejected"));
    expect(await readFile(join(dir, "torn", "rejected", rejected as string), "utf8")).toBe(
      `${torn}\n${last}\n`,
    );
    expect(await latch.flushSpool()).toEqual({ replayed: 0, skipped: 0, remaining: 0 });
  });
});

describe("createLatch: races", () => {
  it("a record raced by another worker that stored v1 first returns the stored v1, not a conflict", async () => {
    const rated = new MemoryRatedRecordStore();
    const { DefaultRatingEngine, parseObservation } = await import("../../src/index.js");
    const other = { ...gpt4o, snapshotId: "other-sheet" };
    const theirs = new DefaultRatingEngine().rate(parseObservation(observation(1)), other, {
      ratedAt: "2026-03-01T12:00:02Z",
    });
    await rated.put(theirs);
    let firstLookup = true;
    const racing: RatedRecordStore = {
      put: (r) => rated.put(r),
      putMany: (rs) => rated.putMany(rs),
      get: (id) => rated.get(id),
      listSince: (c, l) => rated.listSince(c, l),
      summary: (q) => rated.summary(q),
      lines: (q) => rated.lines(q),
      getCursor: (n) => rated.getCursor(n),
      saveCursor: (n, c) => rated.saveCursor(n, c),
      current: async (eventId: string) => {
        if (firstLookup) {
          firstLookup = false; // the race: the other worker's put lands right after this read
          return undefined;
        }
        return rated.current(eventId);
      },
    };
    const { latch } = setup({ rated: racing });
    const result = await latch.record(observation(1));
    expect(result).toMatchObject({ status: "rated", record: { snapshotId: "other-sheet" } });
  });
});

describe("createLatch: quota", () => {
  it("reserve, record, settle: the hold is committed with the call's tokens", async () => {
    const { latch, quota } = setup();
    await quota.setLimit("acme", 5_000);
    const hold = await latch.reserve({ account: "acme", amount: 2_000 });
    expect(hold).toMatchObject({ granted: true, remaining: 3_000 });
    const result = await latch.record(observation(1));
    expect(await latch.settle(hold, result)).toEqual({ settled: true });
    expect(await quota.balance("acme")).toEqual({ limit: 5_000, spent: 1_100, held: 0, available: 3_900 });
  });

  it("denies with a reason that says so when the quota is exhausted", async () => {
    const { latch, quota } = setup();
    await quota.setLimit("acme", 100);
    const hold = await latch.reserve({ account: "acme", amount: 101 });
    expect(hold).toMatchObject({ granted: false, reason: "insufficient", remaining: 100 });
    if (!hold.granted) expect(hold.message).toBe("quota exceeded for acme: 100 units left, 101 requested");
  });

  it("fails closed: a quota store error denies, saying so", async () => {
    const quota = new MemoryQuotaReservator();
    quota.reserve = async () => {
      throw new Error("connection reset");
    };
    const { latch } = setup({ quota });
    const hold = await latch.reserve({ account: "acme", amount: 1 });
    expect(hold).toMatchObject({ granted: false, reason: "unavailable" });
    if (!hold.granted) expect(hold.message).toMatch(/fails closed/);
  });

  it("a failed call voids its hold", async () => {
    const { latch, quota } = setup();
    await quota.setLimit("acme", 10);
    const hold = await latch.reserve({ account: "acme", amount: 10 });
    await latch.settle(hold, { status: "failed" });
    expect(await quota.balance("acme")).toMatchObject({ spent: 0, held: 0, available: 10 });
  });
});

describe("createLatch: corrections, reports, export", () => {
  it("correct() adds v2 superseding v1; reports count only v2", async () => {
    const { latch, rated } = setup();
    await latch.record(observation(1)); // 1000 × 2.5 + 100 × 10 = 3500 → 0.0035
    const v2 = await latch.correct("req-1:0:openai", { input_tokens: 2000, output_tokens: 100 }); // 0.006
    expect(v2).toMatchObject({
      ratedRecordId: "req-1:0:openai:v2",
      version: 2,
      supersedes: "req-1:0:openai:v1",
      total: "0.006",
    });
    expect(v2.observation.source).toEqual({ kind: "corrected", correctionOf: "req-1:0:openai" });
    expect((await rated.get("req-1:0:openai:v1"))?.total).toBe("0.0035");
    const rows = await latch.summary({
      start: "2026-03-01T00:00:00Z",
      end: "2026-03-02T00:00:00Z",
      groupBy: ["model"],
    });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ requests: 1, inputTokens: 2000, costByCurrency: { USD: "0.006" } });
  });

  it("a retried correct() (same meters again) returns the current version instead of adding one", async () => {
    const { latch, rated } = setup();
    await latch.record(observation(1));
    const v2 = await latch.correct("req-1:0:openai", { input_tokens: 2000, output_tokens: 100 });
    const again = await latch.correct("req-1:0:openai", { output_tokens: 100, input_tokens: 2000 });
    expect(again).toEqual(v2);
    expect((await rated.listSince(undefined, 10)).items.map((e) => e.record.version)).toEqual([1, 2]);
    // Other meters are a new correction.
    expect((await latch.correct("req-1:0:openai", { input_tokens: 1 })).version).toBe(3);
  });

  it("exportPending exports every version once", async () => {
    const { FileExporter } = await import("../../src/export/index.js");
    const { latch } = setup({ exporter: new FileExporter({ directory: join(dir, "out") }) });
    for (let i = 0; i < 5; i++) await latch.record(observation(i));
    await latch.correct("req-0:0:openai", { input_tokens: 1 });
    const first = await latch.exportPending();
    expect(first.rows).toBe(6);
    expect((await latch.exportPending()).rows).toBe(0);
  });
});

describe("createLatch: bad input is a typed error naming the field, and writes nothing", () => {
  it("config", () => {
    const e = (() => {
      try {
        createLatch({} as never);
      } catch (error) {
        return error;
      }
    })();
    expect(e).toBeInstanceOf(LatchValidationError);
    expect((e as LatchValidationError).issues.map((i) => i.path)).toContain("config.observations");
  });

  it("record", async () => {
    const { latch, observations } = setup();
    const bad = { ...observation(1), meters: { input_tokens: -1 } };
    await expect(latch.record(bad)).rejects.toMatchObject({
      code: "invalid_input",
      issues: [{ path: "meters.input_tokens" }],
    });
    await expect(
      // The types refuse this usage too (no completion_tokens); run-time validation must as well.
      latch.record({
        api: "openaiChat",
        usage: { prompt_tokens: 1 } as never,
        observation: observation(2) as never,
      }),
    ).rejects.toMatchObject({ code: "invalid_input" });
    await expect(
      latch.record({ api: "bogus" as never, usage: {}, observation: {} as never }),
    ).rejects.toMatchObject({
      issues: [{ path: "api" }],
    });
    expect(await observations.get("req-1:0:openai")).toBeUndefined();
  });

  it("reserve, settle, correct", async () => {
    const { latch } = setup();
    await expect(latch.reserve({ account: "acme", amount: 1.5 })).rejects.toMatchObject({
      issues: [{ path: "amount" }],
    });
    await expect(latch.reserve({ account: "", amount: 1 })).rejects.toMatchObject({
      issues: [{ path: "account" }],
    });
    await expect(latch.settle(null as never, { status: "failed" })).rejects.toMatchObject({
      issues: [{ path: "hold" }],
    });
    await expect(latch.correct("", {})).rejects.toMatchObject({ issues: [{ path: "eventId" }] });
    await expect(latch.correct("nope", { input_tokens: 1 })).rejects.toMatchObject({
      issues: [{ path: "eventId" }],
    });
    const e = await latch.correct("x", { input_tokens: -1 }).catch((error: unknown) => error);
    expect(LatchError.isInstance(e) && e.code).toBe("invalid_input");
  });
});

describe("createLatch: what record() stored cannot be changed by the caller (adversarial review)", () => {
  it("neither the input after record() nor the returned record changes the memory stores", async () => {
    const { latch, observations, rated } = setup();
    const input = observation(1) as { meters: Record<string, number>; subject: Record<string, string> };
    const result = await latch.record(input as UsageObservationInput);
    expect(result.status).toBe("rated");
    if (result.status !== "rated") return;
    const before = structuredClone(await rated.current("req-1:0:openai"));
    input.meters.input_tokens = 999_999;
    input.subject.tenantId = "other";
    const record = result.record as unknown as Record<string, unknown>;
    const lines = result.record.lineItems as unknown as Record<string, unknown>[];
    expect(() => {
      record.total = "0";
    }).toThrow(TypeError);
    expect(() => {
      (lines[0] as Record<string, unknown>).subtotal = "0";
    }).toThrow(TypeError);
    expect(() => {
      (result.record.observation.meters as Record<string, number>).input_tokens = 1;
    }).toThrow(TypeError);
    expect(() => {
      lines.push({});
    }).toThrow(TypeError);
    expect(await rated.current("req-1:0:openai")).toEqual(before);
    expect((await observations.get("req-1:0:openai"))?.meters.input_tokens).toBe(1000);
    // The same call again with its keys in another order and -0 for 0 is the same call.
    const zero = {
      ...observation(2),
      meters: { input_tokens: 1000, output_tokens: 100, reasoning_tokens: 0 },
    };
    expect((await latch.record(zero)).status).toBe("rated");
    const reordered = { ...zero, meters: { reasoning_tokens: -0, output_tokens: 100, input_tokens: 1000 } };
    expect((await latch.record(reordered)).status).toBe("rated");
    expect((await latch.record(observation(1))).status).toBe("rated");
    // Another payload under the same id is a conflict, though the stored record is a sealed one.
    await expect(
      latch.record({ ...observation(1), meters: { input_tokens: 1001, output_tokens: 100 } }),
    ).rejects.toMatchObject({ code: "idempotency_conflict" });
  });
});
