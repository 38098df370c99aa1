/**
 * Gateway overhead: the same requests through `examples/gateway` with Latch (reserve → call →
 * record → settle) and without it (the same proxy code, no metering), against the local fake
 * provider, under a bounded loopback load (8 requests in flight), every shape (OpenAI,
 * Anthropic, Gemini; streamed and not). Latch on the embedded default, then on Postgres + Redis
 * (the production shape: quota in Redis, records in Postgres), then on the fleet shape: the
 * same with NATS JetStream in front of the stores (`record()` publishes, two ingest workers in
 * process store), followed by a burst of observations published as fast as 64 callers can, to
 * print the consumer lag it leaves and the workers' store throughput. Rounds interleaved, best
 * p50/p99 of 3 per side.
 *
 * Run: `tsx --conditions=dev-source src/gateway.bench.ts` (BENCH_GATEWAY_REQUESTS).
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Latch } from "@latch/core";
import { createGatewayLatch, type GatewayBackends, openGatewayBackends } from "@latch/example-gateway/config";
import { startFakeProvider } from "@latch/example-gateway/fake-provider";
import { startGateway } from "@latch/example-gateway/gateway";
import { requestFor, send } from "@latch/example-gateway/traffic";
import { fmt, reportRow } from "./report.js";

const REQUESTS = Number(process.env.BENCH_GATEWAY_REQUESTS ?? 3_000);
const IN_FLIGHT = 8;
const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const NATS_URL = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
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

async function compare(shape: string, latch: Latch, targetP50Ms?: number): Promise<void> {
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
      ...(targetP50Ms === undefined
        ? {}
        : { target: `≤ +${targetP50Ms} ms p50`, met: lp50 - bp50 <= targetP50Ms }),
    });
  } finally {
    await bare.close();
    await metered.close();
    await provider.close();
  }
}

async function withLatch(
  config: Parameters<typeof openGatewayBackends>[0],
  run: (latch: Latch, backends: GatewayBackends) => Promise<void>,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "latch-bench-gateway-"));
  const backends = await openGatewayBackends({ ...config, exportDir: dir, dropOnClose: true });
  const latch = createGatewayLatch(backends, { spoolPath: join(dir, "spool.jsonl") });
  try {
    await latch.ready();
    for (const t of TENANTS) await backends.quota.setLimit(t, Number.MAX_SAFE_INTEGER);
    await run(latch, backends);
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

/**
 * The ingest side of the fleet shape: BURST observations recorded by 64 callers at once (each
 * answered once the stream stored it), then the time until the workers stored them all.
 */
async function ingestBurst(latch: Latch, backends: GatewayBackends): Promise<void> {
  const BURST = Number(process.env.BENCH_INGEST_BURST ?? 10_000);
  await backends.ingestDrained(600_000);
  const before = (await backends.ingestStatus()).stored;
  const run = randomUUID().slice(0, 8);
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < BURST) {
        const i = next++;
        await latch.record({
          eventId: `burst-${run}-${i}:0:openai`,
          subject: { tenantId: TENANTS[i % TENANTS.length] as string },
          meters: { input_tokens: 1_000 + (i % 500), output_tokens: 200 },
          model: { billableModel: "gpt-4o" },
          provider: { providerId: "openai" },
          source: { kind: "provider_reported" },
          outcome: { kind: "success" },
          timing: { startedAt: "2026-03-14T10:00:00Z", completedAt: "2026-03-14T10:00:01Z" },
        });
      }
    }),
  );
  const published = performance.now() - t0;
  const lag = (await backends.ingestStatus()).lag;
  await backends.ingestDrained(600_000);
  const drained = performance.now() - t0;
  const stored = (await backends.ingestStatus()).stored - before;
  const publishRate = BURST / (published / 1000);
  const storeRate = stored / (drained / 1000);
  console.log(
    `
ingest burst on Postgres + Redis + JetStream (2 workers in the gateway's process), ${BURST.toLocaleString("en-US")} observations, 64 callers:
` +
      `  published (acknowledged by the stream) in ${(published / 1000).toFixed(2)} s: ${fmt(publishRate)} records/s
` +
      `  consumer lag when publishing ended: ${lag.toLocaleString("en-US")} messages
` +
      `  stored by the workers in ${(drained / 1000).toFixed(2)} s: ${fmt(storeRate)} records/s`,
  );
  reportRow({
    area: "ingest",
    metric: `JetStream ingest, ${BURST.toLocaleString("en-US")} records by 64 callers: accepted/s; lag at end; stored/s (2 workers)`,
    latch: `${fmt(publishRate)}/s; lag ${lag.toLocaleString("en-US")}`,
    against: "stored by the workers",
    againstValue: `${fmt(storeRate)}/s`,
    ratio: `${(publishRate / storeRate).toFixed(1)}×`,
  });
}

await withLatch(
  {
    databaseUrl: DATABASE_URL,
    redisUrl: REDIS_URL,
    namespace: `bench_gw_${randomUUID().slice(0, 8)}`,
    poolSize: 8,
    nats: { url: NATS_URL, stream: `BENCH_GW_${randomUUID().slice(0, 8)}`, workers: 2 },
  },
  async (latch, backends) => {
    await compare("Postgres + Redis + JetStream", latch, 1);
    await ingestBurst(latch, backends);
  },
);
