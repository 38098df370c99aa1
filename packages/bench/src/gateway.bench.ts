/**
 * Gateway overhead: the same requests through `examples/gateway` with Latch (reserve → call →
 * record → settle) and without it (the same proxy code, no metering), against the local fake
 * provider, under a bounded loopback load, every shape (OpenAI, Anthropic, Gemini; streamed
 * and not). Latch on the embedded default (8 in flight), then on Postgres + Redis (the
 * production shape: quota in Redis, records in Postgres; 8 and 64 in flight), then on the
 * fleet shape: the same with NATS JetStream in front of the stores (`record()` publishes; two
 * ingest workers in a process of their own store) — first with no worker running on the machine
 * while the rounds are measured (as in a fleet, where they run on other nodes: what the gateway's
 * own hops add; the messages left, counted before the workers are spawned, are then drained
 * once they start, and the time printed), then with the workers here, competing for the cores
 * — followed by a burst of observations
 * published as fast as 64 callers can, to print the consumer lag it leaves and the workers'
 * store throughput.
 *
 * The deployment's shape: the gateway under test runs in a process of its own
 * (`gateway-process.ts`), the bare one and the Latch one alike (same code, same process
 * shape; the Latch one opens and owns its backends, as a gateway does), the fake provider in
 * another, and this process only generates the load and measures it, so the gateway's event
 * loop is not shared with its clients or its provider (they still share the machine's cores,
 * and PostgreSQL, Redis and NATS run there too). Each gateway process reports its own CPU
 * time (`process.cpuUsage()`) around every round, printed as CPU µs per request, with Latch
 * and without: a figure that does not depend on how loaded the machine is. The ingest burst
 * runs in the Latch gateway's process (the one that owns the stream and publishes to it).
 *
 * Fair on a loaded machine: bare and Latch rounds interleave in alternating order, and the
 * overhead is the median of the per-round differences, printed with their range.
 *
 * Two kinds of rows. The fake provider answers at once in the first kind, so the machine is
 * saturated (load generator, gateway and provider together need about its 2 cores at 8 in
 * flight): latency there is in flight / throughput, and Latch's "overhead" is mostly its CPU
 * spread over the cores (throughput-bound figures). In the second kind (8 in flight), the
 * provider holds every answer BENCH_GATEWAY_PROVIDER_DELAY_MS (25 ms; real models take hundreds)
 * before its first byte, so the machine is mostly idle and the difference is the latency Latch
 * adds to a call; those rounds print how busy the cores were (the three processes' CPU, and the
 * whole machine's from /proc/stat, over wall time × cores). Each deployment has such a row with
 * the same delay for every answer, and the embedded default, Postgres + Redis and JetStream
 * (workers elsewhere) one more where each answer waits up to BENCH_GATEWAY_PROVIDER_JITTER_MS
 * (20) longer, drawn uniformly: with one constant delay, the 8 clients (each sends its next
 * request when one is answered) stay in step, their calls end within a millisecond of each
 * other, and the stores meet bursts of 8 (a group commit answers the first alone and the 7
 * behind it after it); real models' latency varies from call to call, which breaks the step.
 * Every row also prints where a request's time went inside each gateway (its `onTimings`:
 * reserve, provider, record, and the rest — the gateway's own work and its waits for the event
 * loop), p50 and p99 of each phase over the measured rounds.
 *
 * Run: `tsx --conditions=dev-source src/gateway.bench.ts` (BENCH_GATEWAY_REQUESTS per round,
 * default 2,000; BENCH_GATEWAY_ROUNDS per side, default 6; BENCH_GATEWAY_DELAYED_REQUESTS per
 * round of the delayed rows, default 800; BENCH_GATEWAY_PROVIDER_DELAY_MS, default 25;
 * BENCH_GATEWAY_PROVIDER_JITTER_MS, default 20;
 * BENCH_INGEST_BURST, default 10,000;
 * BENCH_GATEWAY_CPU_PROF=<folder> writes `--cpu-prof` profiles of every gateway and provider
 * process there, a folder each, when it exits).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { requestFor, send } from "@latch/example-gateway/traffic";
import type { LatchSpec, ProcessSpec } from "./gateway-process.js";
import { fmt, reportRow } from "./report.js";

const REQUESTS = Number(process.env.BENCH_GATEWAY_REQUESTS ?? 2_000);
/** Rounds per side, interleaved (bare, Latch, Latch, bare, …). */
const ROUNDS = Number(process.env.BENCH_GATEWAY_ROUNDS ?? 6);
/** Requests per round of the delayed rows (the provider takes PROVIDER_DELAY_MS to answer). */
const DELAYED_REQUESTS = Number(process.env.BENCH_GATEWAY_DELAYED_REQUESTS ?? 800);
/** The fake provider's first-byte delay in the delayed rows, ms. */
const PROVIDER_DELAY_MS = Number(process.env.BENCH_GATEWAY_PROVIDER_DELAY_MS ?? 25);
/** The jittered rows' spread: each answer waits PROVIDER_DELAY_MS plus a uniform draw up to this, ms. */
const PROVIDER_JITTER_MS = Number(process.env.BENCH_GATEWAY_PROVIDER_JITTER_MS ?? 20);

