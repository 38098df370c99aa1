/**
 * `latch.record()` on Postgres with 64 concurrent callers (issue 20): records/s and p50/p99 per
 * call, with the store's group commit (the observation, its rated record and the priced mark in
 * one transaction shared by concurrent calls) against one single-row INSERT transaction per call
 * (one observation row, a named prepared INSERT in its own implicit transaction: one round trip,
 * the least a per-call write can do), on the same pool, in the same run. For context also the
 * same INSERT inside `BEGIN … COMMIT` (three round trips, as an ORM's transaction sends it).
 * Each line shows the CPU per record of this process and of the pool's server backends (from
 * /proc), so a figure bent by other load on the machine can be told apart from the code's cost. For context it also runs the writer without group commit (one
 * transaction per call) and the step-by-step path (append, lookup, put, mark: four transactions).
 * A fresh schema, dropped at the end.
 *
 * Run: `BENCH_ONLY=record-postgres pnpm bench` (BENCH_CALLS, default 12,800; BENCH_POOL, default 20;
 * BENCH_GC_WAIT: `groupCommit.maxWaitMs`, default the store's).
 */

import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createLatch,
  InMemoryPricingSource,
  type PriceSnapshot,
  parseObservation,
  type UsageObservation,
} from "@latch/core";
import { canonicalJson, hashCanonicalJson, type ObservationStore } from "@latch/core/adapter";
import { migrate, PostgresObservationStore, PostgresRatedRecordStore } from "@latch/postgres";
import pg from "pg";
import { fmt, reportRow } from "./report.js";
import { makeUsages, PROVIDER, SNAPSHOTS } from "./workload.js";

const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const CALLERS = 64;
const CALLS = Number(process.env.BENCH_CALLS ?? 12_800);
const POOL = Number(process.env.BENCH_POOL ?? 20);
const schema = `latch_bench_rec_${randomBytes(4).toString("hex")}`;
const snapshots = Object.values(SNAPSHOTS) as unknown as PriceSnapshot[];

function observations(n: number, label: string): UsageObservation[] {
  return makeUsages(n, 13).map((u, i) =>
    parseObservation({
      eventId: `${label}-${i}:0:${PROVIDER[u.model]}`,
      subject: { tenantId: `tenant-${i % 50}` },
      meters: u.meters,
      model: { billableModel: u.model },
      provider: { providerId: PROVIDER[u.model] as string },
      source: { kind: "provider_reported" },
      outcome: { kind: "success" },
      timing: { startedAt: "2026-03-01T12:00:00Z", completedAt: "2026-03-01T12:00:01Z" },
    }),
  );
}

interface Run {
  perSecond: number;
  p50: number;
  p99: number;
  /** CPU per record in µs: this process, and the pool's server backends (0 when /proc is not readable). */
  nodeCpu: number;
  serverCpu: number;
}

/** The server backends of the pool's connections (a local server: their /proc entries). */
let backends: number[] = [];
async function findBackends(pool: pg.Pool): Promise<void> {
  const clients = await Promise.all(Array.from({ length: POOL }, () => pool.connect()));
  try {
    backends = await Promise.all(
      clients.map(async (c) => (await c.query("SELECT pg_backend_pid() AS pid")).rows[0].pid as number),
    );
  } finally {
    for (const c of clients) c.release();
  }
}

/** CPU time of the backends in µs (utime + stime, clock ticks of 10 ms). */
function serverMicros(): number {
  let ticks = 0;
  for (const pid of backends) {
    try {
      const fields = (readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1] ?? "").split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // not a local server, or not readable: reported as 0
    }
  }
  return ticks * 10_000;
}

/** `CALLERS` callers, each awaiting its calls one after another; latency per call in ms. */
async function concurrently(
  items: readonly UsageObservation[],
  call: (obs: UsageObservation) => Promise<void>,
): Promise<Run> {
  const latencies = new Float64Array(items.length);
  let next = 0;
  const cpu0 = process.cpuUsage();
  const server0 = serverMicros();
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CALLERS }, async () => {
      for (let i = next++; i < items.length; i = next++) {
        const start = process.hrtime.bigint();
        await call(items[i] as UsageObservation);
        latencies[i] = Number(process.hrtime.bigint() - start) / 1e6;
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const serverCpu = (serverMicros() - server0) / items.length;
  latencies.sort();
  const at = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] as number;
  return {
    perSecond: items.length / seconds,
    p50: at(0.5),
    p99: at(0.99),
    nodeCpu: (cpu.user + cpu.system) / items.length,
    serverCpu,
  };
}

