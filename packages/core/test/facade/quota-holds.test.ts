/**
 * Quota holds on their own (`createQuotaHolds`): reserve fails closed, settle charges the call
 * once through the hold it was recorded under, and a settle lost to the store is reported.
 */
import { describe, expect, it } from "vitest";
import { createQuotaHolds, type QuotaHoldDeps } from "../../src/facade/quota-holds.js";
import type { LatchWarning, QuotaHold, RecordResult } from "../../src/facade/types.js";
import {
  MemoryQuotaReservator,
  MemoryRatedRecordStore,
  parseObservation,
  type UsageObservation,
} from "../../src/index.js";
import { observation } from "../support.js";

/** 1,000 input + 100 output tokens: 1,100 units by default. */
const call = (holdId?: string): UsageObservation =>
  parseObservation(
    observation(
      { input_tokens: 1_000, output_tokens: 100 },
      holdId === undefined ? {} : { correlation: { holdId } },
    ),
  );

const unpriced = (obs: UsageObservation): RecordResult => ({
  status: "unpriced",
  eventId: obs.eventId,
  reason: "no_snapshot",
  observation: obs,
});

/** `quota` whose `method` always throws a connection error. */
function down(quota: MemoryQuotaReservator, method: "reserve" | "commit" | "void"): MemoryQuotaReservator {
  return new Proxy(quota, {
    get(target, key) {
      if (key === method) return async () => Promise.reject(new Error("connection reset"));
      const value = Reflect.get(target, key, target) as unknown;
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

async function setup(overrides: Partial<QuotaHoldDeps> = {}) {
  const quota = new MemoryQuotaReservator();
  await quota.setLimit("acme", 5_000);
  const warnings: LatchWarning[] = [];
  const holds = createQuotaHolds({
    quota,
    rated: new MemoryRatedRecordStore(),
    retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
    warn: (w) => warnings.push(w),
    quotaUnits: (o) => (o.meters.input_tokens ?? 0) + (o.meters.output_tokens ?? 0),
    holdTtlMs: 60_000,
    ...overrides,
  });
  return { holds, quota, warnings };
}

function granted(hold: QuotaHold): Extract<QuotaHold, { granted: true }> {
  if (!hold.granted) throw new Error(`expected a granted hold: ${hold.message}`);
  return hold;
}

describe("quota holds", () => {
  it("grants what fits, denies what does not, saying how much is left", async () => {
    const { holds } = await setup();
    expect(await holds.reserve({ account: "acme", amount: 4_000, holdId: "h1" })).toEqual({
      granted: true,
      kind: "quota",
      holdId: "h1",
      account: "acme",
      amount: 4_000,
      remaining: 1_000,
    });
    expect(await holds.reserve({ account: "acme", amount: 2_000, holdId: "h2" })).toEqual({
      granted: false,
      kind: "quota",
      holdId: "h2",
      account: "acme",
      amount: 2_000,
      reason: "insufficient",
      remaining: 1_000,
      message: "quota exceeded for acme: 1000 units left, 2000 requested",
    });
  });

  it("fails closed: a quota store that cannot answer denies as unavailable", async () => {
    const quota = new MemoryQuotaReservator();
    const { holds } = await setup({ quota: down(quota, "reserve") });
    expect(await holds.reserve({ account: "acme", amount: 1 })).toMatchObject({
      granted: false,
      reason: "unavailable",
      message: "quota store unavailable: denied (quota fails closed)",
    });
  });

  it("bad requests and a missing quota store are invalid_input", async () => {
    const { holds } = await setup();
    await expect(holds.reserve({ account: "acme", amount: 0 })).rejects.toMatchObject({
      code: "invalid_input",
    });
    const none = (await setup({ quota: undefined })).holds;
    await expect(none.reserve({ account: "acme", amount: 1 })).rejects.toMatchObject({
      code: "invalid_input",
      issues: [{ path: "quota" }],
    });
    await expect(none.reconcile()).rejects.toMatchObject({ code: "invalid_input" });
  });

  it("settle charges the call's units; a failed call's hold is voided; voiding the committed one is hold_already_resolved", async () => {
    const { holds, quota } = await setup();
    const used = granted(await holds.reserve({ account: "acme", amount: 2_000, holdId: "h1" }));
    expect(await holds.settle(used, unpriced(call("h1")))).toEqual({ settled: true });
    const failed = granted(await holds.reserve({ account: "acme", amount: 2_000, holdId: "h2" }));
    expect(await holds.settle(failed, { status: "failed" })).toEqual({ settled: true });
    expect(await quota.balance("acme")).toEqual({ limit: 5_000, spent: 1_100, held: 0, available: 3_900 });
    // Voiding a committed hold is an answer no retry changes: the caller sees it.
    await expect(holds.settle(used, { status: "failed" })).rejects.toMatchObject({
      code: "hold_already_resolved",
    });
  });

  it("a call recorded under another hold is charged through that one: this hold is voided", async () => {
    const { holds, quota } = await setup();
    const retried = granted(await holds.reserve({ account: "acme", amount: 2_000, holdId: "h2" }));
    expect(await holds.settle(retried, unpriced(call("h1")))).toEqual({ settled: true });
    expect(await quota.balance("acme")).toMatchObject({ spent: 0, held: 0 });
  });

  it("a settle the store cannot take answers settled: false and says reconcileQuota() can finish it", async () => {
    const quota = new MemoryQuotaReservator();
    await quota.setLimit("acme", 5_000);
    const { holds, warnings } = await setup({ quota: down(quota, "commit") });
    const hold = granted(await holds.reserve({ account: "acme", amount: 2_000, holdId: "h1" }));
    expect(await holds.settle(hold, unpriced(call("h1")))).toEqual({ settled: false });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ code: "settle_failed" });
    expect(warnings[0]?.message).toMatch(/reconcileQuota\(\) commits it/);
  });
});
