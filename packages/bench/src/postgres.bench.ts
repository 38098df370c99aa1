/**
 * `@latch/postgres` on the server at DATABASE_URL, figures measured in one run:
 * 1. `appendMany` rows/s against the raw ceiling, `COPY … FROM STDIN` (pg-copy-streams) of the
 *    same rows into a table of the same shape, and the ratio;
 * 2. reserve+commit pairs/s with 20 connections (one account per connection, and one hot account);
 * 3. `summary` latency over BENCH_RATED rated records (default 1,000,000).
 * Everything runs in a fresh schema that is dropped at the end.
 *
 * Run: `tsx --conditions=dev-source src/postgres.bench.ts` (BENCH_ROWS, BENCH_RATED, BENCH_PAIRS,
 * BENCH_BATCH).
 */
import { randomBytes } from "node:crypto";
import { pipeline } from "node:stream/promises";
import {
  DefaultRatingEngine,
  InMemoryPricingSource,
  type PriceSnapshot,
  parseObservation,
  type RatedUsageRecord,
  type UsageObservation,
} from "@latch/core";
import { observationHash } from "@latch/core/adapter";
import { migrate, PostgresObservationStore, PostgresQuota, PostgresRatedRecordStore } from "@latch/postgres";
import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { fmt, reportRow } from "./report.js";
import { makeUsages, PROVIDER, SNAPSHOTS } from "./workload.js";

const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const ROWS = Number(process.env.BENCH_ROWS ?? 100_000);
const RATED = Number(process.env.BENCH_RATED ?? 1_000_000);
const PAIRS = Number(process.env.BENCH_PAIRS ?? 20_000);
/** Observations per `appendMany`/`putMany` call (BENCH_BATCH). */
const BATCH = Number(process.env.BENCH_BATCH ?? 5_000);
const schema = `latch_bench_${randomBytes(4).toString("hex")}`;

const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;
const rate = (n: number, s: number) => `${Math.round(n / s).toLocaleString("en-US")}/s`;

function observations(n: number, label: string): UsageObservation[] {
  const usages = makeUsages(n, 11);
  const day = 86_400_000;
  const base = Date.parse("2026-03-01T00:00:00Z");
  return usages.map((u, i) => {
    const completedAt = new Date(base + Math.floor((i / n) * 28 * day)).toISOString();
    return parseObservation({
      eventId: `${label}-${i}:0:${PROVIDER[u.model]}`,
      subject: { tenantId: `tenant-${i % 50}`, projectId: `p-${i % 7}` },
      meters: u.meters,
      model: { billableModel: u.model },
      provider: { providerId: PROVIDER[u.model] as string },
      source: { kind: "provider_reported" },
      outcome: i % 20 === 0 ? { kind: "error", code: "rate_limited" } : { kind: "success" },
      timing: { startedAt: completedAt, completedAt },
    });
  });
}

/** COPY text format: a backslash is the only character JSON output needs escaped here. */
const copyField = (text: string) => text.replaceAll("\\", "\\\\");

async function appendVersusCopy(pool: pg.Pool): Promise<void> {
  const rows = observations(ROWS, "obs");
  const store = new PostgresObservationStore(pool, { schema });
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < rows.length; i += BATCH) await store.appendMany(rows.slice(i, i + BATCH));
  const appendSeconds = seconds(t0);

  // The same rows again under new ids, through the COPY path (direct, falling back to the stage).
  const staged = new PostgresObservationStore(pool, { schema, copyFrom });
  const stagedRows = observations(ROWS, "stg");
  const t2 = process.hrtime.bigint();
  for (let i = 0; i < stagedRows.length; i += BATCH) await staged.appendMany(stagedRows.slice(i, i + BATCH));
  const stagedSeconds = seconds(t2);

  // The raw ceiling: the same rows (id, hash, payload) into a table of the same shape (same
  // primary key and partial index), one COPY.
  await pool.query(`CREATE TABLE "${schema}".copy_target (LIKE "${schema}".observations INCLUDING ALL)`);
  const lines = rows.map(
    (o) => `${copyField(o.eventId)}\t${observationHash(o)}\t${copyField(JSON.stringify(o))}\n`,
  );
  const client = await pool.connect();
  const t1 = process.hrtime.bigint();
  try {
    const stream = client.query(
      copyFrom(`COPY "${schema}".copy_target (event_id, hash, payload) FROM STDIN`),
    );
    await pipeline(
      (async function* () {
        for (let i = 0; i < lines.length; i += 1_000) yield lines.slice(i, i + 1_000).join("");
      })(),
      stream,
    );
  } finally {
    client.release();
  }
  const copySeconds = seconds(t1);
  const pct = (s: number) => `${((copySeconds / s) * 100).toFixed(0)}% of COPY`;
  console.log(
    `\nappendMany vs COPY FROM STDIN, ${ROWS.toLocaleString("en-US")} observations (batches of ${BATCH})`,
  );
  console.log(
    `  COPY FROM STDIN            ${rate(ROWS, copySeconds)}  (pre-hashed rows, no idempotency check)`,
  );
  console.log(`  appendMany, one statement  ${rate(ROWS, appendSeconds)}  ${pct(appendSeconds)}`);
  console.log(
    `  appendMany, COPY path      ${rate(ROWS, stagedSeconds)}  ${pct(stagedSeconds)} (target ≥ 60%)`,
  );
  reportRow({
    area: "postgres",
    metric: `ObservationStore.appendMany rows/s (COPY path), ${fmt(ROWS)} rows`,
    latch: fmt(ROWS / stagedSeconds),
    against: "raw COPY FROM STDIN, no idempotency",
    againstValue: fmt(ROWS / copySeconds),
    ratio: `${((copySeconds / stagedSeconds) * 100).toFixed(0)}%`,
    target: "≥ 60%",
    met: copySeconds / stagedSeconds >= 0.6,
  });
}