/** A delayed row's provider: `ms` before each answer's first byte, plus up to `jitterMs` (uniform). */
interface Delay {
  ms: number;
  jitterMs: number;
}
const STEADY: Delay = { ms: PROVIDER_DELAY_MS, jitterMs: 0 };
const JITTERED: Delay = { ms: PROVIDER_DELAY_MS, jitterMs: PROVIDER_JITTER_MS };
const CORES = availableParallelism();
const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const NATS_URL = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const CPU_PROF = process.env.BENCH_GATEWAY_CPU_PROF;
const TENANTS = ["acme", "globex", "initech"];

function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a * 1_103_515_245 + 12_345) % 2_147_483_648;
    return a / 2_147_483_648;
  };
}

/** Latencies (ms, sorted) of `count` requests with `inFlight` in flight. */
async function load(url: string, run: string, inFlight: number, count = REQUESTS): Promise<Float64Array> {
  const random = rng(42);
  const requests = Array.from({ length: count }, (_, i) => requestFor(i, random));
  const latencies = new Float64Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) {
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

/**
 * The machine's CPU time so far (jiffies, every core and process: busy, and in all), from
 * /proc/stat; undefined where there is none.
 */
function machineCpu(): { busy: number; total: number } | undefined {
  try {
    const fields = (readFileSync("/proc/stat", "utf8").split("\n", 1)[0] as string)
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    const total = fields.reduce((a, b) => a + b, 0);
    // idle and iowait
    return { busy: total - (fields[3] ?? 0) - (fields[4] ?? 0), total };
  } catch {
    return undefined;
  }
}

interface Targets {
  /** Most p50 Latch may add (median of the rounds' differences), ms. */
  p50?: number;
  /** Most p99 Latch may add, ms. */
  p99?: number;
}

/**
 * Children still running: on any way out of this process they are sent SIGTERM (they close
 * their backends, dropping the namespace and stream, and exit; they also do so when their stdin
 * ends, i.e. when this process is gone however it ended).
 */
const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of live) child.kill("SIGTERM");
});

/** Prefix of gateway-process.ts's protocol lines. */
const LINE_PREFIX = "@@gw ";

interface Participant {
  url: string;
  /** Sends one command (see gateway-process.ts) and resolves with its answer. */
  ask<T>(command: string): Promise<T>;
  /** CPU time (user + system) this process used so far, µs. */
  cpu(): Promise<number>;
  /** Closes it (its backends dropped) and waits for it to exit. Idempotent. */
  close(): Promise<void>;
}

