/**
 * `reconcileQuota()` next to the gateway's own settles, on each deployment the example supports
 * (embedded default, Postgres + Redis, Postgres + Redis + NATS JetStream), and the reconcile loop:
 * - after the gateway served and settled its calls, reconcile commits each named hold again with
 *   the same units: no `quota_reconcile_skipped`, spent unchanged and equal to the billed tokens;
 * - a hold recorded and never settled (a lost settle) is committed by the loop with the record's
 *   units: spent == billed tokens, held back to 0;
 * - a `quotaUnits` that charges cost (needs the rated record): on JetStream the settles leave the
 *   holds open (`accepted`: no record yet) and reconcile commits each with its stored record's
 *   cost, so spent == the records' cost, with no `quota_reconcile_skipped`;
 * - the loop never overlaps itself and `stop()` waits for a run in progress.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { type Latch, LatchDecimal, type LatchWarning, type RatedUsageRecord } from "@latch/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGatewayLatch } from "../src/config.js";
import { type FakeProvider, startFakeProvider } from "../src/fake-provider.js";
import { startGateway } from "../src/gateway.js";
import { startReconcileLoop } from "../src/reconcile-loop.js";
import { DEPLOYMENTS, until, useDeployment } from "./support/deployments.js";

describe.each(DEPLOYMENTS)("on $name", (deployment) => {
  const { nats } = deployment;
  const warnings: LatchWarning[] = [];
  const gw = useDeployment(deployment, "reconcile", (w) => warnings.push(w));
  const { namespace } = gw;
  let provider: FakeProvider;

  beforeAll(async () => {
    provider = await startFakeProvider();
  }, 120_000);

  afterAll(async () => {
    await provider?.close();
  }, 120_000);

  /** 20 chat calls of `tenant` through a gateway on `latch`, each answered 200: their x-latch-status. */
  const serveCalls = async (
    latch: Latch,
    tenant: string,
    requestId: string,
    content: (i: number) => string,
  ) => {
    const gateway = await startGateway({ latch, providerUrl: provider.url });
    const statuses: string[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const res = await fetch(`${gateway.url}/v1/chat/completions`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "x-latch-tenant": tenant,
            "x-request-id": `${requestId}-${i}`,
          },
          body: JSON.stringify({
            model: "gpt-4o",
            messages: [{ role: "user", content: content(i) }],
            max_tokens: 64,
          }),
        });
        expect(res.status).toBe(200);
        statuses.push(res.headers.get("x-latch-status") ?? "");
        await res.arrayBuffer();
      }
      await gateway.settled();
    } finally {
      await gateway.close();
    }
    return statuses;
  };

  const billedTokens = async (tenant: string) => {
    const rows = await gw.latch.summary({
      start: "2000-01-01T00:00:00Z",
      end: "2100-01-01T00:00:00Z",
      groupBy: ["tenantId"],
    });
    const row = rows.find((r) => r.group.tenantId === tenant);
    return { requests: row?.requests ?? 0, tokens: row?.totalTokens ?? 0 };
  };

  it("reconcile after the gateway's own settles commits the same units: no warning, spent unchanged", async () => {
    const tenant = `served-${namespace}`;
    await gw.backends.quota.setLimit(tenant, 10_000_000);
    const statuses = await serveCalls(gw.latch, tenant, "r", (i) => `hello ${i}`);
    await gw.backends.ingestDrained();
    const settled = await gw.backends.quota.balance(tenant);
    expect(settled.held).toBe(0);
    const billed = await until("all 20 calls stored", async () => {
      const b = await billedTokens(tenant);
      return b.requests === 20 ? b : undefined;
    });
    expect(settled.spent).toBe(billed.tokens);
    // Reconcile until the change log listed every stored record (Postgres lists a row once the
    // horizon passed it), then: the same units again, nothing skipped, nothing charged twice.
    let holds = 0;
    await until("reconcile listed all 20 holds", async () => {
      holds += (await gw.latch.reconcileQuota()).holds;
      return holds >= 20 ? true : undefined;
    });
    console.log(
      `[reconcile] ${deployment.short}: record() answered ${[...new Set(statuses)].join("/")}; ` +
        `settled spent ${settled.spent}, billed ${billed.tokens}; reconcile committed ${holds} holds, ` +
        `warnings ${JSON.stringify(warnings.map((w) => w.code))}`,
    );
    expect(holds).toBe(20);
    expect(warnings.filter((w) => w.code === "quota_reconcile_skipped")).toEqual([]);
    const after = await gw.backends.quota.balance(tenant);
    expect(after).toMatchObject({ spent: billed.tokens, held: 0 });
  }, 300_000);

  it("the loop commits a hold whose settle never happened with the record's units", async () => {
    const tenant = `lost-${namespace}`;
    await gw.backends.quota.setLimit(tenant, 1_000_000);
    const hold = await gw.latch.reserve({ account: tenant, amount: 5_000 });
    if (!hold.granted) throw new Error(`reserve denied: ${hold.message}`);
    const result = await gw.latch.record(
      {
        api: "openaiChat",
        usage: { prompt_tokens: 321, completion_tokens: 45, total_tokens: 366 },
        observation: {
          eventId: `lost-${randomUUID()}`,
          subject: { tenantId: tenant },
          model: { billableModel: "gpt-4o" },
          provider: { providerId: "openai" },
          source: { kind: "provider_reported" },
          outcome: { kind: "success" },
          timing: {
            startedAt: new Date(Date.now() - 1_000).toISOString(),
            completedAt: new Date().toISOString(),
          },
        },
      },
      { hold },
    );
    expect(result.status).toBe(nats ? "accepted" : "rated");
    // No settle: the process "died" here.
    expect(await gw.backends.quota.balance(tenant)).toMatchObject({ spent: 0, held: 5_000 });
    await gw.backends.ingestDrained();
    const errors: unknown[] = [];
    const loop = startReconcileLoop(gw.latch, { everyMs: 200, onError: (e) => errors.push(e) });
    try {
      const balance = await until("the loop committed the hold", async () => {
        const b = await gw.backends.quota.balance(tenant);
        return b.held === 0 ? b : undefined;
      });
      const billed = await billedTokens(tenant);
      expect(billed).toEqual({ requests: 1, tokens: 366 });
      expect(balance).toMatchObject({ spent: billed.tokens, held: 0 });
    } finally {
      await loop.stop();
    }
    expect(errors).toEqual([]);
    expect(warnings.filter((w) => w.code === "quota_reconcile_skipped")).toEqual([]);
  }, 300_000);

  it("a cost-based quotaUnits (needs the rated record): each hold is committed with its stored record's cost", async () => {
    // Micro-dollars of the rated record; undefined without one (record() answered accepted on
    // JetStream): the settle leaves the hold open and reconcile commits it from the record.
    const micros = (r: RatedUsageRecord) => new LatchDecimal(r.total).times(1_000_000).ceil().toNumber();
    const quotaUnits = (_o: unknown, r?: RatedUsageRecord) => (r === undefined ? undefined : micros(r));
    const costWarnings: LatchWarning[] = [];
    const costLatch = createGatewayLatch(gw.backends, {
      spoolPath: join(gw.dir, "cost-spool.jsonl"),
      onWarning: (w) => costWarnings.push(w),
      quotaUnits,
    });
    const tenant = `cost-${namespace}`;
    await gw.backends.quota.setLimit(tenant, 1_000_000_000_000);
    // What each of the gateway's settles answered (it logs a thrown one and goes on).
    const settles: unknown[] = [];
    const settling: Latch = {
      ...costLatch,
      settle: (hold, result) =>
        costLatch.settle(hold, result).then(
          (answer) => {
            settles.push(answer);
            return answer;
          },
          (error: unknown) => {
            settles.push(error);
            throw error;
          },
        ),
    };
    const statuses = await serveCalls(settling, tenant, "c", (i) => `what does call ${i} cost?`);
    expect(new Set(statuses)).toEqual(new Set([nats ? "accepted" : "rated"]));
    expect(settles).toEqual(Array.from({ length: 20 }, () => ({ settled: true })));
    const settled = await gw.backends.quota.balance(tenant);
    if (nats) {
      // Nothing charged yet, every hold still held: later reserves see it (never overspend).
      expect(settled.spent).toBe(0);
      expect(settled.held).toBeGreaterThan(0);
    }
    await gw.backends.ingestDrained();
    const records = await until("all 20 calls stored", async () => {
      const page = await costLatch.lines({
        start: "2000-01-01T00:00:00Z",
        end: "2100-01-01T00:00:00Z",
        filters: { tenantId: tenant },
        limit: 100,
      });
      return page.items.length === 20 ? page.items : undefined;
    });
    const cost = records.reduce((sum, r) => sum + micros(r), 0);
    expect(cost).toBeGreaterThan(0);
    let holds = 0;
    await until("reconcile listed all 20 holds", async () => {
      holds += (await costLatch.reconcileQuota()).holds;
      return holds >= 20 ? true : undefined;
    });
    const after = await gw.backends.quota.balance(tenant);
    console.log(
      `[reconcile cost] ${deployment.short}: record() answered ${[...new Set(statuses)].join("/")}; ` +
        `settled spent ${settled.spent} held ${settled.held}; stored cost ${cost} µUSD; reconcile committed ${holds} holds, ` +
        `spent ${after.spent} held ${after.held}; warnings ${JSON.stringify(costWarnings.map((w) => w.code))}`,
    );
    expect(holds).toBe(20);
    expect(after).toMatchObject({ spent: cost, held: 0 });
    expect(costWarnings.filter((w) => w.code === "quota_reconcile_skipped")).toEqual([]);
    expect(costWarnings.filter((w) => w.code === "settle_failed")).toEqual([]);
    // Once: a later run charges nothing more.
    expect((await costLatch.reconcileQuota()).holds).toBe(0);
    expect((await gw.backends.quota.balance(tenant)).spent).toBe(cost);
    await costLatch.close();
  }, 300_000);
});

