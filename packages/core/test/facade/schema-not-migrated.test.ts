/**
 * A forgotten migration through the facade: `schema_not_migrated` (and `schema_incompatible`)
 * is a deployment fault. `latch.ready()` finds it up front; otherwise the first call throws it.
 * It is never spooled, and `reserve` never disguises it as "quota store unavailable".
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLatch, type LatchConfig, type LatchWarning } from "../../src/facade/create-latch.js";
import { LatchError, type UsageObservationInput } from "../../src/index.js";
import {
  MemoryObservationStore,
  MemoryQuotaReservator,
  MemoryRatedRecordStore,
} from "../../src/memory/index.js";

const unmigrated = () =>
  new LatchError({ code: "schema_not_migrated", message: 'Schema "latch" is at migration 0; run migrate()' });

/**
 * `store` as a Postgres store on a schema nobody migrated: `ready()` and every method in
 * `methods` throw `schema_not_migrated` until `migrate()` is called.
 */
function unmigratedStore<T extends object>(store: T, methods: readonly string[]) {
  let migrated = false;
  const proxy = new Proxy(store, {
    get(target, key) {
      if (key === "ready")
        return async () => {
          if (!migrated) throw unmigrated();
        };
      const value = Reflect.get(target, key, target) as unknown;
      if (typeof value !== "function") return value;
      if (typeof key === "string" && methods.includes(key))
        return async (...args: unknown[]) => {
          if (!migrated) throw unmigrated();
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      return value.bind(target);
    },
  });
  return {
    store: proxy,
    migrate: () => {
      migrated = true;
    },
  };
}

const call: UsageObservationInput = {
  eventId: "req-1:0:openai",
  subject: { tenantId: "acme" },
  meters: { input_tokens: 1000, output_tokens: 100 },
  model: { billableModel: "gpt-4o" },
  provider: { providerId: "openai" },
  source: { kind: "provider_reported" },
  outcome: { kind: "success" },
  timing: { startedAt: "2026-03-01T12:00:00Z", completedAt: "2026-03-01T12:00:01Z" },
};

let dir: string;
let warnings: LatchWarning[];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-unmigrated-"));
  warnings = [];
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function setup(overrides: Partial<LatchConfig> = {}) {
  const config: LatchConfig = {
    observations: new MemoryObservationStore(),
    rated: new MemoryRatedRecordStore(),
    pricing: { resolve: async () => undefined },
    spoolDir: join(dir, "spool"),
    retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 2 },
    onWarning: (w) => warnings.push(w),
    ...overrides,
  };
  return createLatch(config);
}

/** Spooled lines on disk, across every segment. */
async function spoolFiles(): Promise<string[]> {
  try {
    return (await readdir(join(dir, "spool"))).filter((f) => f.endsWith(".jsonl"));
  } catch {
    return [];
  }
}

describe("createLatch on an unmigrated schema", () => {
  it("ready() throws schema_not_migrated up front, and resolves once the schema is migrated", async () => {
    const observations = unmigratedStore(new MemoryObservationStore(), ["append"]);
    const latch = setup({ observations: observations.store });
    await expect(latch.ready()).rejects.toMatchObject({ code: "schema_not_migrated" });
    observations.migrate();
    await expect(latch.ready()).resolves.toBeUndefined();
    await latch.close();
  });

  it("ready() resolves on stores that have no up-front check (the in-memory ones)", async () => {
    const latch = setup();
    await expect(latch.ready()).resolves.toBeUndefined();
    await latch.close();
  });

  it("record() throws it at the first call and spools nothing; after migrate the same call records", async () => {
    const observations = unmigratedStore(new MemoryObservationStore(), ["append"]);
    const latch = setup({ observations: observations.store });
    const error = await latch.record(call).catch((e: unknown) => e);
    expect(LatchError.is(error, "schema_not_migrated")).toBe(true);
    expect(await spoolFiles()).toEqual([]);
    expect(warnings.map((w) => w.code)).toEqual([]);
    observations.migrate();
    expect(await latch.record(call)).toMatchObject({ status: "unpriced", reason: "no_snapshot" });
    await latch.close();
  });

  it("record() throws it when only the rated-record store is behind (the observation is stored, nothing spooled)", async () => {
    const rated = unmigratedStore(new MemoryRatedRecordStore(), ["current", "put"]);
    const observations = new MemoryObservationStore();
    const latch = setup({ observations, rated: rated.store });
    await expect(latch.record(call)).rejects.toMatchObject({ code: "schema_not_migrated" });
    expect(await observations.get("req-1:0:openai")).toBeDefined();
    expect(await spoolFiles()).toEqual([]);
    await latch.close();
  });

  it('reserve() throws it instead of denying with "quota store unavailable"', async () => {
    const memory = new MemoryQuotaReservator();
    await memory.setLimit("acme", 5_000);
    const quota = unmigratedStore(memory, ["reserve", "commit", "void"]);
    const latch = setup({ quota: quota.store });
    await expect(latch.reserve({ account: "acme", amount: 100 })).rejects.toMatchObject({
      code: "schema_not_migrated",
    });
    await expect(latch.ready()).rejects.toMatchObject({ code: "schema_not_migrated" });
    quota.migrate();
    expect(await latch.reserve({ account: "acme", amount: 100 })).toMatchObject({ granted: true });
    await latch.close();
  });

  it("settle() throws it rather than reporting a settle for reconcileQuota()", async () => {
    const memory = new MemoryQuotaReservator();
    await memory.setLimit("acme", 5_000);
    const quota = unmigratedStore(memory, ["commit", "void"]);
    quota.migrate();
    const latch = setup({ quota: quota.store });
    const hold = await latch.reserve({ account: "acme", amount: 100, holdId: "h1" });
    const schemaBehind = unmigratedStore(memory, ["commit", "void"]);
    const behind = setup({ quota: schemaBehind.store });
    await expect(behind.settle(hold, { status: "failed" })).rejects.toMatchObject({
      code: "schema_not_migrated",
    });
    expect(warnings.filter((w) => w.code === "settle_failed")).toEqual([]);
    await latch.close();
    await behind.close();
  });

  it("schema_incompatible (a schema migrated past this package) is thrown the same way", async () => {
    const incompatible = new LatchError({ code: "schema_incompatible", message: "upgrade" });
    const observations = new Proxy(new MemoryObservationStore(), {
      get(target, key) {
        if (key === "append") return async () => Promise.reject(incompatible);
        const value = Reflect.get(target, key, target) as unknown;
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const latch = setup({ observations });
    await expect(latch.record(call)).rejects.toBe(incompatible);
    expect(await spoolFiles()).toEqual([]);
    await latch.close();
  });
});