/** Spawns gateway-process.ts with `spec`; resolves once it listens. */
async function startProcess(name: string, spec: ProcessSpec): Promise<Participant> {
  const file = fileURLToPath(new URL("./gateway-process.ts", import.meta.url));
  // A folder per process: its main thread and tsx's loader thread each write a profile there.
  const profile = CPU_PROF
    ? ["--cpu-prof", `--cpu-prof-dir=${join(CPU_PROF, `${name.replace(/\W+/g, "-")}-${Date.now()}`)}`]
    : [];
  const child = spawn(
    process.execPath,
    [...profile, "--import", "tsx", "--conditions=dev-source", file, JSON.stringify(spec)],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  live.add(child);
  const answers: Array<{ resolve(value: unknown): void; reject(error: Error): void }> = [];
  let ready: ((url: string) => void) | undefined;
  const started = new Promise<string>((resolve) => {
    ready = resolve;
  });
  createInterface({ input: child.stdout as NonNullable<typeof child.stdout> }).on("line", (line) => {
    if (!line.startsWith(LINE_PREFIX)) {
      process.stdout.write(`${line}\n`);
      return;
    }
    const message = JSON.parse(line.slice(LINE_PREFIX.length)) as { ready?: string; error?: string };
    if (ready !== undefined && message.ready !== undefined) {
      ready(message.ready);
      ready = undefined;
      return;
    }
    const waiting = answers.shift();
    if (waiting === undefined) return;
    if (message.error !== undefined) waiting.reject(new Error(`${name}: ${message.error}`));
    else waiting.resolve(message);
  });
  const exited = new Promise<number>((resolve) => {
    child.on("exit", (code, signal) => {
      live.delete(child);
      for (const waiting of answers.splice(0))
        waiting.reject(new Error(`${name} exited (${code ?? signal}) before answering`));
      resolve(code ?? 1);
    });
  });
  child.stdin?.on("error", () => {}); // written after it exited: the exit is what reports
  let closed: Promise<void> | undefined;
  const participant: Participant = {
    url: "",
    ask<T>(command: string) {
      return new Promise<T>((resolve, reject) => {
        if (child.exitCode !== null || child.signalCode !== null) {
          reject(new Error(`${name} has exited`));
          return;
        }
        answers.push({ resolve: resolve as (value: unknown) => void, reject });
        child.stdin?.write(`${command}\n`);
      });
    },
    async cpu() {
      const usage = await participant.ask<{ user: number; system: number }>("cpu");
      return usage.user + usage.system;
    },
    close() {
      closed ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.stdin?.end("close\n");
          // Dropping a namespace takes a moment; one that hangs is killed.
          const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
          const code = await exited;
          clearTimeout(timer);
          if (code !== 0) console.error(`${name} exited with ${code}`);
        }
      })();
      return closed;
    },
  };
  try {
    participant.url = await Promise.race([
      started,
      exited.then((code): never => {
        throw new Error(`${name} exited (${code}) before listening`);
      }),
    ]);
  } catch (error) {
    await participant.close();
    throw error;
  }
  return participant;
}

/** gateway-process.ts's answer to `timings`. */
interface GatewayTimings {
  count: number;
  p50: Record<"reserveMs" | "providerMs" | "recordMs" | "totalMs" | "restMs", number>;
  p99: Record<"reserveMs" | "providerMs" | "recordMs" | "totalMs" | "restMs", number>;
}

interface Sides {
  provider: Participant;
  bare: Participant;
  latch: Participant;
}

/**
 * The same load through the gateway without Latch and with it, in ROUNDS pairs whose order
 * alternates (bare then Latch, Latch then bare, …), so drift in the machine's load falls on
 * both sides alike. Each pair gives one difference of p50 and one of p99; the figure is the
 * median difference, with the range over the pairs beside it. Around each round, the gateway
 * process under test (and the provider's, and this one) reports its CPU time: CPU per request.
 */
async function compare(
  shape: string,
  sides: Sides,
  inFlight: number,
  targets: Targets = {},
  /** The provider's first-byte delay: a delayed row (see the header). */
  delay?: Delay,
): Promise<void> {
  const { provider } = sides;
  const count = delay === undefined ? REQUESTS : DELAYED_REQUESTS;
  if (delay !== undefined) await provider.ask(`delay ${delay.ms} ${delay.jitterMs}`);
  try {
    await compareRounds(shape, sides, inFlight, targets, count, delay);
  } finally {
    if (delay !== undefined) await provider.ask("delay 0 0");
  }
}

