/**
 * `latch.record()` on Postgres with 64 concurrent callers (issue 20): records/s and p50/p99 per
 * call, with the store's group commit (the observation, its rated record and the priced mark in
 * one transaction shared by concurrent calls) against one single-row INSERT transaction per call
 * (`BEGIN; INSERT one observation row; COMMIT`, the least a per-call write can do), on the same
 * pool, in the same run. For context it also runs the writer without group commit (one
 * transaction per call) and the step-by-step path (append, lookup, put, mark: four transactions).
 * A fresh schema, dropped at the end.
 *
 * Run: `BENCH_ONLY=record-postgres pnpm bench` (BENCH_CALLS, default 12,800; BENCH_POOL, default 20;
 * BENCH_GC_WAIT: `groupCommit.maxWaitMs`, default the store's).
 */

import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
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
}

/** `CALLERS` callers, each awaiting its calls one after another; latency per call in ms. */
async function concurrently(
  items: readonly UsageObservation[],
  call: (obs: UsageObservation) => Promise<void>,
): Promise<Run> {
  const latencies = new Float64Array(items.length);
  let next = 0;
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
  latencies.sort();
  const at = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] as number;
  return { perSecond: items.length / seconds, p50: at(0.5), p99: at(0.99) };
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

/** The same observations (id, hash, payload) into the observations table, one transaction per call. */
async function singleRowInserts(pool: pg.Pool): Promise<Run> {
  const table = `"${schema}".observations`;
  return concurrently(observations(CALLS, "raw"), async (obs) => {
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
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: POOL });
  try {
    await migrate(pool, { schema });
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
        `  ${label.padEnd(52)} ${fmt(r.perSecond).padStart(7)}/s  p50 ${ms(r.p50)}  p99 ${ms(r.p99)}`,
      );
    line("record(), group commit (default)", grouped);
    line("single-row INSERT, one transaction per call (raw)", raw);
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