describe("startReconcileLoop", () => {
  it("refuses an interval that is not an integer from 1 to 2^31 - 1 (the longest Node timer)", () => {
    const fake = { reconcileQuota: async () => ({ versions: 0, holds: 0 }) };
    for (const everyMs of [Number.NaN, 0, -1, 1.5, Number.POSITIVE_INFINITY, 2 ** 31])
      expect(() => startReconcileLoop(fake, { everyMs }), String(everyMs)).toThrow(
        `reconcile interval (everyMs): expected an integer of milliseconds from 1 to 2147483647, got ${everyMs}`,
      );
  });

  it("never overlaps itself; a failed run is reported and the loop goes on; stop() waits for a run in progress", async () => {
    let active = 0;
    let maxActive = 0;
    let calls = 0;
    let release: (() => void) | undefined;
    const errors: unknown[] = [];
    const fake = {
      async reconcileQuota() {
        calls++;
        active++;
        maxActive = Math.max(maxActive, active);
        try {
          if (calls === 2) throw new Error("quota store away");
          // Each run lasts longer than the interval: a timer-driven loop would overlap.
          await new Promise<void>((r) => {
            release = r;
            if (calls < 6) setTimeout(r, 30); // from the sixth run on: until released
          });
          return { versions: 0, holds: 0 };
        } finally {
          active--;
        }
      },
    };
    const loop = startReconcileLoop(fake, { everyMs: 1, onError: (e) => errors.push(e) });
    await until("five runs", async () => (calls >= 5 ? true : undefined), 60_000);
    expect(maxActive).toBe(1);
    expect(errors).toHaveLength(1);
    expect((errors[0] as Error).message).toBe("quota store away");

    // stop() during a run: resolves only once that run ended, and no run starts after it.
    await until(
      "the sixth run in progress",
      async () => (calls >= 6 && active === 1 ? true : undefined),
      60_000,
    );
    let stopped = false;
    const stopping = loop.stop().then(() => {
      stopped = true;
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(stopped).toBe(false);
    release?.();
    await stopping;
    expect(active).toBe(0);
    const after = calls;
    await new Promise((r) => setTimeout(r, 100));
    expect(calls).toBe(after);
  }, 120_000);
});
