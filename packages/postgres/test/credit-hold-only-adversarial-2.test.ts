/**
 * Adversarial review 2 (Postgres): the hold route under concurrency — the caller's settle(),
 * an ingest worker (and its redelivery) and reconcileCredits() of another process, all at once,
 * in every start order, against the Postgres stores and credit ledger.
 */
import {
  createLatch,
  type Hold,
  InMemoryPricingSource,
  type LatchCreditsConfig,
  type LatchWarning,
} from "@latch/core";
import { createIngestRecorder } from "@latch/core/adapter";
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

const schema = freshSchema("holdadv2");
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

const pricing = new InMemoryPricingSource([makeSnapshot("gpt-4o")]);
const stores = () => ({
  observations: new PostgresObservationStore(pool, { schema }),
  rated: new PostgresRatedRecordStore(pool, { schema }),
  pricing,
});

async function setupFeatures(ledger: PostgresCreditLedger) {
  await ledger.createFeature({ featureId: "usd", measure: { kind: "money", currency: "USD" } });
  await ledger.createFeature({
    featureId: "tokens",
    measure: { kind: "quantity", meters: ["input_tokens", "output_tokens"] },
  });
}

async function tenant(ledger: PostgresCreditLedger, id: string) {
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

const usage = async (ledger: PostgresCreditLedger, id: string, featureId: string) =>
  (await ledger.balance(id, "2026-03-02T00:00:00Z")).features.find((f) => f.featureId === featureId)?.usage ??
  "0";

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

const PERMUTATIONS = [
  [0, 1, 2, 3],
  [1, 2, 3, 0],
  [2, 3, 0, 1],
  [3, 0, 1, 2],
  [2, 1, 0, 3],
  [3, 2, 1, 0],
];

describe("C1: settle() + worker + worker redelivery + reconcileCredits() on other processes, concurrently", () => {
  for (const outcome of ["rated", "failed"] as const)
    it(`hold-only usd (routes burn tokens), settle(${outcome}): usd and tokens burned once per call, no hold left held, in every start order`, async () => {
      const featureSetup = new PostgresCreditLedger(pool, { schema });
      await setupFeatures(featureSetup).catch(() => undefined); // second run: features exist
      const credit = (): LatchCreditsConfig => ({
        ledger: new PostgresCreditLedger(pool, { schema }),
        featureId: "tokens",
        enforce: true,
      });
      const onWarning = (w: LatchWarning) => warnings.push(w);
      const base = { spoolDir: `/tmp/${schema}-spool`, retry: { attempts: 3, baseDelayMs: 5 }, onWarning };
      const caller = createLatch({ ...stores(), credits: credit(), ...base });
      const other = createLatch({ ...stores(), credits: credit(), ...base });
      const w1 = createIngestRecorder({ ...stores(), credits: credit(), onWarning });
      const w2 = createIngestRecorder({ ...stores(), credits: credit(), onWarning });
      // The amount one call burns of usd: a sequential baseline.
      const refId = uniqueId("ref");
      await tenant(featureSetup, refId);
      const refHold = granted(await caller.reserve({ account: refId, amount: "0.5", featureId: "usd" }));
      await caller.settle(refHold, await caller.record(call(uniqueId("e"), refId), { hold: refHold }));
      const once = await usage(featureSetup, refId, "usd");
      expect(once).not.toBe("0");
      const settleErrors: string[] = [];
      for (const order of PERMUTATIONS) {
        const id = uniqueId("t");
        await tenant(featureSetup, id);
        const hold = granted(await caller.reserve({ account: id, amount: "0.5", featureId: "usd" }));
        const result = await caller.record(call(uniqueId("e"), id), { hold });
        expect(result.status).toBe("rated");
        if (result.status !== "rated") continue;
        const obs = result.record.observation;
        const ops = [
          () =>
            caller
              .settle(hold, outcome === "failed" ? { status: "failed" } : result)
              .catch((e: { code?: string }) => {
                settleErrors.push(String(e.code));
              }),
          () => w1.record(obs),
          () => other.reconcileCredits(),
          () => w2.record(obs),
        ];
        await Promise.all(order.map((i) => (ops[i] as () => Promise<unknown>)()));
        await other.reconcileCredits();
        expect([id, await usage(featureSetup, id, "usd"), await usage(featureSetup, id, "tokens")]).toEqual([
          id,
          once,
          "1100",
        ]);
        // Nothing left held: the rest of the grant can be reserved.
        const rest = (1 - Number(once)).toFixed(10).replace(/0+$/, "");
        expect(
          await featureSetup.reserve({
            holdId: uniqueId("p"),
            ledgerId: id,
            featureId: "usd",
            amount: rest,
            ttlMs: 1000,
          }),
        ).toMatchObject({ granted: true });
      }
      // settle(failed) racing the worker's commit: hold_already_resolved thrown to the caller (NOTE).
      console.log(
        "settle errors",
        outcome,
        settleErrors,
        "warnings",
        warnings.map((w) => w.code),
      );
    }, 60_000);
});
