/**
 * The credit ledger at scale, figures measured in one run on memory, PGlite and PostgreSQL:
 * on a ledger with 0, 10k, 100k (and on memory 1M) prior usage events, the median of
 * `recordUsage`, an enforced burn, `reserve`, `balance` (now) and the retry of an old event
 * (what `reconcileCredits` does per rated-record version), each beside the same operation on the
 * empty ledger of the same backend (the ratio); 8 concurrent burns on one ledger (burns/s beside
 * the empty ledger's); the longest synchronous stretch on the event loop while the operations
 * ran (`perf_hooks.monitorEventLoopDelay`, 1 ms resolution); and the first write after the
 * history was loaded without snapshots (what a ledger pays once after migration 0013).
 * `reconcileCredits` itself, through `createLatch` on the embedded default: ms per version at
 * two sizes (linear: the same per version).
 *
 * Prior events are recorded through `recordUsage` on memory and inserted by SQL on PGlite and
 * PostgreSQL (then one write replays them all and takes the snapshots). Each backend runs in a
 * fresh database or schema, dropped at the end.
 *
 * Run: `tsx --conditions=dev-source src/credits.bench.ts` (BENCH_CREDIT_EVENTS, default
 * "10000,100000"; BENCH_CREDIT_MEMORY_EXTRA, default "1000000"; BENCH_CREDIT_BACKENDS, default
 * "memory,pglite,postgres"; BENCH_CREDIT_OPS, default 40; BENCH_CREDIT_RECONCILE, default
 * "10000,100000"; best of two runs each).
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setImmediate as yieldToLoop } from "node:timers/promises";
import { PGlite, types } from "@electric-sql/pglite";
import {
  createLatch,
  InMemoryPricingSource,
  type LatchConfig,
  MemoryCreditLedger,
  MemoryObservationStore,
  MemoryRatedRecordStore,
  type UsageObservationInput,
} from "@latch/core";
import { type CreditLedger, parseCreditUsage } from "@latch/core/adapter";
import { fromPglite, migrate, PostgresCreditLedger, type Queryable } from "@latch/postgres";
import pg from "pg";
import { fmt, reportRow } from "./report.js";

const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const list = (v: string | undefined, fallback: string) =>
  (v ?? fallback)
    .split(",")
    .filter(Boolean)
    .map((x) => x.trim());
const SIZES = list(process.env.BENCH_CREDIT_EVENTS, "10000,100000").map(Number);
const MEMORY_EXTRA = list(process.env.BENCH_CREDIT_MEMORY_EXTRA, "1000000").map(Number);
const BACKENDS = list(process.env.BENCH_CREDIT_BACKENDS, "memory,pglite,postgres");
const OPS = Number(process.env.BENCH_CREDIT_OPS ?? 40);
const RECONCILE = list(process.env.BENCH_CREDIT_RECONCILE, "10000,100000").map(Number);

const START = Date.parse("2025-01-01T00:00:00Z");
/** Prior event i is at START + i seconds; measured events come after all of them. */
const at = (i: number) => new Date(START + i * 1_000).toISOString();
const FEATURE = "tokens";

interface Backend {
  name: string;
  credits: CreditLedger;
  /** Stores `n` prior usage events `seed-<i>` (amount 1, at(i)) on a fresh ledger. */
  seed(ledgerId: string, n: number): Promise<void>;
  /** A ledger for 8 concurrent burns (Postgres: on a pool of 8). */
  concurrent: CreditLedger;
  close(): Promise<void>;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};
const ms = (n: number) =>
  n < 1 ? `${n.toFixed(3)} ms` : n < 10 ? `${n.toFixed(2)} ms` : `${n.toFixed(0)} ms`;

async function newLedger(credits: CreditLedger, ledgerId: string): Promise<void> {
  await credits.createLedger({ ledgerId, subject: { tenantId: ledgerId } });
  await credits.grant({
    grantId: `${ledgerId}:g`,
    ledgerId,
    featureId: FEATURE,
    amount: "1000000000000",
    effectiveAt: "2024-12-31T00:00:00Z",
  });
}

