/**
 * A lost settle is repaired: calls recorded with their hold (`record(input, { hold })`) whose
 * settle failed (the quota store down) or never ran (a crash between record and settle) are
 * committed by `reconcileQuota()` from the stored records, so the quota's spend equals the
 * units billed — once, however often it runs.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { QuotaAuthorizer, QuotaReservator } from "../../src/adapter.js";
import { createLatch, type LatchWarning } from "../../src/facade/create-latch.js";
import { InMemoryPricingSource, type PriceSnapshot, type UsageObservationInput } from "../../src/index.js";
import {
  MemoryObservationStore,
  MemoryQuotaReservator,
  MemoryRatedRecordStore,
} from "../../src/memory/index.js";

const gpt4o: PriceSnapshot = {
  snapshotId: "gpt-4o:2026",
  model: { billableModel: "gpt-4o" },
  currency: "USD",
  effectiveFrom: "2026-01-01T00:00:00Z",
  prices: { input_tokens: { perMillion: "2.5" }, output_tokens: { perMillion: "10" } },
};

const call = (i: number): UsageObservationInput => ({
  eventId: `req-${i}:0:openai`,
  subject: { tenantId: "acme" },
  meters: { input_tokens: 1_000 + i, output_tokens: 100 + (i % 7) },
  model: { billableModel: "gpt-4o" },
  provider: { providerId: "openai" },
  source: { kind: "provider_reported" },
  outcome: { kind: "success" },
  timing: { startedAt: "2026-03-01T12:00:00Z", completedAt: "2026-03-01T12:00:01Z" },
});

/** A quota whose commits fail while `down` is set (reserve and the rest work). */
function commitsFailWhile(
  quota: QuotaReservator & QuotaAuthorizer,
  state: { down: boolean },
): QuotaReservator & QuotaAuthorizer {
  return {
    check: (a, n) => quota.check(a, n),
    setLimit: (a, l) => quota.setLimit(a, l),
    balance: (a) => quota.balance(a),
    reserve: (r) => quota.reserve(r),
    void: (h) => quota.void(h),
    commit: async (h, actual) => {
      if (state.down) throw new Error("connection reset");
      return quota.commit(h, actual);
    },
  };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-quota-reconcile-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("reconcileQuota", () => {
  it("commits the holds of calls whose settle failed or never ran: spent = billed units, held = 0, once", async () => {
    const quota = new MemoryQuotaReservator();
    await quota.setLimit("acme", 10_000_000);
    const state = { down: false };
    const warnings: LatchWarning[] = [];
    const latch = createLatch({
      observations: new MemoryObservationStore(),
      rated: new MemoryRatedRecordStore(),
      pricing: new InMemoryPricingSource([gpt4o]),
      quota: commitsFailWhile(quota, state),
      spoolPath: join(dir, "spool.jsonl"),
      retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 1 },
      onWarning: (w) => warnings.push(w),
    });
    let billed = 0;
    for (let i = 0; i < 30; i++) {
      const hold = await latch.reserve({ account: "acme", amount: 5_000, holdId: `hold-${i}` });
      expect(hold.granted).toBe(true);
      const result = await latch.record(call(i), { hold });
      expect(result.status).toBe("rated");
      if (result.status !== "rated") continue;
      expect(result.record.observation.correlation?.holdId).toBe(`hold-${i}`);
      billed +=
        (result.record.observation.meters.input_tokens ?? 0) +
        (result.record.observation.meters.output_tokens ?? 0);
      if (i % 3 === 0) continue; // the process "crashed" before settle
      state.down = i % 3 === 1; // the quota store is down for a third of the settles
      const settled = await latch.settle(hold, result);
      expect(settled.settled).toBe(!state.down);
      state.down = false;
    }
    expect(warnings.filter((w) => w.code === "settle_failed")).toHaveLength(10);
    const before = await quota.balance("acme");
    expect(before.spent).toBeLessThan(billed);
    expect(before.held).toBeGreaterThan(0);

    // The quota store is down during the first reconcile: it stops, and nothing is lost.
    state.down = true;
    await expect(latch.reconcileQuota()).rejects.toThrow("connection reset");
    state.down = false;
    expect(await latch.reconcileQuota()).toEqual({ versions: 30, holds: 30 });
    const after = await quota.balance("acme");
    expect(after.spent).toBe(billed);
    expect(after.held).toBe(0);
    // Once: a second run finds nothing new and charges nothing more.
    expect(await latch.reconcileQuota()).toEqual({ versions: 0, holds: 0 });
    expect((await quota.balance("acme")).spent).toBe(billed);
  });

  it("skips a hold that was voided and reports it; refuses an observation naming another hold", async () => {
    const quota = new MemoryQuotaReservator();
    await quota.setLimit("acme", 1_000_000);
    const warnings: LatchWarning[] = [];
    const latch = createLatch({
      observations: new MemoryObservationStore(),
      rated: new MemoryRatedRecordStore(),
      pricing: new InMemoryPricingSource([gpt4o]),
      quota,
      spoolPath: join(dir, "spool.jsonl"),
      onWarning: (w) => warnings.push(w),
    });
    const hold = await latch.reserve({ account: "acme", amount: 5_000, holdId: "voided" });
    await latch.record(call(1), { hold });
    await latch.settle(hold, { status: "failed" }); // voided although the call was recorded
    expect(await latch.reconcileQuota()).toEqual({ versions: 1, holds: 0 });
    expect(warnings.map((w) => w.code)).toEqual(["quota_reconcile_skipped"]);
    expect((await quota.balance("acme")).spent).toBe(0);

    const other = await latch.reserve({ account: "acme", amount: 5_000, holdId: "other" });
    const input = { ...call(2), correlation: { holdId: "not-this-one" } };
    await expect(latch.record(input, { hold: other })).rejects.toMatchObject({
      code: "invalid_input",
      issues: [{ path: "observation.correlation.holdId" }],
    });
  });
});
