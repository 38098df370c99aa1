/**
 * Gateway overhead: the same requests through `examples/gateway` with Latch (reserve → call →
 * record → settle) and without it (the same proxy code, no metering), against the local fake
 * provider, under a bounded loopback load, every shape (OpenAI, Anthropic, Gemini; streamed
 * and not). Latch on the embedded default (8 in flight), then on Postgres + Redis (the
 * production shape: quota in Redis, records in Postgres; 8 and 64 in flight), then on the
 * fleet shape: the same with NATS JetStream in front of the stores (`record()` publishes; two
 * ingest workers in a process of their own store), followed by a burst of observations
 * published as fast as 64 callers can, to print the consumer lag it leaves and the workers'
 * store throughput.
 *
 * Fair on a loaded machine: bare and Latch rounds interleave in alternating order, and the
 * overhead is the median of the per-round differences, printed with their range.
 *
 * Run: `tsx --conditions=dev-source src/gateway.bench.ts` (BENCH_GATEWAY_REQUESTS per round,
 * default 2,000; BENCH_GATEWAY_ROUNDS per side, default 6; BENCH_INGEST_BURST, default 10,000).
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Latch } from "@latch/core";
import { createGatewayLatch, type GatewayBackends, openGatewayBackends } from "@latch/example-gateway/config";
import { startFakeProvider } from "@latch/example-gateway/fake-provider";
import { startGateway } from "@latch/example-gateway/gateway";
import { requestFor, send } from "@latch/example-gateway/traffic";
import { fmt, reportRow } from "./report.js";

const REQUESTS = Number(process.env.BENCH_GATEWAY_REQUESTS ?? 2_000);
/** Rounds per side, interleaved (bare, Latch, Latch, bare, …). */
const ROUNDS = Number(process.env.BENCH_GATEWAY_ROUNDS ?? 6);
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