/**
 * The longest stretch between two turns of the event loop (a chain of 1 ms timers), by wall
 * clock and by the process's CPU time: on a machine shared with other processes the wall clock
 * also counts time the OS gave them, the CPU time only what this process ran (its own GC and
 * worker threads included, so it is an upper bound of the main thread's part).
 */
function stretchMeter(): { stop(): { wallMs: number; cpuMs: number } } {
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1_000;
  };
  let lastWall = performance.now();
  let lastCpu = cpu();
  let wallMs = 0;
  let cpuMs = 0;
  const tick = () => {
    const w = performance.now();
    const c = cpu();
    wallMs = Math.max(wallMs, w - lastWall);
    cpuMs = Math.max(cpuMs, c - lastCpu);
    lastWall = w;
    lastCpu = c;
    timer = setTimeout(tick, 1);
  };
  let timer = setTimeout(tick, 1);
  return {
    stop() {
      clearTimeout(timer);
      tick();
      clearTimeout(timer);
      return { wallMs, cpuMs };
    },
  };
}

interface Figures {
  recordUsage: number;
  enforced: number;
  reserve: number;
  balance: number;
  retry: number;
  concurrentPerSecond: number;
  stretchMs: number;
  /** The most process CPU time between two turns of the loop during those operations. */
  stretchCpuMs: number;
  firstWriteMs: number;
  /** The longest event-loop stretch during that first write. */
  firstStretchMs: number;
  firstStretchCpuMs: number;
  seedSeconds: number;
}

async function measure(b: Backend, n: number): Promise<Figures> {
  const ledgerId = `bench-${b.name}-${n}-${randomBytes(3).toString("hex")}`;
  await newLedger(b.credits, ledgerId);
  const seedStart = performance.now();
  await b.seed(ledgerId, n);
  const seedSeconds = (performance.now() - seedStart) / 1_000;
  let next = n;
  const use = (enforce: boolean) =>
    b.credits.recordUsage({
      ledgerId,
      featureId: FEATURE,
      eventId: `m-${next}`,
      amount: "1",
      at: at(next++),
      enforce,
    });
  // The first write after the history: on SQL-seeded ledgers it replays everything once.
  const firstLoop = monitorEventLoopDelay({ resolution: 1 });
  firstLoop.enable();
  const firstMeter = stretchMeter();
  const first = performance.now();
  await use(false);
  const firstWriteMs = performance.now() - first;
  firstLoop.disable();
  const firstStretchMs = firstLoop.max / 1e6;
  const firstStretchCpuMs = firstMeter.stop().cpuMs;
  for (let i = 0; i < 5; i++) await use(false); // warm-up

  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const meter = stretchMeter();
  const timed = async (op: (i: number) => Promise<unknown>) => {
    const times: number[] = [];
    for (let i = 0; i < OPS; i++) {
      const t0 = performance.now();
      await op(i);
      times.push(performance.now() - t0);
      await yieldToLoop(); // lets the loop-delay timer see each operation as its own stretch
    }
    return median(times);
  };
  const recordUsage = await timed(() => use(false));
  const enforced = await timed(() => use(true));
  const reserve = await timed(async (i) => {
    const holdId = `${ledgerId}:h${i}`;
    await b.credits.reserve({ holdId, ledgerId, featureId: FEATURE, amount: "1", ttlMs: 60_000 });
    await b.credits.voidHold(holdId);
  });
  const now = new Date().toISOString();
  const balance = await timed(() => b.credits.balance(ledgerId, now));
  const mid = Math.floor(n / 2);
  const retry = await timed(() =>
    n === 0
      ? use(false)
      : b.credits.recordUsage({
          ledgerId,
          featureId: FEATURE,
          eventId: `seed-${mid}`,
          amount: "1",
          at: at(mid),
        }),
  );
  loop.disable();
  const stretchMs = loop.max / 1e6;
  const stretchCpuMs = meter.stop().cpuMs;

  // 8 concurrent burns on one ledger, OPS each.
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 8 }, async (_, w) => {
      for (let i = 0; i < OPS / 2; i++) {
        const k = next++;
        await b.concurrent.recordUsage({
          ledgerId,
          featureId: FEATURE,
          eventId: `c-${w}-${k}`,
          amount: "1",
          at: at(k),
          enforce: true,
        });
      }
    }),
  );
  const concurrentPerSecond = (8 * (OPS / 2)) / ((performance.now() - t0) / 1_000);
  return {
    recordUsage,
    enforced,
    reserve,
    balance,
    retry,
    concurrentPerSecond,
    stretchMs,
    stretchCpuMs,
    firstWriteMs,
    firstStretchMs,
    firstStretchCpuMs,
    seedSeconds,
  };
}

