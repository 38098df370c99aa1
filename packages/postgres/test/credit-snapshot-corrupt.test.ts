/**
 * A balance snapshot is derived data (a cache of a replay). Found by an adversarial review: one
 * unparsable credit_snapshots row made every burn on its ledger `corrupt_record`, which the
 * facade treats as unfixable (the burn reported and dropped, reconcileCredits() past it). Now the
 * ledger answers from the whole history instead, and every burn lands.
 */

import { rm } from "node:fs/promises";
import {
  createLatch,
  InMemoryPricingSource,
  type LatchWarning,
  MemoryObservationStore,
  MemoryRatedRecordStore,
} from "@latch/core";
import pg from "pg";
import { afterAll, expect, it } from "vitest";
import { migrate, PostgresCreditLedger } from "../src/index.js";
import { DATABASE_URL, freshSchema } from "./support.js";

const schema = freshSchema("snapcorrupt");
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });

afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
  await rm(`/tmp/${schema}-spool`, { recursive: true, force: true });
});

it("a corrupt snapshot row does not drop the credit burns of later calls for good", async () => {
  await migrate(pool, { schema });
  const ledger = new PostgresCreditLedger(pool, { schema, snapshotEvery: 2 });
  await ledger.createFeature({ featureId: "usd", measure: { kind: "money", currency: "USD" } });
  await ledger.createLedger({ ledgerId: "acme", subject: { tenantId: "acme" } });
  await ledger.grant({
    grantId: "g",
    ledgerId: "acme",
    featureId: "usd",
    amount: "100",
    effectiveAt: "2026-01-01T00:00:00Z",
  });
  const day = (n: number) => new Date(Date.UTC(2026, 0, 1 + n)).toISOString();
  for (let i = 1; i <= 6; i++)
    await ledger.recordUsage({
      ledgerId: "acme",
      featureId: "usd",
      eventId: `e${i}`,
      amount: "1",
      at: day(i),
    });
  // One derived row goes bad (a manual edit, a bad restore, a future release's format).
  await pool.query(`UPDATE "${schema}".credit_snapshots SET state = '{}' WHERE ledger_id = 'acme'`);

  const warnings: LatchWarning[] = [];
  const rated = new MemoryRatedRecordStore();
  const latch = createLatch({
    observations: new MemoryObservationStore(),
    rated,
    pricing: new InMemoryPricingSource([
      {
        snapshotId: "p",
        model: { billableModel: "gpt-4o" },
        currency: "USD",
        effectiveFrom: "2026-01-01T00:00:00Z",
        prices: { input_tokens: { perMillion: "1000000" } }, // 1 USD per token
      },
    ]),
    credits: { ledger, featureId: "usd" },
    spoolDir: `/tmp/${schema}-spool`,
    onWarning: (w) => warnings.push(w),
  });
  const result = await latch.record({
    eventId: "call-1",
    subject: { tenantId: "acme" },
    meters: { input_tokens: 3 },
    model: { billableModel: "gpt-4o" },
    provider: { providerId: "openai" },
    source: { kind: "provider_reported" },
    outcome: { kind: "success" },
    timing: { startedAt: day(10), completedAt: day(10) },
  });
  expect(result.status).toBe("rated");
  // The corrupt snapshot is skipped (the question is answered from the whole history): the burn
  // lands, nothing is reported.
  expect(warnings.map((w) => w.code)).not.toContain("credit_burn_failed");
  await latch.reconcileCredits();
  const balance = await ledger.balance("acme", day(11));
  // 100 − 6 (e1..e6) − 3 (call-1); before the fix, 94: 3 USD of usage never burned.
  expect(balance.features[0]?.balance).toBe("91");
  await latch.close();
});
