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
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Latch, LatchDecimal, type LatchWarning, type RatedUsageRecord } from "@latch/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsServer, type TestNatsServer } from "../../../packages/nats/test/support/nats-server.js";
import {
  createGatewayLatch,
  type GatewayBackends,
  type GatewayConfig,
  openGatewayBackends,
} from "../src/config.js";
import { type FakeProvider, startFakeProvider } from "../src/fake-provider.js";
import { startGateway } from "../src/gateway.js";
import { startReconcileLoop } from "../src/reconcile-loop.js";

const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

const deployments: Array<{ name: string; nats: boolean; pg: boolean }> = [
  { name: "embedded default", nats: false, pg: false },
  { name: "Postgres + Redis", nats: false, pg: true },
  { name: "Postgres + Redis + NATS JetStream", nats: true, pg: true },
];

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  for (let waited = 0; ; waited += 100) {
    const value = await probe();
    if (value !== undefined) return value;
    if (waited >= timeoutMs) throw new Error(`${what}: not reached after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.each(deployments)("on $name", ({ nats, pg }) => {
  let dir: string;
  let natsServer: TestNatsServer | undefined;
  let backends: GatewayBackends;
  let latch: Latch;
  let provider: FakeProvider;
  const warnings: LatchWarning[] = [];
  const namespace = `gw_reconcile_${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "latch-gateway-reconcile-"));
    if (nats) natsServer = await startNatsServer();
    const config: GatewayConfig = {
      exportDir: join(dir, "out"),
      namespace,
      dropOnClose: true,
      ...(pg ? { databaseUrl: DATABASE_URL, redisUrl: REDIS_URL } : {}),
      ...(natsServer ? { nats: { url: natsServer.url, stream: `T_${namespace}`, workers: 1 } } : {}),
    };
    backends = await openGatewayBackends(config);
    latch = createGatewayLatch(backends, {
      spoolPath: join(dir, "spool.jsonl"),
      onWarning: (w) => warnings.push(w),
    });
    await latch.ready();
    provider = await startFakeProvider();
  }, 120_000);

  afterAll(async () => {
    await provider?.close();
    await latch?.close();
    await backends?.close();
    await natsServer?.close();
    await rm(dir, { recursive: true, force: true });
  }, 120_000);

  const billedTokens = async (tenant: string) => {
    const rows = await latch.summary({
      start: "2000-01-01T00:00:00Z",
      end: "2100-01-01T00:00:00Z",
      groupBy: ["tenantId"],
    });
    const row = rows.find((r) => r.group.tenantId === tenant);
    return { requests: row?.requests ?? 0, tokens: row?.totalTokens ?? 0 };
  };

  it("reconcile after the gateway's own settles commits the same units: no warning, spent unchanged", async () => {
    const tenant = `served-${namespace}`;
    await backends.quota.setLimit(tenant, 10_000_000);
    const gateway = await startGateway({ latch, providerUrl: provider.url });
    const statuses: string[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const res = await fetch(`${gateway.url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-latch-tenant": tenant, "x-request-id": `r-${i}` },
          body: JSON.stringify({
            model: "gpt-4o",
            messages: [{ role: "user", content: `hello ${i}` }],
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
    await backends.ingestDrained();
    const settled = await backends.quota.balance(tenant);
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
      holds += (await latch.reconcileQuota()).holds;
      return holds >= 20 ? true : undefined;
    });
    console.log(
      `[reconcile] ${nats ? "JetStream" : pg ? "Postgres + Redis" : "embedded"}: record() answered ${[...new Set(statuses)].join("/")}; ` +
        `settled spent ${settled.spent}, billed ${billed.tokens}; reconcile committed ${holds} holds, ` +
        `warnings ${JSON.stringify(warnings.map((w) => w.code))}`,
    );
    expect(holds).toBe(20);
    expect(warnings.filter((w) => w.code === "quota_reconcile_skipped")).toEqual([]);
    const after = await backends.quota.balance(tenant);
    expect(after).toMatchObject({ spent: billed.tokens, held: 0 });
  }, 300_000);

  it("the loop commits a hold whose settle never happened with the record's units", async () => {
    const tenant = `lost-${namespace}`;
    await backends.quota.setLimit(tenant, 1_000_000);
    const hold = await latch.reserve({ account: tenant, amount: 5_000 });
    if (!hold.granted) throw new Error(`reserve denied: ${hold.message}`);
    const result = await latch.record(
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
    expect(await backends.quota.balance(tenant)).toMatchObject({ spent: 0, held: 5_000 });
    await backends.ingestDrained();
    const errors: unknown[] = [];
    const loop = startReconcileLoop(latch, { everyMs: 200, onError: (e) => errors.push(e) });
    try {
      const balance = await until("the loop committed the hold", async () => {
        const b = await backends.quota.balance(tenant);
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
    const costLatch = createGatewayLatch(backends, {
      spoolPath: join(dir, "cost-spool.jsonl"),
      onWarning: (w) => costWarnings.push(w),
      quotaUnits,
    });
    const tenant = `cost-${namespace}`;
    await backends.quota.setLimit(tenant, 1_000_000_000_000);
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
    const gateway = await startGateway({ latch: settling, providerUrl: provider.url });
    const statuses: string[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const res = await fetch(`${gateway.url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-latch-tenant": tenant, "x-request-id": `c-${i}` },
          body: JSON.stringify({
            model: "gpt-4o",
            messages: [{ role: "user", content: `what does call ${i} cost?` }],
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
    expect(new Set(statuses)).toEqual(new Set([nats ? "accepted" : "rated"]));
    expect(settles).toEqual(Array.from({ length: 20 }, () => ({ settled: true })));
    const settled = await backends.quota.balance(tenant);
    if (nats) {
      // Nothing charged yet, every hold still held: later reserves see it (never overspend).
      expect(settled.spent).toBe(0);
      expect(settled.held).toBeGreaterThan(0);
    }
    await backends.ingestDrained();
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
    const after = await backends.quota.balance(tenant);
    console.log(
      `[reconcile cost] ${nats ? "JetStream" : pg ? "Postgres + Redis" : "embedded"}: record() answered ${[...new Set(statuses)].join("/")}; ` +
        `settled spent ${settled.spent} held ${settled.held}; stored cost ${cost} µUSD; reconcile committed ${holds} holds, ` +
        `spent ${after.spent} held ${after.held}; warnings ${JSON.stringify(costWarnings.map((w) => w.code))}`,
    );
    expect(holds).toBe(20);
    expect(after).toMatchObject({ spent: cost, held: 0 });
    expect(costWarnings.filter((w) => w.code === "quota_reconcile_skipped")).toEqual([]);
    expect(costWarnings.filter((w) => w.code === "settle_failed")).toEqual([]);
    // Once: a later run charges nothing more.
    expect((await costLatch.reconcileQuota()).holds).toBe(0);
    expect((await backends.quota.balance(tenant)).spent).toBe(cost);
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