async function compareRounds(
  shape: string,
  { provider, bare, latch }: Sides,
  inFlight: number,
  targets: Targets,
  count: number,
  delay: Delay | undefined,
): Promise<void> {
  const warm = delay === undefined ? count : Math.ceil(count / 4);
  await load(bare.url, `warm-bare-${randomUUID()}`, inFlight, warm);
  await load(latch.url, `warm-latch-${randomUUID()}`, inFlight, warm);
  interface Side {
    p50: number;
    p99: number;
    /** CPU µs per request: the gateway's process, the provider's, this (the load generator's). */
    gatewayCpu: number;
    providerCpu: number;
    clientCpu: number;
    /** Share of the cores busy during the round: these three processes; the whole machine. */
    ownBusy: number;
    machineBusy: number | undefined;
  }
  const rounds: Array<{ bare: Side; latch: Side }> = [];
  // The warm-up's timings are dropped: the rounds' alone are printed.
  await Promise.all([bare.ask("timings"), latch.ask("timings")]);
  const side = async (gateway: Participant, name: string, round: number): Promise<Side> => {
    const [g0, p0] = [await gateway.cpu(), await provider.cpu()];
    const c0 = process.cpuUsage();
    const m0 = machineCpu();
    const t0 = performance.now();
    const sorted = await load(gateway.url, `${name}-${round}-${randomUUID()}`, inFlight, count);
    const wallUs = (performance.now() - t0) * 1_000;
    const m1 = machineCpu();
    const c = process.cpuUsage(c0);
    const [g1, p1] = [await gateway.cpu(), await provider.cpu()];
    const own = g1 - g0 + (p1 - p0) + c.user + c.system;
    return {
      p50: at(sorted, 0.5),
      p99: at(sorted, 0.99),
      gatewayCpu: (g1 - g0) / count,
      providerCpu: (p1 - p0) / count,
      clientCpu: (c.user + c.system) / count,
      ownBusy: own / (wallUs * CORES),
      machineBusy:
        m0 === undefined || m1 === undefined || m1.total === m0.total
          ? undefined
          : (m1.busy - m0.busy) / (m1.total - m0.total),
    };
  };
  for (let round = 0; round < ROUNDS; round++) {
    if (round % 2 === 0) {
      const b = await side(bare, "bare", round);
      rounds.push({ bare: b, latch: await side(latch, "latch", round) });
    } else {
      const l = await side(latch, "latch", round);
      rounds.push({ bare: await side(bare, "bare", round), latch: l });
    }
  }
  const [bareTimes, latchTimes] = await Promise.all([
    bare.ask<GatewayTimings>("timings"),
    latch.ask<GatewayTimings>("timings"),
  ]);
  const ms = (n: number) => n.toFixed(2);
  const phases = (t: GatewayTimings, p: "p50" | "p99", withLatch: boolean) =>
    (withLatch ? `reserve ${ms(t[p].reserveMs)}, ` : "") +
    `provider ${ms(t[p].providerMs)}, ` +
    (withLatch ? `record ${ms(t[p].recordMs)}, ` : "") +
    `rest ${ms(t[p].restMs)}`;
  const where =
    `  inside the gateway, p50 (p99) of each phase alone, ms (onTimings): with Latch ${phases(latchTimes, "p50", true)} (${phases(latchTimes, "p99", true)}); ` +
    `without ${phases(bareTimes, "p50", false)} (${phases(bareTimes, "p99", false)})`;
  const d50 = rounds.map((r) => r.latch.p50 - r.bare.p50);
  const d99 = rounds.map((r) => r.latch.p99 - r.bare.p99);
  const [bp50, bp99] = [median(rounds.map((r) => r.bare.p50)), median(rounds.map((r) => r.bare.p99))];
  const [lp50, lp99] = [median(rounds.map((r) => r.latch.p50)), median(rounds.map((r) => r.latch.p99))];
  const [o50, o99] = [median(d50), median(d99)];
  const cpuOf = (pick: (s: Side) => number) => ({
    bare: median(rounds.map((r) => pick(r.bare))),
    latch: median(rounds.map((r) => pick(r.latch))),
  });
  const gatewayCpu = cpuOf((s) => s.gatewayCpu);
  const dCpu = rounds.map((r) => r.latch.gatewayCpu - r.bare.gatewayCpu);
  const oCpu = median(dCpu);
  const us = (n: number) => `${n < 0 ? "−" : "+"}${fmt(Math.abs(n))}`;
  const usRange = `${us(Math.min(...dCpu))} … ${us(Math.max(...dCpu))}`;
  const providerCpu = cpuOf((s) => s.providerCpu);
  const clientCpu = cpuOf((s) => s.clientCpu);
  const ownBusy = cpuOf((s) => s.ownBusy);
  const machineBusy = rounds.every(
    (r) => r.bare.machineBusy !== undefined && r.latch.machineBusy !== undefined,
  )
    ? cpuOf((s) => s.machineBusy as number)
    : undefined;
  const pctOf = (n: number) => `${(n * 100).toFixed(0)}%`;
  const busy =
    `cores busy ${pctOf(ownBusy.bare)} / ${pctOf(ownBusy.latch)} (gateway + provider + load generator)` +
    (machineBusy === undefined
      ? ""
      : `, whole machine ${pctOf(machineBusy.bare)} / ${pctOf(machineBusy.latch)} (/proc/stat)`) +
    `, without / with Latch, of ${CORES} cores`;
  const met =
    (targets.p50 === undefined || o50 <= targets.p50) && (targets.p99 === undefined || o99 <= targets.p99);
  const target = [
    targets.p50 === undefined ? undefined : `≤ +${targets.p50} ms p50`,
    targets.p99 === undefined ? undefined : `≤ +${targets.p99} ms p99`,
  ].filter(Boolean);
  if (delay !== undefined) {
    reportDelayed(delay);
    return;
  }
  console.log(
    `\ngateway, ${REQUESTS.toLocaleString("en-US")} requests × ${ROUNDS} interleaved rounds per side, ${inFlight} in flight, Latch on ${shape}:\n` +
      `  without Latch  p50 ${bp50.toFixed(2)} ms  p99 ${bp99.toFixed(2)} ms (medians of the rounds)\n` +
      `  with Latch     p50 ${lp50.toFixed(2)} ms  p99 ${lp99.toFixed(2)} ms\n` +
      `  overhead       p50 ${signed(o50)} ms (rounds ${range(d50)})  p99 ${signed(o99)} ms (rounds ${range(d99)})\n` +
      `  gateway process CPU per request: ${fmt(gatewayCpu.bare)} µs without Latch, ${fmt(gatewayCpu.latch)} µs with it, ${us(oCpu)} µs (rounds ${usRange})\n` +
      `  (per request, same rounds: fake provider ${fmt(providerCpu.bare)} / ${fmt(providerCpu.latch)} µs, load generator ${fmt(clientCpu.bare)} / ${fmt(clientCpu.latch)} µs, without / with Latch)\n` +
      where,
  );
  reportRow({
    area: "gateway",
    metric: `request latency p50 / p99 with Latch (${shape}), ${inFlight} in flight; overhead = median of ${ROUNDS} interleaved rounds' differences [range]`,
    latch: `${lp50.toFixed(2)} / ${lp99.toFixed(2)} ms`,
    against: "same gateway without Latch",
    againstValue: `${bp50.toFixed(2)} / ${bp99.toFixed(2)} ms`,
    ratio: `${signed(o50)} [${range(d50)}] / ${signed(o99)} [${range(d99)}] ms`,
    ...(target.length === 0 ? {} : { target: target.join(", "), met }),
  });
  reportRow({
    area: "gateway",
    metric: `gateway process CPU per request, with Latch vs without (${shape}), ${inFlight} in flight; difference = median of ${ROUNDS} interleaved rounds' [range]`,
    latch: `${fmt(gatewayCpu.latch)} µs`,
    against: "same gateway process without Latch",
    againstValue: `${fmt(gatewayCpu.bare)} µs`,
    ratio: `${us(oCpu)} µs [${usRange}] (${(gatewayCpu.latch / gatewayCpu.bare).toFixed(2)}×)`,
  });

  /** The delayed row: the latency Latch adds to a call on a machine that is not saturated. */
  function reportDelayed({ ms: delayMs, jitterMs }: Delay): void {
    // Honest either way: a machine that other work keeps busy is said to be.
    const latchBusy = machineBusy?.latch ?? ownBusy.latch;
    const source = machineBusy === undefined ? "gateway, provider and load generator" : "whole machine";
    const load =
      latchBusy < 0.7
        ? `not saturated: ${pctOf(latchBusy)} of ${CORES} cores busy, ${source}`
        : `${pctOf(latchBusy)} of ${CORES} cores busy, ${source}: NOT idle, figures include queueing`;
    const after = jitterMs === 0 ? `${delayMs} ms` : `${delayMs}–${delayMs + jitterMs} ms (uniform)`;
    const when = `provider answers after ${after} (${load})`;
    console.log(
      `\ngateway, ${count.toLocaleString("en-US")} requests × ${ROUNDS} interleaved rounds per side, ${inFlight} in flight, ${when}, Latch on ${shape} — the latency Latch adds to a call:\n` +
        `  without Latch  p50 ${bp50.toFixed(2)} ms  p99 ${bp99.toFixed(2)} ms (medians of the rounds; ${after} of them the provider's)\n` +
        `  with Latch     p50 ${lp50.toFixed(2)} ms  p99 ${lp99.toFixed(2)} ms\n` +
        `  added          p50 ${signed(o50)} ms (rounds ${range(d50)})  p99 ${signed(o99)} ms (rounds ${range(d99)})\n` +
        `  ${busy} (medians of the rounds)\n` +
        `  gateway process CPU per request: ${fmt(gatewayCpu.bare)} µs without Latch, ${fmt(gatewayCpu.latch)} µs with it, ${us(oCpu)} µs (rounds ${usRange})\n` +
        where,
    );
    reportRow({
      area: "gateway",
      metric: `request latency p50 / p99 with Latch (${shape}), ${inFlight} in flight, fake provider answering after ${after} (${load}); added = median of ${ROUNDS} interleaved rounds' differences [range]`,
      latch: `${lp50.toFixed(2)} / ${lp99.toFixed(2)} ms`,
      against: "same gateway without Latch",
      againstValue: `${bp50.toFixed(2)} / ${bp99.toFixed(2)} ms`,
      ratio: `${signed(o50)} [${range(d50)}] / ${signed(o99)} [${range(d99)}] ms`,
      ...(target.length === 0 ? {} : { target: target.join(", "), met }),
    });
  }
}

