/**
 * Adversarial cases of `record(input, { hold })` + `reconcileQuota()`: a hold named by the
 * caller's own observation, and a record retried under a new hold.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
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

const call = (id: string, tenantId: string, input: number): UsageObservationInput => ({
  eventId: `${id}:0:openai`,
  subject: { tenantId },
  meters: { input_tokens: input, output_tokens: 100 },
  model: { billableModel: "gpt-4o" },
  provider: { providerId: "openai" },
  source: { kind: "provider_reported" },
  outcome: { kind: "success" },
  timing: { startedAt: "2026-03-01T12:00:00Z", completedAt: "2026-03-01T12:00:01Z" },
});

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-quota-attack-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function setup() {
  const quota = new MemoryQuotaReservator();
  const warnings: LatchWarning[] = [];
  const latch = createLatch({
    observations: new MemoryObservationStore(),
    rated: new MemoryRatedRecordStore(),
    pricing: new InMemoryPricingSource([gpt4o]),
    quota,
    spoolPath: join(dir, "spool.jsonl"),
    onWarning: (w) => warnings.push(w),
  });
  return { quota, latch, warnings };
}

describe("reconcileQuota under attack", () => {
  it("an observation naming a hold that record() was not given is refused: no caller can make reconcileQuota commit another account's hold", async () => {
    const { quota, latch } = setup();
    await quota.setLimit("victim", 100_000);
    await quota.setLimit("mallory", 100_000);
    // The victim's call is in flight under its hold.
    const victimHold = await latch.reserve({ account: "victim", amount: 5_000, holdId: "victim-hold" });
    expect(victimHold.granted).toBe(true);
    // Another tenant's observation names the victim's hold in its own correlation ids.
    const forged = { ...call("mallory-1", "mallory", 90_000), correlation: { holdId: "victim-hold" } };
    await expect(latch.record(forged)).rejects.toMatchObject({
      code: "invalid_input",
      issues: [{ path: "observation.correlation.holdId" }],
    });
    await latch.reconcileQuota();
    expect(await quota.balance("victim")).toMatchObject({ spent: 0, held: 5_000 });
    // The victim's own call settles normally.
    const result = await latch.record(call("victim-1", "victim", 1_000), { hold: victimHold });
    expect(await latch.settle(victimHold, result)).toEqual({ settled: true });
    expect(await quota.balance("victim")).toMatchObject({ spent: 1_100, held: 0 });
  });
});
