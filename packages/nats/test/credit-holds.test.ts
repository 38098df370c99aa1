// A money credit hold that settle() must leave open (the call is `accepted` by the log or
// `spooled`, not rated yet) is committed by the ingest worker's burn of the call when the call
// was recorded with it (`record(input, { hold })`): on JetStream and the Postgres credit ledger,
// the call counts as held until a worker stores it, then as burned, once — not both until the
// hold's TTL.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLatch, type Hold, type LatchWarning } from "@latch/core";
import {
  migrate,
  PostgresCreditLedger,
  PostgresObservationStore,
  PostgresRatedRecordStore,
} from "@latch/postgres";
import type { NatsConnection } from "@nats-io/transport-node";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  deleteIngestStreams,
  ensureIngestStreams,
  type IngestWorker,
  natsIngestLog,
  runIngestWorker,
} from "../src/index.js";
import {
  COST_PER_CALL,
  connectNats,
  DATABASE_URL,
  freshStream,
  observation,
  pricing,
  waitFor,
} from "./support/fixtures.js";

const schema = `latch_nats_credits_${randomBytes(4).toString("hex")}`;
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 8 });
let nc: NatsConnection;
let spoolRoot: string;
const streams: string[] = [];
const workers: IngestWorker[] = [];

beforeAll(async () => {
  nc = await connectNats();
  spoolRoot = await mkdtemp(join(tmpdir(), "latch-nats-credits-"));
  await migrate(pool, { schema });
  const ledger = new PostgresCreditLedger(pool, { schema });
  await ledger.createFeature({ featureId: "usd", measure: { kind: "money", currency: "USD" } });
  await ledger.createFeature({
    featureId: "tokens",
    measure: { kind: "quantity", meters: ["input_tokens", "output_tokens"] },
  });
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  for (const stream of streams) await deleteIngestStreams(nc, stream);
  await nc.drain();
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
  await rm(spoolRoot, { recursive: true, force: true });
});

/** COST_PER_CALL (0.0045) subtracted from the $1 each ledger is granted. */
const AFTER_ONE_CALL = "0.9955";

/**
 * A gateway and an ingest worker (started by `work()`) over the Postgres stores, a fresh
 * stream and a fresh ledger ("$1 granted, usd") on the Postgres credit ledger.
 */
async function setup(
  label: string,
  options: { holdRetentionMs?: number; streamExists?: boolean; featureId?: string } = {},
) {
  const stream = freshStream(label);
  streams.push(stream);
  if (options.streamExists !== false) await ensureIngestStreams(nc, { stream });
  const ledgerId = `acme-${label}-${randomBytes(4).toString("hex")}`;
  const ledger = new PostgresCreditLedger(pool, {
    schema,
    ...(options.holdRetentionMs === undefined ? {} : { holdRetentionMs: options.holdRetentionMs }),
  });
  await ledger.createLedger({ ledgerId, subject: { tenantId: ledgerId } });
  await ledger.grant({
    grantId: `${ledgerId}:g`,
    ledgerId,
    featureId: "usd",
    amount: "1",
    effectiveAt: "2026-01-01T00:00:00Z",
  });
  await ledger.grant({
    grantId: `${ledgerId}:tokens`,
    ledgerId,
    featureId: "tokens",
    amount: "10000",
    effectiveAt: "2026-01-01T00:00:00Z",
  });
  const stores = {
    observations: new PostgresObservationStore(pool, { schema }),
    rated: new PostgresRatedRecordStore(pool, { schema }),
    pricing: pricing(),
  };
  // The default route (the subject's tenantId, which call() sets to this ledger): a
  // reconcileCredits() walks every test's records in the shared schema, each to its own ledger.
  const credits = { ledger, featureId: options.featureId ?? "usd" };
  const warnings: LatchWarning[] = [];
  const latch = createLatch({
    ...stores,
    credits: { ...credits, enforce: true },
    // 10 s for an ack: a JetStream ack slower than 1 s on a loaded machine (twice: two attempts)
    // spooled a call the tests expect accepted, with a "spooled" warning. A missing stream
    // still fails at once (no responders).
    ingest: natsIngestLog({ connection: nc, stream, timeoutMs: 10_000 }),
    retry: { attempts: 2, baseDelayMs: 10 },
    spoolDir: join(spoolRoot, label),
    onWarning: (w) => warnings.push(w),
  });
  let worker: IngestWorker | undefined;
  const work = async () => {
    worker ??= await runIngestWorker({
      ...stores,
      credits,
      nats: nc,
      stream,
      onWarning: (w) => warnings.push(w),
      onEvent: () => {},
    });
    workers.push(worker);
    return worker;
  };
  const usage = async (featureId = "usd") => {
    const balance = await ledger.balance(ledgerId, new Date().toISOString());
    return balance.features.find((f) => f.featureId === featureId);
  };
  /** Whether `amount` can be held now (a probe hold, voided at once). */
  const canHold = async (amount: string) => {
    const holdId = `probe-${randomBytes(6).toString("hex")}`;
    const answer = await ledger.reserve({ holdId, ledgerId, featureId: "usd", amount, ttlMs: 60_000 });
    if (answer.granted) await ledger.voidHold(holdId);
    return answer.granted;
  };
  const reserve = async (amount: string, ttlMs?: number) => {
    const hold: Hold = await latch.reserve({
      account: ledgerId,
      amount,
      featureId: "usd",
      ...(ttlMs === undefined ? {} : { ttlMs }),
    });
    if (!hold.granted) throw new Error(hold.message);
    return hold;
  };
  /** A call of this ledger's tenant (the fixture's observation, 0.0045 USD). */
  const call = (id: string) => {
    const obs = observation(`${ledgerId}-${id}:0:openai`);
    return { ...obs, subject: { tenantId: ledgerId } };
  };
  return { latch, ledger, work, usage, canHold, reserve, call, warnings, stream, stores, credits };
}