async function memoryBackend(): Promise<Backend> {
  const credits = new MemoryCreditLedger();
  await credits.createFeature({
    featureId: FEATURE,
    measure: { kind: "quantity", meters: ["input_tokens"] },
  });
  return {
    name: "memory",
    credits,
    concurrent: credits,
    async seed(ledgerId, n) {
      for (let i = 0; i < n; i++) {
        await credits.recordUsage({
          ledgerId,
          featureId: FEATURE,
          eventId: `seed-${i}`,
          amount: "1",
          at: at(i),
        });
      }
    },
    close: async () => undefined,
  };
}

/** Inserts the prior events by SQL (the retried one with its real hash). */
async function sqlSeed(db: Queryable, schema: string, ledgerId: string, n: number): Promise<void> {
  if (n === 0) return;
  const mid = Math.floor(n / 2);
  const { hash } = parseCreditUsage({
    ledgerId,
    featureId: FEATURE,
    eventId: `seed-${mid}`,
    amount: "1",
    at: at(mid),
  });
  const batch = 50_000;
  for (let from = 0; from < n; from += batch) {
    const to = Math.min(n, from + batch);
    await db.query(
      `INSERT INTO "${schema}".credit_usage (ledger_id, feature_id, event_id, at_ms, amount, hash, version)
       SELECT $1, $2, 'seed-' || i, $3::bigint + i * 1000, 1, CASE WHEN i = $6 THEN $7 ELSE 'seed' END, 1
       FROM generate_series($4::int, $5::int) AS i`,
      [ledgerId, FEATURE, String(START), from, to - 1, mid, hash],
    );
  }
}

async function pgliteBackend(): Promise<Backend> {
  const schema = "latch";
  const pglite = new PGlite({ parsers: { [types.INT8]: (x: string) => x } });
  const db = fromPglite(pglite);
  await migrate(db, { schema });
  const credits = new PostgresCreditLedger(db, { schema });
  await credits.ready(); // what latch.ready() does at start-up
  await credits.createFeature({
    featureId: FEATURE,
    measure: { kind: "quantity", meters: ["input_tokens"] },
  });
  return {
    name: "pglite",
    credits,
    concurrent: credits,
    seed: (ledgerId, n) => sqlSeed(db, schema, ledgerId, n),
    close: () => pglite.close(),
  };
}

async function postgresBackend(): Promise<Backend> {
  const schema = `latch_bench_${randomBytes(4).toString("hex")}`;
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 10 });
  await migrate(pool, { schema });
  const credits = new PostgresCreditLedger(pool, { schema });
  await credits.ready();
  await credits.createFeature({
    featureId: FEATURE,
    measure: { kind: "quantity", meters: ["input_tokens"] },
  });
  return {
    name: "postgres",
    credits,
    concurrent: credits,
    seed: (ledgerId, n) => sqlSeed(pool, schema, ledgerId, n),
    async close() {
      await pool.query(`DROP SCHEMA "${schema}" CASCADE`);
      await pool.end();
    },
  };
}