/**
 * The Latch gateway's process on `latch` (its backends opened, and dropped on close, there),
 * in front of the shared provider, for the time of `run`.
 */
async function withLatchGateway(
  provider: Participant,
  latch: Omit<LatchSpec, "tenants">,
  run: (gateway: Participant) => Promise<void>,
): Promise<void> {
  const gateway = await startProcess(`latch gateway (${latch.namespace})`, {
    role: "gateway",
    providerUrl: provider.url,
    latch: { ...latch, tenants: TENANTS },
  });
  try {
    await run(gateway);
  } finally {
    await gateway.close();
  }
}

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
  live.add(child);
  let out = "";
  child.stdout.on("data", (chunk: Buffer) => {
    out += chunk.toString("utf8");
  });
  const exited = new Promise<number>((resolve) =>
    child.on("exit", (code) => {
      live.delete(child);
      resolve(code ?? 1);
    }),
  );
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
    return out.trim().split("\n").at(-1) ?? "";
  };
  try {
    await Promise.race([
      (async () => {
        while (!out.includes("consuming")) await new Promise((r) => setTimeout(r, 50));
      })(),
      exited.then((code) => {
        throw new Error(`the ingest workers exited (${code}) before consuming`);
      }),
    ]);
  } catch (error) {
    await stop();
    throw error;
  }
  return { stop };
}