describe("ingest worker on the Postgres credit ledger: a linked money hold is committed by the call's burn", () => {
  it("held until the worker stores the call, then burned only, once (a retried record() included)", async () => {
    const t = await setup("held");
    const hold = await t.reserve("0.5");
    const result = await t.latch.record(t.call("1"), { hold });
    expect(result.status).toBe("accepted");
    expect(await t.latch.settle(hold, result)).toEqual({ settled: true });
    // The same call recorded again with the same hold (a retried handler): the same message.
    expect(await t.latch.record(t.call("1"), { hold })).toEqual(result);
    expect(await t.canHold("0.6")).toBe(false); // not rated yet: still held

    const worker = await t.work();
    await waitFor("the worker to burn the call", async () => (await t.usage())?.usage === COST_PER_CALL);
    await waitFor("the hold to be released", () => t.canHold(AFTER_ONE_CALL));
    expect(await t.canHold("0.99551")).toBe(false);
    expect(await t.usage()).toMatchObject({
      usage: COST_PER_CALL,
      burned: COST_PER_CALL,
      balance: AFTER_ONE_CALL,
    });
    expect(worker.stats().stored).toBe(1);
    expect(t.warnings).toEqual([]);
    await t.latch.close();
  });

  it("spooled while the log is missing, replayed by flushSpool: the worker's burn commits the hold", async () => {
    const t = await setup("spool", { streamExists: false });
    const hold = await t.reserve("0.5");
    const result = await t.latch.record(t.call("1"), { hold });
    expect(result.status).toBe("spooled");
    await t.latch.settle(hold, result);
    await ensureIngestStreams(nc, { stream: t.stream });
    expect(await t.latch.flushSpool()).toMatchObject({ replayed: 1, remaining: 0 });
    expect(await t.canHold("0.6")).toBe(false);
    await t.work();
    await waitFor("the worker to burn the call", async () => (await t.usage())?.usage === COST_PER_CALL);
    await waitFor("the hold to be released", () => t.canHold(AFTER_ONE_CALL));
    expect(await t.usage()).toMatchObject({ burned: COST_PER_CALL, balance: AFTER_ONE_CALL });
    await t.latch.close();
  });

  it("a hold purged before the worker stored the call: reported, burned once, the message acknowledged", async () => {
    const t = await setup("purged", { holdRetentionMs: 1 });
    const hold = await t.reserve("0.5", 1_000);
    await t.latch.settle(hold, await t.latch.record(t.call("1"), { hold }));
    // Expired by the database clock, then purged.
    await waitFor("the hold to expire", () => t.canHold("0.6"));
    await waitFor("the hold to be purged", async () => (await t.ledger.purgeResolvedHolds()).purged > 0);
    const worker = await t.work();
    await waitFor("the worker to burn the call", async () => (await t.usage())?.usage === COST_PER_CALL);
    await waitFor("the message to be acknowledged", async () => worker.stats().stored === 1);
    expect(t.warnings).toEqual([
      expect.objectContaining({
        code: "credit_hold_unresolved",
        cause: expect.objectContaining({ code: "invalid_input" }),
      }),
    ]);
    expect(await t.usage()).toMatchObject({ burned: COST_PER_CALL, balance: AFTER_ONE_CALL });
    await t.latch.close();
  });

  it("a hold voided before the worker stored the call: burned once, nothing reported", async () => {
    const t = await setup("voided");
    const hold = await t.reserve("0.5");
    await t.latch.settle(hold, await t.latch.record(t.call("1"), { hold }));
    await t.ledger.voidHold(hold.holdId);
    const worker = await t.work();
    await waitFor("the worker to store the call", async () => worker.stats().stored === 1);
    expect(await t.usage()).toMatchObject({ burned: COST_PER_CALL, balance: AFTER_ONE_CALL });
    expect(await t.canHold(AFTER_ONE_CALL)).toBe(true);
    expect(t.warnings).toEqual([]);
    await t.latch.close();
  });

  it("20 calls, two workers and reconcileCredits() running at once, settle() racing them: each burned once, no hold left", async () => {
    const t = await setup("race");
    const results = [];
    for (let i = 0; i < 20; i++) {
      const hold = await t.reserve("0.04");
      results.push({ hold, result: await t.latch.record(t.call(String(i)), { hold }) });
    }
    // Nothing rated yet: 20 × 0.04 held.
    expect(await t.canHold("0.21")).toBe(false);
    const first = await t.work();
    const second = await runIngestWorker({
      ...t.stores,
      credits: t.credits,
      nats: nc,
      stream: t.stream,
      onWarning: (w) => t.warnings.push(w),
      onEvent: () => {},
    });
    workers.push(second);
    const reconciling = (async () => {
      for (let i = 0; i < 5; i++) await t.latch.reconcileCredits();
    })();
    for (const { hold, result } of results)
      expect(await t.latch.settle(hold, result)).toEqual({ settled: true });
    await reconciling;
    await waitFor("every call stored", async () => first.stats().stored + second.stats().stored >= 20);
    await t.latch.reconcileCredits();
    await waitFor("the burns", async () => (await t.usage())?.usage === "0.09");
    expect(await t.usage()).toMatchObject({ usage: "0.09", burned: "0.09", balance: "0.91" });
    expect(await t.canHold("0.91")).toBe(true);
    expect(await t.canHold("0.91001")).toBe(false);
    expect(t.warnings).toEqual([]);
    await t.latch.close();
  });

  // Last in the file: the race test's reconcileCredits() burns every record of the shared schema
  // by its own default route (usd), which would burn this call's usd too.
  it("a hold-only usd hold (calls routed to tokens) voided before the worker stored the call: usd burned on the hold's ledger, once", async () => {
    // Before correlation.holdLedgerId: reported credit_hold_unresolved, usd never burned.
    const t = await setup("hold-only", { featureId: "tokens" });
    const hold = await t.reserve("0.5");
    const result = await t.latch.record(t.call("1"), { hold });
    expect(result.status).toBe("accepted");
    expect(await t.latch.settle(hold, { status: "failed" })).toEqual({ settled: true });
    const worker = await t.work();
    await waitFor("the worker to store the call", async () => worker.stats().stored === 1);
    await waitFor("the tokens burn", async () => (await t.usage("tokens"))?.usage === "1200");
    await waitFor("the usd burn", async () => (await t.usage())?.usage === COST_PER_CALL);
    expect(await t.usage()).toMatchObject({
      usage: COST_PER_CALL,
      burned: COST_PER_CALL,
      balance: AFTER_ONE_CALL,
    });
    expect(await t.usage("tokens")).toMatchObject({ usage: "1200", burned: "1200" });
    expect(await t.canHold(AFTER_ONE_CALL)).toBe(true);
    expect(t.warnings).toEqual([]);
    await t.latch.close();
  });
});
