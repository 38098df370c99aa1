/**
 * `@latch/redis` on the server at REDIS_URL, figures measured in one run through one client:
 *
 * - `RedisQuota.reserve` and `RedisQuota.commit` calls/s with 100 calls in flight, beside a
 *   trivial EVALSHA (`return 1`, one key) at the same concurrency: the raw ceiling of a script
 *   call through this client. On this standalone server a reserve is one script call with
 *   three keys (the account's hash and sorted set, and the holdId's one record key, which also
 *   names the account; on a Cluster it is a locator SET plus the reserve script, sent
 *   together); a commit is the commit script (plus a read of the record when another process
 *   made the hold; here the same object commits, so it knows the account).
 * - latency of one reserve with nothing else in flight (p50 / p99).
 *
 * Run: `tsx --conditions=dev-source src/redis.bench.ts` (BENCH_CALLS, BENCH_LATENCY_CALLS).
 */
import { randomUUID } from "node:crypto";
import { failFastRedisOptions, RedisQuota } from "@latch/redis";
import { Redis } from "ioredis";
import { pct, reportRow } from "./report.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const CALLS = Number(process.env.BENCH_CALLS ?? 50_000);
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

async function main(): Promise<void> {
  const client = new Redis(REDIS_URL, {
    ...failFastRedisOptions(5_000),
    lazyConnect: true,
    enableAutoPipelining: process.env.BENCH_AUTO_PIPELINING === "1",
  });
  await client.connect();
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

  try {
    // Warm-up: load the scripts, open the connection's buffers, let the JIT settle.
    await throughput(5_000, (i) => trivial(`${prefix}:trivial:${i % 100}`));
    await throughput(5_000, (i) =>
      quota.reserve({ holdId: hold(0, i), account: account(i), amount: 3, ttlMs: 60_000 }),
    );
    await throughput(5_000, (i) => quota.commit(hold(0, i), 2));

    const results: Array<{ trivial: number; reserve: number; commit: number }> = [];
    for (let round = 1; round <= 3; round++) {
      const trivialRate = await throughput(CALLS, (i) => trivial(`${prefix}:trivial:${i % 100}`));
      const reserveRate = await throughput(CALLS, (i) =>
        quota.reserve({ holdId: hold(round, i), account: account(i), amount: 3, ttlMs: 60_000 }),
      );
      const commitRate = await throughput(CALLS, (i) => quota.commit(hold(round, i), 2));
      results.push({ trivial: trivialRate, reserve: reserveRate, commit: commitRate });
    }
    const best = (key: "trivial" | "reserve" | "commit") => Math.max(...results.map((r) => r[key]));

    const latency = new Float64Array(LATENCY_CALLS);
    for (let i = 0; i < LATENCY_CALLS; i++) {
      const start = process.hrtime.bigint();
      await quota.reserve({ holdId: hold(9, i), account: account(i), amount: 1, ttlMs: 60_000 });
      latency[i] = Number(process.hrtime.bigint() - start) / 1e3;
    }
    latency.sort();

    const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
    console.log(
      `\n@latch/redis on ${REDIS_URL}, ${fmt(CALLS)} calls per run, ${IN_FLIGHT} in flight, best of 3`,
    );
    console.log(`  trivial EVALSHA (ceiling)   ${fmt(best("trivial")).padStart(9)} calls/s`);
    console.log(
      `  RedisQuota.reserve          ${fmt(best("reserve")).padStart(9)} calls/s  ` +
        `(${((best("reserve") / best("trivial")) * 100).toFixed(0)}% of the ceiling; target ≥ 60%)`,
    );
    console.log(
      `  RedisQuota.commit           ${fmt(best("commit")).padStart(9)} calls/s  ` +
        `(${((best("commit") / best("trivial")) * 100).toFixed(0)}% of the ceiling; target ≥ 60%)`,
    );
    console.log(
      `  one reserve, nothing else in flight: p50 ${percentile(latency, 0.5).toFixed(0)} µs, ` +
        `p99 ${percentile(latency, 0.99).toFixed(0)} µs (${fmt(LATENCY_CALLS)} calls)`,
    );
    const ratio = (key: "reserve" | "commit") => best(key) / best("trivial");
    for (const key of ["reserve", "commit"] as const) {
      reportRow({
        area: "redis",
        metric: `RedisQuota.${key} calls/s, ${IN_FLIGHT} in flight`,
        latch: fmt(best(key)),
        against: "trivial EVALSHA, same client",
        againstValue: fmt(best("trivial")),
        ratio: pct(ratio(key)),
        target: "≥ 60%",
        met: ratio(key) >= 0.6,
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
  }
}

await main();