const OPERATIONS = [
  ["recordUsage", "recordUsage"],
  ["enforced", "enforced burn (recordUsage, enforce)"],
  ["reserve", "reserve + voidHold"],
  ["balance", "balance (now)"],
  ["retry", "retry of an old event (reconcile's cost per version)"],
] as const;

async function ledgerRows(make: () => Promise<Backend>, sizes: number[]): Promise<void> {
  const b = await make();
  try {
    // The first write after migration (and ready()) is the warm-up's first write.
    const warm = await measure(b, 0); // warm-up: JIT, connections, plans
    console.log(
      `  ${b.name} first write after migration: ${ms(warm.firstWriteMs)}, longest stretch ${ms(warm.firstStretchMs)} (CPU ${ms(warm.firstStretchCpuMs)})`,
    );
    reportRow({
      area: `credits (${b.name})`,
      metric: "first write after migration and ready(): longest synchronous stretch (wall / process CPU)",
      latch: `${ms(warm.firstStretchMs)} / ${ms(warm.firstStretchCpuMs)}`,
      against: "the same write on the next empty ledger",
      againstValue: "(see the empty ledger's line)",
      ratio: "—",
    });
    const empty = await measure(b, 0);
    console.log(`  ${b.name} empty: ${JSON.stringify(empty)}`);
    for (const n of sizes) {
      const f = await measure(b, n);
      console.log(`  ${b.name} ${fmt(n)} prior events: ${JSON.stringify(f)}`);
      for (const [key, label] of OPERATIONS) {
        const ratio = f[key] / empty[key];
        const row = {
          area: `credits (${b.name})`,
          metric: `${label}, median ms at ${fmt(n)} prior events`,
          latch: ms(f[key]),
          against: "the same on an empty ledger",
          againstValue: ms(empty[key]),
          ratio: `${ratio.toFixed(2)}×`,
        };
        reportRow(n >= 1_000_000 ? { ...row, target: "≤ 2×", met: ratio <= 2 } : row);
      }
      reportRow({
        area: `credits (${b.name})`,
        metric: `8 concurrent enforced burns on one ledger, burns/s at ${fmt(n)} prior events`,
        latch: fmt(f.concurrentPerSecond),
        against: "the same on an empty ledger",
        againstValue: fmt(empty.concurrentPerSecond),
        ratio: `${((f.concurrentPerSecond / empty.concurrentPerSecond) * 100).toFixed(0)}%`,
      });
      reportRow({
        area: `credits (${b.name})`,
        metric: `longest synchronous stretch on the event loop during those operations, ${fmt(n)} prior events`,
        latch: ms(f.stretchMs),
        against: "the same on an empty ledger",
        againstValue: ms(empty.stretchMs),
        ratio: empty.stretchMs > 0 ? `${(f.stretchMs / empty.stretchMs).toFixed(2)}×` : "—",
        ...(n >= 1_000_000 ? { target: "≤ 20 ms", met: f.stretchMs <= 20 } : {}),
      });
      reportRow({
        area: `credits (${b.name})`,
        metric: `most process CPU time between two turns of the event loop during those operations, ${fmt(n)} prior events`,
        latch: ms(f.stretchCpuMs),
        against: "the same on an empty ledger",
        againstValue: ms(empty.stretchCpuMs),
        ratio: empty.stretchCpuMs > 0 ? `${(f.stretchCpuMs / empty.stretchCpuMs).toFixed(2)}×` : "—",
        ...(n >= 1_000_000 ? { target: "≤ 20 ms", met: f.stretchCpuMs <= 20 } : {}),
      });
      reportRow({
        area: `credits (${b.name})`,
        metric: `first write after ${fmt(n)} events ${b.name === "memory" ? "recorded" : "inserted by SQL (no snapshot yet: replays them all once)"}`,
        latch: ms(f.firstWriteMs),
        against: "the same on an empty ledger",
        againstValue: ms(empty.firstWriteMs),
        ratio: `${(f.firstWriteMs / empty.firstWriteMs).toFixed(1)}×`,
      });
      reportRow({
        area: `credits (${b.name})`,
        metric: `longest synchronous stretch during that first write, ${fmt(n)} prior events`,
        latch: ms(f.firstStretchMs),
        against: "the same on an empty ledger",
        againstValue: ms(empty.firstStretchMs),
        ratio: empty.firstStretchMs > 0 ? `${(f.firstStretchMs / empty.firstStretchMs).toFixed(1)}×` : "—",
      });
      reportRow({
        area: `credits (${b.name})`,
        metric: `most process CPU time between two turns of the loop during that first write, ${fmt(n)} prior events`,
        latch: ms(f.firstStretchCpuMs),
        against: "the same on an empty ledger",
        againstValue: ms(empty.firstStretchCpuMs),
        ratio: "—",
      });
    }
  } finally {
    await b.close();
  }
}