/**
 * What the rounds without workers left in the stream (`left`, read before the workers were
 * spawned), stored once the workers start (`readyMs` after their spawn: they consume from then
 * on, so the lag `drain` finds is already lower): how much remained when asked and how fast
 * the workers brought it to 0.
 */
async function drainLeftover(gateway: Participant, left: number, readyMs: number): Promise<void> {
  const { lag, drainedMs } = await gateway.ask<{ lag: number; drainedMs: number }>("drain");
  console.log(
    `  left in the stream by those rounds (no worker consuming): ${left.toLocaleString("en-US")} messages; ` +
      `the workers consumed ${(readyMs / 1000).toFixed(2)} s after their spawn, ` +
      `${lag.toLocaleString("en-US")} still left then, stored in ${(drainedMs / 1000).toFixed(2)} s more` +
      (lag > 0 ? ` (${fmt(lag / (drainedMs / 1000))} records/s over those)` : ""),
  );
}

/**
 * The ingest side of the fleet shape: BURST observations recorded by 64 callers at once in the
 * Latch gateway's process (each answered once the stream stored it), then the time until the
 * workers stored them all.
 */
async function ingestBurst(gateway: Participant): Promise<void> {
  const BURST = Number(process.env.BENCH_INGEST_BURST ?? 10_000);
  const {
    publishedMs: published,
    lag,
    drainedMs: drained,
  } = await gateway.ask<{
    publishedMs: number;
    lag: number;
    drainedMs: number;
  }>(`burst ${BURST}`);
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

// The provider and the bare gateway serve every shape; each Latch gateway owns its backends.
const provider = await startProcess("fake provider", { role: "provider" });
try {
  const bare = await startProcess("bare gateway", { role: "gateway", providerUrl: provider.url });
  try {
    await withLatchGateway(provider, { namespace: "bench_gw_mem" }, async (latch) => {
      await compare("the embedded default", { provider, bare, latch }, 8, { p99: 1 });
      await compare("the embedded default", { provider, bare, latch }, 8, { p99: 1 }, STEADY);
      await compare("the embedded default", { provider, bare, latch }, 8, { p99: 1 }, JITTERED);
    });
    await withLatchGateway(
      provider,
      {
        databaseUrl: DATABASE_URL,
        redisUrl: REDIS_URL,
        namespace: `bench_gw_${randomUUID().slice(0, 8)}`,
        poolSize: 8,
      },
      async (latch) => {
        await compare("Postgres + Redis", { provider, bare, latch }, 8, { p50: 2, p99: 6 });
        await compare("Postgres + Redis", { provider, bare, latch }, 64);
        await compare("Postgres + Redis", { provider, bare, latch }, 8, { p50: 2, p99: 6 }, STEADY);
        await compare("Postgres + Redis", { provider, bare, latch }, 8, { p50: 2, p99: 6 }, JITTERED);
      },
    );
    const namespace = `bench_gw_${randomUUID().slice(0, 8)}`;
    const stream = `BENCH_GW_${randomUUID().slice(0, 8)}`;
    await withLatchGateway(
      provider,
      {
        databaseUrl: DATABASE_URL,
        redisUrl: REDIS_URL,
        namespace,
        poolSize: 8,
        // No worker in the gateway's process: they run in their own (startWorkers).
        nats: { url: NATS_URL, stream, workers: 0 },
      },
      async (latch) => {
        // The gateway alone, as in a fleet, where the ingest workers (and the Postgres they
        // write to) run on other nodes: none runs on this machine while these rounds are
        // measured, so the latency is what the gateway's own hops add (reserve on Redis, the
        // stream's acknowledgement), not the workers' batches competing for its 2 cores. The
        // rounds below, with the workers here, show that competition.
        await compare(
          "Postgres + Redis + JetStream, ingest workers not on this machine while measured",
          { provider, bare, latch },
          8,
          { p50: 1 },
          STEADY,
        );
        await compare(
          "Postgres + Redis + JetStream, ingest workers not on this machine while measured",
          { provider, bare, latch },
          8,
          { p50: 1 },
          JITTERED,
        );
        const workerEnv = {
          LATCH_DATABASE_URL: DATABASE_URL,
          LATCH_REDIS_URL: REDIS_URL,
          LATCH_NATS_URL: NATS_URL,
          LATCH_NATS_STREAM: stream,
          LATCH_SCHEMA: namespace,
          LATCH_REDIS_PREFIX: namespace,
          LATCH_POOL_SIZE: "8",
          LATCH_INGEST_WORKERS: "2",
        };
        // Read before the spawn: the workers consume as soon as they are up, before `drain`.
        const { lag: left } = await latch.ask<{ lag: number }>("lag");
        const spawned = performance.now();
        const workers = await startWorkers(workerEnv);
        const readyMs = performance.now() - spawned;
        try {
          await drainLeftover(latch, left, readyMs);
          await compare("Postgres + Redis + JetStream", { provider, bare, latch }, 8, { p50: 1 });
          await compare("Postgres + Redis + JetStream", { provider, bare, latch }, 8, { p50: 1 }, STEADY);
          await ingestBurst(latch);
        } finally {
          console.log(`  the workers' own count at the end: ${await workers.stop()}`);
        }
      },
    );
  } finally {
    await bare.close();
  }
} finally {
  await provider.close();
}