async function latchRun(pool: pg.Pool, label: string, observationsStore: ObservationStore): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), "latch-bench-pg-"));
  const latch = createLatch({
    observations: observationsStore,
    rated: new PostgresRatedRecordStore(pool, { schema }),
    pricing: new InMemoryPricingSource(snapshots),
    spoolDir: dir,
    onWarning: (w) => {
      throw new Error(`unexpected warning ${w.code}: ${w.message}`);
    },
  });
  await latch.ready();
  try {
    return await concurrently(observations(CALLS, label), async (obs) => {
      const result = await latch.record(obs);
      if (result.status !== "rated") throw new Error(`${obs.eventId} was ${result.status}`);
    });
  } finally {
    await latch.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The same observations (id, hash, payload) into the observations table, one transaction per
 * call: one named prepared INSERT, its own implicit transaction (one round trip).
 */
async function singleRowInserts(pool: pg.Pool): Promise<Run> {
  const text = `INSERT INTO "${schema}".observations (event_id, hash, payload) VALUES ($1, $2, $3::jsonb)`;
  return concurrently(observations(CALLS, "raw"), async (obs) => {
    const canonical = canonicalJson(obs);
    await pool.query({
      name: "bench_single_row",
      text,
      values: [obs.eventId, hashCanonicalJson(canonical), canonical],
    });
  });
}

/** The same, inside `BEGIN … COMMIT` (three round trips per call). */
async function singleRowTransactions(pool: pg.Pool): Promise<Run> {
  const table = `"${schema}".observations`;
  return concurrently(observations(CALLS, "tx"), async (obs) => {
    const canonical = canonicalJson(obs);
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      await client.query(`INSERT INTO ${table} (event_id, hash, payload) VALUES ($1, $2, $3::jsonb)`, [
        obs.eventId,
        hashCanonicalJson(canonical),
        canonical,
      ]);
      await client.query("COMMIT");
    } finally {
      client.release();
    }
  });
}

/** Hides the writer capability: the facade records step by step, as before issue 20. */
function stepByStep(store: PostgresObservationStore): ObservationStore {
  return {
    append: (o, s) => store.append(o, s),
    appendMany: (o, s) => store.appendMany(o, s),
    get: (id, s) => store.get(id, s),
    listUnpriced: (o, s) => store.listUnpriced(o, s),
    markPriced: (ids, s) => store.markPriced(ids, s),
  };
}

const ms = (n: number) => `${n.toFixed(2)} ms`;

async function main() {
  // Idle clients stay open, so the backends measured at the start are the ones that work.
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: POOL, idleTimeoutMillis: 0 });
  try {
    await migrate(pool, { schema });
    await findBackends(pool);
    const groupCommit =
      process.env.BENCH_GC_WAIT === undefined
        ? {}
        : { groupCommit: { maxWaitMs: Number(process.env.BENCH_GC_WAIT) } };
    const grouped = await latchRun(
      pool,
      "gc",
      new PostgresObservationStore(pool, { schema, ...groupCommit }),
    );
    const raw = await singleRowInserts(pool);
    const rawTx = await singleRowTransactions(pool);
    const perCall = await latchRun(
      pool,
      "one",
      new PostgresObservationStore(pool, { schema, groupCommit: false }),
    );
    const steps = await latchRun(pool, "steps", stepByStep(new PostgresObservationStore(pool, { schema })));
    console.log(
      `\nlatch.record() on Postgres, ${CALLERS} concurrent callers, ${fmt(CALLS)} calls each run, pool of ${POOL}`,
    );
    const line = (label: string, r: Run) =>
      console.log(
        `  ${label.padEnd(56)} ${fmt(r.perSecond).padStart(7)}/s  p50 ${ms(r.p50)}  p99 ${ms(r.p99)}  CPU/record: Node ${r.nodeCpu.toFixed(0)} µs, server ${r.serverCpu.toFixed(0)} µs`,
      );
    line("record(), group commit (default)", grouped);
    line("single-row INSERT, one transaction per call (raw)", raw);
    line("single-row INSERT in BEGIN … COMMIT per call", rawTx);
    line("record(), one transaction per call (groupCommit: false)", perCall);
    line("record(), step by step (4 transactions, before)", steps);
    const ratio = grouped.perSecond / raw.perSecond;
    reportRow({
      area: "postgres",
      metric: `latch.record() records/s, ${CALLERS} concurrent callers, group commit (p50 / p99 per call)`,
      latch: `${fmt(grouped.perSecond)} (${ms(grouped.p50)} / ${ms(grouped.p99)})`,
      against: "single-row INSERT transaction per call",
      againstValue: `${fmt(raw.perSecond)} (${ms(raw.p50)} / ${ms(raw.p99)})`,
      ratio: `${ratio.toFixed(1)}×`,
      target: "≥ 5×",
      met: ratio >= 5,
    });
    const cpu = (r: Run) => r.nodeCpu + r.serverCpu;
    const cpuText = (r: Run) =>
      `${cpu(r).toFixed(0)} µs (Node ${r.nodeCpu.toFixed(0)} + server ${r.serverCpu.toFixed(0)})`;
    reportRow({
      area: "postgres",
      metric: "CPU per record, group commit (this process + the pool's server backends)",
      latch: cpuText(grouped),
      against: "single-row INSERT transaction per call",
      againstValue: cpuText(raw),
      ratio: `${(cpu(raw) / cpu(grouped)).toFixed(1)}×`,
    });
    reportRow({
      area: "postgres",
      metric: `latch.record() records/s, ${CALLERS} concurrent callers, no group commit / step by step`,
      latch: `${fmt(perCall.perSecond)} (${ms(perCall.p50)} / ${ms(perCall.p99)})`,
      against: "step by step (4 transactions per call)",
      againstValue: `${fmt(steps.perSecond)} (${ms(steps.p50)} / ${ms(steps.p99)})`,
      ratio: `${(perCall.perSecond / steps.perSecond).toFixed(1)}×`,
    });
  } finally {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool.end();
  }
}

await main();