/** `reconcileCredits` over `n` recorded calls whose burns are all stored: ms per version. */
async function reconcileMsPerVersion(n: number): Promise<number> {
  const credits = new MemoryCreditLedger();
  await credits.createFeature({
    featureId: FEATURE,
    measure: { kind: "quantity", meters: ["input_tokens"] },
  });
  await newLedger(credits, "acme");
  const observations = new MemoryObservationStore();
  const rated = new MemoryRatedRecordStore();
  const spoolDir = await mkdtemp(join(tmpdir(), "latch-bench-credits-"));
  const config: LatchConfig = {
    observations,
    rated,
    pricing: new InMemoryPricingSource([
      {
        snapshotId: "p1",
        model: { billableModel: "m" },
        currency: "USD",
        effectiveFrom: "2024-01-01T00:00:00Z",
        prices: { input_tokens: { perMillion: "1" } },
      },
    ]),
    credits: { ledger: credits, featureId: FEATURE },
    spoolDir,
  };
  const latch = createLatch(config);
  for (let i = 0; i < n; i++) {
    const input: UsageObservationInput = {
      eventId: `r-${i}:0:p`,
      subject: { tenantId: "acme" },
      meters: { input_tokens: 1 },
      model: { billableModel: "m" },
      source: { kind: "provider_reported" },
      outcome: { kind: "success" },
      timing: { startedAt: at(i), completedAt: at(i) },
    };
    await latch.record(input);
  }
  // A second facade over the same stores: its cursor starts at the beginning (every burn a retry).
  const again = createLatch(config);
  const t0 = performance.now();
  const { versions } = await again.reconcileCredits();
  const elapsed = performance.now() - t0;
  await rm(spoolDir, { recursive: true, force: true });
  if (versions !== n) throw new Error(`reconcileCredits walked ${versions} versions, expected ${n}`);
  return elapsed / n;
}

for (const name of BACKENDS) {
  console.log(`credit ledger on ${name}`);
  if (name === "memory") await ledgerRows(memoryBackend, [...SIZES, ...MEMORY_EXTRA]);
  else if (name === "pglite") await ledgerRows(pgliteBackend, SIZES);
  else if (name === "postgres") await ledgerRows(postgresBackend, SIZES);
}
if (RECONCILE.length === 2) {
  const [small, large] = RECONCILE as [number, number];
  await reconcileMsPerVersion(small); // warm-up
  const a = Math.min(await reconcileMsPerVersion(small), await reconcileMsPerVersion(small));
  const b = Math.min(await reconcileMsPerVersion(large), await reconcileMsPerVersion(large));
  console.log(`  reconcileCredits: ${a.toFixed(4)} ms/version at ${small}, ${b.toFixed(4)} at ${large}`);
  reportRow({
    area: "credits (memory)",
    metric: `reconcileCredits ms per version, ${fmt(large)} versions (all burned: each a retry)`,
    latch: `${b.toFixed(3)} ms`,
    against: `the same at ${fmt(small)} versions (linear ⇒ ≈ 1×)`,
    againstValue: `${a.toFixed(3)} ms`,
    ratio: `${(b / a).toFixed(2)}×`,
  });
}
