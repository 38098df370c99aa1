/**
 * `@latch/redis` on the server at REDIS_URL, figures measured in one run through one client:
 *
 * - `RedisQuota.reserve` and `RedisQuota.commit` calls/s with 100 calls in flight, beside a
 *   trivial EVALSHA (`return 1`, one key) at the same concurrency through the same client (same
 *   options, auto-pipelining included): the raw ceiling of a script call. On this standalone
 *   server a reserve is one script call with three keys (the account's hash and sorted set, and
 *   the holdId's one record key, which also names the account; on a Cluster it is a locator
 *   SET plus the reserve script, sent together); a commit is the commit script (plus a read of
 *   the record when another process made the hold; here the same object commits, so it knows
 *   the account).
 * - Interleaved rounds, so that load from other processes on the machine hits the ceiling and
 *   the subject alike: each round runs trivial, reserve, commit, trivial, and compares reserve
 *   and commit with the mean of the two trivial runs around them. The figures are the median
 *   of the per-round ratios, with their min–max.
 * - CPU time per call of this process (the client: validation, keys, ioredis) and of the
 *   redis-server (from `INFO cpu`: every client of that server, so only meaningful on a server
 *   nothing else uses much), medians over the rounds: unlike calls/s, these barely move with
 *   the machine's load, and they say which side limits.
 * - latency of one reserve with nothing else in flight (p50 / p99).
 *
 * Run: `tsx --conditions=dev-source src/redis.bench.ts` (BENCH_CALLS per run, BENCH_ROUNDS,
 * BENCH_LATENCY_CALLS; BENCH_AUTO_PIPELINING=1 turns on ioredis `enableAutoPipelining` for
 * the one client, so for the ceiling and the subject alike).
 */
import { randomUUID } from "node:crypto";
import { failFastRedisOptions, RedisQuota } from "@latch/redis";
import { Redis } from "ioredis";
import { pct, reportRow } from "./report.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const CALLS = Number(process.env.BENCH_CALLS ?? 20_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const AUTO_PIPELINING = process.env.BENCH_AUTO_PIPELINING === "1";
const TARGET = 0.7;
const LATENCY_CALLS = Number(process.env.BENCH_LATENCY_CALLS ?? 5_000);
const IN_FLIGHT = 100;
const prefix = `latch-bench-${randomUUID().slice(0, 8)}`;

/** Runs `call(i)` for i in [0, total) with `IN_FLIGHT` calls outstanding; returns calls/s. */
async function throughput(total: number, call: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < total) await call(next++);
    }),
  );
  return total / (Number(process.hrtime.bigint() - start) / 1e9);
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}

async function deleteByPrefix(client: Redis): Promise<void> {
  let cursor = "0";
  do {
    const [nextCursor, keys] = await client.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1_000);
    cursor = nextCursor;
    if (keys.length > 0) await client.unlink(...keys);
  } while (cursor !== "0");
}

/** The redis-server's CPU time so far (user + system, µs), from `INFO cpu`. */
async function serverCpuMicros(admin: Redis): Promise<number> {
  const info = await admin.info("cpu");
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(info)?.[1] ?? Number.NaN);
  return (field("used_cpu_user") + field("used_cpu_sys")) * 1e6;
}

interface Phase {
  /** calls/s */
  rate: number;
  /** This process's CPU time per call (µs). */
  clientUs: number;
  /** The redis-server's CPU time per call (µs). */
  serverUs: number;
}