async function reserveCommitPairs(pool: pg.Pool): Promise<void> {
  const quota = new PostgresQuota(pool, { schema });
  const workers = 20;
  const perWorker = Math.ceil(PAIRS / workers);
  for (const hot of [false, true]) {
    const accounts = Array.from({ length: workers }, (_, w) => (hot ? "hot" : `acct-${w}`));
    for (const a of new Set(accounts)) await quota.setLimit(a, Number.MAX_SAFE_INTEGER);
    const t0 = process.hrtime.bigint();
    await Promise.all(
      accounts.map(async (account, w) => {
        for (let i = 0; i < perWorker; i++) {
          const holdId = `${hot ? "h" : "s"}-${w}-${i}`;
          const r = await quota.reserve({ holdId, account, amount: 100, ttlMs: 60_000 });
          if (!r.granted) throw new Error("denied");
          await quota.commit(holdId, 60);
        }
      }),
    );
    const s = seconds(t0);
    reportRow({
      area: "postgres",
      metric: `PostgresQuota reserve+commit pairs/s, 20 connections, ${hot ? "one hot account" : "one account each"}`,
      latch: fmt((workers * perWorker) / s),
      against: "—",
      againstValue: "—",
      ratio: "—",
    });
    console.log(
      `  reserve+commit, 20 connections, ${hot ? "one hot account " : "one account each"}: ${rate(workers * perWorker, s)} pairs`,
    );
  }
}

async function summaryLatency(pool: pg.Pool): Promise<void> {
  const engine = new DefaultRatingEngine();
  const pricing = new InMemoryPricingSource(Object.values(SNAPSHOTS) as unknown as PriceSnapshot[]);
  const store = new PostgresRatedRecordStore(pool, { schema });
  const t0 = process.hrtime.bigint();
  const chunk = 20_000;
  for (let start = 0; start < RATED; start += chunk) {
    const obs = observations(Math.min(chunk, RATED - start), `rr${start}`);
    const records: RatedUsageRecord[] = obs.map((o) =>
      engine.rate(o, pricing.require(o.model, o.timing.completedAt), { ratedAt: "2026-04-01T00:00:00Z" }),
    );
    // Four batches in flight, as several writers would.
    const batches: RatedUsageRecord[][] = [];
    for (let i = 0; i < records.length; i += BATCH) batches.push(records.slice(i, i + BATCH));
    await Promise.all(batches.map((b) => store.putMany(b)));
  }
  const loadSeconds = seconds(t0);
  await pool.query(`ANALYZE "${schema}".rated_records`);
  console.log(
    `\nsummary over ${RATED.toLocaleString("en-US")} rated records (loaded with putMany at ${rate(RATED, loadSeconds)})`,
  );
  const queries = [
    {
      label: "whole month, groupBy []",
      q: { start: "2026-03-01T00:00:00Z", end: "2026-04-01T00:00:00Z", groupBy: [] },
    },
    {
      label: "whole month, groupBy [model, day]",
      q: { start: "2026-03-01T00:00:00Z", end: "2026-04-01T00:00:00Z", groupBy: ["model", "day"] },
    },
    {
      label: "one day, one tenant, groupBy [model]",
      q: {
        start: "2026-03-10T00:00:00Z",
        end: "2026-03-11T00:00:00Z",
        groupBy: ["model"],
        filters: { tenantId: "tenant-7" },
      },
    },
  ] as const;
  for (const { label, q } of queries) {
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = process.hrtime.bigint();
      await store.summary({ ...q, groupBy: [...q.groupBy] });
      times.push(seconds(t) * 1000);
    }
    times.sort((a, b) => a - b);
    reportRow({
      area: "postgres",
      metric: `summary over ${fmt(RATED)} rated records: ${label}`,
      latch: `${(times[2] as number).toFixed(0)} ms (median of 5)`,
      against: "—",
      againstValue: "—",
      ratio: "—",
    });
    console.log(`  ${label.padEnd(38)} median ${(times[2] as number).toFixed(0)} ms (5 runs)`);
  }
}

async function main() {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 20 });
  try {
    await migrate(pool, { schema });
    await appendVersusCopy(pool);
    console.log("");
    await reserveCommitPairs(pool);
    await summaryLatency(pool);
  } finally {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool.end();
  }
}

await main();
