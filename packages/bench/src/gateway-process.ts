/**
 * One participant of `gateway.bench.ts` in a process of its own, as in a deployment (the
 * gateway's clients and its provider are elsewhere): the fake provider, or the gateway under
 * test, bare or with Latch. The bench spawns it as
 *
 *   node --import tsx --conditions=dev-source gateway-process.ts '<spec as JSON>'
 *
 * where the spec is `{ "role": "provider" }` or `{ "role": "gateway", "providerUrl": …,
 * "latch"?: { "namespace": …, "databaseUrl"?, "redisUrl"?, "poolSize"?, "nats"?, "tenants": […] } }`.
 * Without `latch` the gateway is the plain proxy (the baseline); with it, the process opens the
 * backends (`openGatewayBackends`, which wipes the namespace, and drops it and the stream on
 * close), builds the gateway's Latch (`createGatewayLatch`), sets the tenants' quota limits and
 * starts the same gateway code on it: both sides have the same code and the same process shape.
 *
 * Protocol (bench only, never one of the gateway's routes): stdout lines starting with
 * `@@gw ` carry JSON. The first is `{"ready":url}`; then each stdin line is a command answered
 * by one such line, in order:
 *
 * - `cpu`: `{"user":µs,"system":µs}`, this process's `process.cpuUsage()` so far (a gateway
 *   first waits for the settles still running after their responses);
 * - `delay MS [JITTER]`: (provider) answers the requests arriving from now on MS ms after they
 *   arrive, plus a uniform draw from 0 to JITTER ms (default 0) for each (`setFirstByteDelay`, as
 *   a real model takes time to its first token): `{"delayMs":MS,"jitterMs":JITTER}`;
 * - `timings`: where the requests answered since the last `timings` spent their time in the
 *   gateway (its `onTimings`): `{"count":n,"p50":{…},"p99":{…}}` with `reserveMs`, `providerMs`,
 *   `recordMs`, `totalMs` and `restMs` (total minus the three: the gateway's own work and its
 *   waits for the event loop), each percentile taken over that phase alone; then starts over;
 * - `burst N`: (Latch on JetStream) N observations recorded by 64 callers at once, each answered
 *   once the stream stored it, then the wait until the consumer's lag is 0:
 *   `{"publishedMs":…,"lag":…,"drainedMs":…}`;
 * - `lag`: (Latch on JetStream) the consumer's lag now: `{"lag":…}`;
 * - `drain`: (Latch on JetStream) the consumer's lag now, then the wait until it is 0 (the
 *   ingest workers store what the stream holds; at most 600 s, then it fails):
 *   `{"lag":…,"drainedMs":…}`;
 * - `close`: closes the gateway, Latch and the backends (dropping the namespace and stream),
 *   then exits 0.
 *
 * The end of stdin (the bench gone, however it ended), SIGTERM and SIGINT close it the same way.
 * A failed command answers `{"error":message}`.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { Latch } from "@latch/core";
import { createGatewayLatch, type GatewayBackends, openGatewayBackends } from "@latch/example-gateway/config";
import { type FakeProvider, startFakeProvider } from "@latch/example-gateway/fake-provider";
import { type Gateway, type RequestTimings, startGateway } from "@latch/example-gateway/gateway";

/** Prefix of the protocol's stdout lines (gateway.bench.ts has the same). */
const LINE_PREFIX = "@@gw ";

export interface LatchSpec {
  namespace: string;
  databaseUrl?: string;
  redisUrl?: string;
  poolSize?: number;
  nats?: { url: string; stream: string; workers: number };
  /** Tenants whose quota limit is set (to the largest safe integer) before the gateway starts. */
  tenants: string[];
}

export type ProcessSpec = { role: "provider" } | { role: "gateway"; providerUrl: string; latch?: LatchSpec };

/** The `timings` command's answer over `all`. */
function timingStats(all: readonly RequestTimings[]) {
  const phases = {
    reserveMs: all.map((t) => t.reserveMs),
    providerMs: all.map((t) => t.providerMs),
    recordMs: all.map((t) => t.recordMs),
    totalMs: all.map((t) => t.totalMs),
    restMs: all.map((t) => t.totalMs - t.reserveMs - t.providerMs - t.recordMs),
  };
  const at = (values: number[], p: number) => {
    const sorted = Float64Array.from(values).sort();
    return sorted.length === 0
      ? 0
      : (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number);
  };
  const pick = (p: number) =>
    Object.fromEntries(Object.entries(phases).map(([name, values]) => [name, at(values, p)]));
  return { count: all.length, p50: pick(0.5), p99: pick(0.99) };
}

const say = (value: unknown) => process.stdout.write(`${LINE_PREFIX}${JSON.stringify(value)}\n`);