/** Latencies (ms, sorted) of REQUESTS requests with `inFlight` in flight. */
async function load(url: string, run: string, inFlight: number): Promise<Float64Array> {
  const random = rng(42);
  const requests = Array.from({ length: REQUESTS }, (_, i) => requestFor(i, random));
  const latencies = new Float64Array(REQUESTS);
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
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

const median = (values: readonly number[]) => {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const signed = (ms: number) => `${ms < 0 ? "−" : "+"}${Math.abs(ms).toFixed(2)}`;
const range = (values: readonly number[]) =>
  `${signed(Math.min(...values))} … ${signed(Math.max(...values))}`;

interface Targets {
  /** Most p50 Latch may add (median of the rounds' differences), ms. */
  p50?: number;
  /** Most p99 Latch may add, ms. */
  p99?: number;
}

/**
 * The same load through the gateway without Latch and with it, in ROUNDS pairs whose order
 * alternates (bare then Latch, Latch then bare, …), so drift in the machine's load falls on
 * both sides alike. Each pair gives one difference of p50 and one of p99; the figure is the
 * median difference, with the range over the pairs beside it.
 */
async function compare(shape: string, latch: Latch, inFlight: number, targets: Targets = {}): Promise<void> {
  const provider = await startFakeProvider();
  const bare = await startGateway({ providerUrl: provider.url });
  const metered = await startGateway({ latch, providerUrl: provider.url });
  try {
    await load(bare.url, `warm-bare-${randomUUID()}`, inFlight);
    await load(metered.url, `warm-latch-${randomUUID()}`, inFlight);
    const rounds: Array<{ bare: [number, number]; latch: [number, number] }> = [];
    for (let round = 0; round < ROUNDS; round++) {
      const side = async (url: string, name: string): Promise<[number, number]> => {
        const sorted = await load(url, `${name}-${round}-${randomUUID()}`, inFlight);
        return [at(sorted, 0.5), at(sorted, 0.99)];
      };
      if (round % 2 === 0) {
        const b = await side(bare.url, "bare");
        rounds.push({ bare: b, latch: await side(metered.url, "latch") });
      } else {
        const l = await side(metered.url, "latch");
        rounds.push({ bare: await side(bare.url, "bare"), latch: l });
      }
    }
    const d50 = rounds.map((r) => r.latch[0] - r.bare[0]);
    const d99 = rounds.map((r) => r.latch[1] - r.bare[1]);
    const [bp50, bp99] = [median(rounds.map((r) => r.bare[0])), median(rounds.map((r) => r.bare[1]))];
    const [lp50, lp99] = [median(rounds.map((r) => r.latch[0])), median(rounds.map((r) => r.latch[1]))];
    const [o50, o99] = [median(d50), median(d99)];
    console.log(
      `\ngateway, ${REQUESTS.toLocaleString("en-US")} requests × ${ROUNDS} interleaved rounds per side, ${inFlight} in flight, Latch on ${shape}:\n` +
        `  without Latch  p50 ${bp50.toFixed(2)} ms  p99 ${bp99.toFixed(2)} ms (medians of the rounds)\n` +
        `  with Latch     p50 ${lp50.toFixed(2)} ms  p99 ${lp99.toFixed(2)} ms\n` +
        `  overhead       p50 ${signed(o50)} ms (rounds ${range(d50)})  p99 ${signed(o99)} ms (rounds ${range(d99)})`,
    );
    const met =
      (targets.p50 === undefined || o50 <= targets.p50) && (targets.p99 === undefined || o99 <= targets.p99);
    const target = [
      targets.p50 === undefined ? undefined : `≤ +${targets.p50} ms p50`,
      targets.p99 === undefined ? undefined : `≤ +${targets.p99} ms p99`,
    ].filter(Boolean);
    reportRow({
      area: "gateway",
      metric: `request latency p50 / p99 with Latch (${shape}), ${inFlight} in flight; overhead = median of ${ROUNDS} interleaved rounds' differences [range]`,
      latch: `${lp50.toFixed(2)} / ${lp99.toFixed(2)} ms`,
      against: "same gateway without Latch",
      againstValue: `${bp50.toFixed(2)} / ${bp99.toFixed(2)} ms`,
      ratio: `${signed(o50)} [${range(d50)}] / ${signed(o99)} [${range(d99)}] ms`,
      ...(target.length === 0 ? {} : { target: target.join(", "), met }),
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

await withLatch({ namespace: "bench_gw_mem" }, (latch) =>
  compare("the embedded default", latch, 8, { p99: 1 }),
);
await withLatch(
  {
    databaseUrl: DATABASE_URL,
    redisUrl: REDIS_URL,
    namespace: `bench_gw_${randomUUID().slice(0, 8)}`,
    poolSize: 8,
  },
  async (latch) => {
    await compare("Postgres + Redis", latch, 8, { p50: 2, p99: 6 });
    await compare("Postgres + Redis", latch, 64);
  },
);

/**
 * The fleet's ingest workers in a process of their own (`examples/gateway/src/ingest-workers.ts`,
 * the role of `latch-ingest`), on the gateway's stores and stream: the gateway's process then
 * does only the gateway's work, as in a fleet. Resolves once they consume.
 */
async function startWorkers(env: Record<string, string>): Promise<{ stop(): Promise<string> }> {
  const file = fileURLToPath(import.meta.resolve("@latch/example-gateway/ingest-workers"));
  const child = spawn(process.execPath, ["--import", "tsx", "--conditions=dev-source", file], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.on("data", (chunk: Buffer) => {
    out += chunk.toString("utf8");
  });
  const exited = new Promise<number>((resolve) => child.on("exit", (code) => resolve(code ?? 1)));
  await Promise.race([
    (async () => {
      while (!out.includes("consuming")) await new Promise((r) => setTimeout(r, 50));
    })(),
    exited.then((code) => {
      throw new Error(`the ingest workers exited (${code}) before consuming`);
    }),
  ]);
  return {
    async stop() {
      child.kill("SIGTERM");
      await exited;
      return out.trim().split("\n").at(-1) ?? "";
    },
  };
}

/**
 * The ingest side of the fleet shape: BURST observations recorded by 64 callers at once (each
 * answered once the stream stored it), then the time until the workers stored them all.
 */
async function ingestBurst(latch: Latch, backends: GatewayBackends): Promise<void> {
  const BURST = Number(process.env.BENCH_INGEST_BURST ?? 10_000);
  await backends.ingestDrained(600_000);
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
  // Drained: the consumer acknowledged every message, and a worker acknowledges one only once
  // it is stored (a dead letter would be counted in the workers' final line, printed below).
  const publishRate = BURST / (published / 1000);
  const storeRate = BURST / (drained / 1000);
  console.log(
    `
ingest burst on Postgres + Redis + JetStream (2 workers in their own process), ${BURST.toLocaleString("en-US")} observations, 64 callers:
` +
      `  published (acknowledged by the stream) in ${(published / 1000).toFixed(2)} s: ${fmt(publishRate)} records/s
` +
      `  consumer lag when publishing ended: ${lag.toLocaleString("en-US")} messages
` +
      `  stored by the workers in ${(drained / 1000).toFixed(2)} s: ${fmt(storeRate)} records/s`,
  );
  reportRow({
    area: "ingest",
    metric: `JetStream ingest, ${BURST.toLocaleString("en-US")} records by 64 callers: accepted/s; lag at end; stored/s (2 workers, own process)`,
    latch: `${fmt(publishRate)}/s; lag ${lag.toLocaleString("en-US")}`,
    against: "stored by the workers",
    againstValue: `${fmt(storeRate)}/s`,
    ratio: `${(publishRate / storeRate).toFixed(1)}×`,
  });
}

{
  const namespace = `bench_gw_${randomUUID().slice(0, 8)}`;
  const stream = `BENCH_GW_${randomUUID().slice(0, 8)}`;
  await withLatch(
    {
      databaseUrl: DATABASE_URL,
      redisUrl: REDIS_URL,
      namespace,
      poolSize: 8,
      // No worker in the gateway's process: they run in their own (startWorkers).
      nats: { url: NATS_URL, stream, workers: 0 },
    },
    async (latch, backends) => {
      const workers = await startWorkers({
        LATCH_DATABASE_URL: DATABASE_URL,
        LATCH_REDIS_URL: REDIS_URL,
        LATCH_NATS_URL: NATS_URL,
        LATCH_NATS_STREAM: stream,
        LATCH_SCHEMA: namespace,
        LATCH_REDIS_PREFIX: namespace,
        LATCH_POOL_SIZE: "8",
        LATCH_INGEST_WORKERS: "2",
      });
      try {
        await compare("Postgres + Redis + JetStream", latch, 8, { p50: 1 });
        await ingestBurst(latch, backends);
      } finally {
        console.log(`  the workers' own count at the end: ${await workers.stop()}`);
      }
    },
  );
}
