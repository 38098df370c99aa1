/**
 * Adversarial review of the hold-only credit burn (correlation.holdLedgerId) on Postgres: the
 * Postgres observation and rated stores (the one-trip record writer) and the Postgres credit
 * ledger. A test marked DEFECT fails on purpose (it states the correct behaviour).
 */
import {
  createLatch,
  type Hold,
  InMemoryPricingSource,
  type LatchCreditsConfig,
  type LatchWarning,
  parseObservation,
} from "@latch/core";
import { makeSnapshot, uniqueId } from "@latch/testkit";
import pg from "pg";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import {
  migrate,
  PostgresCreditLedger,
  PostgresObservationStore,
  PostgresRatedRecordStore,
} from "../src/index.js";
import { DATABASE_URL, freshSchema } from "./support.js";

const schema = freshSchema("holdadv");
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 8 });
let ready: Promise<unknown> | undefined;
let warnings: LatchWarning[];
beforeEach(async () => {
  ready ??= migrate(pool, { schema });
  await ready;
  warnings = [];
});
afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

const credits = () => new PostgresCreditLedger(pool, { schema });

async function ledgerFor(ids: string[]) {
  const ledger = credits();
  await ledger.createFeature({ featureId: "usd", measure: { kind: "money", currency: "USD" } });
  await ledger.createFeature({
    featureId: "tokens",
    measure: { kind: "quantity", meters: ["input_tokens", "output_tokens"] },
  });
  for (const id of ids) {
    await ledger.createLedger({ ledgerId: id, subject: { tenantId: id } });
    for (const [featureId, amount] of [
      ["usd", "1"],
      ["tokens", "10000"],
    ] as const)
      await ledger.grant({
        grantId: `${id}-${featureId}`,
        ledgerId: id,
        featureId,
        amount,
        effectiveAt: "2026-03-01T00:00:00Z",
      });
  }
  return ledger;
}

const usage = async (ledger: PostgresCreditLedger, id: string, featureId: string) =>
  (await ledger.balance(id, "2026-03-02T00:00:00Z")).features.find((f) => f.featureId === featureId)?.usage ??
  "0";

/**
 * `reconcileCredits()` until `done()`: the change log hands a committed row out only once no
 * older transaction on the server is still open (`pg_snapshot_xmin`), and other test files
 * (or a CI run) share the server, so one walk right after a write may see nothing yet.
 */
async function reconcileUntil(latch: { reconcileCredits(): Promise<unknown> }, done: () => Promise<boolean>) {
  for (const deadline = Date.now() + 60_000; ; ) {
    await latch.reconcileCredits();
    if (await done()) return;
    if (Date.now() > deadline) throw new Error("reconcileCredits() did not reach the record within 60 s");
    await new Promise((r) => setTimeout(r, 200));
  }
}

function latchOn(ledger: PostgresCreditLedger, credit: Pick<LatchCreditsConfig, "featureId" | "route">) {
  return createLatch({
    observations: new PostgresObservationStore(pool, { schema }),
    rated: new PostgresRatedRecordStore(pool, { schema }),
    pricing: new InMemoryPricingSource([makeSnapshot("gpt-4o")]),
    credits: { ledger, ...credit, enforce: true },
    spoolDir: `/tmp/${schema}-spool`,
    retry: { attempts: 2, baseDelayMs: 5 },
    onWarning: (w) => warnings.push(w),
  });
}

const call = (eventId: string, tenantId: string) => ({
  eventId,
  subject: { tenantId },
  meters: { input_tokens: 1000, output_tokens: 100 },
  model: { billableModel: "gpt-4o" },
  provider: { providerId: "openai" },
  source: { kind: "provider_reported" as const },
  outcome: { kind: "success" as const },
  timing: { startedAt: "2026-03-01T12:00:00Z", completedAt: "2026-03-01T12:00:01Z" },
});

function granted(hold: Hold): Extract<Hold, { granted: true; kind: "credits" }> {
  if (!hold.granted || hold.kind !== "credits") throw new Error("expected a granted credit hold");
  return hold;
}

describe("hold-only burn on Postgres", () => {
  it("hold voided by settle(failed) after the one-trip writer stored the call: usd burned once on the hold's ledger; reconcile adds nothing", async () => {
    const acme = uniqueId("acme");
    const ledger = await ledgerFor([acme]);
    const latch = latchOn(ledger, { featureId: "tokens" });
    const hold = granted(await latch.reserve({ account: acme, amount: "0.5", featureId: "usd" }));
    const result = await latch.record(call(uniqueId("e"), acme), { hold });
    expect(result.status).toBe("rated");
    await latch.settle(hold, { status: "failed" });
    await reconcileUntil(latch, async () => (await usage(ledger, acme, "usd")) !== "0");
    await latch.reconcileCredits(); // again: adds nothing
    expect(await usage(ledger, acme, "usd")).toBe("0.0035");
    expect(await usage(ledger, acme, "tokens")).toBe("1100");
    expect(warnings.map((w) => w.code)).toEqual([]);
  });

  it("cross-release retry: stored without holdLedgerId (older release), recorded again with it: a duplicate (no idempotency_conflict), the stored link stands", async () => {
    const acme = uniqueId("acme");
    const ledger = await ledgerFor([acme]);
    const latch = latchOn(ledger, { featureId: "tokens" });
    const hold = granted(await latch.reserve({ account: acme, amount: "0.5", featureId: "usd" }));
    const eventId = uniqueId("e");
    await new PostgresObservationStore(pool, { schema }).append(
      parseObservation({
        ...call(eventId, acme),
        correlation: { holdId: hold.holdId, holdFeatureId: "usd" },
      }),
    );
    const again = await latch.record(call(eventId, acme), { hold });
    expect(again.status).toBe("rated");
    if (again.status === "rated") expect(again.record.observation.correlation?.holdLedgerId).toBeUndefined();
    await latch.settle(hold, again);
    await reconcileUntil(latch, async () => (await usage(ledger, acme, "usd")) !== "0");
    await latch.reconcileCredits(); // again: adds nothing
    expect(await usage(ledger, acme, "usd")).toBe("0.0035");
  });

  it("A1 on Postgres (fixed): a handler re-run under a hold of another route ledger burns usd once, on the stored call's hold ledger", async () => {
    const acme = uniqueId("acme");
    const platform = uniqueId("platform");
    const ledger = await ledgerFor([acme, platform]);
    const latch = latchOn(ledger, {
      route: () => [
        { ledgerId: acme, featureId: "tokens" },
        { ledgerId: platform, featureId: "tokens" },
      ],
    });
    const eventId = uniqueId("e");
    const h1 = granted(await latch.reserve({ account: acme, amount: "0.5", featureId: "usd" }));
    await latch.record(call(eventId, acme), { hold: h1 }); // then the handler crashes
    const h2 = granted(await latch.reserve({ account: platform, amount: "0.5", featureId: "usd" }));
    const again = await latch.record(call(eventId, acme), { hold: h2 });
    // The stored call links h1: h2 is voided, and the rated call's burn commits h1 (usd on acme).
    await latch.settle(h2, again);
    const burned = [await usage(ledger, acme, "usd"), await usage(ledger, platform, "usd")];
    expect(burned).toEqual(["0.0035", "0"]); // before the fix: both 0.0035
  });
});
