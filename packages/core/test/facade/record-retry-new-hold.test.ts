/**
 * A handler re-run after a crash between record and settle reserves a new hold and records the
 * same call again: a duplicate, charged once (the stored call keeps its hold; the new hold is
 * voided by settle; reconcileQuota commits the first).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { createLatch } from "../../src/facade/create-latch.js";
import { InMemoryPricingSource } from "../../src/index.js";
import {
  MemoryObservationStore,
  MemoryQuotaReservator,
  MemoryRatedRecordStore,
} from "../../src/memory/index.js";

it("a record() retried under a new hold (the handler re-ran after a crash between record and settle) is a duplicate, and the call is charged once", async () => {
  const dir = await mkdtemp(join(tmpdir(), "latch-retry-hold-"));
  const quota = new MemoryQuotaReservator();
  await quota.setLimit("acme", 100_000);
  const latch = createLatch({
    observations: new MemoryObservationStore(),
    rated: new MemoryRatedRecordStore(),
    pricing: new InMemoryPricingSource([
      {
        snapshotId: "s",
        model: { billableModel: "gpt-4o" },
        currency: "USD",
        effectiveFrom: "2026-01-01T00:00:00Z",
        prices: { input_tokens: { perMillion: "2.5" }, output_tokens: { perMillion: "10" } },
      },
    ]),
    quota,
    spoolPath: join(dir, "spool.jsonl"),
    onWarning: () => {},
  });
  const call = {
    eventId: "req-1:0:openai",
    subject: { tenantId: "acme" },
    meters: { input_tokens: 1_000, output_tokens: 100 },
    model: { billableModel: "gpt-4o" },
    source: { kind: "provider_reported" as const },
    outcome: { kind: "success" as const },
    timing: { startedAt: "2026-03-01T12:00:00Z", completedAt: "2026-03-01T12:00:01Z" },
  };
  const a = await latch.reserve({ account: "acme", amount: 5_000 });
  await latch.record(call, { hold: a }); // crash before settle
  const b = await latch.reserve({ account: "acme", amount: 5_000 });
  const again = await latch.record(call, { hold: b }); // the same call, under the new hold
  expect(again.status).toBe("rated");
  if (again.status === "rated") expect(again.record.observation.correlation?.holdId).toBe(a.holdId);
  await latch.settle(b, again); // voids b: the call is charged through a
  expect(await quota.balance("acme")).toMatchObject({ spent: 0, held: 5_000 });
  await latch.reconcileQuota();
  expect(await quota.balance("acme")).toMatchObject({ spent: 1_100, held: 0 });
  // A different call under the same event id is still a conflict.
  const c = await latch.reserve({ account: "acme", amount: 5_000 });
  await expect(latch.record({ ...call, meters: { input_tokens: 1 } }, { hold: c })).rejects.toMatchObject({
    code: "idempotency_conflict",
  });
  await rm(dir, { recursive: true, force: true });
});