/** The ingest burst: see the `burst` command. */
async function burst(latch: Latch, backends: GatewayBackends, count: number, tenants: string[]) {
  await backends.ingestDrained(600_000);
  const run = randomUUID().slice(0, 8);
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < count) {
        const i = next++;
        await latch.record({
          eventId: `burst-${run}-${i}:0:openai`,
          subject: { tenantId: tenants[i % tenants.length] as string },
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
  const publishedMs = performance.now() - t0;
  const lag = (await backends.ingestStatus()).lag;
  await backends.ingestDrained(600_000);
  return { publishedMs, lag, drainedMs: performance.now() - t0 };
}

const spec = JSON.parse(process.argv[2] ?? "") as ProcessSpec;
/** What closing releases, last opened first. */
const closers: Array<() => Promise<void> | void> = [];
let closing: Promise<void> | undefined;
const shutdown = (code: number) => {
  closing ??= (async () => {
    for (const close of closers.reverse()) {
      try {
        await close();
      } catch (error) {
        console.error("gateway-process: closing failed:", error);
        code = 1;
      }
    }
    process.exit(code);
  })();
  return closing;
};
process.once("SIGTERM", () => void shutdown(0));
process.once("SIGINT", () => void shutdown(0));

let latch: Latch | undefined;
let provider: FakeProvider | undefined;
/** The gateway under test (its settles run after each response: `cpu` waits for them). */
let gatewayUnderTest: Gateway | undefined;
let backends: GatewayBackends | undefined;
/** The gateway's timings since the last `timings` command. */
let timings: RequestTimings[] = [];
try {
  let url: string;
  if (spec.role === "provider") {
    const started = await startFakeProvider();
    provider = started;
    closers.push(() => started.close());
    url = started.url;
  } else {
    if (spec.latch !== undefined) {
      const { tenants, ...config } = spec.latch;
      const dir = mkdtempSync(join(tmpdir(), "latch-bench-gateway-"));
      closers.push(() => rmSync(dir, { recursive: true, force: true }));
      const opened = await openGatewayBackends({ ...config, exportDir: dir, dropOnClose: true });
      backends = opened;
      closers.push(() => opened.close());
      const created = createGatewayLatch(opened, { spoolPath: join(dir, "spool.jsonl") });
      latch = created;
      closers.push(() => created.close());
      await created.ready();
      for (const t of tenants) await opened.quota.setLimit(t, Number.MAX_SAFE_INTEGER);
    }
    const gateway = await startGateway({
      ...(latch ? { latch } : {}),
      providerUrl: spec.providerUrl,
      onTimings: (t) => timings.push(t),
    });
    gatewayUnderTest = gateway;
    closers.push(() => gateway.close());
    url = gateway.url;
  }
  say({ ready: url });
} catch (error) {
  console.error("gateway-process: could not start:", error);
  await shutdown(1);
}

const lines = createInterface({ input: process.stdin });
// One command at a time, answered in order.
let queue = Promise.resolve();
lines.on("line", (line) => {
  queue = queue.then(async () => {
    const [command, arg, arg2] = line.trim().split(/\s+/);
    try {
      if (command === "cpu") {
        // The settles of the round's last responses run after them: counted in this round.
        await gatewayUnderTest?.settled();
        say(process.cpuUsage());
      } else if (command === "timings") {
        if (gatewayUnderTest === undefined) throw new Error("timings: this process is not a gateway");
        const all = timings;
        timings = [];
        say(timingStats(all));
      } else if (command === "delay") {
        if (provider === undefined) throw new Error("delay: this process is not the provider");
        provider.setFirstByteDelay(Number(arg), Number(arg2 ?? 0));
        say({ delayMs: Number(arg), jitterMs: Number(arg2 ?? 0) });
      } else if (command === "burst") {
        if (latch === undefined || backends?.ingest === undefined || spec.role !== "gateway")
          throw new Error("burst: this process has no Latch on JetStream");
        say(await burst(latch, backends, Number(arg), spec.latch?.tenants ?? []));
      } else if (command === "lag") {
        if (backends?.ingest === undefined) throw new Error("lag: this process has no Latch on JetStream");
        say({ lag: (await backends.ingestStatus()).lag });
      } else if (command === "drain") {
        if (backends?.ingest === undefined) throw new Error("drain: this process has no Latch on JetStream");
        const { lag } = await backends.ingestStatus();
        const t0 = performance.now();
        await backends.ingestDrained(600_000);
        say({ lag, drainedMs: performance.now() - t0 });
      } else if (command === "close") await shutdown(0);
      else throw new Error(`unknown command ${JSON.stringify(line)}`);
    } catch (error) {
      say({ error: error instanceof Error ? error.message : String(error) });
    }
  });
});
lines.once("close", () => void queue.then(() => shutdown(0)));