/** {@link throughput}, with this process's and the server's CPU time per call. */
async function phase(admin: Redis, total: number, call: (i: number) => Promise<unknown>): Promise<Phase> {
  const server = await serverCpuMicros(admin);
  const client = process.cpuUsage();
  const rate = await throughput(total, call);
  const { user, system } = process.cpuUsage(client);
  const serverUs = ((await serverCpuMicros(admin)) - server) / total;
  return { rate, clientUs: (user + system) / total, serverUs };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

async function main(): Promise<void> {
  const client = new Redis(REDIS_URL, {
    ...failFastRedisOptions(5_000),
    lazyConnect: true,
    enableAutoPipelining: AUTO_PIPELINING,
  });
  await client.connect();
  // INFO goes through a connection of its own, so it never queues among the measured calls.
  const admin = new Redis(REDIS_URL, { ...failFastRedisOptions(5_000), lazyConnect: true });
  await admin.connect();
  client.defineCommand("latchBenchTrivial", { numberOfKeys: 1, lua: "return 1" });
  const trivialScript = (client as unknown as Record<string, ((key: string) => Promise<unknown>) | undefined>)
    .latchBenchTrivial;
  if (trivialScript === undefined) throw new Error("defineCommand did not define latchBenchTrivial");
  const trivial = (key: string) => trivialScript.call(client, key);

  const quota = new RedisQuota(client, { keyPrefix: prefix, timeoutMs: 10_000 });
  // Accounts spread like real tenants; enough room that every reserve is granted.
  const accounts = Array.from({ length: 100 }, (_, i) => `tenant-${i}`);
  for (const account of accounts) await quota.setLimit(account, Number.MAX_SAFE_INTEGER);
  const account = (i: number) => accounts[i % accounts.length] as string;
  const hold = (round: number, i: number) => `${round}-${i}`;
  const trivialCall = (i: number) => trivial(`${prefix}:trivial:${i % 100}`);

  try {
    // Warm-up: load the scripts, open the connection's buffers, let the JIT settle.
    await throughput(5_000, trivialCall);
    await throughput(5_000, (i) =>
      quota.reserve({ holdId: hold(0, i), account: account(i), amount: 3, ttlMs: 60_000 }),
    );
    await throughput(5_000, (i) => quota.commit(hold(0, i), 2));

    // Each round brackets the subject between two runs of the ceiling and compares it with
    // their mean, so load that rises or falls during the round hits both alike.
    const rounds: Array<{ trivial: Phase; reserve: Phase; commit: Phase }> = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const before = await phase(admin, CALLS, trivialCall);
      const reserve = await phase(admin, CALLS, (i) =>
        quota.reserve({ holdId: hold(round, i), account: account(i), amount: 3, ttlMs: 60_000 }),
      );
      const commit = await phase(admin, CALLS, (i) => quota.commit(hold(round, i), 2));
      const after = await phase(admin, CALLS, trivialCall);
      rounds.push({
        trivial: {
          rate: (before.rate + after.rate) / 2,
          clientUs: (before.clientUs + after.clientUs) / 2,
          serverUs: (before.serverUs + after.serverUs) / 2,
        },
        reserve,
        commit,
      });
    }
    const med = (key: "trivial" | "reserve" | "commit", field: keyof Phase) =>
      median(rounds.map((r) => r[key][field]));
    const ratios = (key: "reserve" | "commit") => rounds.map((r) => r[key].rate / r.trivial.rate);

    const latency = new Float64Array(LATENCY_CALLS);
    for (let i = 0; i < LATENCY_CALLS; i++) {
      const start = process.hrtime.bigint();
      await quota.reserve({ holdId: hold(ROUNDS + 1, i), account: account(i), amount: 1, ttlMs: 60_000 });
      latency[i] = Number(process.hrtime.bigint() - start) / 1e3;
    }
    latency.sort();

    const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
    const us = (n: number) => n.toFixed(1);
    const pipelining = AUTO_PIPELINING ? "auto-pipelining on" : "auto-pipelining off";
    console.log(
      `\n@latch/redis on ${REDIS_URL}, ${fmt(CALLS)} calls per run, ${IN_FLIGHT} in flight, one client ` +
        `(${pipelining}, the same for the ceiling and the subject), ${ROUNDS} interleaved rounds ` +
        "(trivial, reserve, commit, trivial); medians, ratio min–max over the rounds",
    );
    console.log(
      "                              calls/s   of the ceiling        CPU µs/call: this process / redis-server",
    );
    console.log(
      `  trivial EVALSHA (ceiling) ${fmt(med("trivial", "rate")).padStart(9)}   ${"".padEnd(20)} ` +
        `${us(med("trivial", "clientUs")).padStart(5)} / ${us(med("trivial", "serverUs"))}`,
    );
    for (const key of ["reserve", "commit"] as const) {
      const r = ratios(key);
      const span = `${pct(median(r))} (${pct(Math.min(...r))}–${pct(Math.max(...r))})`;
      console.log(
        `  RedisQuota.${key.padEnd(14)} ${fmt(med(key, "rate")).padStart(9)}   ${span.padEnd(20)} ` +
          `${us(med(key, "clientUs")).padStart(5)} / ${us(med(key, "serverUs"))}   (target ≥ ${pct(TARGET)})`,
      );
    }
    console.log(
      `  one reserve, nothing else in flight: p50 ${percentile(latency, 0.5).toFixed(0)} µs, ` +
        `p99 ${percentile(latency, 0.99).toFixed(0)} µs (${fmt(LATENCY_CALLS)} calls)`,
    );
    for (const key of ["reserve", "commit"] as const) {
      const r = ratios(key);
      reportRow({
        area: "redis",
        metric: `RedisQuota.${key} calls/s, ${IN_FLIGHT} in flight, median of ${ROUNDS} interleaved rounds (${pipelining})`,
        latch: fmt(med(key, "rate")),
        against: "trivial EVALSHA, same client",
        againstValue: fmt(med("trivial", "rate")),
        ratio: `${pct(median(r))} (${pct(Math.min(...r))}–${pct(Math.max(...r))})`,
        target: `≥ ${pct(TARGET)}`,
        met: median(r) >= TARGET,
      });
      reportRow({
        area: "redis",
        metric: `CPU µs per ${key}: this process / redis-server`,
        latch: `${us(med(key, "clientUs"))} / ${us(med(key, "serverUs"))}`,
        against: "trivial EVALSHA",
        againstValue: `${us(med("trivial", "clientUs"))} / ${us(med("trivial", "serverUs"))}`,
        ratio: "—",
      });
    }
    reportRow({
      area: "redis",
      metric: "one reserve, nothing else in flight: p50 / p99",
      latch: `${percentile(latency, 0.5).toFixed(0)} / ${percentile(latency, 0.99).toFixed(0)} µs`,
      against: "—",
      againstValue: "—",
      ratio: "—",
    });
  } finally {
    await deleteByPrefix(client);
    await client.quit();
    await admin.quit();
  }
}

await main();
