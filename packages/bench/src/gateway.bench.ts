/**
 * Gateway overhead: the same requests through `examples/gateway` with Latch (reserve → call →
 * record → settle) and without it (the same proxy code, no metering), against the local fake
 * provider, under a bounded loopback load (8 requests in flight), every shape (OpenAI,
 * Anthropic, Gemini; streamed and not). Latch on the embedded default, then on Postgres + Redis
 * (the production shape: quota in Redis, records in Postgres). Rounds interleaved, best p50/p99
 * of 3 per side.
 *
 * Run: `tsx --conditions=dev-source src/gateway.bench.ts` (BENCH_GATEWAY_REQUESTS).
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Latch } from "@latch/core";
import { createGatewayLatch, openGatewayBackends } from "@latch/example-gateway/config";
import { startFakeProvider } from "@latch/example-gateway/fake-provider";
import { startGateway } from "@latch/example-gateway/gateway";
import { requestFor, send } from "@latch/example-gateway/traffic";
import { reportRow } from "./report.js";

const REQUESTS = Number(process.env.BENCH_GATEWAY_REQUESTS ?? 3_000);
const IN_FLIGHT = 8;
const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const TENANTS = ["acme", "globex", "initech"];

function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a * 1_103_515_245 + 12_345) % 2_147_483_648;
    return a / 2_147_483_648;
  };
}

/** Latencies (ms, sorted) of REQUESTS requests with IN_FLIGHT in flight. */
async function load(url: string, run: string): Promise<Float64Array> {
  const random = rng(42);
  const requests = Array.from({ length: REQUESTS }, (_, i) => requestFor(i, random));
  const latencies = new Float64Array(REQUESTS);
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < REQUESTS) {
        const i = next++;
        const t0 = performance.now();
        const r = await send(url, TENANTS[i % TENANTS.length] as string, `${run}-${i}`, requests[i] as never);
        latencies[i] = performance.now() - t0;
        if (r.status !== 200) throw new Error(`request ${i} answered ${r.status}`);
      }
    }),
  );
  return latencies.sort();
}

const at = (sorted: Float64Array, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;

async function compare(shape: string, latch: Latch): Promise<void> {
  const provider = await startFakeProvider();
  const bare = await startGateway({ providerUrl: provider.url });
  const metered = await startGateway({ latch, providerUrl: provider.url });
  try {
    await load(bare.url, `warm-bare-${randomUUID()}`);
    await load(metered.url, `warm-latch-${randomUUID()}`);
    const best = { bare: [Infinity, Infinity], latch: [Infinity, Infinity] };
    for (let round = 0; round < 3; round++) {
      const b = await load(bare.url, `bare-${round}-${randomUUID()}`);
      const l = await load(metered.url, `latch-${round}-${randomUUID()}`);
      best.bare = [
        Math.min(best.bare[0] as number, at(b, 0.5)),
        Math.min(best.bare[1] as number, at(b, 0.99)),
      ];
      best.latch = [
        Math.min(best.latch[0] as number, at(l, 0.5)),
        Math.min(best.latch[1] as number, at(l, 0.99)),
      ];
    }
    const [bp50, bp99] = best.bare as [number, number];
    const [lp50, lp99] = best.latch as [number, number];
    console.log(
      `\ngateway, ${REQUESTS.toLocaleString("en-US")} requests, ${IN_FLIGHT} in flight, Latch on ${shape}:\n` +
        `  without Latch  p50 ${bp50.toFixed(2)} ms  p99 ${bp99.toFixed(2)} ms\n` +
        `  with Latch     p50 ${lp50.toFixed(2)} ms  p99 ${lp99.toFixed(2)} ms\n` +
        `  overhead       p50 +${(lp50 - bp50).toFixed(2)} ms  p99 +${(lp99 - bp99).toFixed(2)} ms`,
    );
    reportRow({
      area: "gateway",
      metric: `request latency p50 / p99 with Latch (${shape}), ${IN_FLIGHT} in flight`,
      latch: `${lp50.toFixed(2)} / ${lp99.toFixed(2)} ms`,
      against: "same gateway without Latch",
      againstValue: `${bp50.toFixed(2)} / ${bp99.toFixed(2)} ms`,
      ratio: `+${(lp50 - bp50).toFixed(2)} / +${(lp99 - bp99).toFixed(2)} ms`,
    });
  } finally {
    await bare.close();
    await metered.close();
    await provider.close();
  }
}

async function withLatch(
  config: Parameters<typeof openGatewayBackends>[0],
  run: (latch: Latch) => Promise<void>,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "latch-bench-gateway-"));
  const backends = await openGatewayBackends({ ...config, exportDir: dir, dropOnClose: true });
  const latch = createGatewayLatch(backends, { spoolPath: join(dir, "spool.jsonl") });
  try {
    await latch.ready();
    for (const t of TENANTS) await backends.quota.setLimit(t, Number.MAX_SAFE_INTEGER);
    await run(latch);
  } finally {
    await latch.close();
    await backends.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await withLatch({ namespace: "bench_gw_mem" }, (latch) => compare("the embedded default", latch));
await withLatch(
  {
    databaseUrl: DATABASE_URL,
    redisUrl: REDIS_URL,
    namespace: `bench_gw_${randomUUID().slice(0, 8)}`,
    poolSize: 8,
  },
  (latch) => compare("Postgres + Redis", latch),
);
